package io.qcow2j.proptest.crash;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.proptest.driver.GuestOp;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Crash consistency of the sequential allocating writes that take runs of new host clusters at once and grow
 * the file ahead ({@code FileGrowth}): whole-cluster and multi-cluster writes one after the other (each run
 * allocated contiguously from the allocator's cursor), a few partial writes into new clusters (which do not
 * grow the file) and overwrites, a flush every few requests, and the close that gives the reserved space
 * back. Every crash point of the recorded I/O log, with the unsynced writes dropped, kept, sampled and torn,
 * must open, read back every flushed request and pass {@code qemu-img check} on a sample ({@link CrashChecker}).
 */
class GrowthCrashTest {
    @TempDir
    Path dir;

    /** Sequential writes from offset 0: runs of 1–4 whole clusters, some partial or overwriting, flushes. */
    static List<GuestOp> sequential(long seed, long size, int cluster, int count) {
        SplittableRandom rnd = new SplittableRandom(seed);
        List<GuestOp> ops = new ArrayList<>();
        long at = 0;
        for (int i = 0; i < count && at < size; i++) {
            int kind = rnd.nextInt(10);
            if (kind == 0) {
                ops.add(new GuestOp.Flush());
            } else if (kind == 1 && at > 0) {
                long back = rnd.nextLong(at) & -512L; // an overwrite in place
                ops.add(new GuestOp.Write(back, (int) Math.min(1 + rnd.nextInt(2 * cluster), size - back), rnd.nextLong()));
            } else if (kind == 2) {
                ops.add(new GuestOp.Write(at, 4096, rnd.nextLong())); // partial: the rest of the cluster stays a hole
                at += cluster;
            } else {
                int n = (int) Math.min(1 + rnd.nextInt(4), (size - at) / cluster);
                ops.add(new GuestOp.Write(at, n * cluster, rnd.nextLong()));
                at += (long) n * cluster;
            }
        }
        return ops;
    }

    @ParameterizedTest(name = "cluster size {0}")
    @ValueSource(ints = {65536, 4096})
    void everyCrashPointOfSequentialRunAllocationsWithGrowthAheadIsConsistent(int cluster) throws IOException {
        TestImage image = TestImage.create(dir, "cluster_size=" + cluster, 8L << 20, null, cluster);
        RecordingFile rec = RecordingFile.inMemory(image.top(), image.topBytes());
        List<GuestOp> ops = sequential(cluster * 31L, image.size(), cluster, 60);
        Qcow2Image img = image.open(rec, CrashConsistencyTest.TINY);
        List<Workload.Executed> run = Workload.run(img, rec, ops);
        for (Workload.Executed e : run) {
            assertThat(e.error()).as("%s", e).isNull();
        }
        assertThat(rec.reserveCount()).as("the file was grown ahead during the run").isPositive();
        CrashSimulator sim = rec.crashSimulator();
        CrashChecker.Stats stats;
        try {
            stats = new CrashChecker(dir, image, "sequential runs, cluster " + cluster).check(sim, run, 0, cluster,
                    new CrashChecker.Sampling(40, 16, 4));
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "\nWorkload:\n" + CrashChecker.describe(run), e);
        }
        System.out.printf("growth crash consistency, cluster %d: %d requests, %d reservations, log of %d entries; %s%n",
                cluster, ops.size(), rec.reserveCount(), sim.log().size(), stats);
        assertThat(stats.points()).isEqualTo(sim.points());
        assertThat(stats.qemuChecks()).isGreaterThanOrEqualTo(Math.min(35, stats.states()));
    }
}
