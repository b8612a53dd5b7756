package io.qcow2j.cli;

import io.qcow2j.engine.Amend;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.Sizes;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code qcow2j amend}: {@code qemu-img amend -o OPTIONS IMAGE} for {@code compat}, {@code refcount_bits},
 * {@code lazy_refcounts} and {@code size} (through {@link Amend}); {@code backing_file}/{@code backing_fmt}
 * only with the values the image has; qemu-img's refusals for the backing file, creation-only and unknown
 * options. Every option is checked before anything changes.
 */
@Command(name = "amend", mixinStandardHelpOptions = true, sortOptions = false,
        header = "Change options of an existing qcow2 image (compat, refcount_bits, lazy_refcounts, size), as qemu-img amend does.",
        description = {
            "Change options of an existing qcow2 image, as qemu-img amend -o does: compat=0.10|1.1, refcount_bits=N,"
                    + " lazy_refcounts=on|off, size=SIZE.",
            "Exit status: 0 amended, 1 failure."
        })
final class AmendCommand implements Callable<Integer>, OpensChain {
    private static final Set<String> CREATION_ONLY = Set.of("cluster_size", "preallocation", "encryption",
            "encrypt.format", "extended_l2", "compression_type", "data_file", "data_file_raw", "encrypt.key-secret");

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "-o", paramLabel = "OPTIONS", description = "key=value[,key=value...]")
    List<String> options = List.of();

    @Option(names = "-f", paramLabel = "FMT", description = "Image format (qcow2).")
    String format;

    @Option(names = "-p", description = "Show progress.")
    boolean progress;

    @Option(names = "-q", description = "Quiet.")
    boolean quiet;

    @Parameters(paramLabel = "IMAGE", description = "The image to amend.")
    String image;

    @Override
    public String imageName() {
        return image;
    }

    @Override
    public Integer call() throws IOException {
        PrintWriter err = spec.commandLine().getErr();
        if (options.isEmpty()) {
            err.println("qcow2j: Must specify options (-o)");
            err.println("Try 'qcow2j amend --help' for more information.");
            err.flush();
            return 1;
        }
        Map<String, String> o = new LinkedHashMap<>();
        for (String group : options) {
            for (String kv : group.split(",")) {
                int eq = kv.indexOf('=');
                o.put(eq < 0 ? kv : kv.substring(0, eq), eq < 0 ? "on" : kv.substring(eq + 1));
            }
        }
        Path path = Path.of(image);
        Qcow2Header header;
        try (Qcow2Disk d = Images.openQcow2(path, Main.imageOptions().readOnly(true).build())) {
            header = d.header();
        }
        Integer version = null;
        Integer refcountBits = null;
        Boolean lazy = null;
        Long size = null;
        for (Map.Entry<String, String> e : o.entrySet()) {
            String v = e.getValue();
            switch (e.getKey()) {
                case "lazy_refcounts" -> {
                    if (!v.equals("on") && !v.equals("off")) {
                        throw new CommandFailure("Parameter 'lazy_refcounts' expects 'on' or 'off'");
                    }
                    lazy = v.equals("on");
                }
                case "size" -> size = Sizes.parse("size", v);
                case "backing_file", "backing_fmt" -> {
                    String now = e.getKey().equals("backing_file") ? header.backingFileName().orElse(null)
                            : header.extensions().backingFormat().orElse(null);
                    if (!v.equals(now)) {
                        err.println("qcow2j: Cannot amend the backing file");
                        err.println("You can use 'qcow2j rebase' instead.");
                        err.flush();
                        return 1;
                    }
                }
                case "compat" -> version = switch (v) {
                    case "0.10", "v2" -> 2;
                    case "1.1", "v3" -> 3;
                    default -> throw new CommandFailure("Unknown compatibility level " + v);
                };
                case "refcount_bits" -> {
                    try {
                        refcountBits = Integer.parseInt(v);
                    } catch (NumberFormatException x) {
                        throw new CommandFailure("Parameter 'refcount_bits' expects a number");
                    }
                }
                default -> {
                    if (CREATION_ONLY.contains(e.getKey())) {
                        err.println("qcow2j: Invalid parameter '" + e.getKey() + "'");
                        err.println("This option is only supported for image creation");
                        err.flush();
                        return 1;
                    }
                    throw new CommandFailure("Invalid parameter '" + e.getKey() + "'");
                }
            }
        }
        try {
            Amend.amend(path, new Amend.Changes(version, refcountBits, lazy, size), Main.imageOptions().build());
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(e.getMessage());
        }
        return 0;
    }
}
