package io.qcow2j.proptest.crash;

import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.IntSupplier;

/**
 * The file a simulated crash left behind ({@link CrashSimulator#image}): the durable part shared with the
 * simulator, with the surviving unsynced changes laid over it when read. Read-only; valid until the simulator
 * moves its durable part (then every call fails). {@link #writeTo} puts it on disk for other tools.
 */
public final class CrashImage implements PositionalFile {
    private final Path path;
    private final CrashState state;
    private final ByteStore durable;
    private final IntSupplier currentGeneration;
    private final int generation;
    private final List<IoEvent> overlay;
    private final long size;

    CrashImage(Path path, CrashState state, ByteStore durable, IntSupplier currentGeneration, int generation,
            List<IoEvent> overlay) {
        this.path = path;
        this.state = state;
        this.durable = durable;
        this.currentGeneration = currentGeneration;
        this.generation = generation;
        this.overlay = List.copyOf(overlay);
        long s = durable.size();
        for (IoEvent e : this.overlay) {
            switch (e) {
                case IoEvent.Write w -> s = Math.max(s, w.end());
                case IoEvent.Truncate t -> s = t.length();
                default -> { }
            }
        }
        this.size = s;
    }

    /** The crash this file comes from. */
    public CrashState state() {
        return state;
    }

    private void checkValid() throws IOException {
        if (currentGeneration.getAsInt() != generation) {
            throw new IOException(path + ": stale crash image (the simulator has moved on to a later sync)");
        }
    }

    @Override
    public long read(long offset, MemorySegment dst) throws IOException {
        checkValid();
        long len = Math.max(0, Math.min(dst.byteSize(), size - offset));
        if (len == 0) {
            return 0;
        }
        MemorySegment d = dst.asSlice(0, len);
        long n = durable.read(offset, d);
        if (n < len) {
            d.asSlice(n).fill((byte) 0);
        }
        long end = offset + len;
        for (IoEvent e : overlay) {
            switch (e) {
                case IoEvent.Write w -> {
                    long a = Math.max(offset, w.offset());
                    long b = Math.min(end, w.end());
                    if (a < b) {
                        MemorySegment.copy(w.data(), (int) (a - w.offset()), d, ValueLayout.JAVA_BYTE, a - offset,
                                (int) (b - a));
                    }
                }
                case IoEvent.PunchHole p -> zero(d, offset, end, p.offset(), p.offset() + p.length());
                case IoEvent.Truncate t -> zero(d, offset, end, t.length(), Long.MAX_VALUE);
                default -> { }
            }
        }
        return len;
    }

    private static void zero(MemorySegment d, long offset, long end, long from, long to) {
        long a = Math.max(offset, from);
        long b = Math.min(end, to);
        if (a < b) {
            d.asSlice(a - offset, b - a).fill((byte) 0);
        }
    }

    /** The whole content. */
    public byte[] toArray() throws IOException {
        byte[] b = new byte[Math.toIntExact(size)];
        read(0, MemorySegment.ofArray(b));
        return b;
    }

    /** Writes the content to {@code file} (replacing it). */
    public void writeTo(Path file) throws IOException {
        Files.write(file, toArray());
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        throw new IOException(path + ": crash image is read-only");
    }

    @Override
    public long size() throws IOException {
        checkValid();
        return size;
    }

    @Override
    public long allocatedBytes() {
        return (size + 4095) & -4096L;
    }

    @Override
    public void truncate(long length) throws IOException {
        throw new IOException(path + ": crash image is read-only");
    }

    @Override
    public void dataSync() {
    }

    @Override
    public void punchHole(long offset, long length) throws IOException {
        throw new IOException(path + ": crash image is read-only");
    }

    @Override
    public long seekData(long offset) {
        return offset < size ? offset : -1;
    }

    @Override
    public long seekHole(long offset) {
        return offset <= size ? size : -1;
    }

    @Override
    public String fallbackReason() {
        return null;
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return "crash image " + path + ": " + state;
    }
}
