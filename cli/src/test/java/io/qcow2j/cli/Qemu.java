package io.qcow2j.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Runs qemu-img and qemu-io, the oracle the CLI tests compare against. */
final class Qemu {
    private Qemu() {}

    /** What a process did. */
    record Result(int exit, String out, String err) {}

    /** Runs a command in {@code dir} and returns what it did, whatever its exit status. */
    static Result exec(Path dir, String... command) {
        try {
            Process p = new ProcessBuilder(command).directory(dir.toFile()).start();
            p.getOutputStream().close();
            CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> {
                try {
                    return p.getErrorStream().readAllBytes();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + String.join(" ", command));
            }
            return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8),
                    new String(err.join(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new AssertionError("cannot run " + command[0] + " (install qemu-utils)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Runs a command in {@code dir}; returns stdout, fails the test on a non-zero exit. */
    static String run(Path dir, String... command) {
        Result r = exec(dir, command);
        if (r.exit() != 0) {
            throw new AssertionError(String.join(" ", command) + " exited " + r.exit() + ": " + r.err() + r.out());
        }
        return r.out();
    }

    /** {@code qemu-img create -q -f qcow2 [-o options] [extra...] name size} in {@code dir}. */
    static Path create(Path dir, String name, String options, String size, String... extra) {
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

    /** {@code qemu-io -f FORMAT -c command... image}. */
    static void ioFormat(Path image, String format, String... commands) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.getFileName().toString());
        run(image.getParent(), cmd.toArray(String[]::new));
    }

    /** {@code qemu-io -f qcow2 -c command... image}. */
    static void io(Path image, String... commands) {
        ioFormat(image, "qcow2", commands);
    }

    /** {@code qemu-img ARGS...} in {@code dir}, failing the test on a non-zero exit. */
    static String img(Path dir, String... args) {
        List<String> cmd = new ArrayList<>(List.of("qemu-img"));
        cmd.addAll(List.of(args));
        return run(dir, cmd.toArray(String[]::new));
    }
}
