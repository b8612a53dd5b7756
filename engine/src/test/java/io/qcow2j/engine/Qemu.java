package io.qcow2j.engine;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs qemu-img and qemu-io, the oracle the format tests compare against. */
public final class Qemu {
    private Qemu() {}

    /** Runs a command in {@code dir}; returns stdout, fails the test on a non-zero exit. */
    public static String run(Path dir, String... command) {
        try {
            Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(false).start();
            p.getOutputStream().close();
            byte[] out = p.getInputStream().readAllBytes();
            byte[] err = p.getErrorStream().readAllBytes();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + String.join(" ", command));
            }
            if (p.exitValue() != 0) {
                throw new AssertionError(String.join(" ", command) + " exited " + p.exitValue() + ": "
                        + new String(err, StandardCharsets.UTF_8) + new String(out, StandardCharsets.UTF_8));
            }
            return new String(out, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new AssertionError("cannot run " + command[0] + " (install qemu-utils)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Runs a command that must fail (non-zero exit); returns its stdout and stderr together. */
    public static String runExpectingFailure(Path dir, String... command) {
        try {
            Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + String.join(" ", command));
            }
            if (p.exitValue() == 0) {
                throw new AssertionError(String.join(" ", command) + " succeeded but should have failed: " + out);
            }
            return out;
        } catch (IOException e) {
            throw new AssertionError("cannot run " + command[0] + " (install qemu-utils)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** {@code qemu-img create -f qcow2 [-o options] [extra...] name size}. */
    public static Path create(Path dir, String name, String options, String size, String... extra) {
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (options != null && !options.isEmpty()) {
            cmd.add("-o");
            cmd.add(options);
        }
        cmd.addAll(List.of(extra));
        cmd.add(name);
        if (size != null) {
            cmd.add(size);
        }
        run(dir, cmd.toArray(String[]::new));
        return dir.resolve(name);
    }

    /** {@code qemu-io -c command... image}. */
    public static void io(Path image, String... commands) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "qcow2"));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.getFileName().toString());
        run(image.getParent(), cmd.toArray(String[]::new));
    }

    public static Map<String, Object> info(Path image) {
        return MiniJson.object(run(image.getParent(), "qemu-img", "info", "--output=json",
                image.getFileName().toString()));
    }
}
