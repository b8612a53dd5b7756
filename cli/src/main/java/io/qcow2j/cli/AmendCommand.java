package io.qcow2j.cli;

import io.qcow2j.engine.Amend;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.Resize;
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
 * {@code qcow2j amend}: {@code qemu-img amend -o OPTIONS IMAGE} for {@code lazy_refcounts} and {@code size}
 * (through {@link Amend} and {@link Resize}); {@code compat} and {@code refcount_bits} only with the values
 * the image has; qemu-img's refusals for the backing file, creation-only and unknown options. Every option is
 * checked before anything changes.
 */
@Command(name = "amend", mixinStandardHelpOptions = true, sortOptions = false,
        header = "Change options of an existing qcow2 image (lazy_refcounts, size), as qemu-img amend does.",
        description = {
            "Change options of an existing qcow2 image, as qemu-img amend -o does: lazy_refcounts=on|off, size=SIZE.",
            "Exit status: 0 amended, 1 failure."
        })
final class AmendCommand implements Callable<Integer> {
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
        int version;
        int refcountBits;
        try (Qcow2Disk d = Images.openQcow2(path, Main.imageOptions().readOnly(true).build())) {
            version = d.header().version();
            refcountBits = d.header().refcountBits();
        }
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
                    err.println("qcow2j: Cannot amend the backing file");
                    err.println("You can use 'qcow2j rebase' instead.");
                    err.flush();
                    return 1;
                }
                case "compat" -> {
                    int want = switch (v) {
                        case "0.10", "v2" -> 2;
                        case "1.1", "v3" -> 3;
                        default -> throw new CommandFailure("Invalid compatibility level: '" + v + "'");
                    };
                    if (want != version) {
                        throw new CommandFailure("Changing the compatibility level (compat) is not supported by"
                                + " qcow2j");
                    }
                }
                case "refcount_bits" -> {
                    if (!v.equals(Integer.toString(refcountBits))) {
                        throw new CommandFailure("Changing refcount_bits is not supported by qcow2j");
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
        if (lazy != null && lazy && version < 3) {
            throw new CommandFailure("Lazy refcounts only supported with compatibility level 1.1 and above (use"
                    + " compat=1.1 or greater)");
        }
        if (size != null && size % 512 != 0) {
            throw new CommandFailure("The new size must be a multiple of 512");
        }
        if (size != null) {
            Resize.resize(path, Resize.Format.QCOW2, size, true);
        }
        if (lazy != null) {
            Amend.setLazyRefcounts(path, lazy);
        }
        return 0;
    }
}
