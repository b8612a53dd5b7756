package io.qcow2j.cli;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.CheckResult;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.RepairFailedException;
import io.qcow2j.engine.RepairMode;
import io.qcow2j.engine.RepairResult;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code qcow2j check}: {@code qemu-img check}, with repair ({@code -r leaks|all}). Same options (those that
 * apply), same output in both formats, same exit status: 0 no problems, 1 the check could not be completed
 * (the image cannot be opened, the metadata cannot be followed, or check errors), 2 corruptions, 3 leaked
 * clusters only, 63 for an image that is not qcow2 (qemu-img: "This image format does not support checks").
 * With {@code -r} the image is opened read/write (even when marked dirty or corrupt) and repaired by
 * {@link Qcow2Disk#repair}; when anything was repaired, what was is listed and the image is checked again,
 * and that check decides the output and the exit status, as in qemu-img.
 */
@Command(name = "check", mixinStandardHelpOptions = true, sortOptions = false,
        header = "Check a qcow2 image for consistency (and with -r repair it), as qemu-img check does.",
        description = {
            "Check a qcow2 image for consistency, as qemu-img check does: rebuild the reference count of every "
                    + "cluster from the metadata and compare it with the refcounts stored in the image.",
            "With -r leaks|all, repair what is found (as qemu-img check -r), then check the image again.",
            "Exit status: 0 no errors, 1 check could not be completed, 2 corruptions, 3 leaked clusters only."
        })
final class CheckCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--output", paramLabel = "OFMT", description = "Output format: human (default) or json.")
    String output = "human";

    @Option(names = "-f", paramLabel = "FMT", description = "Image format; only qcow2 can be checked.")
    String format;

    @Option(names = "--image-opts", description = "IMAGE is an option string (driver=qcow2,file.filename=…).")
    boolean imageOpts;

    @Option(names = {"-U", "--force-share"}, description = "Open the image in shared mode (qcow2j takes no locks).")
    boolean forceShare;

    @Option(names = "-T", paramLabel = "SRC_CACHE", description = "Cache mode for the image: "
            + "writeback (default), none, writethrough, unsafe.")
    String cache;

    @Option(names = "-q", description = "Quiet: print no summary (problems still go to stderr).")
    boolean quiet;

    @Option(names = "-r", paramLabel = "leaks|all", description = "Repair: leaked clusters only (leaks), or "
            + "everything that can be repaired (all); the image is then checked again.")
    String repair;

    @Parameters(paramLabel = "IMAGE", description = "The image file (or option string with --image-opts).")
    String image;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        RepairMode mode = null;
        if (repair != null) {
            mode = switch (repair) {
                case "leaks" -> RepairMode.LEAKS;
                case "all" -> RepairMode.ALL;
                default -> throw new IllegalArgumentException(
                        "Unknown option value for -r (expecting 'leaks' or 'all'): " + repair);
            };
        }
        boolean json = switch (output) {
            case "human" -> false;
            case "json" -> true;
            default -> throw new IllegalArgumentException("--output must be used with human or json as argument.");
        };
        ImageOptions.Builder base = Main.imageOptions().readOnly(true);
        if (cache != null) {
            base.cacheMode(CacheMode.parse(cache));
        }
        ImageOptions options = base.build();
        Path path;
        if (imageOpts) {
            options = ImageOptions.parse(image, options.toBuilder().readOnly(true).build());
            if (options.filename() == null) {
                throw new IllegalArgumentException("A block device must be specified for \"file\"");
            }
            path = Path.of(options.filename());
        } else {
            path = Path.of(image);
        }
        if (format != null && !format.equals("qcow2") || format == null && isRawFile(path)) {
            if (format != null && !format.equals("raw")) {
                throw new IllegalArgumentException("Unknown driver '" + format + "'");
            }
            err.println("qcow2j: This image format does not support checks");
            err.flush();
            return 63;
        }
        if (mode != null && forceShare) {
            throw new IllegalArgumentException("Could not open '" + image
                    + "': force-share=on can only be used with read-only images");
        }
        CheckResult r;
        long leaksFixed = 0;
        long corruptionsFixed = 0;
        try (Qcow2Disk img = mode != null ? Images.openForRepair(path, options) : Images.openQcow2(path, options)) {
            try {
                if (mode == null) {
                    r = img.check(err::println);
                } else {
                    RepairResult rr = img.repair(mode, err::println);
                    r = rr.result();
                    if (rr.repairedAnything()) {
                        leaksFixed = rr.leaksFixed();
                        corruptionsFixed = rr.corruptionsFixed();
                        if (!json && !quiet) {
                            out.print("The following inconsistencies were found and repaired:\n\n"
                                    + "    " + leaksFixed + " leaked clusters\n"
                                    + "    " + corruptionsFixed + " corruptions\n\n"
                                    + "Double checking the fixed image now...\n");
                            out.flush();
                        }
                        r = img.check(err::println);
                    }
                }
            } catch (IOException e) {
                err.flush();
                // qemu-img names only the errno of a repair that failed
                err.println("qcow2j: Check failed: " + (e instanceof RepairFailedException
                        ? "Input/output error" : Main.describe(e)));
                err.flush();
                return 1;
            }
        }
        err.flush();
        // qemu-img names the image as it was given (with --image-opts: the whole option string).
        r = new CheckResult(image, r.format(), r.checkErrors(), r.corruptions(), r.leaks(), r.imageEndOffset(),
                r.totalClusters(), r.allocatedClusters(), r.fragmentedClusters(), r.compressedClusters());
        if (!quiet) {
            out.print(json ? JsonWriter.pretty(jsonFields(r, leaksFixed, corruptionsFixed)) + "\n" : human(r));
            out.flush();
        }
        if (r.checkErrors() != 0) {
            err.println("qcow2j: Check failed");
            err.flush();
        }
        return r.exitCode();
    }

    /** Whether the file exists and does not start with the qcow2 magic (qemu-img would probe it as raw). */
    private static boolean isRawFile(Path path) {
        if (!Files.isRegularFile(path)) {
            return false;
        }
        try (InputStream in = Files.newInputStream(path)) {
            byte[] m = in.readNBytes(4);
            return m.length < 4 || ByteBuffer.wrap(m).getInt() != 0x514649fb;
        } catch (IOException e) {
            return false; // let the open report it
        }
    }

    /** {@code qemu-img check}'s human summary. */
    static String human(CheckResult r) {
        StringBuilder sb = new StringBuilder();
        if (r.isClean()) {
            sb.append("No errors were found on the image.\n");
        } else {
            if (r.corruptions() != 0) {
                sb.append('\n').append(r.corruptions()).append(" errors were found on the image.\n")
                        .append("Data may be corrupted, or further writes to the image may corrupt it.\n");
            }
            if (r.leaks() != 0) {
                sb.append('\n').append(r.leaks()).append(" leaked clusters were found on the image.\n")
                        .append("This means waste of disk space, but no harm to data.\n");
            }
            if (r.checkErrors() != 0) {
                sb.append('\n').append(r.checkErrors()).append(" internal errors have occurred during the check.\n");
            }
        }
        if (r.totalClusters() != 0 && r.allocatedClusters() != 0) {
            sb.append(r.allocatedClusters()).append('/').append(r.totalClusters()).append(" = ")
                    .append(percent(r.allocatedClusters(), r.totalClusters())).append("% allocated, ")
                    .append(percent(r.fragmentedClusters(), r.allocatedClusters())).append("% fragmented, ")
                    .append(percent(r.compressedClusters(), r.allocatedClusters())).append("% compressed clusters\n");
        }
        if (r.imageEndOffset() != 0) {
            sb.append("Image end offset: ").append(r.imageEndOffset()).append('\n');
        }
        return sb.toString();
    }

    /** C's {@code %0.2f} of {@code part * 100.0 / whole}: the exact double, ties to even. */
    static String percent(long part, long whole) {
        return new BigDecimal(part * 100.0 / whole).setScale(2, RoundingMode.HALF_EVEN).toPlainString();
    }

    /**
     * The JSON object qemu-img prints: a field only when it is not zero (check-errors, filename and format
     * always), in the order qemu-img's QDict hash table yields them (fixed for this set of names).
     */
    static Map<String, Object> jsonFields(CheckResult r) {
        return jsonFields(r, 0, 0);
    }

    /** As {@link #jsonFields(CheckResult)}, with what a repair fixed ({@code -r}). */
    static Map<String, Object> jsonFields(CheckResult r, long leaksFixed, long corruptionsFixed) {
        Map<String, Object> m = new LinkedHashMap<>();
        putNonZero(m, "image-end-offset", r.imageEndOffset());
        putNonZero(m, "compressed-clusters", r.compressedClusters());
        putNonZero(m, "total-clusters", r.totalClusters());
        putNonZero(m, "corruptions", r.corruptions());
        putNonZero(m, "corruptions-fixed", corruptionsFixed);
        m.put("check-errors", r.checkErrors());
        putNonZero(m, "leaks", r.leaks());
        putNonZero(m, "leaks-fixed", leaksFixed);
        putNonZero(m, "allocated-clusters", r.allocatedClusters());
        m.put("filename", r.filename());
        m.put("format", r.format());
        putNonZero(m, "fragmented-clusters", r.fragmentedClusters());
        return m;
    }

    private static void putNonZero(Map<String, Object> m, String key, long v) {
        if (v != 0) {
            m.put(key, v);
        }
    }
}
