package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code qcow2j io} side by side with {@code qemu-io}: the same command scripts applied by qemu-io to one
 * copy of an image and by qcow2j to another; stdout must match line for line (timing numbers masked),
 * stderr and the exit status too, then {@code qemu-img compare} finds the two images equal and
 * {@code qemu-img check} finds ours clean.
 */
class IoCommandTest {
    @TempDir
    Path dir;

    // ------------------------------------------------------------------ running both

    /** What a run printed and returned. */
    record Result(int status, String out, String err) {}

    /** qcow2j in this JVM, stdin from {@code input}, stdout and stderr captured. */
    static Result oursWithInput(String input, String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        InputStream in = System.in;
        ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
        ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(outBytes, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(errBytes, true, StandardCharsets.UTF_8));
            System.setIn(new ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)));
            int status = Main.run(args);
            return new Result(status, outBytes.toString(StandardCharsets.UTF_8), errBytes.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
            System.setIn(in);
        }
    }

    static Result ours(String... args) {
        return oursWithInput("", args);
    }

    /** A program (qemu-io, qemu-img) in {@code dir}, stdin from {@code input}. */
    static Result exec(Path dir, String input, String... cmd) {
        try {
            Path outFile = Files.createTempFile(dir, "out", ".txt");
            Path errFile = Files.createTempFile(dir, "err", ".txt");
            Path inFile = Files.writeString(Files.createTempFile(dir, "in", ".txt"), input);
            Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectOutput(outFile.toFile())
                    .redirectError(errFile.toFile()).redirectInput(inFile.toFile()).start();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + String.join(" ", cmd));
            }
            Result r = new Result(p.exitValue(), Files.readString(outFile), Files.readString(errFile));
            Files.delete(outFile);
            Files.delete(errFile);
            Files.delete(inFile);
            return r;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** A QEMU tool that must succeed; returns its stdout. */
    static String qemu(Path dir, String... cmd) {
        Result r = exec(dir, "", cmd);
        assertThat(r.status()).as(String.join(" ", cmd) + ": " + r.err()).isZero();
        return r.out();
    }

    /** qemu-io's {@code -c} arguments for a script. */
    static List<String> commandArgs(List<String> script) {
        List<String> a = new ArrayList<>();
        for (String c : script) {
            a.add("-c");
            a.add(c);
        }
        return a;
    }

    private static final String UNIT = "(?:bytes|KiB|MiB|GiB|TiB|PiB|EiB)";
    /** qemu-io's timing line: {@code 64 KiB, 1 ops; 00.00 sec (19.318 MiB/sec and 309.0805 ops/sec)}. */
    static final Pattern TIMING = Pattern.compile("(\\d+(?:\\.\\d+)? " + UNIT + "), (\\d+) ops; "
            + "(?:\\d\\d\\.\\d\\d sec|\\d+:\\d\\d:\\d\\d\\.\\d\\d) \\((?:\\d+(?:\\.\\d+)?|inf) " + UNIT
            + "/sec and \\d+\\.\\d{4} ops/sec\\)");
    /** The same with {@code -C}: {@code 65536,1,0:00:00.00,53579472.757,817.558}. */
    static final Pattern MACHINE = Pattern.compile("(\\d+),(\\d+),\\d+:\\d\\d:\\d\\d\\.\\d\\d,\\d+\\.\\d{3},\\d+\\.\\d{3}");

    /** The lines of a stdout with the timing numbers masked; every timing line must have qemu-io's shape. */
    static List<String> masked(String stdout) {
        List<String> lines = new ArrayList<>();
        for (String line : stdout.split("\n", -1)) {
            if (line.contains(" ops; ") || line.contains("ops/sec")) {
                Matcher m = TIMING.matcher(line);
                assertThat(m.matches()).as("timing line shape: " + line).isTrue();
                line = m.group(1) + ", " + m.group(2) + " ops; <time> (<rate>/sec and <ops>/sec)";
            } else {
                Matcher m = MACHINE.matcher(line);
                if (m.matches()) {
                    line = m.group(1) + "," + m.group(2) + ",<time>,<rate>,<ops>";
                }
            }
            lines.add(line);
        }
        return lines;
    }

    /** qemu-io's messages with its name replaced by ours (qemu-io: … → qcow2j: …) and its prompt. */
    static String asOurs(String qemuText) {
        return qemuText.replace("qemu-io: ", "qcow2j: ").replace("qemu-io> ", "qcow2j> ");
    }

    /** Runs a script with both tools on copies of {@code image} and checks that they agree in every way. */
    private void sideBySide(Path image, List<String> qemuOpts, List<String> ourOpts, List<String> script) {
        Path theirs = copy(image, "theirs.qcow2");
        Path ourCopy = copy(image, "ours.qcow2");
        // qemu-io 7.2 has no -o: cache options go into an --image-opts string (qemuOpts: --image-opts OPTIONS)
        boolean imageOpts = !qemuOpts.isEmpty() && qemuOpts.get(0).equals("--image-opts");
        List<String> q = new ArrayList<>(List.of("qemu-io"));
        q.addAll(imageOpts ? List.of("--image-opts") : qemuOpts);
        q.addAll(commandArgs(script));
        q.add(imageOpts ? "driver=qcow2,file.filename=" + theirs + "," + qemuOpts.get(1) : theirs.toString());
        Result expected = exec(dir, "", q.toArray(String[]::new));
        List<String> o = new ArrayList<>(List.of("io"));
        o.addAll(ourOpts);
        o.addAll(commandArgs(script));
        o.add(ourCopy.toString());
        Result actual = ours(o.toArray(String[]::new));

        assertEquals(masked(expected.out()), masked(actual.out()), "stdout");
        assertEquals(asOurs(expected.err()), actual.err(), "stderr");
        assertEquals(expected.status(), actual.status(), "exit status");
        Result compare = exec(dir, "", "qemu-img", "compare", theirs.toString(), ourCopy.toString());
        assertThat(compare.status()).as("qemu-img compare: " + compare.out() + compare.err()).isZero();
        Result check = exec(dir, "", "qemu-img", "check", ourCopy.toString());
        assertThat(check.out()).as("qemu-img check: " + check.out() + check.err())
                .contains("No errors were found on the image.");
        assertThat(check.status()).isZero();
    }

    private Path copy(Path image, String name) {
        try {
            return Files.copy(image, image.resolveSibling(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    // ------------------------------------------------------------------ images of every kind

    /**
     * One kind of image: qemu-img create options, what it holds besides data (compressed clusters, internal
     * snapshots, a backing chain), and the tools' open options (cache mode, cache sizes).
     */
    record Kind(String name, String createOptions, String content, List<String> qemuOpts, List<String> ourOpts) {
        Kind(String name, String createOptions, String content) {
            this(name, createOptions, content, List.of(), List.of());
        }

        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Kind> kinds() {
        List<Kind> k = new ArrayList<>();
        k.add(new Kind("64 KiB clusters", "cluster_size=65536", "data"));
        k.add(new Kind("compressed clusters", "cluster_size=65536", "compressed"));
        k.add(new Kind("internal snapshots, writethrough", "cluster_size=65536", "snapshots",
                List.of("-t", "writethrough"), List.of("-t", "writethrough")));
        k.add(new Kind("qcow2 over qcow2 over raw, O_DIRECT", "cluster_size=65536", "backing",
                List.of("-t", "none"), List.of("-t", "none")));
        k.add(new Kind("extended L2", "extended_l2=on", "compressed"));
        k.add(new Kind("extended L2, snapshots", "extended_l2=on", "snapshots"));
        k.add(new Kind("extended L2, backing chain", "extended_l2=on,cluster_size=32768", "backing"));
        for (int bits : new int[] {1, 2, 4, 8, 16, 32, 64}) {
            // qemu-img cannot take snapshots when 1- or 2-bit refcounts cannot count the sharing
            k.add(new Kind("refcount_bits=" + bits, "refcount_bits=" + bits, bits <= 2 ? "compressed" : "snapshots"));
        }
        k.add(new Kind("512-byte clusters", "cluster_size=512", "snapshots"));
        k.add(new Kind("2 MiB clusters", "cluster_size=2M", "snapshots"));
        k.add(new Kind("v2", "compat=0.10", "compressed"));
        k.add(new Kind("v2, snapshots, unsafe", "compat=0.10", "snapshots", List.of("-t", "unsafe"),
                List.of("-t", "unsafe")));
        k.add(new Kind("v2, backing chain", "compat=0.10", "backing"));
        String tiny = "l2-cache-size=1k,l2-cache-entry-size=512";
        k.add(new Kind("tiny L2 cache, 4 KiB clusters", "cluster_size=4096", "snapshots",
                List.of("--image-opts", tiny), List.of("-o", tiny)));
        k.add(new Kind("tiny L2 cache, extended L2, backing chain", "extended_l2=on,cluster_size=16384", "backing",
                List.of("--image-opts", tiny), List.of("-o", tiny)));
        return k.stream();
    }

    /** An 8 MiB image of the kind, with data at 0–512k, 1M–1.25M and 3M–3.0625M and its kind's extras. */
    private Path image(Kind kind) {
        String data = "write -P 0xa1 0 512k|write -P 0xa2 1M 256k|write -P 0xa3 3M 64k";
        Path img = dir.resolve("img.qcow2");
        if (kind.content().equals("backing")) {
            qemu(dir, "qemu-img", "create", "-q", "-f", "raw", "base.raw", "8M");
            qemu(dir, "qemu-io", "-f", "raw", "-c", "write -P 0xb1 0 2M", "-c", "write -P 0xb2 5M 1M", "base.raw");
            qemu(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", kind.createOptions(), "-b", "base.raw",
                    "-F", "raw", "mid.qcow2");
            io(dir.resolve("mid.qcow2"), data);
            qemu(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", kind.createOptions(), "-b", "mid.qcow2",
                    "-F", "qcow2", "img.qcow2");
            io(img, "write -P 0xa5 1M 64k|write -P 0xa6 6M 4k");
            return img;
        }
        qemu(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", kind.createOptions(), "img.qcow2", "8M");
        io(img, data);
        // a compressed write covers whole clusters
        String compressed = kind.createOptions().contains("cluster_size=2M") ? "2M" : "128k";
        switch (kind.content()) {
            case "compressed" -> io(img, "write -c -P 0xc1 4M " + compressed + "|write -c -P 0xc2 6M 64k");
            case "snapshots" -> {
                io(img, "write -c -P 0xc1 4M " + compressed);
                qemu(dir, "qemu-img", "snapshot", "-c", "one", "img.qcow2");
                io(img, "write -P 0xa4 256k 64k|write -P 0xa7 4160k 4k");
                qemu(dir, "qemu-img", "snapshot", "-c", "two", "img.qcow2");
            }
            default -> { }
        }
        return img;
    }

    private void io(Path img, String commands) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io"));
        cmd.addAll(commandArgs(Arrays.asList(commands.split("\\|"))));
        cmd.add(img.toString());
        qemu(dir, cmd.toArray(String[]::new));
    }

    /**
     * Writes of patterns at aligned and unaligned offsets (over data, zeros, compressed clusters, snapshots'
     * shared clusters and backing data), zeroes with and without unmap, discards, a flush, and reads that
     * check patterns (one on purpose wrong) and dump bytes; one request past the end.
     */
    static final List<String> SCRIPT = List.of(
            "write -P 0x11 0 64k",
            "write -P 0x12 1000 5000",
            "write -P 0x13 130k 200k",
            "write -P 0x14 1040k 7",
            "write -P 0x15 4100k 70k",
            "write 2M 4k",
            "write -z 64k 64k",
            "write -z 400k 10000",
            "write -z -u 1M 192k",
            "write -z -u 3000k 150k",
            "write -z 6M 64k",
            "discard 3M 64k",
            "discard 5M 1M",
            "discard 100k 7000",
            "discard 192k 128k",
            "discard 4160k 64k",
            "flush",
            "write -P 0x16 5M 4096",
            "write -q -P 0x17 7M 1M",
            "write -P 0x18 8388607 1",
            "read -P 0x11 0 1000",
            "read -P 0x12 1000 5000",
            "read -P 0 64k 64k",
            "read -P 0x13 130k 200k",
            "read -v 1040k 48",
            "read -v 4099k 32",
            "read -P 0xa1 330k 70k",
            "read -P 0 400k 10000",
            "read -P 0xa2 1216k 64k",
            "read -P 0 2M 64k",
            "read -v 3000k 16",
            "read -P 0 5M 1M",
            "read -P 0xcc 0 4k",
            "read -q -P 0x15 4100k 70k",
            "read -v 4M 16",
            "read -v 6M 16",
            "read -C -P 0x17 7M 1M",
            "read -v 8388600 8",
            "read -P 0 192k 128k",
            "read -v 4160k 16",
            "read -P 0 4170k 54k",
            "read -v 2M 16",
            "read 8M 1");

    @ParameterizedTest(name = "{0}")
    @MethodSource("kinds")
    void scriptMatchesQemuIo(Kind kind) {
        sideBySide(image(kind), kind.qemuOpts(), kind.ourOpts(), SCRIPT);
    }

    @Test
    void tinyCacheEvictsDuringAWrite() {
        Path img = image(new Kind("tiny", "cluster_size=4096", "data"));
        // 4 KiB clusters, 512-byte L2 slices: 64 entries, 256 KiB of guest disk a slice; 2 slices cached
        Result r = ours("io", "-o", "l2-cache-size=1k,l2-cache-entry-size=512", "--cache-stats",
                "-c", "write -P 0x42 100k 3M", "-c", "read -q -P 0x42 100k 3M", img.toString());
        assertThat(r.status()).as(r.err()).isZero();
        Matcher m = Pattern.compile("L2 cache: +2 entries of 512 bytes; .*evictions (\\d+)").matcher(r.err());
        assertThat(m.find()).as(r.err()).isTrue();
        assertThat(Long.parseLong(m.group(1))).isGreaterThanOrEqualTo(10);
        assertThat(exec(dir, "", "qemu-img", "check", img.toString()).out()).contains("No errors were found");
        assertThat(exec(dir, "", "qemu-io", "-c", "read -P 0x42 100k 3M", img.toString()).out())
                .doesNotContain("verification failed");
    }

    // ------------------------------------------------------------------ syntax, messages, exit status

    private Path plainImage() {
        return image(new Kind("plain", "cluster_size=65536", "data"));
    }

    /** Commands run one by one in each tool: every message and status must match. */
    static final List<String> ONE_BY_ONE = List.of(
            "read 0 1", "read 0 0", "write 0 0", "discard 0 0", "write -z 0 0", "read 8M 0", "flush", "f",
            "r -v 0 20", "w -P 0x5a 7 9", "d 0 64k", "quit", "q", "",
            // out of range, sizes, limits
            "read 0 9M", "read 8388607 2", "write 8M 1", "write -z 8388000 1000", "discard 8388000 1000",
            "read 9223372036854775807 1", "read 9223372036854775808 1", "read 9999999999999999999999 1",
            "read 99999999999999999999x 1", "read 0 2G", "read 0 2147483137", "write 0 2147483137",
            "discard 0 2147483137", "write -z 0 3G", "read 0 16e", "read 8e 1",
            "read abc 1", "read 0 xyz", "read 0 1x", "read 0 1kk", "read 0 1.5", "read 0 .5k", "read 0 1e2",
            "read 0 0x", "read 0 1.", "read 0 1.25k", "read 0 1.0005k", "read 0 0.0001k", "read 0 1b", "read 0 1B",
            "read 0 1K", "read 0 1m", "read +5 1", "read 0x10 0x10", "read 010 1", "read 0 0x1k", "read 0x1.5k 1",
            "read +0x10 1", "read 1.5e 1", "read 0 1.000e1k", "read 1e 1",
            // patterns
            "read -P 0xcd 0 4k", "read -P 0xab -v 0 4", "read -P0xcd 0 4", "read -P 010 0 1", "read -P 0X1f 0 1",
            "read -P -1 0 1", "read -P 0x 0 1", "read -P 256 0 1", "read -P 08 0 1", "write -P 300 0 1",
            "write -P abc 0 1", "write -P 1x 0 1", "read -P 1 -P 2 0 1", "write -P 0 -P 5 0 4",
            "read -l 4 -s 2 -P 0xcd 0 8", "read -l 4 -s 6 -P 0xcd 0 8", "read -l 4 0 8", "read -s 1 0 1",
            "read -s 0x10 -P 0xcd 0 8", "read -l 1x -P 0 0 1", "read -s 1x -P 0 0 1", "read -C -P 0 0 1",
            // options and arguments
            "foo", "READ 0 1", "read", "read 0", "read 1 2 3", "read -1 1", "read 0 -1", "read -x 0 1",
            "read 0 4 -v", "read -vq 0 4", "read -P", "read 0 4 -P", "read -- 0 4", "read 0 4 -- -v",
            "read -v -- 0 4", "read --5 1", "r -x 0 1", "r 0", "read -p 0 1", "write", "write 0", "write 0 1 2",
            "write -x 0 1", "write -z -P 1 0 1", "write -P 5 -z 0 4", "write -u 0 1", "write -zu 0 4",
            "write -z -z 0 4", "write -n 0 1", "write -b -z 0 1", "write -c 0 100", "write -C 0 4k",
            "write -f -P 3 0 1", "write -s /nonexistent/pattern 0 1", "write -s 0 1", "discard", "discard 0",
            "discard 0 1 2", "discard -x 0 4", "discard -C 0 64k", "discard -q 0 64k", "flush x", "f 1",
            "help foo", "help 1 2", "quit now");

    @Test
    void everyCommandPrintsWhatQemuIoPrints() {
        Path img = plainImage();
        Path theirs = copy(img, "theirs.qcow2");
        Path ourCopy = copy(img, "ours.qcow2");
        for (String c : ONE_BY_ONE) {
            // both copies see the same commands in the same order, so they stay equal
            Result expected = exec(dir, "", "qemu-io", "-c", c, theirs.toString());
            Result actual = ours("io", "-c", c, ourCopy.toString());
            assertEquals(masked(expected.out()), masked(actual.out()), "stdout of '" + c + "'");
            assertEquals(asOurs(expected.err()), actual.err(), "stderr of '" + c + "'");
            assertEquals(expected.status(), actual.status(), "exit status of '" + c + "'");
        }
        assertThat(exec(dir, "", "qemu-img", "compare", theirs.toString(), ourCopy.toString()).status()).isZero();
        assertThat(exec(dir, "", "qemu-img", "check", ourCopy.toString()).out()).contains("No errors were found");
    }

    @Test
    void failuresDoNotStopTheScriptButSetTheExitStatus() {
        sideBySide(plainImage(), List.of(), List.of(), List.of("read -P 0xcc 0 4k", "foo", "write -P 0x33 0 4k",
                "read 0 1x", "read -P 0x33 0 4k", "quit", "write -P 0x44 0 4k"));
        Result ok = ours("io", "-c", "write -P 0x33 0 4k", "-c", "read -P 0x33 0 4k", dir.resolve("ours.qcow2").toString());
        assertThat(ok.status()).isZero();
    }

    @Test
    void oversizedLengthsAreRefusedWithQemuIosMessages() {
        // read and discard name the limit; write (with or without -z) also names -n, which lifts it for -z
        sideBySide(plainImage(), List.of(), List.of(), List.of("read 0 3G", "write 0 3G", "write -z 0 3G",
                "discard 0 3G", "read -1 4k", "discard 0 1x"));
    }

    @Test
    void patternMismatchExitsOneWithQemuIosMessage() {
        Path img = plainImage();
        Result r = ours("io", "-c", "read -P 0xa2 1M 64k", "-c", "read -P 0xa1 1M 64k", img.toString());
        assertThat(r.status()).isEqualTo(1);
        assertThat(r.err()).isEmpty();
        List<String> lines = masked(r.out());
        assertThat(lines).containsExactly(
                "read 65536/65536 bytes at offset 1048576",
                "64 KiB, 1 ops; <time> (<rate>/sec and <ops>/sec)",
                "Pattern verification failed at offset 1048576, 65536 bytes",
                "read 65536/65536 bytes at offset 1048576",
                "64 KiB, 1 ops; <time> (<rate>/sec and <ops>/sec)",
                "");
        Result qemu = exec(dir, "", "qemu-io", "-r", "-c", "read -P 0xa2 1M 64k", "-c", "read -P 0xa1 1M 64k",
                img.toString());
        assertThat(qemu.status()).isEqualTo(1);
        assertThat(masked(qemu.out())).isEqualTo(lines);
    }

    @Test
    void readOnlyRefusesWritesAsQemuIo() {
        Path img = plainImage();
        byte[] before = bytes(img);
        List<String> script = List.of("write -P 1 0 4k", "write 0", "discard 0 64k", "write -z 0 64k", "flush",
                "read -P 0xa1 0 4k");
        Result expected = exec(dir, "", Stream.concat(Stream.of("qemu-io", "-r"),
                Stream.concat(commandArgs(script).stream(), Stream.of(img.toString()))).toArray(String[]::new));
        Result actual = ours(Stream.concat(Stream.of("io", "-r"),
                Stream.concat(commandArgs(script).stream(), Stream.of(img.toString()))).toArray(String[]::new));
        assertEquals(masked(expected.out()), masked(actual.out()));
        assertEquals(asOurs(expected.err()), actual.err());
        assertThat(actual.err()).contains("qcow2j: Block node is read-only");
        assertEquals(expected.status(), actual.status());
        assertThat(bytes(img)).isEqualTo(before);
    }

    private static byte[] bytes(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void commandsFromStandardInput() {
        Path img = plainImage();
        Path theirs = copy(img, "theirs.qcow2");
        Path ourCopy = copy(img, "ours.qcow2");
        String input = "write -P 0x66 0 4k\nfoo\nread -v 0 20\n\nread -P 0x66 0 4k\n";
        Result expected = exec(dir, input, "qemu-io", theirs.toString());
        Result actual = oursWithInput(input, "io", ourCopy.toString());
        assertEquals(masked(asOurs(expected.out())), masked(actual.out()));
        assertEquals(asOurs(expected.err()), actual.err());
        assertEquals(expected.status(), actual.status());
        assertThat(exec(dir, "", "qemu-img", "compare", theirs.toString(), ourCopy.toString()).status()).isZero();
    }

    /** Open failures: one line on stderr, exit 1, qemu-io's text. */
    @Test
    void openErrorsAreOneLineAsQemuIo() throws IOException {
        Path img = plainImage();
        Files.createDirectory(dir.resolve("folder"));
        List<List<String>> cases = List.of(
                List.of("-c", "read 0 1", "missing.qcow2"),
                List.of("-c", "read 0 1", "folder"),
                List.of("-f", "qcow3", "-c", "read 0 1", img.toString()),
                List.of("-t", "bogus", "-c", "read 0 1", img.toString()),
                List.of("--image-opts", "-c", "read 0 1", "driver=qcow2,file.filename=missing.qcow2"),
                List.of("--image-opts", "-c", "read 0 1", "driver=qcow2,file.filename=" + img + ",bogus=1"));
        for (List<String> args : cases) {
            Result expected = exec(dir, "", Stream.concat(Stream.of("qemu-io"), args.stream()).toArray(String[]::new));
            List<String> ourArgs = new ArrayList<>(args);
            ourArgs.replaceAll(a -> a.equals("missing.qcow2") || a.equals("folder") ? dir.resolve(a).toString()
                    : a.replace("file.filename=missing.qcow2", "file.filename=" + dir.resolve("missing.qcow2")));
            Result actual = ours(Stream.concat(Stream.of("io"), ourArgs.stream()).toArray(String[]::new));
            assertThat(actual.status()).as(args.toString()).isEqualTo(expected.status()).isEqualTo(1);
            assertThat(actual.out()).isEmpty();
            assertThat(actual.err().lines().count()).as(actual.err()).isEqualTo(1);
            assertEquals(asOurs(expected.err()).replace(dir + "/", ""), actual.err().replace(dir + "/", ""),
                    args.toString());
        }
    }

    @Test
    void unsupportedFormatsAndOptionsAreOneLine() {
        Path img = plainImage();
        Result raw = ours("io", "-f", "raw", "-c", "read 0 1", img.toString());
        assertThat(raw.status()).isEqualTo(1);
        assertThat(raw.err()).isEqualTo("qcow2j: can't open device " + img
                + ": format 'raw' is not supported (qcow2j opens qcow2 images)\n");
        Result badOption = ours("io", "-o", "l2-cache-size=xyz", "-c", "read 0 1", img.toString());
        assertThat(badOption.status()).isEqualTo(1);
        assertThat(badOption.err()).startsWith("qcow2j: can't open device " + img + ": l2-cache-size: 'xyz'")
                .hasLineCount(1);
        Result vmState = ours("io", "-c", "read -b 0 512", img.toString());
        assertThat(vmState.status()).isEqualTo(1);
        assertThat(vmState.out()).isEqualTo("read failed: Operation not supported\n");
    }

    @Test
    void engineWarningsGoToStderr() throws IOException {
        Path img = plainImage();
        try (var f = java.nio.channels.FileChannel.open(img, java.nio.file.StandardOpenOption.WRITE)) {
            f.write(java.nio.ByteBuffer.wrap(new byte[] {2}), 79); // incompatible feature bit 1: corrupt
        }
        Result rw = ours("io", "-c", "read 0 1", img.toString());
        assertThat(rw.status()).isEqualTo(exec(dir, "", "qemu-io", "-c", "read 0 1", img.toString()).status())
                .isEqualTo(1);
        assertThat(rw.err()).startsWith("qcow2j: can't open device " + img + ": ").contains("corrupt").hasLineCount(1);
        Result ro = ours("io", "-r", "-c", "read -P 0xa1 0 1", img.toString());
        Result qemu = exec(dir, "", "qemu-io", "-r", "-c", "read -P 0xa1 0 1", img.toString());
        assertEquals(masked(qemu.out()), masked(ro.out()));
        assertThat(ro.status()).isZero();
        assertThat(ro.err()).isEqualTo("qcow2j: warning: " + img + ": the image is marked corrupt; it is opened read-only\n");
    }

    @Test
    void writeFromAPatternFileRepeatsIt() throws IOException {
        Path img = plainImage();
        Files.writeString(dir.resolve("pattern.bin"), "abc");
        sideBySide(img, List.of(), List.of(), List.of("write -s " + dir.resolve("pattern.bin") + " 1000 10000",
                "read -v 1000 40", "write -s " + dir.resolve("pattern.bin") + " -q 64k 2"));
    }
}
