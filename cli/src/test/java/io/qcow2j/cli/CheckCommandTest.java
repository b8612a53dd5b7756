package io.qcow2j.cli;

import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow2j check} against {@code qemu-img check}: the same summary on stdout (human and JSON, byte
 * for byte), the same problem lines on stderr, the same exit status; and the options qemu-img has.
 */
class CheckCommandTest {
    @TempDir
    Path dir;

    /** What a command printed and how it ended. */
    record Run(int exit, String out, String err) {
        /** stderr with the program name taken out of the error lines. */
        List<String> errLines() {
            return err.lines().map(l -> l.replaceFirst("^(qemu-img|qcow2j): ", "")).toList();
        }
    }

    static synchronized Run qcow2j(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
                PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            System.setOut(o);
            System.setErr(e);
            int exit = Main.run(args);
            o.flush();
            e.flush();
            return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    Run exec(String... command) {
        Qemu.Result r = Qemu.exec(dir, command);
        return new Run(r.exit(), r.out(), r.err());
    }

    void ok(String... command) {
        Run r = exec(command);
        assertThat(r.exit()).as("%s: %s", List.of(command), r.err()).isZero();
    }

    Run qemuImg(String... args) {
        List<String> cmd = new ArrayList<>(List.of("qemu-img"));
        cmd.addAll(List.of(args));
        return exec(cmd.toArray(String[]::new));
    }

    /** 64 KiB clusters, 16-bit refcounts: data, a compressed cluster, zeros, a snapshot, a rewrite. */
    Path image() {
        ok("qemu-img", "create", "-q", "-f", "qcow2", "i.qcow2", "64M");
        ok("qemu-io", "-f", "qcow2", "-c", "write -P 1 0 256k", "-c", "write -c -P 2 1M 64k", "-c", "write -z 2M 64k",
                "-c", "write -P 3 40M 64k", "i.qcow2");
        ok("qemu-img", "snapshot", "-c", "s1", "i.qcow2");
        ok("qemu-io", "-f", "qcow2", "-c", "write -P 4 0 64k", "i.qcow2");
        return dir.resolve("i.qcow2");
    }

    static long u64(Path p, long off) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(8);
            ch.read(b, off);
            return b.flip().getLong();
        }
    }

    static void put(Path p, long off, ByteBuffer b) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(b.flip(), off);
        }
    }

    /** Sets the 16-bit refcount of host cluster {@code cluster} (in the first refcount block). */
    static void setRefcount(Path p, long cluster, int value) throws IOException {
        long block = u64(p, u64(p, 48));
        put(p, block + 2 * cluster, ByteBuffer.allocate(2).putShort((short) value));
    }

    /** Both tools on the same file (by its absolute name): same stdout, same stderr lines, same exit status. */
    Run assertSameAsQemu(Path img, String... options) {
        List<String> args = new ArrayList<>(List.of("check"));
        args.addAll(List.of(options));
        args.add(img.toString());
        Run q = qemuImg(args.toArray(String[]::new));
        Run j = qcow2j(args.toArray(String[]::new));
        assertThat(j.out()).as("stdout of check %s", args).isEqualTo(q.out());
        assertThat(j.errLines()).as("stderr of check %s", args).isEqualTo(q.errLines());
        assertThat(j.exit()).as("exit status of check %s", args).isEqualTo(q.exit());
        return j;
    }

    @ParameterizedTest(name = "--output={0}")
    @ValueSource(strings = {"human", "json"})
    void cleanImage(String output) {
        Run r = assertSameAsQemu(image(), "--output=" + output);
        assertThat(r.exit()).isZero();
        assertThat(r.out()).contains(output.equals("json") ? "\"allocated-clusters\": 6" : "No errors were found");
    }

    @ParameterizedTest(name = "--output={0}")
    @ValueSource(strings = {"human", "json"})
    void leakedCluster(String output) throws IOException {
        Path img = image();
        setRefcount(img, u64(img, 40) >>> 16, 2); // the L1 table's cluster
        Run r = assertSameAsQemu(img, "--output=" + output);
        assertThat(r.exit()).isEqualTo(3);
        assertThat(r.err()).contains("Leaked cluster");
    }

    @ParameterizedTest(name = "--output={0}")
    @ValueSource(strings = {"human", "json"})
    void corruption(String output) throws IOException {
        Path img = image();
        setRefcount(img, 0, 0); // the header cluster
        long l2 = u64(img, u64(img, 40)) & 0x00ff_ffff_ffff_fe00L;
        put(img, l2 + 8 * 100, ByteBuffer.allocate(8).putLong((1L << 63) | (1L << 30))); // past the end of the file
        Run r = assertSameAsQemu(img, "--output=" + output);
        assertThat(r.exit()).isEqualTo(2);
    }

    @Test
    void checkErrorsAndAFailedCheck() throws IOException {
        Path img = image();
        long reftable = u64(img, 48);
        put(img, reftable, ByteBuffer.allocate(8).putLong(u64(img, reftable) + 0x200)); // unaligned refcount block
        Run r = assertSameAsQemu(img);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.out()).contains("internal errors have occurred during the check");
        assertThat(r.err()).endsWith("qcow2j: Check failed\n");
        assertSameAsQemu(img, "--output=json");
    }

    @Test
    void checkThatCannotBeCompletedPrintsNoSummary() throws IOException {
        Path img = image();
        long sn = u64(img, 64);
        put(img, sn + 36, ByteBuffer.allocate(4).putInt(4096)); // too much extra data: the table cannot be read
        Run q = qemuImg("check", img.toString());
        Run j = qcow2j("check", img.toString());
        assertThat(j.exit()).isEqualTo(q.exit()).isEqualTo(1);
        assertThat(j.out()).isEqualTo(q.out()).isEmpty();
        // qcow2j reads the snapshot table at open (the overlap check needs it), so it fails there, in one line
        assertThat(j.err().lines()).singleElement().asString().startsWith("qcow2j: ").contains("snapshot table");
    }

    @Test
    void quietPrintsNothingButKeepsTheStatus() throws IOException {
        Path img = image();
        setRefcount(img, u64(img, 40) >>> 16, 2);
        Run r = assertSameAsQemu(img, "-q");
        assertThat(r.out()).isEmpty();
        assertThat(r.exit()).isEqualTo(3);
    }

    @Test
    void imageOptsNameTheImageByTheOptionString() {
        Path img = image();
        String opts = "driver=qcow2,file.filename=" + img;
        Run q = qemuImg("check", "--image-opts", "--output=json", "-U", opts);
        Run j = qcow2j("check", "--image-opts", "--output=json", "-U", opts);
        assertThat(j.out()).isEqualTo(q.out()).contains("\"filename\": \"" + opts + "\"");
        assertThat(j.exit()).isEqualTo(q.exit()).isZero();
    }

    // ---------------------------------------------------------------- repair (-r)

    /**
     * {@code check -r} by both tools, each on its own copy of {@code img} (same file name, different
     * folders): the same stdout and stderr lines (the copies' paths made equal), the same exit status; when
     * qemu-img's repair succeeded, ours is consistent for qemu-img and holds the same guest data.
     */
    Run assertRepairSameAsQemu(Path img, String... options) throws IOException {
        Path q = Files.createDirectories(dir.resolve("q")).resolve("i.qcow2");
        Path j = Files.createDirectories(dir.resolve("j")).resolve("i.qcow2");
        Files.copy(img, q, StandardCopyOption.REPLACE_EXISTING);
        Files.copy(img, j, StandardCopyOption.REPLACE_EXISTING);
        List<String> args = new ArrayList<>(List.of("check"));
        args.addAll(List.of(options));
        List<String> qa = new ArrayList<>(args);
        qa.add(q.toString());
        List<String> ja = new ArrayList<>(args);
        ja.add(j.toString());
        Run qr = qemuImg(qa.toArray(String[]::new));
        Run jr = qcow2j(ja.toArray(String[]::new));
        String qs = q.toString();
        String js = j.toString();
        assertThat(jr.out().replace(js, "IMG")).as("stdout of %s", args).isEqualTo(qr.out().replace(qs, "IMG"));
        assertThat(jr.errLines().stream().map(l -> l.replace(js, "IMG")).toList()).as("stderr of %s", args)
                .isEqualTo(qr.errLines().stream().map(l -> l.replace(qs, "IMG")).toList());
        assertThat(jr.exit()).as("exit status of %s", args).isEqualTo(qr.exit());
        if (qr.exit() == 0) {
            assertThat(qemuImg("check", j.toString()).exit()).as("qemu-img check of our repair").isZero();
            Run cmp = qemuImg("compare", q.toString(), j.toString());
            assertThat(cmp.exit()).as("qemu-img compare: %s", cmp.out()).isZero();
        }
        return jr;
    }

    /** The refcount of the L1 table's cluster raised, and a cluster appended that nothing references. */
    Path leakedImage() throws IOException {
        Path img = image();
        setRefcount(img, u64(img, 40) >>> 16, 2);
        long end = Files.size(img);
        put(img, end, ByteBuffer.allocate(65536).position(65536));
        setRefcount(img, end >>> 16, 1);
        return img;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"human", "json"})
    void repairLeaks(String output) throws IOException {
        Path img = leakedImage();
        for (String mode : new String[] {"leaks", "all"}) {
            Run r = assertRepairSameAsQemu(img, "-r", mode, "--output=" + output);
            assertThat(r.exit()).isZero();
            assertThat(r.err()).contains("Repairing cluster 3 refcount=2 reference=1");
            assertThat(r.out()).contains(output.equals("json") ? "\"leaks-fixed\": 2"
                    : "The following inconsistencies were found and repaired:\n\n    2 leaked clusters\n"
                    + "    0 corruptions\n\nDouble checking the fixed image now...\nNo errors were found");
        }
    }

    /** A shared data cluster's refcount lowered (2 to 1), and a leak: -r leaks leaves the corruption. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"human", "json"})
    void repairCorruptions(String output) throws IOException {
        Path img = image();
        long l2 = u64(img, u64(img, 40)) & 0x00ff_ffff_ffff_fe00L;
        long shared = u64(img, l2 + 8) & 0x00ff_ffff_ffff_fe00L; // guest cluster 1: shared with the snapshot
        setRefcount(img, shared >>> 16, 1);
        setRefcount(img, u64(img, 40) >>> 16, 2);
        Run leaks = assertRepairSameAsQemu(img, "-r", "leaks", "--output=" + output);
        assertThat(leaks.exit()).isEqualTo(2);
        Run all = assertRepairSameAsQemu(img, "-r", "all", "--output=" + output);
        assertThat(all.exit()).isZero();
        assertThat(all.err()).contains("Repairing cluster " + (shared >>> 16) + " refcount=1 reference=2");
    }

    /** Refcounts of used clusters set to 0: -r all rebuilds the refcount structure, -r leaks cannot. */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"human", "json"})
    void repairByRebuildingTheRefcountStructure(String output) throws IOException {
        Path img = image();
        long l2 = u64(img, u64(img, 40)) & 0x00ff_ffff_ffff_fe00L;
        setRefcount(img, l2 >>> 16, 0);
        setRefcount(img, (u64(img, l2) & 0x00ff_ffff_ffff_fe00L) >>> 16, 0);
        Run leaks = assertRepairSameAsQemu(img, "-r", "leaks", "--output=" + output);
        assertThat(leaks.exit()).isEqualTo(1);
        assertThat(leaks.out()).isEmpty();
        assertThat(leaks.err()).endsWith("ERROR need to rebuild refcount structures\nqcow2j: Check failed: Input/output error\n");
        Run all = assertRepairSameAsQemu(img, "-r", "all", "--output=" + output);
        assertThat(all.exit()).isZero();
        assertThat(all.err()).contains("Rebuilding refcount structure");
    }

    @Test
    void repairCopiedFlags() throws IOException {
        Path img = image();
        long l1 = u64(img, 40);
        long l2 = u64(img, l1) & 0x00ff_ffff_ffff_fe00L;
        put(img, l1, ByteBuffer.allocate(8).putLong(u64(img, l1) & ~(1L << 63)));
        put(img, l2, ByteBuffer.allocate(8).putLong(u64(img, l2) & ~(1L << 63)));
        put(img, l2 + 8, ByteBuffer.allocate(8).putLong(u64(img, l2 + 8) | (1L << 63)));
        Run r = assertRepairSameAsQemu(img, "-r", "leaks");
        assertThat(r.exit()).isZero();
        assertThat(r.out()).contains("    3 corruptions");
        assertRepairSameAsQemu(img, "-r", "all", "--output=json");
    }

    @Test
    void repairQuietAndDirty() throws IOException {
        Path img = leakedImage();
        put(img, 72, ByteBuffer.allocate(8).putLong(1)); // dirty bit
        Run r = assertRepairSameAsQemu(img, "-r", "all", "-q");
        assertThat(r.out()).isEmpty();
        assertThat(u64(dir.resolve("j").resolve("i.qcow2"), 72)).as("dirty bit cleared").isZero();
    }

    @Test
    void badRepairArguments() {
        Path img = image();
        Run bad = qcow2j("check", "-r", "some", img.toString());
        Run q = qemuImg("check", "-r", "some", img.toString());
        assertThat(bad.exit()).isEqualTo(q.exit()).isEqualTo(1);
        assertThat(bad.errLines()).first().isEqualTo(q.errLines().get(0));
        assertThat(bad.err().lines()).hasSize(1);
        Run shared = qcow2j("check", "-r", "all", "-U", img.toString());
        Run qs = qemuImg("check", "-r", "all", "-U", img.toString());
        assertThat(shared.exit()).isEqualTo(qs.exit()).isEqualTo(1);
        assertThat(shared.errLines()).isEqualTo(qs.errLines());
    }

    @Test
    void otherFormatsAreNotChecked() throws IOException {
        Path img = image();
        Run q = qemuImg("check", "-f", "raw", img.toString());
        Run j = qcow2j("check", "-f", "raw", img.toString());
        assertThat(j.exit()).isEqualTo(q.exit()).isEqualTo(63);
        assertThat(j.errLines()).isEqualTo(q.errLines());
        Path raw = Files.write(dir.resolve("r.img"), new byte[100_000]);
        assertThat(qcow2j("check", raw.toString()).exit()).isEqualTo(qemuImg("check", raw.toString()).exit());
    }

    @Test
    void badArgumentsAndMissingFilesEndInOneLine() {
        Path img = image();
        Run bad = qcow2j("check", "--output=xml", img.toString());
        assertThat(bad.exit()).isEqualTo(qemuImg("check", "--output=xml", img.toString()).exit()).isEqualTo(1);
        assertThat(bad.err().lines()).singleElement().asString().contains("human or json");
        Run missing = qcow2j("check", dir.resolve("nope.qcow2").toString());
        assertThat(missing.exit()).isEqualTo(1);
        assertThat(missing.err().lines()).singleElement().asString().startsWith("qcow2j: Could not open")
                .contains("No such file or directory");
    }

    @Test
    void brokenHeaderEndsInOneLine() throws IOException {
        Path img = image();
        put(img, 20, ByteBuffer.allocate(4).putInt(40)); // cluster_bits 40
        Run r = qcow2j("check", img.toString());
        assertThat(r.exit()).isEqualTo(qemuImg("check", img.toString()).exit()).isEqualTo(1);
        assertThat(r.err().lines()).singleElement().asString().startsWith("qcow2j: ").contains("cluster_bits");
    }
}
