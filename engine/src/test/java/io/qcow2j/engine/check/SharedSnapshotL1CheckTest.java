package io.qcow2j.engine.check;

import io.qcow2j.engine.CheckResult;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.RepairMode;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Snapshots whose L1 tables are one table ({@link SnapshotReferences}): a hostile image with thousands of
 * snapshots naming one L1 table of 100,000 entries that all name one L2 table costs qemu-img check
 * snapshots × entries × L2 entries (10^12 here); ours reads each L1 entry of the file once and walks the L2
 * table twice, whatever the snapshot count, with qemu-img's numbers (checked side by side on a smaller one,
 * check and {@code -r all}). Honest images with several snapshots keep qemu-img's numbers and lines.
 */
class SharedSnapshotL1CheckTest {
    @TempDir
    Path dir;

    private static final int CLUSTER = 65536;

    /**
     * An image whose active L1 table has {@code entries} entries all naming the L2 table of guest cluster 0,
     * and {@code snapshots} snapshot table entries all naming one copy of that L1 table (the copy and a new
     * snapshot table at the end of the file).
     */
    private Path craft(String options, int entries, int snapshots) throws IOException {
        Path img = Qemu.create(dir, "hostile.qcow2", "cluster_size=" + CLUSTER + "," + options,
                entries * (512L << 20));
        Qemu.io(img, "write -P 0x5a 0 64k", "write -P 0x5b 128k 4k");
        ImagePatcher p = ImagePatcher.of(img);
        long l1 = p.u64(40);
        long entry = p.u64(l1);
        ByteBuffer copies = ByteBuffer.allocate(8 * (entries - 1));
        while (copies.hasRemaining()) {
            copies.putLong(entry);
        }
        p.write(l1 + 8, copies.array());
        // the snapshots' L1 table: a copy of the active one, after the end of the file
        long snapshotL1 = (p.size() + CLUSTER - 1) & -CLUSTER;
        ByteBuffer all = ByteBuffer.allocate(8 * entries);
        while (all.hasRemaining()) {
            all.putLong(entry & ~(1L << 63));
        }
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(all.flip(), snapshotL1);
        }
        ByteBuffer table = ByteBuffer.allocate(snapshots * 80);
        for (int i = 0; i < snapshots; i++) {
            byte[] id = Integer.toString(i + 1).getBytes(StandardCharsets.US_ASCII);
            byte[] name = ("s" + i).getBytes(StandardCharsets.US_ASCII);
            int start = table.position();
            table.putLong(snapshotL1).putInt(entries).putShort((short) id.length).putShort((short) name.length)
                    .putInt(0).putInt(0).putLong(0).putInt(0).putInt(16).putLong(0).putLong(entries * (512L << 20))
                    .put(id).put(name);
            while ((table.position() - start) % 8 != 0) {
                table.put((byte) 0);
            }
        }
        byte[] bytes = new byte[table.position()];
        table.flip().get(bytes);
        long at = (p.size() + CLUSTER - 1) & -CLUSTER;
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes), at);
        }
        p.put32(60, snapshots);
        p.put64(64, at);
        return img;
    }

    private static long[] work() {
        return ImageCheck.LAST_WORK.get();
    }

    @Test
    void thousandsOfSnapshotsOnOneL1TableCostOneWalk() throws IOException {
        int entries = 100_000;
        int snapshots = 5000;
        Path img = craft("refcount_bits=64", entries, snapshots);
        List<String> lines = new ArrayList<>();
        long t0 = System.nanoTime();
        CheckResult r = QemuCheck.ours(img, ImageOptions.builder().readOnly(true).build(), lines);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        long[] w = work();
        int l2Entries = CLUSTER / 8;
        // each snapshot L1 entry of the file read once; the L2 table walked twice for the active table, twice
        // for the snapshots, twice for the COPIED flags (where qemu-img reads 5000 × 100,000 L1 entries and
        // 5 × 10^8 × 8192 L2 entries)
        assertThat(w[1]).isEqualTo(entries);
        assertThat(w[0]).isLessThanOrEqualTo(6L * l2Entries);
        assertThat(ms).as("a generous wall limit on a loaded machine").isLessThan(60_000);
        // the data cluster of guest cluster 0 is referenced by every L1 entry of every table
        assertThat(r.corruptions()).isPositive();
        assertThat(lines.size()).isLessThan(100);
        System.out.printf("%d snapshots on one L1 table of %d entries naming one L2 table: %d ms, %d L2 entries"
                + " visited, %d snapshot L1 entries read, %d corruptions%n", snapshots, entries, ms, w[0], w[1],
                r.corruptions());
    }

    /** Small enough for qemu-img (30 × 200 × 8192 L2 entries): the same numbers and exit, the same lines. */
    @Test
    void checkOfSnapshotsSharingOneL1TableCountsWhatQemuImgCounts() throws IOException {
        Path img = craft("refcount_bits=16", 200, 30);
        QemuCheck q = QemuCheck.run(img);
        List<String> lines = new ArrayList<>();
        CheckResult ours = QemuCheck.ours(img, ImageOptions.builder().readOnly(true).build(), lines);
        assertThat(QemuCheck.numbers(ours)).isEqualTo(q.numbers());
        assertThat(ours.exitCode()).isEqualTo(q.exit());
        assertThat(work()[1]).isEqualTo(200);
        assertThat(new TreeSet<>(lines.stream().filter(l -> !l.startsWith("(the ")).toList()))
                .as("the lines qemu-img prints, without repeats")
                .isEqualTo(new TreeSet<>(q.stderr().lines().toList()));
    }

    /** {@code -r all} and {@code -r leaks}: the same repair as qemu-img's, then a re-check with its numbers. */
    @Test
    void repairOfSnapshotsSharingOneL1TableEndsAsQemuImgsDoes() throws IOException {
        for (RepairMode mode : RepairMode.values()) {
            Path img = craft("refcount_bits=64", 100, 20);
            Path q = Files.copy(img, dir.resolve("qemu.qcow2"), StandardCopyOption.REPLACE_EXISTING);
            ImageRepairTest.Outcome theirs = ImageRepairTest.qemu(q, mode);
            ImageRepairTest.Outcome mine = ImageRepairTest.ours(img, mode);
            assertThat(mine.exit()).as("%s", mode).isEqualTo(theirs.exit());
            assertThat(mine.leaksFixed()).as("%s", mode).isEqualTo(theirs.leaksFixed());
            assertThat(mine.corruptionsFixed()).as("%s", mode).isEqualTo(theirs.corruptionsFixed());
            assertThat(mine.numbers()).as("%s", mode).isEqualTo(theirs.numbers());
            // qemu-img as the oracle of our repair: the refcounts we wrote are the references it counts
            assertThat(QemuCheck.run(img).numbers()).as("%s: qemu-img check after the repairs", mode)
                    .isEqualTo(QemuCheck.run(q).numbers());
            Files.delete(img);
        }
    }

    /**
     * Honest images: snapshots taken with writes between them and without (snapshots whose L1 tables name
     * the same L2 tables), one deleted: qemu-img check's numbers and lines exactly, and a repair of leaks.
     */
    @Test
    void honestSnapshotsMatchQemuImg() throws IOException {
        for (String options : List.of("cluster_size=65536", "cluster_size=4096,refcount_bits=8",
                "extended_l2=on,cluster_size=16384")) {
            Path img = Qemu.create(dir, "honest.qcow2", options, 64L << 20);
            Qemu.io(img, "write -P 1 0 1M", "write -c -P 2 4M 64k");
            for (int s = 0; s < 6; s++) {
                Qemu.run(dir, "qemu-img", "snapshot", "-c", "s" + s, "honest.qcow2");
                if (s % 2 == 1) {
                    Qemu.io(img, "write -P " + (3 + s) + " " + s + "M 128k", "discard 40M 64k");
                }
            }
            Qemu.run(dir, "qemu-img", "snapshot", "-d", "s2", "honest.qcow2");
            QemuCheck q = QemuCheck.run(img);
            List<String> lines = new ArrayList<>();
            CheckResult ours = QemuCheck.ours(img, ImageOptions.builder().readOnly(true).build(), lines);
            assertThat(QemuCheck.numbers(ours)).as(options).isEqualTo(q.numbers());
            assertThat(ours.exitCode()).as(options).isEqualTo(q.exit());
            assertThat(lines).as(options).isEqualTo(q.stderr().lines().toList());
            assertThat(q.numbers().get("allocated-clusters")).isPositive();
            Files.delete(img);
        }
    }
}
