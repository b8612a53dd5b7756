package io.qcow2j.cli;

import io.qcow2j.engine.CacheStats;
import io.qcow2j.engine.ChainStatus;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.Sizes;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code qcow2j map}: where the guest's bytes are, as {@code qemu-img map} prints it. Human form: the data
 * ranges with their host offsets and files; JSON: one object per range, every range of the disk, with the
 * layer of the backing chain it comes from (depth) and its flags.
 */
@Command(name = "map", sortOptions = false, mixinStandardHelpOptions = true,
        header = "Print where the guest's data lies in an image, as qemu-img map does.",
        description = "Print the image's map of allocated ranges, as qemu-img map.")
final class MapCommand implements Callable<Integer> {
    static final String COMPRESSED_ERROR = "File contains external, encrypted or compressed clusters.";

    @Spec
    CommandSpec spec;

    @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json.")
    String output = "human";

    @Option(names = {"-s", "--start-offset"}, paramLabel = "OFFSET", description = "Start at this guest offset"
            + " (suffixes k, M, G, T, P, E).")
    String startOffset;

    @Option(names = {"-l", "--max-length"}, paramLabel = "LENGTH", description = "Map at most this many bytes.")
    String maxLength;

    @Option(names = "--cache-stats", description = "qcow2j: print the L2 and refcount cache statistics of every"
            + " qcow2 image of the chain to stderr afterwards.")
    boolean cacheStats;

    @Mixin
    ImageSource source = new ImageSource();

    @Parameters(index = "0", paramLabel = "IMAGE", description = "The image (or with --image-opts its options).")
    String image;

    @Override
    public Integer call() throws IOException {
        boolean json = InfoCommand.parseOutput(output);
        long start = startOffset == null ? 0 : size(startOffset, "Invalid start offset specified.");
        long max = maxLength == null ? Long.MAX_VALUE : size(maxLength, "Invalid max length specified.");
        ImageSource.Spec s = source.spec(image, Main.imageOptions().build());
        PrintWriter out = spec.commandLine().getOut();
        try (ImageSource.Chain chain = ImageSource.openChain(s)) {
            try {
                map(chain, start, max, json, out);
            } finally {
                out.flush();
                if (cacheStats) {
                    printCacheStats(chain, spec.commandLine().getErr());
                }
            }
        }
        return 0;
    }

    private static long size(String text, String error) {
        try {
            return Sizes.parse("offset", text);
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(error + " You may use k, M, G, T, P or E suffixes for kilobytes, megabytes,"
                    + " gigabytes, terabytes, petabytes and exabytes.");
        }
    }

    /** {@code img_map}'s loop: probe, merge what can be merged, print the rest. */
    static void map(ImageSource.Chain chain, long start, long max, boolean json, PrintWriter out) throws IOException {
        ChainStatus layer = new ChainStatus(chain.layers(), chain.names());
        long length = Math.min(chain.top().size(), start > Long.MAX_VALUE - max ? Long.MAX_VALUE : start + max);
        if (json) {
            out.print('[');
        } else {
            out.print(String.format("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File"));
        }
        ChainStatus.Extent curr = new ChainStatus.Extent(start, 0, false, false, false, 0, false, 0, null);
        while (curr.start() + curr.length() < length) {
            long offset = curr.start() + curr.length();
            long n = Math.min(ChainStatus.PROBE, length - offset);
            ChainStatus.Extent next = layer.status(offset, n);
            if (mergeable(curr, next)) {
                curr = curr.withLength(curr.length() + next.length());
                continue;
            }
            if (curr.length() > 0) {
                next = dump(curr, next, json, out);
            }
            curr = next;
        }
        dump(curr, null, json, out);
        if (json) {
            out.print("]\n");
        }
    }

    /** {@code entry_mergeable}. */
    static boolean mergeable(ChainStatus.Extent curr, ChainStatus.Extent next) {
        if (curr.length() == 0) {
            return false;
        }
        if (curr.zero() != next.zero() || curr.data() != next.data() || curr.depth() != next.depth()
                || curr.present() != next.present() || (curr.filename() == null) != (next.filename() == null)
                || curr.hasOffset() != next.hasOffset()) {
            return false;
        }
        if (curr.filename() != null && !curr.filename().equals(next.filename())) {
            return false;
        }
        return !curr.hasOffset() || curr.offset() + curr.length() == next.offset();
    }

    /** {@code dump_map_entry}; returns {@code next}, which the human form may change to merge more. */
    private static ChainStatus.Extent dump(ChainStatus.Extent e, ChainStatus.Extent next, boolean json, PrintWriter out) {
        if (!json) {
            if (e.data() && !e.hasOffset()) {
                out.flush();
                throw new CommandFailure(COMPRESSED_ERROR);
            }
            if (e.data() && !e.zero()) {
                out.print(String.format("%-16s%-16s%-16s%s\n", hex(e.start()), hex(e.length()),
                        hex(e.hasOffset() ? e.offset() : 0), e.filename() != null ? e.filename() : ""));
            }
            // The human form does not tell zero from zero+data from unallocated: merge them.
            if (next != null && (!next.data() || next.zero())) {
                next = next.withFlags(false, true);
            }
            return next;
        }
        StringBuilder sb = new StringBuilder();
        sb.append("{ \"start\": ").append(e.start()).append(", \"length\": ").append(e.length())
                .append(", \"depth\": ").append(e.depth()).append(", \"present\": ").append(e.present())
                .append(", \"zero\": ").append(e.zero()).append(", \"data\": ").append(e.data());
        if (e.hasOffset()) {
            sb.append(", \"offset\": ").append(e.offset());
        }
        sb.append('}');
        if (next != null) {
            sb.append(",\n");
        }
        out.print(sb);
        return next;
    }

    /** C's {@code %#x}: {@code 0x} before every value but zero. */
    static String hex(long v) {
        return v == 0 ? "0" : "0x" + Long.toHexString(v);
    }

    static void printCacheStats(ImageSource.Chain chain, PrintWriter err) {
        for (int i = 0; i < chain.layers().size(); i++) {
            Disk d = chain.layers().get(i);
            if (d instanceof Qcow2Disk q) {
                CacheStats l2 = q.l2CacheStatistics();
                CacheStats rc = q.refcountCacheStatistics();
                err.print("cache statistics of " + chain.names().get(i) + " (depth " + i + "):\n");
                err.print("  L2 cache:       " + l2.entries() + " entries of " + l2.entrySize() + " bytes; " + stats(l2)
                        + "\n");
                err.print("  refcount cache: " + rc.entries() + " entries of " + rc.entrySize() + " bytes; " + stats(rc)
                        + "\n");
            }
        }
        err.flush();
    }

    private static String stats(CacheStats s) {
        return String.format(Locale.ROOT, "hits %d, misses %d, loads %d, evictions %d, probes per lookup %.2f",
                s.hits(), s.misses(), s.loads(), s.evictions(), s.probesPerLookup());
    }
}
