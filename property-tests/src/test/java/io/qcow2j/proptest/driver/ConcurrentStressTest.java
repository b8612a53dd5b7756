package io.qcow2j.proptest.driver;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.PositionalFile;
import io.qcow2j.proptest.crash.NoSyncFile;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Threads on one open image.
 * <ul>
 *   <li>{@link #threadsOnPrivateAndSharedRanges}: each thread owns a private range (their boundaries fall inside
 *       clusters, so neighbours allocate and copy-on-write the same clusters) where it writes, zeroes, discards
 *       and reads back exactly against its own model, and all threads write sector-tagged data, zeroes and
 *       discards into one shared range, where each 512-byte sector must end up holding one of the values written
 *       to it. Then flush, close, {@code qemu-img check} clean, reopen and verify everything.</li>
 *   <li>{@link #racingWritersAllocateAClusterOnce}: round after round, threads write different parts of the same
 *       unallocated cluster (or, with extended L2, subcluster) at the same moment: it must be allocated once (no
 *       leak, distinct host clusters) and hold every part. In every fourth round a {@link RendezvousFile} holds
 *       the data writes until all the writers have planned theirs, which makes the racy interleavings certain
 *       rather than rare (unless the engine keeps the writers apart, as it must for one cluster).</li>
 * </ul>
 */
class ConcurrentStressTest {
    @TempDir
    Path dir;

    static Stream<Arguments> geometries() {
        return Stream.of(
                Arguments.of("64K clusters", "cluster_size=65536", false, "default"),
                Arguments.of("4K clusters, refcount_bits=1, tiny L2 cache", "cluster_size=4096,refcount_bits=1", false,
                        "tiny"),
                Arguments.of("64K clusters, extended L2, over a backing file, tiny L2 cache",
                        "cluster_size=65536,extended_l2=on", true, "tiny"),
                Arguments.of("512-byte clusters, refcount_bits=64, over a backing file", "cluster_size=512,refcount_bits=64",
                        true, "default"));
    }

    private static final long SIZE = 8L << 20;
    private static final int THREADS = 6;

    private record Image(Path file, byte[] initial, int clusterSize) {}

    private Image create(String options, boolean backing) throws IOException {
        byte[] initial = new byte[(int) SIZE];
        String opts = options;
        if (backing) {
            SplittableRandom rnd = new SplittableRandom(7);
            rnd.nextBytes(initial);
            for (int i = 0; i < initial.length; i += 128 << 10) { // zeros here and there
                Arrays.fill(initial, i, i + (32 << 10), (byte) 0);
            }
            Files.write(dir.resolve("back.raw"), initial);
            opts += ",backing_file=back.raw,backing_fmt=raw";
        }
        Path file = Qemu.create(dir, "stress.qcow2", opts, SIZE);
        try (Qcow2Image img = ChainOpener.openQcow2(file, ImageOptions.defaults())) {
            return new Image(file, initial, img.header().clusterSize());
        }
    }

    private static ImageOptions options(String cache) {
        ImageOptions.Builder b = ImageOptions.builder().readOnly(false).cacheCleanInterval(0);
        if (cache.equals("tiny")) {
            b.l2CacheSize(1024L).l2CacheEntrySize(512L);
        }
        return b.build();
    }

    /** Opens with syncs skipped (counted): this test is about threads, not durability. */
    private static Qcow2Image open(Path file, ImageOptions options) throws IOException {
        return ChainOpener.openQcow2(file, options, (p, mode, w) -> new NoSyncFile(ChainOpener.ALIGNED_FILES.open(p, mode, w)));
    }

    /** A sector of the shared range holding {@code tag} (8 bytes, repeated); tag 0 is all zeros. */
    private static void fillSector(byte[] b, int at, long tag) {
        ByteBuffer bb = ByteBuffer.wrap(b, at, 512);
        for (int i = 0; i < 64; i++) {
            bb.putLong(tag);
        }
    }

    /** The tag a sector holds, or null if it is not 64 copies of one 8-byte value. */
    private static Long sectorTag(byte[] b, int at) {
        ByteBuffer bb = ByteBuffer.wrap(b, at, 512);
        long t = bb.getLong();
        for (int i = 1; i < 64; i++) {
            if (bb.getLong() != t) {
                return null;
            }
        }
        return t;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("geometries")
    void threadsOnPrivateAndSharedRanges(String name, String options, boolean backing, String cache) throws Exception {
        long t0 = System.nanoTime();
        Image im = create(options, backing);
        int cs = im.clusterSize();
        // private ranges [p*k, p*(k+1)) for k < THREADS, boundaries inside clusters; the shared range after them
        long priv = ((SIZE * 3 / 4) / THREADS) - 1000;
        long sharedStart = (priv * THREADS + 511) & -512L;
        long sharedEnd = SIZE;
        int sectors = (int) ((sharedEnd - sharedStart) / 512);
        // what each shared sector may hold: the initial content (as a tag if uniform, else "initial"), and every tag
        // written to it (0 for zeroes and discards)
        List<Set<Long>> written = new ArrayList<>(sectors);
        for (int s = 0; s < sectors; s++) {
            written.add(ConcurrentHashMap.newKeySet());
        }
        byte[][] models = new byte[THREADS][];
        long[] counts = new long[6];
        try (Qcow2Image img = open(im.file(), options(cache))) {
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            List<Future<long[]>> results = new ArrayList<>();
            CyclicBarrier start = new CyclicBarrier(THREADS);
            for (int t = 0; t < THREADS; t++) {
                int me = t;
                long from = priv * t;
                long to = priv * (t + 1);
                models[t] = Arrays.copyOfRange(im.initial(), (int) from, (int) to);
                results.add(pool.submit(() -> worker(img, me, from, to, models[me], sharedStart, sectors, written, cs,
                        start)));
            }
            pool.shutdown();
            assertThat(pool.awaitTermination(120, TimeUnit.SECONDS)).as("workers finished").isTrue();
            for (Future<long[]> f : results) {
                long[] c = f.get(); // rethrows a worker's failure
                for (int i = 0; i < c.length; i++) {
                    counts[i] += c[i];
                }
            }
            img.flush();
        }
        Qemu.requireClean(im.file(), name + ", after " + THREADS + " threads");
        // reopen and verify: private ranges exactly, shared sectors one of their values
        try (Qcow2Image img = open(im.file(), ImageOptions.defaults())) {
            for (int t = 0; t < THREADS; t++) {
                byte[] got = new byte[models[t].length];
                img.read(priv * t, MemorySegment.ofArray(got));
                int m = Arrays.mismatch(got, models[t]);
                assertThat(m).as("%s: thread %d's range differs at guest 0x%s after reopening", name, t,
                        Long.toHexString(priv * t + m)).isEqualTo(-1);
            }
            byte[] shared = new byte[(int) (sharedEnd - sharedStart)];
            img.read(sharedStart, MemorySegment.ofArray(shared));
            checkShared(name, shared, sharedStart, im.initial(), written);
        }
        System.out.printf("stress, %s: %d threads, %d writes, %d write zeroes, %d discards, %d verified reads in private"
                + " ranges; %d tagged writes, zeroes and discards in the shared range; qemu-img check clean; %d ms%n",
                name, THREADS, counts[0], counts[1], counts[2], counts[3], counts[4],
                (System.nanoTime() - t0) / 1_000_000);
        assertThat(counts[0]).isPositive();
        assertThat(counts[4]).isPositive();
    }

    private static void checkShared(String name, byte[] shared, long sharedStart, byte[] initial, List<Set<Long>> written) {
        for (int s = 0; s < written.size(); s++) {
            int at = s * 512;
            Long tag = sectorTag(shared, at);
            boolean initialContent = Arrays.equals(shared, at, at + 512, initial, (int) sharedStart + at,
                    (int) sharedStart + at + 512);
            if (!initialContent && (tag == null || !written.get(s).contains(tag))) {
                throw new AssertionError(name + ": shared sector at guest 0x" + Long.toHexString(sharedStart + at)
                        + " holds " + (tag == null ? "a mix of values" : "tag 0x" + Long.toHexString(tag))
                        + ", not its initial content nor one of the values written to it " + written.get(s));
            }
        }
    }

    /** One thread's work; returns {writes, zeroes, discards, verified reads, shared ops}. */
    private static long[] worker(Qcow2Image img, int me, long from, long to, byte[] model, long sharedStart,
            int sectors, List<Set<Long>> written, int cs, CyclicBarrier start) throws Exception {
        SplittableRandom rnd = new SplittableRandom(1000 + me);
        long[] n = new long[6];
        long privLen = to - from;
        start.await();
        for (int i = 0; i < 220; i++) {
            int kind = rnd.nextInt(100);
            if (kind < 60) {
                // private range
                long len = 1 + rnd.nextLong(Math.min(privLen, rnd.nextBoolean() ? 3L * cs : 96 << 10));
                long off = rnd.nextInt(4) == 0 ? (rnd.nextBoolean() ? 0 : privLen - len) // at the shared boundaries
                        : rnd.nextLong(privLen - len + 1);
                int op = rnd.nextInt(10);
                if (op < 7) {
                    byte[] b = new byte[(int) len];
                    rnd.nextBytes(b);
                    img.write(from + off, MemorySegment.ofArray(b));
                    System.arraycopy(b, 0, model, (int) off, b.length);
                    n[0]++;
                } else if (op < 9) {
                    img.writeZeroes(from + off, len, ZeroFlag.unmapIf(rnd.nextBoolean()));
                    Arrays.fill(model, (int) off, (int) (off + len), (byte) 0);
                    n[1]++;
                } else {
                    img.discard(from + off, len);
                    long a = (from + off + cs - 1) & -(long) cs;
                    long b = (from + off + len) & -(long) cs;
                    if (a < b) {
                        Arrays.fill(model, (int) (a - from), (int) (b - from), (byte) 0);
                    }
                    n[2]++;
                }
                // read back the range and around it, while the others keep writing
                long ra = Math.max(0, off - cs);
                long rb = Math.min(privLen, off + len + cs);
                byte[] got = new byte[(int) (rb - ra)];
                img.read(from + ra, MemorySegment.ofArray(got));
                int m = Arrays.mismatch(got, 0, got.length, model, (int) ra, (int) rb);
                if (m >= 0) {
                    throw new AssertionError("thread " + me + ": guest 0x" + Long.toHexString(from + ra + m)
                            + " in its own range reads wrong data after request " + i);
                }
                n[3]++;
            } else {
                // shared range: sector-aligned, each sector tagged with (thread, request, sector)
                int count = 1 + rnd.nextInt(rnd.nextBoolean() ? 8 : Math.max(1, 3 * cs / 512));
                int first = rnd.nextInt(sectors - count + 1);
                long off = sharedStart + first * 512L;
                int op = rnd.nextInt(10);
                if (op < 7) {
                    byte[] b = new byte[count * 512];
                    for (int s = 0; s < count; s++) {
                        long tag = ((long) (me + 1) << 48) | ((long) i << 24) | (first + s);
                        written.get(first + s).add(tag);
                        fillSector(b, s * 512, tag);
                    }
                    img.write(off, MemorySegment.ofArray(b));
                } else if (op < 9) {
                    for (int s = 0; s < count; s++) {
                        written.get(first + s).add(0L);
                    }
                    img.writeZeroes(off, count * 512L, ZeroFlag.unmapIf(rnd.nextBoolean()));
                } else {
                    long a = (off + cs - 1) & -(long) cs;
                    long end = off + count * 512L;
                    long b = end == img.size() ? end : end & -(long) cs;
                    for (long p = a; p < b; p += 512) {
                        written.get((int) ((p - sharedStart) / 512)).add(0L);
                    }
                    img.discard(off, count * 512L);
                }
                n[4]++;
            }
        }
        // a last full check of the private range
        byte[] got = new byte[(int) privLen];
        img.read(from, MemorySegment.ofArray(got));
        int m = Arrays.mismatch(got, model);
        if (m >= 0) {
            throw new AssertionError("thread " + me + ": guest 0x" + Long.toHexString(from + m)
                    + " in its own range reads wrong data at the end");
        }
        n[3]++;
        return new long[] {n[0], n[1], n[2], n[3], n[4], 0};
    }

    /**
     * A race: in every round, a fresh cluster; {@code before} (offset, length pairs within the cluster) are
     * written first by one thread, then one thread per {@code parts} pair writes it, all at the same moment.
     */
    record Race(String name, String options, boolean backing, long[] before, long[] parts) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Race> races() {
        long k = 1024;
        return Stream.of(
                new Race("64K clusters, halves", "cluster_size=65536", false, new long[0],
                        new long[] {0, 32 * k, 32 * k, 32 * k}),
                new Race("4K clusters over a backing file, quarters (copy-on-write from the backing file)",
                        "cluster_size=4096", true, new long[0], new long[] {0, k, k, k, 2 * k, k, 3 * k, k}),
                new Race("64K clusters, extended L2, over a backing file, quarters of one cluster",
                        "cluster_size=65536,extended_l2=on", true, new long[0],
                        new long[] {0, 16 * k, 16 * k, 16 * k, 32 * k, 16 * k, 48 * k, 16 * k}),
                new Race("64K clusters, extended L2, over a backing file, halves of an unallocated subcluster of an"
                        + " allocated cluster", "cluster_size=65536,extended_l2=on", true, new long[] {60 * k, 512},
                        new long[] {0, k, k, k}),
                new Race("64K clusters, extended L2, over a backing file, a write into an allocated subcluster and"
                        + " one from it into the next, unallocated one", "cluster_size=65536,extended_l2=on", true,
                        new long[] {0, 2 * k}, new long[] {0, k, k, 2 * k}),
                new Race("64K clusters, extended L2, halves of an allocated subcluster", "cluster_size=65536,extended_l2=on",
                        false, new long[] {0, 2 * k}, new long[] {0, k, k, k}));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("races")
    void racingWritersAllocateAClusterOnce(Race race) throws Exception {
        long t0 = System.nanoTime();
        String name = race.name();
        Image im = create(race.options(), race.backing());
        int cs = im.clusterSize();
        int threads = race.parts().length / 2;
        int rounds = (int) Math.min(128, SIZE / cs);
        byte[] expected = im.initial().clone();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        RendezvousFile[] file = new RendezvousFile[1];
        try (Qcow2Image img = ChainOpener.openQcow2(im.file(), options("default"), (p, mode, w) -> {
            PositionalFile f = new NoSyncFile(ChainOpener.ALIGNED_FILES.open(p, mode, w));
            return w ? (file[0] = new RendezvousFile(f)) : f;
        })) {
            CyclicBarrier barrier = new CyclicBarrier(threads);
            SplittableRandom rnd = new SplittableRandom(name.hashCode());
            for (int r = 0; r < rounds; r++) {
                long cluster = (long) r * cs;
                for (int i = 0; i < race.before().length; i += 2) {
                    byte[] b = new byte[(int) race.before()[i + 1]];
                    rnd.nextBytes(b);
                    img.write(cluster + race.before()[i], MemorySegment.ofArray(b));
                    System.arraycopy(b, 0, expected, (int) (cluster + race.before()[i]), b.length);
                }
                if (r % 4 == 0) {
                    // every fourth round: the writers' data writes wait for each other (20 ms at most), so that
                    // all of them have planned before any of them writes
                    file[0].arm(threads, 20);
                }
                List<Future<?>> fs = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    long off = cluster + race.parts()[2 * t];
                    byte[] b = new byte[(int) race.parts()[2 * t + 1]];
                    rnd.nextBytes(b);
                    System.arraycopy(b, 0, expected, (int) off, b.length);
                    fs.add(pool.submit(() -> {
                        barrier.await(30, TimeUnit.SECONDS);
                        img.write(off, MemorySegment.ofArray(b));
                        return null;
                    }));
                }
                for (Future<?> f : fs) {
                    f.get();
                }
            }
            byte[] got = new byte[(int) SIZE];
            img.read(0, MemorySegment.ofArray(got));
            int m = Arrays.mismatch(got, expected);
            assertThat(m).as("%s: guest byte 0x%s differs", name, Long.toHexString(m)).isEqualTo(-1);
            // each guest cluster written has its own host cluster
            Set<Long> hosts = new java.util.HashSet<>();
            for (int r = 0; r < rounds; r++) {
                long h = img.blockStatus((long) r * cs, cs).hostOffset();
                assertThat(h).as("%s: cluster %d is allocated", name, r).isPositive();
                assertThat(hosts.add(h)).as("%s: host cluster 0x%s used twice", name, Long.toHexString(h)).isTrue();
            }
        } finally {
            pool.shutdownNow();
        }
        // allocated once: no leaked cluster (a second allocation dropped), no cluster referenced twice
        Qemu.requireClean(im.file(), name);
        try (Qcow2Image img = open(im.file(), ImageOptions.defaults())) {
            byte[] got = new byte[(int) SIZE];
            img.read(0, MemorySegment.ofArray(got));
            int m = Arrays.mismatch(got, expected);
            assertThat(m).as("%s: after reopening, guest byte 0x%s differs", name, Long.toHexString(m)).isEqualTo(-1);
        }
        System.out.printf("allocation race, %s: %d rounds of %d threads writing parts of the same cluster at once"
                + " (in %d of them all the writers met before writing, in %d the engine kept them apart); every cluster"
                + " allocated once, every part there, qemu-img check clean; %d ms%n", name, rounds, threads,
                file[0].gathered(), file[0].timedOut(), (System.nanoTime() - t0) / 1_000_000);
    }
}
