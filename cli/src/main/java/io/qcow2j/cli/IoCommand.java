package io.qcow2j.cli;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.CacheStats;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code qcow2j io}: {@code qemu-io} on a qcow2 image. Runs each {@code -c} command in turn (or, without
 * {@code -c}, one command per line of standard input) with qemu-io's syntax, output and messages; exit status
 * 1 when any command failed (a pattern check included), else 0.
 */
@Command(
        name = "io",
        header = "Read, write, zero, discard and flush an image with qemu-io's commands.",
        mixinStandardHelpOptions = true,
        usageHelpAutoWidth = true,
        versionProvider = Main.Version.class,
        description = {
            "Read, write, zero, discard and flush a qcow2 image with qemu-io's commands, e.g.",
            "  qcow2j io -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k' disk.qcow2",
            "Commands: read [-Cqv] [-P pattern [-s off] [-l len]] off len; write [-Cfqz] [-u] [-P pattern | -s file]"
                    + " off len; discard [-Cq] off len; flush; help [command]; quit.",
            "Sizes take suffixes (64k, 1.5M, 0x1000). The exit status is 1 when a command failed or a pattern"
                    + " did not match."
        })
public final class IoCommand implements Callable<Integer> {
    private static final String PROGRAM = "qcow2j";

    @Option(names = {"-c", "--cmd"}, paramLabel = "CMD", description = "A command to run (repeatable); without"
            + " any, commands are read from standard input.")
    List<String> commands = new ArrayList<>();

    @Option(names = {"-f", "--format"}, paramLabel = "FMT", description = "Format of the image: qcow2 (the only"
            + " one qcow2j opens).")
    String format;

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Image options, key=value[,...]: l2-cache-size,"
            + " l2-cache-entry-size, refcount-cache-size, cache-size, cache-clean-interval, overlap-check, cache,"
            + " table-store, direct-fallback (repeatable).")
    List<String> options = new ArrayList<>();

    @Option(names = {"-t", "--cache"}, paramLabel = "MODE", description = "Cache mode: none, writeback (default),"
            + " writethrough or unsafe.")
    String cache;

    @Option(names = {"-n", "--nocache"}, description = "Disable the host cache: short for -t none.")
    boolean nocache;

    @Option(names = {"-r", "--read-only"}, description = "Open the image read-only.")
    boolean readOnly;

    @Option(names = "--image-opts", description = "IMAGE is an option string: driver=qcow2,file.filename=FILE,"
            + "l2-cache-size=1M,...")
    boolean imageOpts;

    @Option(names = "--cache-stats", description = "qcow2j: print the image's L2 and refcount cache statistics to"
            + " stderr after the last command.")
    boolean cacheStats;

    @Option(names = {"-U", "--force-share"}, description = "Accepted for compatibility (qcow2j takes no locks).")
    boolean forceShare;

    @Parameters(index = "0", paramLabel = "IMAGE", description = "The qcow2 image (or, with --image-opts, its"
            + " option string).")
    String image;

    @Override
    public Integer call() {
        // buffered: reports can be long (read -v); flushed before every message on stderr and at the end
        PrintStream out = new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false,
                Charset.defaultCharset());
        try {
            return run(out, System.err);
        } finally {
            out.flush();
        }
    }

    int run(PrintStream out, PrintStream err) {
        ImageOptions opts;
        String filename;
        try {
            if (cache != null) {
                try {
                    CacheMode.parse(cache);
                } catch (IllegalArgumentException e) {
                    return fail(err, "Invalid cache option: " + cache);
                }
            }
            ImageOptions base = Main.imageOptions().readOnly(false).build();
            String prefix = imageOpts ? "can't open: " : "can't open device " + image + ": ";
            try {
                for (String o : options) {
                    base = ImageOptions.parse(o, base);
                }
                if (imageOpts) {
                    base = ImageOptions.parse(image, base);
                }
            } catch (IllegalArgumentException e) {
                return fail(err, prefix + e.getMessage());
            }
            ImageOptions.Builder b = base.toBuilder();
            if (cache != null) {
                b.cacheMode(CacheMode.parse(cache));
            } else if (nocache) {
                b.cacheMode(CacheMode.NONE);
            }
            if (readOnly) {
                b.readOnly(true);
            }
            opts = b.build();
            filename = imageOpts ? opts.filename() : image;
            if (filename == null || filename.isEmpty()) {
                return fail(err, prefix + "The 'file' block driver requires a file name");
            }
            if (format != null && !format.equals("qcow2")) {
                return fail(err, prefix + (knownFormat(format)
                        ? "format '" + format + "' is not supported (qcow2j opens qcow2 images)"
                        : "Unknown driver '" + format + "'"));
            }
            Qcow2Disk img;
            try {
                if (Files.isDirectory(Path.of(filename))) {
                    return fail(err, prefix + "Could not open '" + filename + "': Is a directory");
                }
                img = Images.openQcow2(Path.of(filename), opts);
            } catch (IOException | RuntimeException e) {
                return fail(err, prefix + Main.describe(e), e);
            }
            return runCommands(img, opts.readOnly(), out, err);
        } finally {
            out.flush();
        }
    }

    private int runCommands(Qcow2Disk img, boolean ro, PrintStream out, PrintStream err) {
        IoShell shell = new IoShell(img, ro, out, err, PROGRAM, System::nanoTime);
        int warned = printWarnings(img, 0, out, err);
        boolean failed = false;
        try {
            if (commands.isEmpty()) {
                failed = runStdin(shell, img, warned, out, err);
            } else {
                for (String c : commands) {
                    if (shell.execute(c) < 0) {
                        failed = true;
                    }
                    warned = printWarnings(img, warned, out, err);
                    if (shell.quitRequested()) {
                        break;
                    }
                }
            }
        } finally {
            if (cacheStats) {
                printCacheStats(img, out, err);
            }
            try {
                img.close();
            } catch (IOException | RuntimeException e) {
                out.flush();
                err.println(PROGRAM + ": " + Main.describe(e));
                failed = true;
            }
        }
        return failed ? 1 : 0;
    }

    /** qemu-io without {@code -c}: a prompt, then one command per line until the end of the input or quit. */
    private boolean runStdin(IoShell shell, Qcow2Disk img, int warned, PrintStream out, PrintStream err) {
        boolean failed = false;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, Charset.defaultCharset()));
        try {
            while (!shell.quitRequested()) {
                out.print(PROGRAM + "> ");
                out.flush();
                String line = in.readLine();
                if (line == null) {
                    break;
                }
                if (shell.execute(line) < 0) {
                    failed = true;
                }
                warned = printWarnings(img, warned, out, err);
            }
        } catch (IOException e) {
            out.flush();
            err.println(PROGRAM + ": " + Main.describe(e));
            failed = true;
        }
        return failed;
    }

    private static void printCacheStats(Qcow2Disk img, PrintStream out, PrintStream err) {
        out.flush();
        CacheStats l2 = img.l2CacheStatistics();
        CacheStats rc = img.refcountCacheStatistics();
        err.print("cache statistics of " + img.filename() + ":\n");
        err.print("  L2 cache:       " + l2.entries() + " entries of " + l2.entrySize() + " bytes; " + stats(l2) + "\n");
        err.print("  refcount cache: " + rc.entries() + " entries of " + rc.entrySize() + " bytes; " + stats(rc) + "\n");
        err.print("  fdatasync calls: " + img.syncCount() + "\n");
        err.flush();
    }

    private static String stats(CacheStats s) {
        return String.format(Locale.ROOT, "hits %d, misses %d, loads %d, evictions %d, write-backs %d",
                s.hits(), s.misses(), s.loads(), s.evictions(), s.writebacks());
    }

    /** Prints the image's warnings from the {@code from}-th on; returns how many there are now. */
    private static int printWarnings(Qcow2Disk img, int from, PrintStream out, PrintStream err) {
        List<String> w = img.warnings();
        if (w.size() > from) {
            out.flush();
            for (String s : w.subList(from, w.size())) {
                err.println(PROGRAM + ": warning: " + s);
            }
            err.flush();
        }
        return w.size();
    }

    private static int fail(PrintStream err, String message) {
        return fail(err, message, null);
    }

    private static int fail(PrintStream err, String message, Throwable cause) {
        err.println(PROGRAM + ": " + message);
        if (Main.debug && cause != null) {
            cause.printStackTrace(err);
        }
        err.flush();
        return 1;
    }

    private static boolean knownFormat(String f) {
        return switch (f) {
            case "raw", "qcow", "qed", "vmdk", "vdi", "vpc", "vhdx", "parallels", "luks", "bochs", "cloop", "dmg",
                    "vvfat", "file", "host_device", "nbd" -> true;
            default -> false;
        };
    }
}
