package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real refusal of io_uring, not the forced fallback: the CLI runs in a child JVM whose main first installs
 * a seccomp filter (through FFM, see {@code src/test/resources/seccomp/NoIoUring.java}) that makes
 * {@code io_uring_setup} fail with EPERM, as a container's seccomp profile does. The engine must choose the
 * thread-pool backend, say so in one line, and do the I/O: {@code qcow2j bench -w} writes a pattern through
 * the asynchronous API, a second run reads it back (the fast read path on the fallback backend), and
 * qemu-img check and qemu-io's {@code read -P} verify the image.
 */
class IoUringRefusedTest {
    @TempDir
    Path dir;

    @Test
    void underSeccompTheThreadPoolBackendIsChosenSaidOnceAndWorks() throws Exception {
        assumeTrue(System.getProperty("os.arch").equals("amd64"), "the BPF program knows x86_64's numbers only");
        Path img = Qemu.create(dir, "s.qcow2", null, "64M");
        String w = child("bench", "-w", "-c", "4000", "-d", "16", "-s", "4096", "--pattern", "90", img.toString());
        assertThat(w).contains("seccomp: io_uring_setup refused with EPERM");
        List<String> backendLines = w.lines().filter(l -> l.contains("I/O backend")).toList();
        assertThat(backendLines).as("one line says which backend and why").hasSize(1);
        assertThat(backendLines.get(0)).matches("engine: async, I/O backend: threads \\(\\d+ platform threads; "
                + "io_uring unavailable: io_uring_setup\\(\\d+\\): EPERM \\(Operation not permitted\\)\\)");
        assertThat(w).doesNotContain("Exception").contains("Run completed in");
        String r = child("bench", "-c", "4000", "-d", "16", "-s", "4096", img.toString());
        assertThat(r).contains("I/O backend: threads").contains("Run completed in").doesNotContain("Exception");
        Qemu.requireClean(img, "after writes on the fallback backend");
        Qemu.io(img, "read -P 90 0 16000k", "read -P 0 16000k 48M");
    }

    /** Runs the CLI under the seccomp filter; returns stdout and stderr; fails unless it exits 0. */
    private String child(String... args) throws IOException, InterruptedException {
        Path src = Path.of("src/test/resources/seccomp/NoIoUring.java").toAbsolutePath();
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED,io.qcow2j.ffm", "--illegal-native-access=deny", "-Xmx512m",
                "-p", System.getProperty("jdk.module.path"), "--add-modules", "io.qcow2j.cli",
                "--add-exports", "io.qcow2j.cli/io.qcow2j.cli=ALL-UNNAMED", src.toString()));
        cmd.addAll(List.of(args));
        Path out = dir.resolve("child.out");
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(out.toFile()).start();
        boolean done = p.waitFor(120, TimeUnit.SECONDS);
        if (!done) {
            p.destroyForcibly();
        }
        String text = Files.readString(out, StandardCharsets.UTF_8);
        assertThat(done && p.exitValue() == 0).as("child exit 0; its output:\n" + text).isTrue();
        return text;
    }
}
