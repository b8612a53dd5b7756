package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.ffm.AsyncIo;
import io.qcow2j.testsupport.Qemu;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Fast-path reads racing with allocating writes, discards and write zeroes on the same clusters: a discard
 * frees a host cluster and the next allocating write reuses it for another guest cluster, so a read whose
 * host cluster were freed while in flight would return another block's bytes. Every 8-byte word of the
 * image names its 4 KiB block and a version, so a read checks each word against the model: zero, or this
 * block with a version written so far ("old or new, never garbage"). Afterwards qemu-img reads the final
 * versions and finds the image clean.
 */
class FastReadsRaceTest {
    private static final int CLUSTER = 65536;
    private static final int BLOCK = 4096;
    private static final int CLUSTERS = 24;
    private static final int BLOCKS = CLUSTERS * CLUSTER / BLOCK;
    private static final int WRITERS = 3;
    private static final long MILLIS = 1500;
    /** Reads each reader keeps in flight: enough that a read waits in the backend's queue behind others. */
    private static final int IN_FLIGHT = 48;

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0} {1} {2}")
    @CsvSource({"io_uring, tmpfs, WRITEBACK", "threads, ext4, WRITEBACK", "io_uring, ext4, NONE",
            "io_uring, ext4, WRITEBACK"})
    void readsSeeOldOrNewBytesNeverAnotherClusters(String backend, String fs, CacheMode mode) throws Exception {
        Path dir = fs.equals("tmpfs") ? Files.createTempDirectory(Path.of("/dev/shm"), "fastrace-") : tmp;
        try (AsyncIo io = AsyncIo.open(backend, 128)) {
            run(dir, io, mode);
        } finally {
            if (fs.equals("tmpfs")) {
                try (var s = Files.walk(dir)) {
                    for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) {
                        Files.deleteIfExists(p);
                    }
                }
            }
        }
    }

    private void run(Path dir, AsyncIo io, CacheMode mode) throws Exception {
        Path img = Qemu.create(dir, "race.qcow2", "cluster_size=65536", (long) CLUSTERS * CLUSTER);
        AtomicLongArray version = new AtomicLongArray(BLOCKS); // the newest version written (0: never)
        AtomicBoolean stop = new AtomicBoolean();
        ConcurrentLinkedQueue<String> bad = new ConcurrentLinkedQueue<>();
        AtomicLong checked = new AtomicLong();
        ImageOptions o = ImageOptions.builder().readOnly(false).cacheMode(mode).build();
        long fastReads;
        try (Qcow2Image im = FastReadsTest.open(img, o, io); Arena arena = Arena.ofShared()) {
            List<Thread> threads = new ArrayList<>();
            for (int w = 0; w < WRITERS; w++) {
                int me = w;
                threads.add(Thread.ofPlatform().start(() -> write(im, me, version, stop, bad)));
            }
            for (int r = 0; r < 2; r++) {
                int seed = 100 + r;
                threads.add(Thread.ofPlatform().start(() -> read(im, arena, seed, version, stop, bad, checked)));
            }
            Thread.sleep(MILLIS);
            stop.set(true);
            for (Thread t : threads) {
                t.join();
            }
            fastReads = im.fastReads();
        }
        assertThat(bad).as("words neither zero nor a version of their block").isEmpty();
        assertThat(fastReads).as("reads on the fast path").isPositive();
        assertThat(checked.get()).as("reads checked").isGreaterThan(fastReads / 2);
        byte[] guest = Qemu.guestContent(img);
        ByteBuffer g = ByteBuffer.wrap(guest).order(ByteOrder.LITTLE_ENDIAN);
        for (int b = 0; b < BLOCKS; b++) {
            long want = version.get(b) == 0 ? 0 : word(b, version.get(b));
            for (int i = 0; i < BLOCK; i += 8) {
                if (g.getLong(b * BLOCK + i) != want) {
                    throw new AssertionError("qemu reads block " + b + " word " + i / 8 + " as 0x"
                            + Long.toHexString(g.getLong(b * BLOCK + i)) + ", the model says 0x" + Long.toHexString(want));
                }
            }
        }
        Qemu.requireClean(img, "after the race");
    }

    static long word(int block, long v) {
        return ((long) block << 32) | v;
    }

    /** A writer owns every WRITERS-th cluster: writes blocks, whole clusters, discards and zeroes them. */
    private static void write(Qcow2Image im, int me, AtomicLongArray version, AtomicBoolean stop,
            ConcurrentLinkedQueue<String> bad) {
        SplittableRandom rnd = new SplittableRandom(me);
        long v = 0;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(CLUSTER, 4096);
            while (!stop.get()) {
                int c = me + WRITERS * rnd.nextInt(CLUSTERS / WRITERS);
                int op = rnd.nextInt(100);
                int first = c * (CLUSTER / BLOCK);
                if (op < 55) {
                    int b = first + rnd.nextInt(CLUSTER / BLOCK);
                    v++;
                    fill(buf.asSlice(0, BLOCK), b, v);
                    im.write((long) b * BLOCK, buf.asSlice(0, BLOCK));
                    version.set(b, v);
                } else if (op < 70) {
                    v++;
                    for (int k = 0; k < CLUSTER / BLOCK; k++) {
                        fill(buf.asSlice((long) k * BLOCK, BLOCK), first + k, v);
                    }
                    im.write((long) c * CLUSTER, buf);
                    for (int k = 0; k < CLUSTER / BLOCK; k++) {
                        version.set(first + k, v);
                    }
                } else {
                    // a read may see zeros or the old versions meanwhile (both pass); the final content is zeros
                    if (op < 85) {
                        im.discard((long) c * CLUSTER, CLUSTER);
                    } else {
                        im.writeZeroes((long) c * CLUSTER, CLUSTER, ZeroFlag.unmapIf(op < 93));
                    }
                    for (int k = 0; k < CLUSTER / BLOCK; k++) {
                        version.set(first + k, 0);
                    }
                }
            }
        } catch (Throwable t) {
            bad.add("writer " + me + ": " + t);
        }
    }

    private static void fill(MemorySegment block, int b, long v) {
        for (long i = 0; i < BLOCK; i += 8) {
            block.set(ValueLayout.JAVA_LONG_UNALIGNED, i, word(b, v));
        }
    }

    /** Keeps up to IN_FLIGHT fast reads in flight, checking each as it completes. */
    private static void read(Qcow2Image im, Arena arena, int seed, AtomicLongArray version, AtomicBoolean stop,
            ConcurrentLinkedQueue<String> bad, AtomicLong checked) {
        SplittableRandom rnd = new SplittableRandom(seed);
        ArrayBlockingQueue<MemorySegment> buffers = new ArrayBlockingQueue<>(IN_FLIGHT);
        for (int i = 0; i < IN_FLIGHT; i++) {
            buffers.add(arena.allocate(32L * BLOCK, 4096));
        }
        try {
            while (!stop.get() && bad.isEmpty()) {
                MemorySegment buf = buffers.take();
                int blocks = 1 + rnd.nextInt(32);
                int firstBlock = rnd.nextInt(BLOCKS - blocks + 1);
                MemorySegment dst = buf.asSlice(0, (long) blocks * BLOCK);
                im.readAsync((long) firstBlock * BLOCK, dst).whenComplete((x, e) -> {
                    try {
                        if (e != null) {
                            bad.add("read failed: " + e);
                            return;
                        }
                        check(dst, firstBlock, blocks, bad);
                        checked.incrementAndGet();
                    } finally {
                        buffers.add(buf);
                    }
                });
            }
            for (int i = 0; i < IN_FLIGHT; i++) {
                buffers.take(); // every read completed
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Each word: zero, or this block's (any version: a read racing writes may see old or new bytes). */
    private static void check(MemorySegment dst, int firstBlock, int blocks, ConcurrentLinkedQueue<String> bad) {
        for (int k = 0; k < blocks; k++) {
            int b = firstBlock + k;
            for (long i = 0; i < BLOCK; i += 8) {
                long w = dst.get(ValueLayout.JAVA_LONG_UNALIGNED, (long) k * BLOCK + i);
                if (w != 0 && ((w >>> 32) != b || (w & 0xffffffffL) == 0)) {
                    bad.add("block " + b + " word " + i / 8 + ": 0x" + Long.toHexString(w) + " (block "
                            + (w >>> 32) + "'s)");
                    return;
                }
            }
        }
    }
}
