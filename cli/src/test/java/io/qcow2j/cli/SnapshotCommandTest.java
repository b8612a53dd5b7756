package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code qcow2j snapshot} against {@code qemu-img snapshot}: the list byte for byte on the same image, the
 * operations on twins (check clean, compare equal), and the same first error line and exit status for bad
 * input.
 */
class SnapshotCommandTest {
    @TempDir
    Path dir;

    @Test
    void listIsQemuImgsTable() throws IOException {
        Path img = Qemu.create(dir, "a.qcow2", "cluster_size=4096", "4M");
        assertThat(Cli.ok("snapshot", "-l", img.toString())).isEmpty();
        Qemu.io(img, "write -P 1 0 64k");
        Cli.ok("snapshot", "-c", "first", img.toString());
        Qemu.img(dir, "snapshot", "-c", "theirs", "a.qcow2");
        Cli.ok("snapshot", "-q", "-c", "", img.toString());
        Cli.ok("snapshot", "-c", "a tag longer than the sixteen columns of the table", img.toString());
        String theirs = Qemu.img(dir, "snapshot", "-l", "a.qcow2");
        assertThat(Cli.ok("snapshot", "-l", img.toString())).isEqualTo(theirs);
        assertThat(Cli.ok("snapshot", "-U", "-l", img.toString())).isEqualTo(theirs);
        assertThat(theirs.lines()).hasSize(6);
        Qemu.requireClean(img, "four snapshots");
    }

    @Test
    void operationsOnTwins() throws IOException {
        Path ours = Qemu.create(dir, "ours.qcow2", "cluster_size=65536", "16M");
        Qemu.io(ours, "write -P 1 0 2M", "write -P 2 8M 1M");
        Path theirs = Files.copy(ours, dir.resolve("theirs.qcow2"));
        byte[] before = Qemu.guestContent(ours);
        Cli.ok("snapshot", "-c", "s", ours.toString());
        Qemu.img(dir, "snapshot", "-c", "s", "theirs.qcow2");
        // the entry's fields (ID, name, VM state size, VM clock, icount) as qemu-img writes them
        assertThat(CommitCommandTest.snapshotsWithoutDates(dir, "ours.qcow2"))
                .isEqualTo(CommitCommandTest.snapshotsWithoutDates(dir, "theirs.qcow2"));
        for (Path p : new Path[] {ours, theirs}) {
            Qemu.io(p, "write -P 3 1M 2M", "discard 8M 512k");
        }
        Cli.ok("snapshot", "-a", "s", ours.toString());
        Qemu.img(dir, "snapshot", "-a", "1", "theirs.qcow2");
        assertThat(Qemu.guestContent(ours)).isEqualTo(before);
        Qemu.requireClean(ours, "after apply");
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).isZero();
        Cli.ok("snapshot", "-d", "s", ours.toString());
        Qemu.img(dir, "snapshot", "-d", "s", "theirs.qcow2");
        Qemu.requireClean(ours, "after delete");
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).isZero();
        assertThat(Cli.ok("snapshot", "-l", ours.toString())).isEmpty();
    }

    /**
     * Delete frees what only the snapshot held and discards it in the file as QEMU does (its snapshot
     * discards are passed through by default): the file keeps its length, its allocated blocks drop by the
     * freed clusters to within 1/8 + 128 KiB of qemu-img's, and the next writes reuse the freed clusters (the
     * file does not grow), on twins with 4 KiB and 64 KiB clusters.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"cluster_size=65536", "cluster_size=4096"})
    void deleteDiscardsFreedClustersAsQemuImg(String opts) throws IOException {
        Path ours = Qemu.create(dir, "ours.qcow2", opts, "16M");
        Qemu.io(ours, "write -P 1 0 8M");
        Qemu.img(dir, "snapshot", "-c", "s", "ours.qcow2");
        Qemu.io(ours, "write -P 2 0 8M"); // the snapshot alone holds the first 8 MiB of data now
        Path theirs = Files.copy(ours, dir.resolve("theirs.qcow2"));
        long length = Files.size(ours);
        long blocksBefore = ResizeCommandTest.blocks(dir, ours);
        Cli.ok("snapshot", "-d", "s", ours.toString());
        Qemu.img(dir, "snapshot", "-d", "s", "theirs.qcow2");
        long oursBlocks = ResizeCommandTest.blocks(dir, ours);
        long theirBlocks = ResizeCommandTest.blocks(dir, theirs);
        assertThat(theirBlocks).as("qemu-img discards").isLessThan(blocksBefore - (7 << 11));
        assertThat(Math.abs(oursBlocks - theirBlocks)).as("%d blocks, qemu-img's %d", oursBlocks, theirBlocks)
                .isLessThanOrEqualTo(theirBlocks / 8 + 256);
        assertThat(Files.size(ours)).isEqualTo(length);
        Qemu.requireClean(ours, "after delete");
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).isZero();
        Qemu.io(ours, "write -P 3 8M 7M"); // into the freed clusters
        assertThat(Files.size(ours)).as("the freed clusters are reused").isEqualTo(length);
        Qemu.requireClean(ours, "after writes into the freed clusters");
    }

    @Test
    void badInputAsQemuImg() throws IOException {
        Path img = Qemu.create(dir, "a.qcow2", "", "1M");
        Qemu.img(dir, "snapshot", "-c", "s", "a.qcow2");
        Qemu.img(dir, "create", "-q", "-f", "raw", "r.raw", "1M");
        String[][] cases = {
            {"-a", "nope", "a.qcow2"},
            {"-d", "nope", "a.qcow2"},
            {"-d", "1", "a.qcow2"},
            {"-l", "-c", "x", "a.qcow2"},
            {"-l", "-l", "a.qcow2"},
            {"-U", "-c", "x", "a.qcow2"},
            {"-c", "x", "r.raw"},
            {"-a", "x", "r.raw"},
            {"-d", "x", "r.raw"},
        };
        byte[] unchanged = Files.readAllBytes(img);
        for (String[] args : cases) {
            String[] q = new String[args.length + 2];
            q[0] = "qemu-img";
            q[1] = "snapshot";
            System.arraycopy(args, 0, q, 2, args.length);
            Qemu.Result qemu = Qemu.exec(dir, q);
            String[] c = new String[args.length + 1];
            c[0] = "snapshot";
            for (int i = 0; i < args.length; i++) {
                c[i + 1] = args[i].endsWith(".qcow2") || args[i].endsWith(".raw") ? dir.resolve(args[i]).toString()
                        : args[i];
            }
            Qemu.Result ours = Cli.run(c);
            assertThat(ours.exit()).as(String.join(" ", args)).isEqualTo(qemu.exit()).isEqualTo(1);
            assertThat(lastError(ours.err(), dir)).as(String.join(" ", args)).isEqualTo(lastError(qemu.err(), dir));
        }
        assertThat(Files.readAllBytes(img)).isEqualTo(unchanged);
        assertThat(Cli.run("snapshot", img.toString()).exit()).isZero(); // no action: nothing done, as qemu-img
    }

    @Test
    void refcountsTooNarrowRefusedChangingNothing() throws IOException {
        Path img = Qemu.create(dir, "rb.qcow2", "refcount_bits=1", "1M");
        Qemu.io(img, "write 0 64k");
        byte[] before = Files.readAllBytes(img);
        Qemu.Result r = Cli.run("snapshot", "-c", "s", img.toString());
        assertThat(r.exit()).isEqualTo(1); // qemu-img: "Could not create snapshot 's': -22 (Invalid argument)"
        assertThat(r.err()).isEqualTo("qcow2j: Could not create snapshot 's': " + img
                + ": a cluster's refcount would exceed the maximum of refcount_bits=1\n");
        assertThat(Files.readAllBytes(img)).isEqualTo(before);
        Qemu.requireClean(img, "refused snapshot");
    }

    @Test
    void sizesAsQemuPrintsThem() {
        assertThat(SnapshotCommand.sizeToString(0)).isEqualTo("0 B");
        assertThat(SnapshotCommand.sizeToString(999)).isEqualTo("999 B");
        assertThat(SnapshotCommand.sizeToString(1000)).isEqualTo("0.977 KiB");
        assertThat(SnapshotCommand.sizeToString(1536)).isEqualTo("1.5 KiB");
        assertThat(SnapshotCommand.sizeToString(1L << 20)).isEqualTo("1 MiB");
        assertThat(SnapshotCommand.sizeToString(123_456_789)).isEqualTo("118 MiB");
    }

    /** The error line (not the warnings about probing raw, nor the "Try --help" line), without the program name and folder. */
    private static String lastError(String err, Path dir) {
        return err.lines().filter(l -> l.startsWith("qemu-img: ") || l.startsWith("qcow2j: ")).findFirst().orElse("")
                .replaceFirst("^(qemu-img|qcow2j): ", "").replace(dir + "/", "");
    }
}
