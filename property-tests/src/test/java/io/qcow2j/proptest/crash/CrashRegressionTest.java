package io.qcow2j.proptest.crash;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.proptest.driver.GuestOp;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Crash-ordering bugs found by {@link CrashConsistencyTest}, each pinned down by a small exact case. */
class CrashRegressionTest {
    @TempDir
    Path dir;

    /** 1 MiB raw backing file of 0x5a bytes under an extended-L2 image with 64 KiB clusters (2 KiB subclusters). */
    private TestImage extendedL2OverBacking() throws IOException {
        byte[] guest = new byte[1 << 20];
        Arrays.fill(guest, (byte) 0x5a);
        Path back = Files.write(dir.resolve("back.raw"), guest).toRealPath();
        Path top = Qemu.create(dir, "top.qcow2",
                "cluster_size=65536,extended_l2=on,backing_file=back.raw,backing_fmt=raw", null).toRealPath();
        return new TestImage(top, Files.readAllBytes(top), back, guest.clone(), guest, 65536, 3, guest.length);
    }

    /**
     * Extended L2: a write into an unallocated subcluster of a cluster the image already owns is done in place,
     * and the rest of the subcluster is copied from the backing file (copy-on-write). The copy must be on disk
     * before the L2 entry that marks the subcluster allocated: otherwise a crash can leave the subcluster
     * allocated over never-written host bytes, and guest bytes the write did not touch (flushed long before)
     * read as zeros. The engine synced before such an L2 update only when the host cluster was new.
     */
    @Test
    void copyOnWriteIntoASubclusterOfAnOwnedClusterReachesTheDiskBeforeItsL2Entry() throws IOException {
        TestImage image = extendedL2OverBacking();
        RecordingFile rec = RecordingFile.inMemory(image.top(), image.topBytes());
        Qcow2Image img = image.open(rec, ImageOptions.builder().readOnly(false).cacheCleanInterval(0).build());
        List<GuestOp> ops = List.of(
                new GuestOp.Write(0, 512, 1), // allocates cluster 0 (subcluster 0)
                new GuestOp.Flush(),
                new GuestOp.Write(0x9100, 100, 2), // subcluster 18, in place: head and tail copied from the backing file
                new GuestOp.Flush());
        List<Workload.Executed> run = Workload.run(img, rec, ops);
        List<IoEvent> log = rec.log();
        long host = -1;
        try (Qcow2Image after = image.open(MemoryFile.readOnly(image.top(), rec.content()), ImageOptions.defaults())) {
            host = after.blockStatus(0, 512).hostOffset();
        }
        // the copy-on-write write of subcluster 18, then a sync, then the L2 update
        int cow = -1;
        for (int i = run.get(2).start(); i < run.get(2).end(); i++) {
            if (log.get(i) instanceof IoEvent.Write w && w.offset() == host + 0x9000 && w.length() == 2048) {
                cow = i;
            }
        }
        assertThat(cow).as("copy-on-write of subcluster 18 in %s", log).isNotNegative();
        int l2 = -1;
        for (int i = cow + 1; i < log.size() && l2 < 0; i++) {
            if (log.get(i) instanceof IoEvent.Write w && !(w.offset() <= host + 0x9000 && host + 0x9000 < w.end())) {
                l2 = i; // the next metadata write: the L2 slice
            }
        }
        assertThat(l2).isPositive();
        assertThat(log.subList(cow + 1, l2)).as("events between the copy (#%d) and the L2 update (#%d)", cow, l2)
                .anySatisfy(e -> assertThat(e).isInstanceOf(IoEvent.Sync.class));
        // and every crash state keeps the guest bytes around the write
        CrashChecker.Stats stats = new CrashChecker(dir, image, "regression").check(rec.crashSimulator(), run, 0, 1,
                new CrashChecker.Sampling(1000, 1000, 2));
        assertThat(stats.states()).isGreaterThan(10);
    }
}
