package io.qcow2j.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code qcow2j serve} in a JVM of its own (started from this test JVM's module path), so that signals and
 * the exit status are the real ones.
 */
final class ServeProcess implements AutoCloseable {
    final Process process;
    /** The ready line: "qcow2j serve: serving 'IMAGE' at URI". */
    final String ready;
    final String uri;

    private ServeProcess(Process process, String ready) {
        this.process = process;
        this.ready = ready;
        this.uri = ready == null ? null : ready.substring(ready.lastIndexOf(' ') + 1);
    }

    static ServeProcess start(Path dir, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=io.qcow2j.ffm", "--illegal-native-access=deny", "-Xmx512m",
                "-p", System.getProperty("jdk.module.path"), "-m", "io.qcow2j.cli/io.qcow2j.cli.Main", "serve"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectError(dir.resolve("serve.err").toFile())
                .start();
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line = r.readLine();
        return new ServeProcess(p, line);
    }

    /** Sends SIGTERM and returns the exit status. */
    int terminate() throws InterruptedException {
        process.destroy();
        return waitFor();
    }

    int waitFor() throws InterruptedException {
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("qcow2j serve did not exit");
        }
        return process.exitValue();
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }
}
