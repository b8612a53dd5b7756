package io.qcow2j.proptest.crash;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Qcow2j;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.Errno;
import io.qcow2j.proptest.crash.EveryCallFaultTest.Requests;
import io.qcow2j.proptest.driver.GuestModel;
import io.qcow2j.proptest.driver.GuestOp;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A disk that fills up: the image lives on a 3 MiB tmpfs mounted for the test (as root, which CI is), so
 * {@code ENOSPC} and the short writes before it come from the kernel, through {@code pwrite} for blocking
 * requests and through io_uring for requests on virtual threads. Where no file system can be mounted, a
 * {@link FaultyFile} refuses writes past 3 MiB of file instead (and says so). Random writes, write zeroes,
 * discards and flushes go on until the disk is full and for a dozen requests after; then the disk gets room
 * (the tmpfs is remounted larger) and:
 * <ul>
 *   <li>the first failed request reported {@code ENOSPC}, and a failed flush kept its dirty tables;</li>
 *   <li>a flush and the close succeed;</li>
 *   <li>every request that succeeded reads back (failed ones may have old or new data);</li>
 *   <li>{@code qemu-img check} finds no corruption (leaks allowed: clusters allocated for failed writes).</li>
 * </ul>
 */
class DiskFullTest {
    @TempDir
    Path dir;

    private static final long GUEST = 32L << 20;
    private static final long DISK = 3L << 20;

    @ParameterizedTest
    @EnumSource(Requests.class)
    void aDiskThatFillsUpLosesNothingAcknowledged(Requests how) throws Exception {
        Path fs = Files.createDirectories(dir.resolve("fs"));
        // -Dqcow2j.faults.noMount=true: the fallback, as on a machine where mount is not allowed
        Qemu.Result mount = Boolean.getBoolean("qcow2j.faults.noMount")
                ? new Qemu.Result(1, "", "mount not tried (qcow2j.faults.noMount)")
                : Qemu.exec(dir, "mount", "-t", "tmpfs", "-o", "size=" + DISK, "tmpfs", fs.toString());
        boolean mounted = mount.exit() == 0;
        try {
            Path img = Qemu.create(fs, "full.qcow2", "", GUEST);
            FaultyFile.Plan plan = FaultyFile.Plan.counting();
            if (!mounted) {
                plan.limitSpace(DISK);
            }
            Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.builder().readOnly(false).build(),
                    (p, mode, w) -> new FaultyFile(ChainOpener.ALIGNED_FILES.open(p, mode, w), plan));
            Acknowledged acked = new Acknowledged(new GuestModel(GUEST, 65536, 3, false, null));
            List<GuestOp> ops = Workload.generate(7 + how.ordinal(), GUEST, 65536, 400, 256 << 10);
            int done = 0;
            int okBeforeFull = 0;
            int failed = 0;
            int failedFlushes = 0;
            int keptDirty = 0;
            Throwable first = null;
            for (GuestOp op : ops) {
                int dirtyBefore = EveryCallFaultTest.dirty(im);
                Throwable error = EveryCallFaultTest.apply(im, op, how);
                acked.record(op, error);
                done++;
                if (error == null) {
                    okBeforeFull += first == null ? 1 : 0;
                    if (first != null && done > okBeforeFull + failed + 12) {
                        break;
                    }
                    continue;
                }
                failed++;
                if (first == null) {
                    first = error;
                }
                if (op instanceof GuestOp.Flush) {
                    failedFlushes++;
                    if (dirtyBefore > 0) {
                        assertThat(EveryCallFaultTest.dirty(im)).as("%s: dirty tables after a failed flush", how)
                                .isPositive();
                        keptDirty++;
                    }
                }
                if (done > okBeforeFull + 12) {
                    break;
                }
            }
            assertThat(first).as("the disk filled up").isNotNull();
            assertThat(EveryCallFaultTest.errnoOf(first)).as("%s names ENOSPC", first).isEqualTo(Errno.ENOSPC);
            if (mounted) {
                Qemu.run(dir, "mount", "-o", "remount,size=" + (256L << 20), fs.toString());
            } else {
                plan.freeSpace();
            }
            assertThat(EveryCallFaultTest.apply(im, new GuestOp.Flush(), how)).as("the flush after the disk has room")
                    .isNull();
            assertThat(im.isWritable()).isTrue();
            im.close();
            Qemu.requireConsistent(img, how + ", after the disk filled up");
            try (Qcow2Image after = ChainOpener.openQcow2(img, ImageOptions.builder().readOnly(true).build())) {
                byte[] got = new byte[(int) GUEST];
                after.read(0, MemorySegment.ofArray(got));
                acked.compare(got, how + ", after the disk filled up");
            }
            System.out.printf("disk full, %s requests (%s; %s): %d requests succeeded before the first ENOSPC, %d"
                    + " failed after (%d flushes, %d kept dirty tables), %d requests in all; after the disk got room"
                    + " the flush succeeded, qemu-img check consistent, %d guest bytes compared%n", how,
                    Qcow2j.ioBackend(), mounted ? "a " + (DISK >> 20) + " MiB tmpfs"
                            : "no tmpfs (" + mount.err().strip() + "): writes past " + DISK + " bytes refused",
                    okBeforeFull, failed, failedFlushes, keptDirty, done, acked.certainBytes());
        } finally {
            if (mounted) {
                Qemu.exec(dir, "umount", "-l", fs.toString());
            }
        }
    }
}
