package io.qcow2j.cli;

import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow2j create} against {@code qemu-img create} run with the same arguments: the same "Formatting"
 * line, the same image ({@code qemu-img info} alike, {@code qemu-img check} clean), and for refused
 * arguments qemu-img's message on one line with exit status 1 and no file left behind.
 */
class CreateCommandTest {
    @TempDir
    Path dir;

    Path image;

    /** Exit status, stdout, stderr. */
    record Run(int status, String out, String err) {}

    @BeforeEach
    void backingFiles() {
        image = dir.resolve("x.qcow2");
        exec("qemu-img", "create", "-q", "-f", "qcow2", dir.resolve("base.qcow2").toString(), "1G");
        exec("qemu-img", "create", "-q", "-f", "raw", dir.resolve("base.raw").toString(), "3M");
    }

    /**
     * Arguments after {@code create -f qcow2}, split on spaces; {@code @} stands for the folder. Each runs with
     * qemu-img, then with qcow2j: the same output, the same image.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {
        "x 1G",
        "x 1000",
        "-o compat=0.10 x 1G",
        "-o compat=v3,preallocation=off,cluster_size=4k,refcount_bits=16,lazy_refcounts=off,extended_l2=off,"
                + "compression_type=zlib x 1M",
        "-o compat=v2,lazy_refcounts=false,extended_l2=no x 1M",
        "-o lazy_refcounts=true,cluster_size=64K,refcount_bits=0x10 x 1.5M",
        "-o preallocation=metadata,lazy_refcounts=on,compression_type=zstd,extended_l2=on,refcount_bits=64 x 1M",
        "-o cluster_size=512 -o cluster_size=2M x 3G",
        "-o size=2M x",
        "-b @/base.qcow2 -F qcow2 x",
        "-b base.qcow2 -F qcow2 x 2G",
        "-b base.raw -F raw x",
        "-o backing_file=base.qcow2,backing_fmt=qcow2 -b base.raw -F raw x",
        "-u -b missing.qcow2 -F qcow2 x 1M",
        "-q x 1G",
        "-o preallocation=falloc x 3M",
        "-o preallocation=full,extended_l2=on x 3M",
    })
    void printsWhatQemuImgPrintsAndMakesTheSameImage(String args) throws IOException {
        List<String> a = args(args);
        Run qemu = qemu(a);
        assertThat(qemu.status()).as(qemu.err()).isZero();
        Path theirs = dir.resolve("theirs.qcow2");
        Files.move(image, theirs);

        Run ours = qcow2j(a);
        assertThat(ours.err()).isEmpty();
        assertThat(ours.status()).isZero();
        assertThat(ours.out()).isEqualTo(qemu.out());
        assertThat(info(image)).isEqualTo(info(theirs));
        if (!args.contains("missing")) {
            exec("qemu-img", "check", image.toString());
        }
    }

    @Test
    void optionHelpListsTheOptionsAsQemuImgDoes() {
        Run ours = qcow2j(List.of("-o", "help"));
        assertThat(ours.status()).isZero();
        List<String> lines = ours.out().lines().toList();
        assertThat(lines.get(0)).isEqualTo("Supported qcow2 options:");
        assertThat(lines).hasSize(11);
        List<String> qemuLines = exec("qemu-img", "create", "-f", "qcow2", "-o", "help").lines().toList();
        for (String line : lines.subList(1, lines.size())) {
            assertThat(qemuLines).contains(line);
        }
        assertThat(qcow2j(List.of("-o", "cluster_size=4k,?", "x.qcow2", "1M")).out()).isEqualTo(ours.out());
        assertThat(image).doesNotExist();
    }

    /**
     * Arguments qemu-img refuses with a message qcow2j repeats word for word (its first line; a second line of
     * qemu-img's joins the first), printing the Formatting line first where qemu-img does.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {
        "-o cluster_size=1000 x 1M",
        "-o cluster_size=256 x 1M",
        "-o cluster_size=4M x 1M",
        "-o refcount_bits=3 x 1M",
        "-o refcount_bits=128 x 1M",
        "-o refcount_bits=016 x 1M",
        "-o compat=0.10,refcount_bits=8 x 1M",
        "-o compat=0.10,extended_l2=on x 1M",
        "-o extended_l2=on,cluster_size=8k x 1M",
        "-o compat=0.10,lazy_refcounts=on x 1M",
        "-o compat=0.10,compression_type=zstd x 1M",
        "-o compat=2 x 1M",
        "-o compression_type=lz4 x 1M",
        "-o preallocation=bogus x 1M",
        "-o foo=bar x 1M",
        "-o refcount_bits=abc x 1M",
        "-o lazy_refcounts=maybe x 1M",
        "-o size=2M x 1M",
        "-o backing_fmt=qcow2 x 1M",
        "-u -b base.qcow2 x 1M",
        "-u -b missing.qcow2 -F qcow2 x",
        "-b base.qcow2 -F qcow2 -o preallocation=metadata x",
        "x",
        "x 1Q",
        "x 1.5",
        "x 8E",
        "x 2251799813685760",
        "-o cluster_size=512 x 129G",
    })
    void refusesWithQemuImgsMessage(String args) throws IOException {
        List<String> a = args(args);
        Run qemu = qemu(a);
        assertThat(qemu.status()).isEqualTo(1);
        String first = qemu.err().lines().findFirst().orElseThrow();
        assertThat(first).startsWith("qemu-img: ");
        assertThat(image).as("qemu-img removes what it created on failure").doesNotExist();
        Run ours = qcow2j(a);
        assertThat(ours.status()).isEqualTo(1);
        assertThat(ours.err()).isEqualTo("qcow2j: " + first.substring("qemu-img: ".length()) + suffix(first)
                + "\n");
        assertThat(ours.out()).as("the Formatting line, where qemu-img prints it before refusing")
                .isEqualTo(qemu.out());
        assertThat(image).doesNotExist();
    }

    /** Where qcow2j joins qemu-img's continuation lines into its one line. */
    static String suffix(String qemuFirstLine) {
        if (qemuFirstLine.endsWith("You may use k, M, G, T, P or E suffixes for")) {
            return " kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.";
        }
        if (qemuFirstLine.endsWith("expects a non-negative number below 2^64")) {
            return " (optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta- and exabytes,"
                    + " respectively)";
        }
        return "";
    }

    @Test
    void qcow2jsOwnMessagesAreOneLine() throws IOException {
        assertRefused(List.of("-b", "missing.qcow2", "-F", "qcow2", "x.qcow2"), "qcow2j: " + image
                + ": Could not open backing image '" + dir.resolve("missing.qcow2") + "': No such file or directory");
        assertRefused(List.of("-b", "base.raw", "-F", "qcow2", "x.qcow2"), "qcow2j: " + image
                + ": Could not open backing image '" + dir.resolve("base.raw") + "': " + dir.resolve("base.raw")
                + ": not a qcow2 image (no qcow2 magic)");
        assertRefused(List.of("-b", "base.qcow2", "x.qcow2"), "qcow2j: " + image
                + ": Backing file specified without backing format (detected format of qcow2)");
        assertRefused(List.of("-b", "base.vmdk", "-F", "vmdk", "-u", "x.qcow2", "1M"), "qcow2j: " + image
                + ": Backing format 'vmdk' is not supported by qcow2j (qcow2 or raw)");
        assertRefused(List.of("-o", "cluster_size=abc", "x.qcow2", "1M"), "qcow2j: " + image + ": Parameter"
                + " 'cluster_size' expects a non-negative number below 2^64 (optional suffix k, M, G, T, P or E"
                + " means kilo-, mega-, giga-, tera-, peta- and exabytes, respectively)");
        Run raw = run("create", "-f", "raw", image.toString(), "1M");
        assertThat(raw.status()).isEqualTo(1);
        assertThat(raw.err()).isEqualTo("qcow2j: Unknown file format 'raw': qcow2j creates qcow2 images only\n");
        Run none = run("create", "-f", "qcow2");
        assertThat(none.status()).isEqualTo(1);
        assertThat(none.err()).isEqualTo("qcow2j: Expecting image file name\n");
        Run noDir = run("create", dir.resolve("no/such/x.qcow2").toString(), "1M");
        assertThat(noDir.err()).isEqualTo("qcow2j: " + dir.resolve("no/such/x.qcow2") + ": Could not create '"
                + dir.resolve("no/such/x.qcow2") + "': No such file or directory\n");
        assertThat(image).doesNotExist();
    }

    @Test
    void overwritesAnExistingImageAsQemuImgDoes() throws IOException {
        Files.write(image, new byte[3 << 20]);
        Run r = run("create", "-q", image.toString(), "64M");
        assertThat(r.status()).isZero();
        assertThat(r.out()).isEmpty();
        assertThat(Files.size(image)).isEqualTo(0x30000 + 8);
        exec("qemu-img", "check", image.toString());
        String io = exec("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", "-c", "read -P 0x5a 0 64k",
                image.toString());
        assertThat(io).contains("read 65536/65536 bytes at offset 0");
        exec("qemu-img", "check", image.toString());
    }

    void assertRefused(List<String> args, String message) {
        Run r = qcow2j(args);
        assertThat(r.status()).isEqualTo(1);
        assertThat(r.err()).isEqualTo(message + "\n");
        assertThat(image).doesNotExist();
    }

    // ------------------------------------------------------------------ helpers

    /** Splits on spaces; {@code x} is the image, {@code @} the folder. */
    List<String> args(String args) {
        List<String> a = new ArrayList<>();
        for (String s : args.split(" ")) {
            a.add(s.equals("x") ? "x.qcow2" : s.replace("@", dir.toString()));
        }
        return a;
    }

    /** The arguments with the image name made absolute (the JVM cannot change its folder). */
    List<String> absolute(List<String> args) {
        return args.stream().map(s -> s.equals("x.qcow2") ? image.toString() : s).toList();
    }

    Run qemu(List<String> args) {
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "create", "-f", "qcow2"));
        cmd.addAll(absolute(args));
        return process(cmd);
    }

    Run qcow2j(List<String> args) {
        List<String> cmd = new ArrayList<>(List.of("create", "-f", "qcow2"));
        cmd.addAll(absolute(args));
        return run(cmd.toArray(String[]::new));
    }

    /** Runs qcow2j in this JVM with stdout and stderr captured. */
    static Run run(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
            int status = Main.run(args);
            return new Run(status, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    static Run process(List<String> cmd) {
        Qemu.Result r = Qemu.exec(Path.of("."), cmd.toArray(String[]::new));
        return new Run(r.exit(), r.out(), r.err());
    }

    static String exec(String... cmd) {
        Run r = process(Arrays.asList(cmd));
        assertThat(r.status()).as(String.join(" ", cmd) + ": " + r.err() + r.out()).isZero();
        return r.out();
    }

    /** {@code qemu-img info --output=json} without the file name and disk usage. */
    static String info(Path image) {
        return exec("qemu-img", "info", "-U", "--output=json", image.toString())
                .replaceAll("\\s*\"filename\": \"[^\"]*\",", "")
                .replaceAll("\\s*\"actual-size\": [0-9]+,", "");
    }
}
