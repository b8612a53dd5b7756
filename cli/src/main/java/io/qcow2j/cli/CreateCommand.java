package io.qcow2j.cli;

import io.qcow2j.engine.CreateOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Sizes;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code qcow2j create}: {@code qemu-img create -f qcow2} with its syntax, its "Formatting" line and its
 * messages. The work is {@link Images#create}'s; this class reads the command line and prints.
 *
 * <p>As in qemu-img: several {@code -o} are joined; {@code -b}/{@code -F} win over {@code -o backing_file}/
 * {@code backing_fmt}; {@code -o help} lists the options; the size may be omitted with a backing file
 * (its size is taken) unless {@code -u}; errors name the image ({@code qcow2j: IMAGE: message}) except a
 * bad SIZE argument. Without {@code -f}, qcow2 (qemu-img's default is raw; qcow2j makes qcow2 only).
 */
@Command(name = "create", sortOptions = false, mixinStandardHelpOptions = true,
        header = "Create a qcow2 image, as qemu-img create -f qcow2 does.",
        description = "Create a qcow2 image, as qemu-img create -f qcow2.")
final class CreateCommand implements Callable<Integer> {
    private static final String SIZE_SUFFIXES = "Invalid image size specified. You may use k, M, G, T, P or E"
            + " suffixes for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.";

    /** The -o keys whose values qemu-img checks only after printing its line. */
    private static final Set<String> LATE_OPTIONS = Set.of("compat", "compression_type", "preallocation");

    @Spec
    CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "Image format: qcow2 (the only one).")
    String format = "qcow2";

    @Option(names = "-o", paramLabel = "OPTIONS",
            description = "key=value[,…]: cluster_size, compat, refcount_bits, extended_l2, lazy_refcounts,"
                    + " compression_type, backing_file, backing_fmt, preallocation, size; 'help' lists them.")
    List<String> options = new ArrayList<>();

    @Option(names = "-b", paramLabel = "BACKING_FILE", description = "Backing file (relative to the image's folder).")
    String backingFile;

    @Option(names = "-F", paramLabel = "BACKING_FMT", description = "Backing file format: qcow2 or raw.")
    String backingFormat;

    @Option(names = "-u", description = "Unsafe: do not open the backing file (then SIZE is required).")
    boolean unsafe;

    @Option(names = "-q", description = "Quiet: do not print the Formatting line.")
    boolean quiet;

    @Parameters(index = "0", arity = "0..1", paramLabel = "IMAGE", description = "The image file to create.")
    String image;

    @Parameters(index = "1", arity = "0..1", paramLabel = "SIZE",
            description = "Virtual size in bytes; suffixes k, M, G, T, P, E.")
    String size;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        String text = String.join(",", options);
        if (wantsHelp(text)) {
            out.print(help());
            out.flush();
            return 0;
        }
        if (!format.equals("qcow2")) {
            throw new Failure("Unknown file format '" + format + "': qcow2j creates qcow2 images only");
        }
        if (image == null) {
            throw new Failure("Expecting image file name");
        }
        Long sizeArgument = size == null ? null : parseSize(size);
        Path path = Path.of(image);
        try {
            Map<String, String> given = CreateOptions.splitOptions(text);
            if (sizeArgument != null && given.containsKey("size")) {
                throw new IllegalArgumentException("The image size must be specified only once");
            }
            // qemu-img reads numbers, sizes and switches before its "Formatting" line, names of modes after it
            StringBuilder typed = new StringBuilder();
            given.forEach((k, v) -> {
                if (!LATE_OPTIONS.contains(k)) {
                    typed.append(escape(k)).append('=').append(escape(v)).append(',');
                }
            });
            CreateOptions early = overrides(CreateOptions.parse(typed.toString(), CreateOptions.defaults()),
                    sizeArgument).resolveBacking(path);
            if (!quiet) {
                out.print(formattingLine(image, given, early) + "\n");
                out.flush();
            }
            CreateOptions o = overrides(CreateOptions.parse(text, CreateOptions.defaults()), sizeArgument).toBuilder()
                    .size(early.size()).build();
            Images.create(path, o);
        } catch (IllegalArgumentException | IOException e) {
            throw new Failure(image + ": " + Main.describe(e), e);
        }
        return 0;
    }

    /** The SIZE argument and -b, -F, -u over the -o options. */
    private CreateOptions overrides(CreateOptions o, Long sizeArgument) {
        CreateOptions.Builder b = o.toBuilder();
        if (sizeArgument != null) {
            b.size(sizeArgument);
        }
        if (backingFile != null) {
            b.backingFile(backingFile);
        }
        if (backingFormat != null) {
            b.backingFormat(backingFormat);
        }
        return b.unsafe(unsafe).build();
    }

    /**
     * qemu-img's line, its options in qemu-img's order: the numbers as read, the other values as given
     * (with {@code ,,} for a comma), the defaults qemu-img shows, and the options it shows only when given.
     */
    static String formattingLine(String image, Map<String, String> given, CreateOptions o) {
        StringBuilder s = new StringBuilder("Formatting '").append(image).append("', fmt=qcow2");
        s.append(" cluster_size=").append(o.clusterSize());
        s.append(" extended_l2=").append(escape(given.getOrDefault("extended_l2", "off")));
        if (given.containsKey("preallocation")) {
            s.append(" preallocation=").append(escape(given.get("preallocation")));
        }
        s.append(" compression_type=").append(escape(given.getOrDefault("compression_type", "zlib")));
        s.append(" size=").append(o.size());
        if (given.containsKey("compat")) {
            s.append(" compat=").append(escape(given.get("compat")));
        }
        if (o.backingFile() != null) {
            s.append(" backing_file=").append(escape(o.backingFile()));
        }
        if (o.backingFormat() != null) {
            s.append(" backing_fmt=").append(escape(o.backingFormat()));
        }
        s.append(" lazy_refcounts=").append(escape(given.getOrDefault("lazy_refcounts", "off")));
        s.append(" refcount_bits=").append(o.refcountBits());
        return s.toString();
    }

    private static String escape(String value) {
        return value.replace(",", ",,");
    }

    /** {@code help} or {@code ?} among the comma-separated items, as qemu-img checks. */
    static boolean wantsHelp(String text) {
        for (String item : text.replace(",,", "\0").split(",", -1)) {
            if (item.equals("help") || item.equals("?")) {
                return true;
            }
        }
        return false;
    }

    static String help() {
        StringBuilder s = new StringBuilder("Supported qcow2 options:\n");
        for (CreateOptions.OptionHelp h : CreateOptions.supportedOptions()) {
            s.append(String.format("  %-22s - %s\n", h.name() + "=<" + h.type() + ">", h.description()));
        }
        return s.toString();
    }

    /** The SIZE argument as qemu-img reads it (its messages name no image). */
    private static long parseSize(String text) {
        try {
            return Sizes.parse("size", text);
        } catch (IllegalArgumentException e) {
            // a well-formed size that is too large; anything else gets the suffix hint
            if (text.strip().matches("[0-9]+[bB]?|[0-9]+(\\.[0-9]+)?[kKmMgGtTpPeE]")) {
                throw new Failure("Invalid image size specified. Must be between 0 and " + Long.MAX_VALUE + ".");
            }
            throw new Failure(SIZE_SUFFIXES);
        }
    }

    /** A failure whose message is the whole one-line report. */
    static final class Failure extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Failure(String message) {
            super(message);
        }

        Failure(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
