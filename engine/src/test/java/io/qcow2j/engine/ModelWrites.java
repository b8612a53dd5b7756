package io.qcow2j.engine;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;

/**
 * Asynchronous writes of random bytes with at most {@code depth} in flight (the oldest is joined before one
 * more goes out), each also copied into {@link #model}, the bytes the disk must hold afterwards. Shared by
 * the tests that write at depth and then compare the image with the model.
 */
public final class ModelWrites {
    private final Disk disk;
    private final Arena arena;
    private final Random rnd;
    private final int depth;
    private final ArrayDeque<CompletableFuture<Void>> window = new ArrayDeque<>();
    /** What the disk holds once every write completed. */
    public final byte[] model;

    public ModelWrites(Disk disk, Arena arena, Random rnd, int depth, byte[] model) {
        this.disk = disk;
        this.arena = arena;
        this.rnd = rnd;
        this.depth = depth;
        this.model = model;
    }

    /** Submits a write of {@code length} random bytes at {@code offset}, waiting first for the oldest if full. */
    public void write(long offset, int length) {
        byte[] data = new byte[length];
        rnd.nextBytes(data);
        System.arraycopy(data, 0, model, (int) offset, length);
        MemorySegment src = arena.allocate(length);
        src.copyFrom(MemorySegment.ofArray(data));
        window.add(disk.writeAsync(offset, src));
        if (window.size() == depth) {
            window.removeFirst().join();
        }
    }

    /**
     * The disk's first {@code size} bytes read back through {@code readAsync}, 256 KiB per request, all in
     * flight together.
     */
    public static byte[] readBackAsync(Disk disk, Arena arena, int size) {
        MemorySegment back = arena.allocate(size);
        List<CompletableFuture<Void>> reads = new ArrayList<>();
        for (int off = 0; off < size; off += 1 << 18) {
            reads.add(disk.readAsync(off, back.asSlice(off, Math.min(1 << 18, size - off))));
        }
        CompletableFuture.allOf(reads.toArray(CompletableFuture[]::new)).join();
        return back.toArray(ValueLayout.JAVA_BYTE);
    }

    /** Waits for every write in flight. */
    public void drain() {
        while (!window.isEmpty()) {
            window.removeFirst().join();
        }
    }
}
