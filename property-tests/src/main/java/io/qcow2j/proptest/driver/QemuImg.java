package io.qcow2j.proptest.driver;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs qemu-img and qemu-io (qemu-utils), the oracle the engine's properties compare against. */
public final class QemuImg {
    private QemuImg() {}

    /** How a command ended. */
    public record Outcome(String command, int exit, String output) {}

    /** Runs {@code command} in {@code dir} and returns how it ended (fails only if it cannot run or hangs). */
    public static Outcome exec(Path dir, String... command) {
        try {
            // one stream: a long error report cannot fill a pipe we are not reading
            Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
            p.getOutputStream().close();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + String.join(" ", command));
            }
            return new Outcome(String.join(" ", command), p.exitValue(), new String(out, StandardCharsets.UTF_8).strip());
        } catch (IOException e) {
            throw new AssertionError("cannot run " + command[0] + " (install qemu-utils)", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Runs {@code command} in {@code dir}; returns its output; a non-zero exit is an {@link AssertionError}. */
    public static String run(Path dir, String... command) {
        Outcome o = exec(dir, command);
        if (o.exit() != 0) {
            throw new AssertionError(o.command() + " exited " + o.exit() + ": " + o.output());
        }
        return o.output();
    }

    /** {@code qemu-img create -f qcow2 [-o options] name [size]} in {@code dir}. */
    public static Path create(Path dir, String name, String options, Long size) {
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (options != null && !options.isEmpty()) {
            cmd.add("-o");
            cmd.add(options);
        }
        cmd.add(name);
        if (size != null) {
            cmd.add(Long.toString(size));
        }
        run(dir, cmd.toArray(String[]::new));
        return dir.resolve(name);
    }

    /** {@code qemu-io -f format -c command… image}. */
    public static void io(Path image, String format, String... commands) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", format));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(image.getFileName().toString());
        run(image.toAbsolutePath().getParent(), cmd.toArray(String[]::new));
    }

    /** What {@code qemu-img check} found. */
    public record Check(int exit, String output) {
        /** Exit 0: no errors, no leaks. */
        public boolean clean() {
            return exit == 0;
        }

        /** Exit 0 or 3 (leaked clusters only: harmless, space is lost). */
        public boolean consistent() {
            return exit == 0 || exit == 3;
        }

        /** What the exit code means. */
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
        Outcome o = exec(image.toAbsolutePath().getParent(), "qemu-img", "check", "-f", "qcow2",
                image.getFileName().toString());
        return new Check(o.exit(), o.output());
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
        Path dir = image.toAbsolutePath().getParent();
        Path raw = Files.createTempFile(dir, "guest-", ".raw");
        try {
            run(dir, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", image.getFileName().toString(),
                    raw.getFileName().toString());
            return Files.readAllBytes(raw);
        } finally {
            Files.deleteIfExists(raw);
        }
    }
}
