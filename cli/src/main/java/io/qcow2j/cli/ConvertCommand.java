package io.qcow2j.cli;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.ChainStatus;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.SnapshotRef;
import io.qcow2j.engine.Sizes;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.ffm.LibC;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code qcow2j convert}: {@code -O qcow2} is {@link Qcow2Output}; {@code -O raw} writes the guest disks of
 * qcow2 images (through their backing chains, one after the other) to a sparse raw file, as
 * {@code qemu-img convert -O raw}: the file has the total size, ranges that read as zeros (by block status,
 * or found all-zero in 4 KiB blocks of data, aligned in the output) are left as holes, the rest is written.
 * {@code -l} reads the (first) source as of an internal snapshot.
 */
@Command(name = "convert", sortOptions = false, mixinStandardHelpOptions = true,
        header = "Convert images to a qcow2 image or a raw file, as qemu-img convert does.",
        description = "Convert (concatenated) images to a new qcow2 image (-O qcow2, -c compressed) or a raw file"
                + " (-O raw), as qemu-img convert.")
final class ConvertCommand implements Callable<Integer> {
    /** qemu-img's I/O buffer. */
    static final int BUFFER = 2 << 20;
    /** qemu-img's default {@code -S}: zero runs of this size (aligned) become holes. */
    static final int SPARSE = 4096;

    @Spec
    CommandSpec spec;

    @Option(names = "-O", paramLabel = "OUTPUT_FMT", description = "Output format: raw (the default) or qcow2.")
    String outputFormat = "raw";

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Output options: for qcow2 those of create"
            + " (cluster_size, compat, refcount_bits, extended_l2, lazy_refcounts, compression_type, preallocation,"
            + " backing_file, backing_fmt); for raw preallocation=off|falloc|full, size; help.")
    String outputOptions;

    @Option(names = "-c", description = "Compress the output's clusters (qcow2; zlib, or zstd with"
            + " -o compression_type=zstd).")
    boolean compress;

    @Option(names = "-B", paramLabel = "BACKING_FILE", description = "The output's backing file: it gets only what"
            + " the source's top image holds (qcow2).")
    String backingFile;

    @Option(names = "-F", paramLabel = "BACKING_FMT", description = "Format of the -B backing file.")
    String backingFormat;

    @Option(names = "-n", description = "Do not create the target: write into an existing image.")
    boolean noCreate;

    @Option(names = "-S", paramLabel = "SPARSE_SIZE", description = "Zero runs of this size (aligned) are not"
            + " written (default 4k); 0: fully allocated output.")
    String sparse;

    @Option(names = "--target-is-zero", description = "With -n: the target reads as zeros already.")
    boolean targetIsZero;

    @Option(names = "-W", description = "Allow out-of-order writes to the target.")
    boolean outOfOrder;

    @Option(names = "-m", paramLabel = "NUM_COROUTINES", description = "Requests in flight (1-16, default 8).")
    String parallel;

    @Option(names = "-q", description = "Quiet (no progress).")
    boolean quiet;

    @Option(names = "-p", description = "Show progress (on a terminal).")
    boolean progress;

    @Option(names = "-t", paramLabel = "CACHE", description = "Cache mode of the output: none, writeback,"
            + " writethrough, unsafe (default, as qemu-img convert).")
    String cache = "unsafe";

    @Option(names = "-T", paramLabel = "SRC_CACHE", description = "Cache mode of the source (default writeback).")
    String sourceCache = "writeback";

    @Option(names = "-l", paramLabel = "SNAPSHOT_PARAM", description = "Read the source as of an internal"
            + " snapshot: an ID or name, or snapshot.id=ID[,snapshot.name=NAME] (then of the first source only).")
    String snapshot;

    @Mixin
    ImageSource source = new ImageSource();

    @Parameters(arity = "2..*", paramLabel = "SRC... DST", description = "The source images (concatenated; with"
            + " --image-opts their options), then the output file.")
    List<String> files;

    String src;
    String dst;

    @Override
    public Integer call() throws IOException {
        dst = files.getLast();
        src = files.getFirst();
        List<String> sources = files.subList(0, files.size() - 1);
        SnapshotRef snap = snapshotRef(snapshot, sources.size(), spec.commandLine().getErr());
        if (outputFormat.equals("qcow2")) {
            return Qcow2Output.convert(this, sources, snap);
        }
        if (!outputFormat.equals("raw")) {
            throw new CommandFailure("Unknown file format '" + outputFormat + "'");
        }
        if (compress || backingFile != null || noCreate) {
            throw new CommandFailure("qcow2j converts to raw without -c, -B or -n");
        }
        Map<String, String> opts = outputOptions(outputOptions);
        PrintWriter out = spec.commandLine().getOut();
        if (opts.containsKey("help")) {
            out.print("Supported raw options:\n"
                    + "  preallocation=<str>    - Preallocation mode (allowed values: off, falloc, full)\n"
                    + "  size=<size>            - Virtual disk size\n");
            out.flush();
            return 0;
        }
        String prealloc = opts.getOrDefault("preallocation", "off");
        if (!prealloc.equals("off") && !prealloc.equals("falloc") && !prealloc.equals("full")) {
            throw new CommandFailure(dst + ": error while converting raw: invalid parameter value: " + prealloc);
        }
        if (opts.containsKey("size")) {
            try {
                Sizes.parse("size", opts.get("size"));
            } catch (IllegalArgumentException e) {
                throw new CommandFailure("Parameter 'size' expects a non-negative number below 2^64");
            }
        }
        CacheMode dstCache = ImageSource.cacheMode(cache);
        CacheMode srcCache = ImageSource.cacheMode(sourceCache);
        List<ImageSource.Chain> chains = new ArrayList<>();
        try {
            for (int i = 0; i < sources.size(); i++) {
                ImageOptions.Builder o = Main.imageOptions().cacheMode(srcCache);
                chains.add(source.openGuestDisk(sources.get(i), (i == 0 ? o.snapshot(snap) : o).build()));
            }
            convert(chains, Path.of(dst), dstCache, prealloc, new Progress(out, progress && Progress.onTerminal()));
        } finally {
            for (ImageSource.Chain c : chains) {
                c.close();
            }
        }
        return 0;
    }

    /**
     * The snapshot {@code -l} names, or null: {@code snapshot.id=…,snapshot.name=…} (qemu-img loads it in the
     * first source only) or an ID-or-name (qemu-img refuses it with several sources), as qemu-img 7.2 parses it.
     */
    static SnapshotRef snapshotRef(String arg, int sources, PrintWriter err) {
        if (arg == null) {
            return null;
        }
        if (!arg.startsWith("snapshot.")) {
            if (sources > 1) {
                throw new CommandFailure("No support for concatenating multiple snapshot");
            }
            return SnapshotRef.idOrName(arg);
        }
        String id = null;
        String name = null;
        for (String part : arg.replace(",,", "\0").split(",", -1)) {
            part = part.replace("\0", ",");
            int eq = part.indexOf('=');
            String k = eq < 0 ? part : part.substring(0, eq);
            String v = eq < 0 ? "on" : part.substring(eq + 1);
            switch (k) {
                case "snapshot.id" -> id = v;
                case "snapshot.name" -> name = v;
                default -> {
                    err.println("qcow2j: Invalid parameter '" + k + "'");
                    err.flush();
                    throw new CommandFailure("Failed in parsing snapshot param '" + arg + "'");
                }
            }
        }
        return SnapshotRef.of(id, name);
    }

    /** {@code -o key=value,...} of the raw output; a key without a value is a flag ({@code help}). */
    static Map<String, String> outputOptions(String text) {
        Map<String, String> m = new LinkedHashMap<>();
        if (text == null) {
            return m;
        }
        for (String part : text.split(",")) {
            if (part.isEmpty()) {
                continue;
            }
            int eq = part.indexOf('=');
            String k = eq < 0 ? part : part.substring(0, eq);
            String v = eq < 0 ? "" : part.substring(eq + 1);
            if (k.equals("?")) {
                k = "help";
            }
            switch (k) {
                case "help", "size", "preallocation" -> m.put(k, v);
                default -> throw new CommandFailure("Invalid parameter '" + k + "'");
            }
        }
        return m;
    }

    /** Writes the sources' guest disks, one after the other, to the raw file {@code dst}. */
    static void convert(List<ImageSource.Chain> chains, Path dst, CacheMode cache, String prealloc, Progress progress)
            throws IOException {
        long size = 0;
        for (ImageSource.Chain c : chains) {
            size = Math.addExact(size, c.top().size());
        }
        IoMode mode = cache == CacheMode.NONE ? IoMode.DIRECT : IoMode.BUFFERED;
        if (Files.isDirectory(dst)) {
            throw new CommandFailure("Could not create '" + dst + "': Is a directory");
        }
        AlignedFile out;
        try {
            out = AlignedFile.open(dst, mode, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                    StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw new CommandFailure("Could not create '" + dst + "': " + Main.describe(e), e);
        }
        try (out; Arena arena = Arena.ofConfined()) {
            out.truncate(size);
            if (!prealloc.equals("off") && size > 0) {
                LibC.fallocate(out.fd(), 0, 0, size);
            }
            MemorySegment buf = arena.allocate(BUFFER, 4096);
            MemorySegment zeros = arena.allocate(SPARSE, 4096);
            progress.set(0);
            long base = 0;
            for (ImageSource.Chain chain : chains) {
                Disk img = chain.top();
                ChainStatus layer = new ChainStatus(chain.layers(), chain.names());
                long offset = 0;
                while (offset < img.size()) {
                    ChainStatus.Extent e = layer.status(offset, Math.min(ChainStatus.PROBE, img.size() - offset));
                    if (!e.zero()) {
                        copy(img, base, out, e.start(), e.length(), buf, zeros, cache, progress, size);
                    }
                    offset += e.length();
                    progress.set(percent(base + offset, size));
                }
                base += img.size();
            }
            if (cache == CacheMode.WRITEBACK || cache == CacheMode.NONE) {
                out.dataSync();
            }
        }
        progress.set(100);
        progress.end();
    }

    private static float percent(long done, long size) {
        return size == 0 ? 100f : (float) (done * 100.0 / size);
    }

    /**
     * Reads a data extent of {@code img} (which starts at {@code base} in the output) and writes its blocks
     * that are not all zeros; zero blocks stay holes. Blocks are aligned in the output, as qemu-img's.
     */
    private static void copy(Disk img, long base, AlignedFile out, long start, long length, MemorySegment buf,
            MemorySegment zeros, CacheMode cache, Progress progress, long size) throws IOException {
        long at = base + start;
        long end = base + start + length;
        while (at < end) {
            int n = (int) Math.min(BUFFER - (at & (SPARSE - 1)), end - at);
            long pos = at; // output offset
            MemorySegment chunk = buf.asSlice(0, n);
            img.read(pos - base, chunk);
            // Walk blocks aligned to SPARSE in the output; write maximal runs of non-zero blocks.
            int i = 0;
            while (i < n) {
                int blockEnd = (int) Math.min(n, ((pos + i) | (SPARSE - 1)) + 1 - pos);
                if (isZero(chunk, i, blockEnd, zeros)) {
                    i = blockEnd;
                    continue;
                }
                int runStart = i;
                i = blockEnd;
                while (i < n) {
                    int be = (int) Math.min(n, ((pos + i) | (SPARSE - 1)) + 1 - pos);
                    if (isZero(chunk, i, be, zeros)) {
                        break;
                    }
                    i = be;
                }
                out.write(pos + runStart, chunk.asSlice(runStart, i - runStart));
                if (cache == CacheMode.WRITETHROUGH) {
                    out.dataSync();
                }
            }
            at += n;
            progress.set(percent(at, size));
        }
    }

    private static boolean isZero(MemorySegment chunk, int from, int to, MemorySegment zeros) {
        return chunk.asSlice(from, to - from).mismatch(zeros.asSlice(0, to - from)) == -1;
    }
}
