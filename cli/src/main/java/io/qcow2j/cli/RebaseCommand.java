package io.qcow2j.cli;

import io.qcow2j.engine.Rebase;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code qcow2j rebase}: {@code qemu-img rebase [-p] [-q] [-u] -b BACKING [-F FMT] IMAGE} through
 * {@link Rebase}: nothing printed on success, qemu-img's message and exit 1 on failure.
 */
@Command(name = "rebase", mixinStandardHelpOptions = true, sortOptions = false,
        header = "Change the backing file of a qcow2 image, as qemu-img rebase does.",
        description = {
            "Change the backing file of a qcow2 image, as qemu-img rebase does: safe mode copies into IMAGE what "
                    + "reads differently through the new backing file; -u only changes the name; -b \"\" flattens.",
            "Exit status: 0 rebased, 1 failure."
        })
final class RebaseCommand implements Callable<Integer>, OpensChain {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "-b", paramLabel = "BACKING", description = "The new backing file (\"\": none).")
    String backing;

    @Option(names = "-F", paramLabel = "FMT", description = "Format of the new backing file.")
    String backingFormat;

    @Option(names = "-f", paramLabel = "FMT", description = "Format of IMAGE (qcow2).")
    String format;

    @Option(names = "-u", description = "Unsafe: only change the backing file name.")
    boolean unsafe;

    @Option(names = "-p", description = "Show progress.")
    boolean progress;

    @Option(names = "-q", description = "Quiet.")
    boolean quiet;

    @Parameters(paramLabel = "IMAGE", description = "The image to rebase.")
    String image;

    @Override
    public String imageName() {
        return image;
    }

    @Override
    public Integer call() throws IOException {
        if (backing == null) {
            PrintWriter err = spec.commandLine().getErr();
            err.println("qcow2j: Must specify backing file (-b) or use unsafe mode (-u)");
            err.println("Try 'qcow2j rebase --help' for more information.");
            err.flush();
            return 1;
        }
        Progress p = new Progress(spec.commandLine().getOut(), progress && !quiet && Progress.onTerminal());
        try {
            Rebase.rebase(Path.of(image), backing, backingFormat, unsafe, pct -> p.set((float) pct),
                    Main.imageOptions().build());
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(e.getMessage(), e);
        }
        p.end();
        return 0;
    }
}
