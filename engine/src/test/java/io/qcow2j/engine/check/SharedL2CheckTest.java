package io.qcow2j.engine.check;

import io.qcow2j.engine.CheckResult;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.RepairMode;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
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
 * A hostile image whose 100,000 L1 entries all point at one L2 table (a 48.8 TiB disk of 64 KiB clusters,
 * 1.5 MiB of file): qemu-img check walks that table once per entry, 819 million L2 entries; ours walks it
 * once for all of them ({@link SharedL2}) and counts the same references: the same numbers and exit status as
 * qemu-img check, for the check and for {@code -r all}, in a time set by the size of the file, and without
 * printing the same lines 100,000 times.
 */
class SharedL2CheckTest {
    @TempDir
    Path dir;

    private static final int ENTRIES = 100_000;

    /** The image: guest clusters 0 and 2 written, then {@code entries} L1 entries made copies of entry 0. */
    private Path craft(String options, int entries) throws IOException {
        Path img = Qemu.create(dir, "shared.qcow2", options, entries * (512L << 20));
        Qemu.io(img, "write -P 0x5a 0 64k", "write -P 0x5b 128k 4k");
        ImagePatcher p = ImagePatcher.of(img);
        long l1 = ByteBuffer.wrap(p.read(40, 8)).getLong();
        long entry = ByteBuffer.wrap(p.read(l1, 8)).getLong();
        ByteBuffer copies = ByteBuffer.allocate(8 * (entries - 1));
        while (copies.hasRemaining()) {
            copies.putLong(entry);
        }
        copies.flip();
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            while (copies.hasRemaining()) {
                ch.write(copies, l1 + 8 + copies.position());
            }
        }
        return img;
    }

    /**
     * refcount_bits=16: the references overflow the refcount width, counted as qemu-img counts them; its lines
     * for the L1 entries (each counts a reference to the L2 table, overflowing) are printed as qemu-img prints
     * them, those of the walk once.
     */
    @Test
    void checkWalksTheSharedTableOnceAndCountsWhatQemuImgCounts() throws IOException {
        Path img = craft("cluster_size=65536,refcount_bits=16", ENTRIES);
        long t0 = System.nanoTime();
        QemuCheck q = QemuCheck.run(img);
        long qemuMs = (System.nanoTime() - t0) / 1_000_000;
        List<String> lines = new ArrayList<>();
        t0 = System.nanoTime();
        CheckResult ours = QemuCheck.ours(img, ImageOptions.builder().readOnly(true).build(), lines);
        long oursMs = (System.nanoTime() - t0) / 1_000_000;
        assertThat(QemuCheck.numbers(ours)).isEqualTo(q.numbers());
        assertThat(ours.exitCode()).isEqualTo(q.exit());
        assertThat(ours.corruptions()).isGreaterThan(2L * (ENTRIES - 65535));
        List<String> qemuLines = q.stderr().lines().toList();
        String summary = "(the 99999 other references to the L2 table at 0x";
        assertThat(lines).filteredOn(l -> l.startsWith(summary)).hasSize(1);
        assertThat(new TreeSet<>(lines.stream().filter(l -> !l.startsWith(summary)).toList()))
                .as("the lines qemu-img prints, without repeats").isEqualTo(new TreeSet<>(qemuLines));
        // qemu-img repeats the walk's lines (overflows of the data clusters' counts) for every L1 entry
        assertThat(lines.size()).isLessThan(qemuLines.size() / 2);
        System.out.printf("shared L2 table, refcount_bits=16, %d L1 entries: qemu-img check %d ms (%d lines),"
                + " ours %d ms (%d lines), %d corruptions, %d allocated clusters both%n", ENTRIES, qemuMs,
                qemuLines.size(), oursMs, lines.size(), ours.corruptions(), ours.allocatedClusters());
    }

    /**
     * {@code -r all} (refcount_bits=64, so that the counts fit): the refcounts raised, the COPIED flags of every
     * L1 entry cleared (one write each, as qemu-img does: 3,000 entries, not 100,000, to keep the test short).
     */
    @Test
    void repairOfTheSharedTableEndsAsQemuImgsDoes() throws IOException {
        int refcountBits = 64;
        Path img = craft("cluster_size=65536,refcount_bits=" + refcountBits, 3000);
        Path q = Files.copy(img, dir.resolve("qemu.qcow2"), StandardCopyOption.REPLACE_EXISTING);
        long t0 = System.nanoTime();
        ImageRepairTest.Outcome theirs = ImageRepairTest.qemu(q, RepairMode.ALL);
        long qemuMs = (System.nanoTime() - t0) / 1_000_000;
        t0 = System.nanoTime();
        ImageRepairTest.Outcome mine = ImageRepairTest.ours(img, RepairMode.ALL);
        long oursMs = (System.nanoTime() - t0) / 1_000_000;
        assertThat(mine.exit()).isEqualTo(theirs.exit());
        assertThat(mine.leaksFixed()).isEqualTo(theirs.leaksFixed());
        assertThat(mine.corruptionsFixed()).isEqualTo(theirs.corruptionsFixed());
        assertThat(mine.numbers()).isEqualTo(theirs.numbers());
        System.out.printf("shared L2 table, refcount_bits=%d, check -r all: qemu-img %d ms, ours %d ms, %d"
                + " corruptions fixed, re-check %s%n", refcountBits, qemuMs, oursMs, mine.corruptionsFixed(),
                mine.numbers());
    }
}
