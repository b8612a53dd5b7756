package io.qcow2j.cli;

import io.qcow2j.engine.Commit;
import io.qcow2j.engine.Sizes;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code qcow2j commit}: {@code qemu-img commit [-b BASE] [-d] [-p] [-q] [-r RATE] IMAGE} through
 * {@link Commit}: "Image committed." and exit 0, or qemu-img's message and exit 1.
 */
@Command(name = "commit", mixinStandardHelpOptions = true, sortOptions = false,
        header = "Write an image's data into its backing file (and empty it), as qemu-img commit does.",
        description = {
            "Write the data of IMAGE into its backing file, or with -b into BASE further down the chain, as "
                    + "qemu-img commit does; then IMAGE is emptied unless -d (or -b) is given.",
            "Exit status: 0 committed, 1 failure."
        })
final class CommitCommand implements Callable<Integer>, OpensChain {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "-b", paramLabel = "BASE", description = "Commit into BASE (in the backing chain); implies -d.")
    String base;

    @Option(names = "-d", description = "Do not empty IMAGE afterwards.")
    boolean keep;

    @Option(names = "-p", description = "Show progress.")
    boolean progress;

    @Option(names = "-q", description = "Quiet.")
    boolean quiet;

    @Option(names = "-r", paramLabel = "RATE", description = "Write at most RATE bytes per second.")
    String rate;

    @Option(names = "-f", paramLabel = "FMT", description = "Image format (probed by default).")
    String format;

    @Option(names = "-t", paramLabel = "CACHE", description = "Cache mode (accepted; qcow2j flushes at the end).")
    String cache;

    @Parameters(paramLabel = "IMAGE", description = "The image whose data is committed.")
    String image;

    @Override
    public String imageName() {
        return image;
    }

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        long bytesPerSecond = 0;
        if (rate != null) {
            try {
                bytesPerSecond = Sizes.parse("rate", rate);
            } catch (IllegalArgumentException e) {
                throw new CommandFailure("Invalid rate limit specified. You may use k, M, G, T, P or E suffixes for"
                        + " kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."); // qemu-img 7.2, one line
            }
        }
        Progress p = new Progress(out, progress && !quiet && Progress.onTerminal());
        try {
            Commit.commit(Path.of(image), base == null ? null : Path.of(base), keep, bytesPerSecond,
                    pct -> p.set((float) pct), Main.imageOptions().build());
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(e.getMessage(), e);
        }
        p.end();
        if (!quiet) {
            out.println("Image committed.");
            out.flush();
        }
        return 0;
    }
}
