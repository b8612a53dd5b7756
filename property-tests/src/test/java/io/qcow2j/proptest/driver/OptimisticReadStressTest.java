package io.qcow2j.proptest.driver;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.CacheStats;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.TableStoreKind;
import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.proptest.crash.NoSyncFile;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The lock-free lookups of cached L2 slices ({@code Qcow2Image.mapLocked}: peek, read, validate) under the races
 * they must survive.
 * <ul>
 *   <li>{@link #readersOfStableClustersWhileSlicesChurn}: an L2 cache of a few 512-byte slices, so that the slices
 *       readers use are evicted and reloaded all the time, and the cleaner runs every second (churning as they
 *       are, tables are rarely unused long enough for it to drop them). Readers read (and ask the block status
 *       of) a region whose clusters never change (data, partly written, unallocated, zeroed, discarded), and
 *       check every byte; meanwhile writers allocate clusters in their own ranges (new L2 tables, refcount
 *       updates), and one thread zeroes and discards in its range (the exclusive side of the request lock; the
 *       clusters it frees may be reused by the writers). At the end every range is checked against its model,
 *       {@code qemu-img check} is clean, and after reopening it all again.</li>
 *   <li>{@link #closingWhileRequestsRunEndsEachOneCleanly}: readers and a writer run until the image is closed under
 *       them; each must end with the IOException "... image is closed" (or complete), never another exception, and
 *       every write that returned must be in the image after reopening ({@link CloseTest} has the deterministic
 *       form of that last part).</li>
 * </ul>
 */
class OptimisticReadStressTest {
    @TempDir
    Path dir;

    private static final long RUN_MS = 1200;

    record Geometry(String name, String options, long size, long stableEnd, int l2Slices, TableStoreKind store) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Geometry> geometries() {
        return Stream.of(
                new Geometry("4K clusters, 3 L2 slices of 512 bytes", "cluster_size=4096", 32L << 20, 8L << 20, 3,
                        TableStoreKind.OFF_HEAP),
                new Geometry("64K clusters, extended L2, 2 L2 slices of 512 bytes", "cluster_size=65536,extended_l2=on",
                        64L << 20, 16L << 20, 2, TableStoreKind.OFF_HEAP),
                new Geometry("512-byte clusters, 4 L2 slices of 512 bytes, heap store", "cluster_size=512", 8L << 20,
                        2L << 20, 4, TableStoreKind.HEAP));
    }

    /** Fills {@code b[off, off + len)} with the stable data of guest bytes {@code from..}: 8-byte words derived from their offset. */
    private static void pattern(byte[] b, long from, int off, int len) {
        for (int i = 0; i < len; i++) {
            long o = from + i;
            long word = (o & -8L) * 0x9E3779B97F4A7C15L + 0x5bd1e995L;
            b[off + i] = (byte) (word >>> ((o & 7) * 8));
        }
    }

    private record Stable(byte[] expected, int[] kinds) {}

    /**
     * Writes the stable region cluster by cluster: kinds 0, 1 all data; 2 its first half data (a subcluster mix with
     * extended L2); 3 never written; 4 written then zeroed (zero flag); 5 written then discarded.
     */
    private static Stable writeStable(Qcow2Image img, long stableEnd) throws IOException {
        int cs = img.header().clusterSize();
        int clusters = (int) (stableEnd / cs);
        byte[] expected = new byte[(int) stableEnd];
        int[] kinds = new int[clusters];
        SplittableRandom rnd = new SplittableRandom(42);
        byte[] buf = new byte[cs];
        for (int c = 0; c < clusters; c++) {
            int kind = rnd.nextInt(6);
            kinds[c] = kind;
            long at = (long) c * cs;
            if (kind == 3) {
                continue;
            }
            int len = kind == 2 ? cs / 2 : cs;
            pattern(buf, at, 0, len);
            img.write(at, MemorySegment.ofArray(buf).asSlice(0, len));
            switch (kind) {
                case 4 -> img.writeZeroes(at, cs);
                case 5 -> img.discard(at, cs);
                default -> System.arraycopy(buf, 0, expected, (int) at, len);
            }
        }
        return new Stable(expected, kinds);
    }

    private static Qcow2Image open(Path file, ImageOptions options) throws IOException {
        return ChainOpener.openQcow2(file, options, (p, mode, w) -> new NoSyncFile(ChainOpener.ALIGNED_FILES.open(p, mode, w)));
    }

    private static ImageOptions tiny(Geometry g) {
        return ImageOptions.builder().readOnly(false).l2CacheSize(512L * g.l2Slices()).l2CacheEntrySize(512L)
                .cacheCleanInterval(1).tableStore(g.store()).build();
    }

    /** A range of the image one thread owns, with what it must hold. */
    private record Owned(long from, byte[] model) {
        long to() {
            return from + model.length;
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("geometries")
    void readersOfStableClustersWhileSlicesChurn(Geometry g) throws Exception {
        long t0 = System.nanoTime();
        Path file = Qemu.create(dir, "churn.qcow2", g.options(), g.size());
        Stable stable;
        try (Qcow2Image img = open(file, ImageOptions.builder().readOnly(false).build())) {
            stable = writeStable(img, g.stableEnd());
        }
        int cs;
        long volatileLen = g.size() - g.stableEnd();
        long part = (volatileLen / 3) & -4096L;
        Owned[] owned = new Owned[3]; // writer 0, writer 1, zeroer
        for (int i = 0; i < 3; i++) {
            long from = g.stableEnd() + part * i + (i == 0 ? 0 : 1000); // boundaries inside clusters
            long to = i == 2 ? g.size() : g.stableEnd() + part * (i + 1);
            owned[i] = new Owned(from, new byte[(int) (to - from)]);
        }
        ConcurrentLinkedQueue<Throwable> failures = new ConcurrentLinkedQueue<>();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong reads = new AtomicLong();
        AtomicLong statuses = new AtomicLong();
        AtomicLong writes = new AtomicLong();
        AtomicLong zeroings = new AtomicLong();
        CacheStats before;
        CacheStats after;
        try (Qcow2Image img = open(file, tiny(g))) {
            cs = img.header().clusterSize();
            assertThat(img.cacheSizes().l2Tables()).isEqualTo(g.l2Slices());
            before = img.l2CacheStatistics();
            int readers = 3;
            CyclicBarrier start = new CyclicBarrier(readers + 3);
            List<Thread> threads = new ArrayList<>();
            long hotSpan = 2L * 64 * cs / (g.options().contains("extended_l2") ? 2 : 1); // two slices' worth
            for (int r = 0; r < readers; r++) {
                long seed = r;
                threads.add(thread("reader-" + r, failures, start, () -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    while (!stop.get()) {
                        long span = rnd.nextBoolean() ? Math.min(hotSpan, g.stableEnd()) : g.stableEnd();
                        int len = 1 + rnd.nextInt(Math.min(4 * cs, 96 << 10));
                        long off = rnd.nextLong(span - len + 1);
                        if (rnd.nextInt(10) == 0) {
                            checkStatus(img, off, len, stable, cs);
                            statuses.incrementAndGet();
                        } else {
                            byte[] got = new byte[len];
                            img.read(off, MemorySegment.ofArray(got));
                            int m = Arrays.mismatch(got, 0, len, stable.expected(), (int) off, (int) off + len);
                            if (m >= 0) {
                                throw new AssertionError("stable guest byte 0x" + Long.toHexString(off + m)
                                        + " (cluster kind " + stable.kinds()[(int) ((off + m) / cs)] + ") reads 0x"
                                        + Integer.toHexString(got[m] & 0xff) + ", expected 0x"
                                        + Integer.toHexString(stable.expected()[(int) (off + m)] & 0xff));
                            }
                            reads.incrementAndGet();
                        }
                    }
                }));
            }
            for (int w = 0; w < 2; w++) {
                Owned o = owned[w];
                long seed = 100 + w;
                int csz = cs;
                threads.add(thread("writer-" + w, failures, start, () -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    long pos = 0;
                    while (!stop.get()) {
                        int len = 1 + rnd.nextInt(2 * csz);
                        long off;
                        if (rnd.nextInt(4) == 0) {
                            off = rnd.nextLong(o.model().length - len + 1);
                        } else { // forward through the range: mostly fresh clusters, so mostly allocations
                            if (pos + len > o.model().length) {
                                pos = 0;
                            }
                            off = pos;
                            pos += len + rnd.nextInt(csz);
                        }
                        byte[] b = new byte[len];
                        rnd.nextBytes(b);
                        img.write(o.from() + off, MemorySegment.ofArray(b));
                        System.arraycopy(b, 0, o.model(), (int) off, len);
                        writes.incrementAndGet();
                    }
                }));
            }
            Owned z = owned[2];
            int csz = cs;
            threads.add(thread("zeroer", failures, start, () -> {
                SplittableRandom rnd = new SplittableRandom(200);
                while (!stop.get()) {
                    int len = 1 + rnd.nextInt(4 * csz);
                    long off = rnd.nextLong(z.model().length - len + 1);
                    byte[] b = new byte[len];
                    rnd.nextBytes(b);
                    img.write(z.from() + off, MemorySegment.ofArray(b));
                    System.arraycopy(b, 0, z.model(), (int) off, len);
                    len = 1 + rnd.nextInt(6 * csz);
                    off = rnd.nextLong(z.model().length - len + 1);
                    if (rnd.nextBoolean()) {
                        img.writeZeroes(z.from() + off, len, ZeroFlag.unmapIf(rnd.nextBoolean()));
                        Arrays.fill(z.model(), (int) off, (int) (off + len), (byte) 0);
                    } else {
                        img.discard(z.from() + off, len);
                        long a = (z.from() + off + csz - 1) & -(long) csz;
                        long e = (z.from() + off + len) & -(long) csz;
                        if (a < e) {
                            Arrays.fill(z.model(), (int) (a - z.from()), (int) (e - z.from()), (byte) 0);
                        }
                    }
                    zeroings.incrementAndGet();
                    TimeUnit.MILLISECONDS.sleep(2);
                }
            }));
            threads.forEach(Thread::start);
            Thread.sleep(RUN_MS);
            stop.set(true);
            for (Thread t : threads) {
                t.join(30_000);
                assertThat(t.isAlive()).as(t.getName() + " finished").isFalse();
            }
            rethrow(failures);
            after = img.l2CacheStatistics();
            verifyAll(img, g.name() + ", at the end", stable.expected(), owned);
            img.flush();
        }
        Qemu.requireClean(file, g.name());
        try (Qcow2Image img = open(file, ImageOptions.defaults())) {
            verifyAll(img, g.name() + ", after reopening", stable.expected(), owned);
        }
        long evictions = after.evictions() - before.evictions();
        long hits = after.hits() - before.hits();
        System.out.printf("optimistic reads, %s: %d verified reads, %d block statuses, %d writes, %d zeroes/discards;"
                + " L2 cache: %d hits (lock-free ones included), %d misses, %d evictions, %d cleaned; qemu-img check"
                + " clean; %d ms%n", g.name(), reads.get(), statuses.get(), writes.get(), zeroings.get(), hits,
                after.misses() - before.misses(), evictions, after.cleaned() - before.cleaned(),
                (System.nanoTime() - t0) / 1_000_000);
        assertThat(reads.get()).isGreaterThan(100);
        assertThat(writes.get()).isGreaterThan(10);
        assertThat(zeroings.get()).isPositive();
        assertThat(evictions).as("slices evicted while the readers read").isGreaterThan(1000);
        assertThat(hits).as("slices found cached").isPositive();
    }

    /** Block status of a stable range: one extent from {@code off}; if it says zero (or unallocated), the bytes are zeros. */
    private static void checkStatus(Qcow2Image img, long off, int len, Stable stable, int cs) throws IOException {
        BlockStatus s = img.blockStatus(off, len);
        if (s.start() != off || s.length() <= 0 || s.length() > len) {
            throw new AssertionError("block status of [0x" + Long.toHexString(off) + ", +" + len + "): " + s);
        }
        byte[] e = stable.expected();
        boolean allZero = true;
        for (int i = (int) off; i < off + s.length(); i++) {
            if (e[i] != 0) {
                allZero = false;
                break;
            }
        }
        // no backing file: an extent that is zero, or not allocated here, reads as zeros; data is data
        if ((s.zero() || !s.allocated()) && !allZero) {
            throw new AssertionError("block status says zeros or unallocated at 0x" + Long.toHexString(off)
                    + " (cluster kind " + stable.kinds()[(int) (off / cs)] + "), the data is not: " + s);
        }
        if (s.data() && (s.zero() || !s.allocated() || s.hostOffset() <= 0)) {
            throw new AssertionError("data extent without a place in the file: " + s);
        }
    }

    private static void verifyAll(Qcow2Image img, String when, byte[] stable, Owned[] owned) throws IOException {
        byte[] got = new byte[stable.length];
        img.read(0, MemorySegment.ofArray(got));
        int m = Arrays.mismatch(got, stable);
        assertThat(m).as("%s: stable guest byte 0x%s", when, Long.toHexString(m)).isEqualTo(-1);
        for (int i = 0; i < owned.length; i++) {
            Owned o = owned[i];
            byte[] b = new byte[o.model().length];
            img.read(o.from(), MemorySegment.ofArray(b));
            m = Arrays.mismatch(b, o.model());
            assertThat(m).as("%s: range %d, guest byte 0x%s", when, i, Long.toHexString(o.from() + m)).isEqualTo(-1);
        }
    }

    @FunctionalInterface
    interface Body {
        void run() throws Exception;
    }

    private static Thread thread(String name, ConcurrentLinkedQueue<Throwable> failures, CyclicBarrier start,
            Body body) {
        return Thread.ofPlatform().name(name).unstarted(() -> {
            try {
                start.await(30, TimeUnit.SECONDS);
                body.run();
            } catch (Throwable t) {
                failures.add(new AssertionError(name + ": " + t, t));
            }
        });
    }

    private static void rethrow(ConcurrentLinkedQueue<Throwable> failures) {
        if (!failures.isEmpty()) {
            AssertionError e = new AssertionError(failures.size() + " thread(s) failed; first: " + failures.peek(),
                    failures.peek());
            failures.stream().skip(1).forEach(e::addSuppressed);
            throw e;
        }
    }

    // ------------------------------------------------------------------------------------------------ close

    /** How each request thread ended. */
    private record Ending(String thread, long requests, Throwable error) {}

    @Test
    void closingWhileRequestsRunEndsEachOneCleanly() throws Exception {
        Geometry g = new Geometry("4K clusters", "cluster_size=4096", 8L << 20, 4L << 20, 3, TableStoreKind.OFF_HEAP);
        Path file = Qemu.create(dir, "close.qcow2", g.options(), g.size());
        Stable stable;
        try (Qcow2Image img = open(file, ImageOptions.builder().readOnly(false).build())) {
            stable = writeStable(img, g.stableEnd());
        }
        byte[] model = new byte[(int) (g.size() - g.stableEnd())];
        Owned w = new Owned(g.stableEnd(), model);
        SplittableRandom rounds = new SplittableRandom(9);
        long closedReads = 0;
        long totalReads = 0;
        long totalWrites = 0;
        for (int round = 0; round < 6; round++) {
            ConcurrentLinkedQueue<Ending> endings = new ConcurrentLinkedQueue<>();
            Qcow2Image img = open(file, round % 2 == 0 ? tiny(g) : ImageOptions.builder().readOnly(false)
                    .cacheCleanInterval(0).build());
            int readers = 3;
            CyclicBarrier start = new CyclicBarrier(readers + 2);
            List<Thread> threads = new ArrayList<>();
            for (int r = 0; r < readers; r++) {
                long seed = round * 10L + r;
                String name = "reader-" + r;
                threads.add(Thread.ofPlatform().name(name).start(() -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    long n = 0;
                    try {
                        start.await(30, TimeUnit.SECONDS);
                        while (true) {
                            int len = 1 + rnd.nextInt(16 << 10);
                            long off = rnd.nextLong(g.stableEnd() - len + 1);
                            byte[] got = new byte[len];
                            img.read(off, MemorySegment.ofArray(got));
                            int m = Arrays.mismatch(got, 0, len, stable.expected(), (int) off, (int) off + len);
                            if (m >= 0) {
                                throw new AssertionError("a completed read got wrong data at guest 0x"
                                        + Long.toHexString(off + m));
                            }
                            n++;
                        }
                    } catch (Throwable t) {
                        endings.add(new Ending(name, n, t));
                    }
                }));
            }
            long seed = round;
            threads.add(Thread.ofPlatform().name("writer").start(() -> {
                SplittableRandom rnd = new SplittableRandom(1000 + seed);
                long n = 0;
                try {
                    start.await(30, TimeUnit.SECONDS);
                    while (true) {
                        int len = 1 + rnd.nextInt(3 * 4096);
                        long off = rnd.nextLong(model.length - len + 1);
                        byte[] b = new byte[len];
                        rnd.nextBytes(b);
                        img.write(w.from() + off, MemorySegment.ofArray(b));
                        System.arraycopy(b, 0, model, (int) off, len); // only writes that returned
                        n++;
                    }
                } catch (Throwable t) {
                    endings.add(new Ending("writer", n, t));
                }
            }));
            start.await(30, TimeUnit.SECONDS);
            Thread.sleep(20 + rounds.nextInt(80));
            img.close();
            for (Thread t : threads) {
                t.join(30_000);
                assertThat(t.isAlive()).as(t.getName() + " ended after the close").isFalse();
            }
            assertThat(endings).hasSize(readers + 1);
            for (Ending e : endings) {
                assertThat(e.error()).as("round %d: how %s ended", round, e.thread()).isInstanceOf(IOException.class)
                        .hasMessage(file.toString() + ": image is closed");
                if (e.thread().startsWith("reader")) {
                    totalReads += e.requests();
                    closedReads++;
                } else {
                    totalWrites += e.requests();
                }
            }
            // and after the close, every request is refused the same way
            for (Body call : List.<Body>of(() -> img.read(0, MemorySegment.ofArray(new byte[512])),
                    () -> img.write(w.from(), MemorySegment.ofArray(new byte[512])),
                    () -> img.writeZeroes(w.from(), 512), () -> img.discard(w.from(), 1 << 20))) {
                try {
                    call.run();
                    throw new AssertionError("a request after close succeeded");
                } catch (IOException e) {
                    assertThat(e).hasMessage(file.toString() + ": image is closed");
                }
            }
            img.close(); // idempotent
            // every write that returned is in the image
            try (Qcow2Image again = open(file, ImageOptions.defaults())) {
                verifyAll(again, "round " + round + ", after the close", stable.expected(), new Owned[] {w});
            }
        }
        Qemu.requireClean(file, "after closing under running requests");
        System.out.printf("close under load: 6 rounds, %d reads and %d writes completed before the closes, %d readers"
                + " ended with 'image is closed'; every write that returned was kept; qemu-img check clean%n",
                totalReads, totalWrites, closedReads);
        assertThat(totalReads).isPositive();
        assertThat(totalWrites).isPositive();
    }
}
