package io.qcow2j.proptest.crash;

import io.qcow2j.engine.CacheStats;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.proptest.driver.GuestOp;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Crash consistency: a workload of writes (unaligned, allocating, over a backing file), write zeroes, discards
 * and flushes runs through a {@link RecordingFile}; then for every crash point (every prefix of the I/O log) and
 * for the unsynced writes dropped, all kept, a random subset, and torn, the crash image must open, read back
 * everything a completed flush covered, and (on a sample) pass {@code qemu-img check} (leaks allowed). See
 * {@link CrashChecker}. The L2 cache is tiny (two 512-byte slices), so tables are evicted in the middle of
 * requests.
 */
class CrashConsistencyTest {
    @TempDir
    Path dir;

    /** Crash states per scenario checked by qemu-img check (all of them if there are not more). */
    static final int QEMU_SAMPLE = 60;

    /** Crash states checked by all scenarios together. */
    private static long totalStates;
    private static long totalQemuChecks;

    /**
     * @param name           printed
     * @param options        qemu-img create options
     * @param size           guest size
     * @param backing        qemu-img options of a qcow2 backing file, or null for none
     * @param requests       requests in the workload
     * @param maxWrite       largest "big" write
     * @param prefill        qemu-io commands run on the image before the workload (pre-existing data)
     */
    record Scenario(String name, String options, long size, String backing, int requests, int maxWrite, long seed,
            String... prefill) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Scenario> scenarios() {
        return Stream.of(
                new Scenario("64K clusters, refcount_bits=16, over existing data and compressed clusters",
                        "cluster_size=65536", 12 << 20, null, 40, 192 << 10, 1, "write -P 0x11 1M 1M",
                        "write -c -P 0x22 4M 512K", "write -z 6M 256K"),
                new Scenario("4K clusters, refcount_bits=1", "cluster_size=4096,refcount_bits=1", 8 << 20, null, 40,
                        96 << 10, 2),
                new Scenario("4K clusters, refcount_bits=8, over a backing file",
                        "cluster_size=4096,refcount_bits=8", 8 << 20, "cluster_size=65536", 40, 96 << 10, 3),
                new Scenario("64K clusters, extended L2, refcount_bits=32, over a backing file",
                        "cluster_size=65536,extended_l2=on,refcount_bits=32", 12 << 20, "cluster_size=16384", 40,
                        160 << 10, 4, "write -P 0x33 2M 100K", "write -c -P 0x44 5M 256K"),
                new Scenario("512-byte clusters, refcount_bits=64 (new refcount blocks, table growth)",
                        "cluster_size=512,refcount_bits=64", 6 << 20, null, 30, 256 << 10, 5, "write -P 0x55 4M 1800K"),
                new Scenario("2K clusters, refcount_bits=2", "cluster_size=2048,refcount_bits=2", 4 << 20, null, 35,
                        64 << 10, 6),
                new Scenario("16K clusters, version 2 (compat=0.10), over a backing file", "cluster_size=16384,compat=0.10",
                        8 << 20, "cluster_size=4096", 35, 96 << 10, 7));
    }

    /** Tiny L2 cache: two 512-byte slices. */
    static final ImageOptions TINY = ImageOptions.builder().readOnly(false).l2CacheSize(1024L).l2CacheEntrySize(512L)
            .cacheCleanInterval(0).build();

    /** {@code -Dqcow2j.crashSeed=N} varies every scenario's workload and sampling (default 0: the CI's). */
    static final long SEED = Long.getLong("qcow2j.crashSeed", 0);

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void everyCrashPointLeavesAConsistentImageWithTheFlushedData(Scenario scenario) throws IOException {
        long t0 = System.nanoTime();
        Scenario s = SEED == 0 ? scenario : new Scenario(scenario.name(), scenario.options(), scenario.size(),
                scenario.backing(), scenario.requests(), scenario.maxWrite(), scenario.seed() + 1000 * SEED,
                scenario.prefill());
        TestImage image = TestImage.create(dir, s.options(), s.size(), s.backing(), s.seed(), s.prefill());
        RecordingFile rec = RecordingFile.inMemory(image.top(), image.topBytes());
        List<GuestOp> ops = Workload.generate(s.seed() * 7919, image.size(), image.clusterSize(), s.requests(),
                s.maxWrite());
        Qcow2Image img = image.open(rec, TINY);
        long refcountTable = img.header().refcountTableOffset();
        CacheStats[] l2 = new CacheStats[1];
        List<Workload.Executed> run = Workload.run(img, rec, ops, () -> l2[0] = img.l2CacheStatistics());
        for (Workload.Executed e : run) {
            assertThat(e.error()).as("%s", e).isNull();
        }
        CrashSimulator sim = rec.crashSimulator();
        long syncs = sim.log().stream().filter(e -> e instanceof IoEvent.Sync).count();
        CrashChecker.Stats stats;
        try {
            // qemu-img check on every state of a small log, else on a sample spread over the log
            stats = new CrashChecker(dir, image, s.name()).check(sim, run, 0, s.seed(),
                    new CrashChecker.Sampling(QEMU_SAMPLE, 24, 4));
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\nWorkload:\n" + CrashChecker.describe(run), e);
        }
        long ms = (System.nanoTime() - t0) / 1_000_000;
        System.out.printf("crash consistency, %s (seed %d): %d requests (%d L2 slice evictions, %d write-backs),"
                + " I/O log of %d entries (%d syncs); %s; %d ms%n", s.name(), s.seed(), ops.size(), l2[0].evictions(),
                l2[0].writebacks(), sim.log().size(), syncs, stats, ms);
        synchronized (CrashConsistencyTest.class) {
            totalStates += stats.states();
            totalQemuChecks += stats.qemuChecks();
        }
        // every crash point was visited, each with at least one state; the scenario really crashed mid-way
        assertThat(stats.points()).isEqualTo(sim.points());
        assertThat(stats.states()).isGreaterThanOrEqualTo(sim.points());
        assertThat(sim.log().size()).isGreaterThan(60);
        assertThat(syncs).isGreaterThan(5);
        assertThat(stats.byMode()).containsKeys(Unsynced.values());
        assertThat(stats.qemuChecks()).isGreaterThanOrEqualTo(Math.min(QEMU_SAMPLE - 5, stats.states()));
        if (s.options().contains("cluster_size=512,") && SEED == 0) {
            // the refcount table grew (moved) during the workload
            try (Qcow2Image after = image.open(MemoryFile.readOnly(image.top(), rec.content()),
                    ImageOptions.defaults())) {
                assertThat(after.header().refcountTableOffset()).as("refcount table moved").isNotEqualTo(refcountTable);
            }
        }
        assertThat(l2[0].evictions()).as("L2 slices evicted in the middle of the workload").isPositive();
    }

    @AfterAll
    static void total() {
        System.out.printf("crash consistency: %d crash states checked in all, %d of them with qemu-img check%n",
                totalStates, totalQemuChecks);
        assertThat(totalStates).as("crash states checked").isGreaterThanOrEqualTo(2000);
    }
}
