package io.qcow2j.cli;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Resize;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.Sizes;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code qcow2j resize}: {@code qemu-img resize [-f FMT] [--shrink] [--preallocation=MODE] [-q] IMAGE
 * [+|-]SIZE} through {@link Resize}, with qemu-img's messages and exit statuses ("Image resized.", 0; a
 * refusal, 1). A size starting with '-' is relative, as in qemu-img (not an option).
 */
@Command(name = "resize", mixinStandardHelpOptions = true, sortOptions = false,
        header = "Change the virtual size of a qcow2 or raw image, as qemu-img resize does.",
        description = {
            "Change the virtual size of a qcow2 or raw image, as qemu-img resize does: SIZE is absolute, or "
                    + "relative with + or -. Shrinking needs --shrink and deletes the data past the new end.",
            "Exit status: 0 resized, 1 failure."
        })
final class ResizeCommand implements Callable<Integer>, OpensChain {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "Image format: qcow2 or raw (default: probed).")
    String format;

    @Option(names = "--shrink", description = "Allow shrinking the image (the data past the new end is lost).")
    boolean shrink;

    @Option(names = "--preallocation", paramLabel = "MODE", description = "Preallocation of the new space: off, "
            + "metadata (qcow2), falloc or full.")
    String preallocation = "off";

    @Option(names = "-q", description = "Quiet: print nothing on success.")
    boolean quiet;

    @Parameters(paramLabel = "IMAGE [+|-]SIZE", arity = "1..2", description = "The image, and its new size.")
    List<String> args = new ArrayList<>();

    @CommandLine.Unmatched
    List<String> unmatched = new ArrayList<>();

    @Override
    public String imageName() {
        return args.isEmpty() ? null : args.get(0);
    }

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        List<String> all = new ArrayList<>(args);
        all.addAll(unmatched); // "-1G" is the relative size, not an option
        if (all.size() != 2 || unmatched.size() > 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Expecting image file name and size");
        }
        String image = all.get(0);
        String sizeText = all.get(1);
        if (!List.of("off", "metadata", "falloc", "full").contains(preallocation)) {
            throw new CommandFailure("Invalid preallocation mode '" + preallocation + "'");
        }
        Resize.Preallocation prealloc = Resize.Preallocation.valueOf(preallocation.toUpperCase(java.util.Locale.ROOT));
        Resize.Format fmt = format == null ? Resize.Format.PROBE : switch (format) {
            case "qcow2" -> Resize.Format.QCOW2;
            case "raw" -> Resize.Format.RAW;
            default -> throw new CommandFailure("Unknown driver '" + format + "'");
        };
        char sign = sizeText.isEmpty() ? 0 : sizeText.charAt(0);
        long delta;
        try {
            delta = Sizes.parse("size", sign == '+' || sign == '-' ? sizeText.substring(1) : sizeText);
        } catch (IllegalArgumentException e) {
            err.println("qcow2j: Parameter 'size' expects a non-negative number below 2^64");
            err.println("Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-");
            err.println("and exabytes, respectively.");
            err.flush();
            return 1;
        }
        long newSize = delta;
        if (sign == '+' || sign == '-') {
            long current = currentSize(Path.of(image), fmt);
            newSize = sign == '+' ? current + delta : current - delta;
        }
        try {
            Resize.resize(Path.of(image), fmt, newSize, shrink, prealloc, Main.imageOptions().build());
        } catch (Resize.ShrinkRefusedException e) {
            err.println("qcow2j: " + e.getMessage());
            err.println("qcow2j: warning: " + Resize.ShrinkRefusedException.WARNING);
            err.flush();
            return 1;
        }
        if (!quiet) {
            out.println("Image resized.");
            out.flush();
        }
        return 0;
    }

    private static long currentSize(Path image, Resize.Format fmt) throws IOException {
        if (fmt == Resize.Format.RAW) {
            return Files.size(image);
        }
        ImageOptions ro = Main.imageOptions().readOnly(true).build();
        try (Disk d = fmt == Resize.Format.QCOW2 ? Images.openQcow2(image, ro) : Images.open(image, ro)) {
            return d.size();
        }
    }
}
