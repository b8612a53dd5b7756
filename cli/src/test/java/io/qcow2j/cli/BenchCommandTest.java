package io.qcow2j.cli;

import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class BenchCommandTest {
    @TempDir
    Path dir;

    static String[] run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cmd = Main.commandLine();
        cmd.setOut(new PrintWriter(out));
        cmd.setErr(new PrintWriter(err));
        int code = cmd.execute(args);
        return new String[] {Integer.toString(code), out.toString(), err.toString()};
    }

    static String qemu(Path dir, String... command) {
        Qemu.Result r = Qemu.exec(dir, command);
        assertThat(r.exit()).as(r.output()).isZero();
        return r.output();
    }

    @Test
    void sameArgumentsSameFirstAndLastLinesAsQemuImgBench() throws Exception {
        qemu(dir, "qemu-img", "create", "-q", "-f", "qcow2", "b.qcow2", "64M");
        qemu(dir, "qemu-img", "create", "-q", "-f", "qcow2", "q.qcow2", "64M");
        String img = dir.resolve("b.qcow2").toString();
        String theirsImg = dir.resolve("q.qcow2").toString();
        String[] args = {"-w", "-c", "3000", "-d", "4", "-s", "8k", "-S", "12k", "--flush-interval=1000", "--pattern=7"};
        String[] ours = run(concat(new String[] {"bench"}, args, new String[] {img}));
        assertThat(ours[0]).isEqualTo("0");
        String theirs = qemu(dir, concat(new String[] {"qemu-img", "bench"}, args, new String[] {theirsImg}));
        String[] o = ours[1].split("\n");
        String[] t = theirs.split("\n");
        assertThat(o[0]).isEqualTo(t[0].replace(theirsImg, img));
        assertThat(o[1]).isEqualTo(t[1]);
        assertThat(o[o.length - 1]).matches("Run completed in \\d+\\.\\d{3} seconds\\.");
        assertThat(ours[1]).contains("IOPS").contains("L2 cache: hits").contains("fdatasync calls: ");
        // both wrote the same bytes at the same places
        qemu(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", img, theirsImg);
        String read = qemu(dir, "qemu-io", "-c", "read -P 7 0 8k", "-c", "read -P 7 12k 8k", "-c", "read -P 0 8k 4k", img);
        assertThat(read).doesNotContain("Pattern verification failed");
        assertThat(qemu(dir, "qemu-img", "check", img)).contains("No errors were found");
    }

    @Test
    void jsonAndRawAndErrors() throws Exception {
        Path raw = dir.resolve("r.raw");
        Files.write(raw, new byte[1 << 20]);
        String[] r = run("bench", "-f", "raw", "-c", "100", "-d", "2", "--output=json", raw.toString());
        assertThat(r[0]).isEqualTo("0");
        assertThat(r[1]).contains("\"iops\"").contains("\"latency-us\"").contains("\"format\": \"raw\"");
        String[] e = run("bench", "--flush-interval=10", raw.toString());
        assertThat(e[0]).isEqualTo("1");
        assertThat(e[2]).contains("--flush-interval is only available in write tests");
        e = run("bench", "-w", "-d", "64", "--flush-interval=10", raw.toString());
        assertThat(e[2]).contains("Flush interval can't be smaller than depth");
        e = run("bench", "-c", "0", raw.toString());
        assertThat(e[2]).contains("Invalid request count specified");
    }

    @Test
    void bothEnginesWriteWhatQemuImgBenchWrites() throws Exception {
        qemu(dir, "qemu-img", "create", "-q", "-f", "qcow2", "q.qcow2", "32M");
        String[] args = {"-w", "-c", "2000", "-d", "16", "-s", "4k", "-S", "20k", "--flush-interval=500", "--pattern=9"};
        String theirs = dir.resolve("q.qcow2").toString();
        qemu(dir, concat(new String[] {"qemu-img", "bench"}, args, new String[] {theirs}));
        for (String engine : new String[] {"async", "blocking"}) {
            qemu(dir, "qemu-img", "create", "-q", "-f", "qcow2", engine + ".qcow2", "32M");
            String img = dir.resolve(engine + ".qcow2").toString();
            String[] ours = run(concat(new String[] {"bench", "--engine", engine}, args, new String[] {img}));
            assertThat(ours[0]).as(ours[2]).isEqualTo("0");
            assertThat(ours[1].split("\n")[2]).startsWith("engine: " + engine);
            qemu(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", img, theirs);
            assertThat(qemu(dir, "qemu-img", "check", img)).contains("No errors were found");
        }
        String[] e = run("bench", "--engine", "fast", theirs);
        assertThat(e[2]).contains("--engine must be async or blocking, not 'fast'");
        e = run("bench", "-i", "posix", theirs);
        assertThat(e[2]).contains("Invalid aio option: posix");
    }

    static String[] concat(String[]... parts) {
        return java.util.Arrays.stream(parts).flatMap(java.util.Arrays::stream).toArray(String[]::new);
    }
}
