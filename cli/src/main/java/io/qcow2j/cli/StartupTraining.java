package io.qcow2j.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The training run of the {@code ./qcow2j} launcher's start-up cache (JDK 25's AOT cache, or a dynamic CDS
 * archive on JDK 22-24): runs the everyday one-shot commands in process, on small images it creates in a
 * folder of its own, so that the classes they load (and, on JDK 25, the method profiles) are recorded.
 * It never touches the user's files: its only argument is an empty folder it may fill, and it deletes what
 * it made. Its output is discarded; the exit status is 0 once the commands have run (a command that failed
 * still loaded most of its classes, and the cache is an optimization, never a dependency).
 */
public final class StartupTraining {
    private StartupTraining() {}

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: StartupTraining EMPTY_DIR");
            System.exit(2);
        }
        Path dir = Path.of(args[0]);
        Files.createDirectories(dir);
        String a = dir.resolve("a.qcow2").toString();
        String b = dir.resolve("b.qcow2").toString();
        String c = dir.resolve("c.qcow2").toString();
        String r = dir.resolve("r.raw").toString();
        PrintWriter sink = new PrintWriter(OutputStream.nullOutputStream(), true);
        String[][] commands = {
            {"--version"},
            {"create", "-q", "-f", "qcow2", a, "16M"},
            {"io", "-c", "write -q -P 0x5a 0 3M", "-c", "write -q -z 4M 1M", "-c", "write -q -P 0 6M 1M",
                "-c", "read -q -P 0x5a 0 64k", a},
            {"info", a},
            {"info", "--output=json", a},
            {"check", a},
            {"map", "--output=json", a},
            {"measure", "-O", "qcow2", a},
            {"convert", "-O", "qcow2", a, b},
            {"convert", "-O", "qcow2", "-c", a, c},
            {"convert", "-O", "qcow2", "-m", "8", "-W", a, b},
            {"convert", "-O", "raw", a, r},
            {"compare", a, b},
            {"compare", "-f", "qcow2", "-F", "raw", c, r},
        };
        for (String[] command : commands) {
            Main.run(sink, sink, command);
        }
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).filter(p -> !p.equals(dir)).forEach(p -> {
                try {
                    Files.delete(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
    }
}
