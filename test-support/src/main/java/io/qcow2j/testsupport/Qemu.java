package io.qcow2j.testsupport;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs qemu-img and qemu-io (Debian's {@code qemu-utils}), the oracle the tests compare against. Every
 * failure to run, a hang (past {@link #TIMEOUT_SECONDS}) or an unexpected exit is an {@link AssertionError}
 * with the command and what it printed.
 */
public final class Qemu {
    /** No command the tests run takes this long. */
    public static final int TIMEOUT_SECONDS = 120;

    private Qemu() {}

    /** What a process did: its exit status and what it printed on each stream. */
    public record Result(int exit, String out, String err) {
        /** Both streams, stdout first. */
        public String output() {
            return out + err;
        }
    }

    /** Runs {@code command} in {@code dir} and returns what it did, whatever its exit status. */
    public static Result exec(Path dir, String... command) {
        try {
            Process p = new ProcessBuilder(command).directory(dir.toFile()).start();
            p.getOutputStream().close();
            // stderr drained apart: a long report on one stream must not block the other
            CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> {
                try {
                    return p.getErrorStream().readAllBytes();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
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

    /** Runs {@code command} in {@code dir}; returns stdout; a non-zero exit fails the test. */
    public static String run(Path dir, String... command) {
        Result r = exec(dir, command);
        if (r.exit() != 0) {
            throw new AssertionError(String.join(" ", command) + " exited " + r.exit() + ": " + r.err() + r.out());
        }
        return r.out();
    }

    /** Runs {@code command}, which must fail (non-zero exit); returns stdout and stderr together. */
    public static String runExpectingFailure(Path dir, String... command) {
        Result r = exec(dir, command);
        if (r.exit() == 0) {
            throw new AssertionError(String.join(" ", command) + " succeeded but should have failed: " + r.output());
        }
        return r.output();
    }

    /** {@code qemu-img ARGS...} in {@code dir}; returns stdout; a non-zero exit fails the test. */
    public static String img(Path dir, String... args) {
        List<String> cmd = new ArrayList<>(List.of("qemu-img"));
        cmd.addAll(List.of(args));
        return run(dir, cmd.toArray(String[]::new));
    }

    /** {@code qemu-img create -q -f qcow2 [-o options] [extra...] name [size]} in {@code dir}. */
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

    /** {@code qemu-img create -q -f qcow2 [-o options] name [size]} in {@code dir}, the size in bytes (null: none). */
    public static Path create(Path dir, String name, String options, Long size) {
        return create(dir, name, options, size == null ? null : Long.toString(size));
    }

    /** {@code qemu-io -f qcow2 -c command... image}. */
    public static void io(Path image, String... commands) {
        ioFormat(image, "qcow2", commands);
    }

    /** {@code qemu-io -f format -c command... image}, run in the image's folder. */
    public static void ioFormat(Path image, String format, String... commands) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.getFileName().toString());
        run(folder(image), cmd.toArray(String[]::new));
    }

    /** {@code qemu-img info --output=json image}. */
    public static Map<String, Object> info(Path image) {
        return Json.object(run(folder(image), "qemu-img", "info", "--output=json", image.getFileName().toString()));
    }

    /** What {@code qemu-img check} found: its exit status and everything it printed. */
    public record Check(int exit, String output) {
        /** Exit 0: no errors, no leaks. */
        public boolean clean() {
            return exit == 0;
        }

        /** Exit 0 or 3 (leaked clusters only: harmless, space is lost). */
        public boolean consistent() {
            return exit == 0 || exit == 3;
        }

        /** What the exit status means. */
        public String verdict() {
            return switch (exit) {
                case 0 -> "clean";
                case 1 -> "check not completed (error)";
                case 2 -> "CORRUPT";
                case 3 -> "leaked clusters";
                default -> "exit " + exit;
            };
        }
    }

    /** {@code qemu-img check -f qcow2 image} (never repairs). */
    public static Check check(Path image) {
        Result r = exec(folder(image), "qemu-img", "check", "-f", "qcow2", image.getFileName().toString());
        return new Check(r.exit(), r.output().strip());
    }

    /** Fails unless {@code qemu-img check} finds no corruption (leaks allowed). */
    public static Check requireConsistent(Path image, String context) {
        Check c = check(image);
        if (!c.consistent()) {
            throw new AssertionError("qemu-img check " + image.getFileName() + ": " + c.verdict() + " (" + context
                    + ")\n" + c.output());
        }
        return c;
    }

    /** Fails unless {@code qemu-img check} finds no corruption and no leaks. */
    public static Check requireClean(Path image, String context) {
        Check c = check(image);
        if (!c.clean()) {
            throw new AssertionError("qemu-img check " + image.getFileName() + ": " + c.verdict() + " (" + context
                    + ")\n" + c.output());
        }
        return c;
    }

    /** The guest content of {@code image} as qemu reads it (backing files included): {@code qemu-img convert -O raw}. */
    public static byte[] guestContent(Path image) throws IOException {
        Path dir = folder(image);
        Path raw = Files.createTempFile(dir, "guest-", ".raw");
        try {
            run(dir, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", image.getFileName().toString(),
                    raw.getFileName().toString());
            return Files.readAllBytes(raw);
        } finally {
            Files.deleteIfExists(raw);
        }
    }

    private static Path folder(Path image) {
        return image.toAbsolutePath().getParent();
    }
}
