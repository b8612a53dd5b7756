package io.qcow2j.cli;

import io.qcow2j.engine.CompareResult;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code qcow2j compare}: qemu-img compare's lines and exit codes (0 identical, 1 different, 2 error).
 */
@Command(name = "compare", sortOptions = false, mixinStandardHelpOptions = true,
        header = "Compare the contents of two images, as qemu-img compare does.",
        description = "Compare two images' guest contents: exit 0 if identical, 1 if not, 2 on error.")
final class CompareCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "Format of the first image: qcow2.")
    String format1;

    @Option(names = "-F", paramLabel = "FMT", description = "Format of the second image: qcow2.")
    String format2;

    @Option(names = "-s", description = "Strict: a size or allocation difference is a mismatch.")
    boolean strict;

    @Option(names = "-q", description = "Quiet: print nothing, only the exit code tells.")
    boolean quiet;

    @Option(names = "-p", description = "Show progress (on a terminal).")
    boolean progress;

    @Option(names = "-T", paramLabel = "SRC_CACHE", description = "Cache mode of the images (default writeback).")
    String cache = "writeback";

    @Option(names = {"-U", "--force-share"}, description = "Accepted for compatibility (qcow2j takes no locks).")
    boolean forceShare;

    @Parameters(index = "0", paramLabel = "FILENAME1")
    String file1;

    @Parameters(index = "1", paramLabel = "FILENAME2")
    String file2;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try {
            ImageOptions o = Main.imageOptions().cacheMode(ImageSource.cacheMode(cache)).readOnly(true).build();
            try (ImageSource.Chain a = open(file1, format1, o); ImageSource.Chain b = open(file2, format2, o)) {
                Progress p = new Progress(out, progress && !quiet && Progress.onTerminal());
                CompareResult r = Images.compare(a.top(), b.top(), strict, v -> p.set((float) v));
                p.end();
                if (!quiet) {
                    r.message().forEach(out::println);
                }
                out.flush();
                return r.identical() ? 0 : 1;
            }
        } catch (CommandFailure | IOException | IllegalArgumentException e) {
            out.flush();
            err.println("qcow2j: " + Main.describe(e));
            err.flush();
            return 2;
        }
    }

    private static ImageSource.Chain open(String file, String format, ImageOptions o) throws IOException {
        ImageSource s = new ImageSource();
        s.format = format;
        return s.openGuestDisk(file, o);
    }
}
