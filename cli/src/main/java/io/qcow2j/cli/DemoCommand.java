package io.qcow2j.cli;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.CheckResult;
import io.qcow2j.engine.CreateOptions;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.Sizes;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code qcow2j demo}: the whole engine on an embedded default, in one command. Creates an image, writes to
 * it (data, zeros, a discard, with an L2 cache small enough to evict), flushes, reads everything back and
 * verifies it against what was written, maps it, checks it, and prints what the caches did.
 */
@Command(name = "demo", header = "Run a real read/write job on a fresh image, verify it and show what the caches did.", description = {
    "Run a real read/write job on a fresh image: create, write, flush, read back and verify, map, check,",
    "and print the cache statistics. Nothing to prepare: the image lives in a temporary folder."})
public final class DemoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--dir", paramLabel = "DIR", description = "folder for the image (default: a new temporary folder)")
    Path dir;

    @Option(names = "--keep", description = "keep the image afterwards")
    boolean keep;

    @Option(names = "--size", paramLabel = "SIZE", description = "virtual size (default 1G)")
    String size = "1G";

    @Option(names = "-o", paramLabel = "OPTS", description = "cache options, e.g. l2-cache-size=64k,table-store=heap")
    String cacheOptions = "l2-cache-size=4k,l2-cache-entry-size=512";

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        Path folder = dir != null ? Files.createDirectories(dir) : Files.createTempDirectory("qcow2j-demo");
        Path image = folder.resolve("demo.qcow2");
        long virtualSize = Sizes.parse("size", size);
        try {
            long t0 = System.nanoTime();
            Images.create(image, CreateOptions.builder().size(virtualSize).build());
            out.printf("1. created %s: %s virtual, 64 KiB clusters, qcow2 v3%n", image, Sizes.human(virtualSize));
            ImageOptions options = ImageOptions.parse(cacheOptions, Main.imageOptions().readOnly(false).build());
            byte[] model;
            int modelSize = (int) Math.min(virtualSize, 64L << 20);
            try (Qcow2Disk im = Images.openQcow2(image, options)) {
                model = new byte[modelSize];
                SplittableRandom rnd = new SplittableRandom(2026);
                long written = 0;
                int requests = 0;
                for (int i = 0; i < 600; i++) {
                    int len = 512 + rnd.nextInt(96 << 10);
                    int off = rnd.nextInt(modelSize - len);
                    byte[] b = new byte[len];
                    rnd.nextBytes(b);
                    im.write(off, MemorySegment.ofArray(b));
                    System.arraycopy(b, 0, model, off, len);
                    written += len;
                    requests++;
                }
                im.writeZeroes(4L << 20, 3L << 20);
                java.util.Arrays.fill(model, 4 << 20, 7 << 20, (byte) 0);
                im.discard(8L << 20, 2L << 20);
                java.util.Arrays.fill(model, 8 << 20, 10 << 20, (byte) 0);
                long syncs = im.syncCount();
                im.flush();
                out.printf("2. wrote %s in %d requests at random offsets (unaligned), zeroed 3 MiB, discarded 2 MiB;"
                        + " flush: %d fdatasync%n", Sizes.human(written), requests, im.syncCount() - syncs);
                var w = im.l2CacheStatistics();
                out.printf("   L2 cache while writing: %d misses, %d evictions, %d tables written back%n", w.misses(),
                        w.evictions(), w.writebacks());
            }
            try (Qcow2Disk im = Images.openQcow2(image, options.toBuilder().readOnly(true).build());
                    Arena arena = Arena.ofConfined()) {
                MemorySegment buf = arena.allocate(1 << 20, 4096);
                for (int off = 0; off < modelSize; off += buf.byteSize()) {
                    int n = (int) Math.min(buf.byteSize(), modelSize - off);
                    im.read(off, buf.asSlice(0, n));
                    if (MemorySegment.mismatch(buf, 0, n, MemorySegment.ofArray(model), off, off + n) != -1) {
                        throw new IOException("read-back mismatch near offset " + off + ": the engine is broken");
                    }
                }
                out.printf("3. reopened read-only and read back %s: every byte as written%n", Sizes.human(modelSize));
                int extents = 0;
                long data = 0;
                BlockStatus last = null;
                for (long pos = 0; pos < im.size(); ) {
                    BlockStatus st = im.blockStatus(pos, im.size() - pos);
                    if (last == null || !last.continuedBy(st)) {
                        extents++;
                    }
                    if (st.data()) {
                        data += st.length();
                    }
                    last = st;
                    pos += st.length();
                }
                out.printf("4. map: %d extents, %s of data, the rest zeros or unallocated%n", extents, Sizes.human(data));
                CheckResult r = im.check(line -> out.println("   " + line));
                out.printf("5. check: %s (%d/%d clusters allocated, image end offset %d)%n",
                        r.isClean() ? "no errors were found on the image" : "PROBLEMS FOUND",
                        r.allocatedClusters(), r.totalClusters(), r.imageEndOffset());
                out.println("6. caches while reading (" + im.l2CacheStatistics().entries() + " L2 slices of "
                        + im.l2CacheStatistics().entrySize() + " bytes, " + options.tableStore().name().toLowerCase(Locale.ROOT).replace('_', '-')
                        + " store):");
                out.println("   L2 cache:       " + im.l2CacheStatistics());
                out.println("   refcount cache: " + im.refcountCacheStatistics());
                out.printf(Locale.ROOT, "done in %.2f s%s%n", (System.nanoTime() - t0) / 1e9,
                        keep ? "; image kept at " + image : "");
                return r.isClean() ? 0 : 2;
            }
        } finally {
            if (!keep) {
                Files.deleteIfExists(image);
                if (dir == null) {
                    try (Stream<Path> s = Files.walk(folder)) {
                        s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                    }
                }
            }
        }
    }
}
