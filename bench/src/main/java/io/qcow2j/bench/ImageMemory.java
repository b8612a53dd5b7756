package io.qcow2j.bench;

import io.qcow2j.engine.CacheStats;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * RSS of a process that fills an image's L2 cache and then idles past its cache-clean-interval: the
 * memory scenario of {@code bench/compare.sh}. Opens IMAGE read-only with the given option string (e.g.
 * {@code l2-cache-size=32M,l2-cache-entry-size=64k,cache-clean-interval=3,table-store=off-heap}), reads 4 KiB
 * at the start of the guest range of every L2 cache entry (so that every entry is loaded, as long as the
 * image has that many L2 slices), and prints one line:
 * {@code rss-open rss-full rss-clean l2-loaded l2-cleaned seconds-to-clean} (bytes). rss-clean is taken
 * once the cleaner has dropped the tables (two passes: the first marks, the second drops), at most
 * 3 × interval + 10 s after the fill.
 *
 * <p>Run: {@code java --enable-native-access=ALL-UNNAMED -cp bench/target/benchmarks.jar
 * io.qcow2j.bench.ImageMemory IMAGE OPTIONS}.
 */
public final class ImageMemory {
    private ImageMemory() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: ImageMemory IMAGE OPTIONS (e.g. l2-cache-size=32M,cache-clean-interval=3)");
            System.exit(2);
        }
        ImageOptions opts = ImageOptions.parse(args[1], ImageOptions.builder().readOnly(true).build());
        System.gc();
        try (Qcow2Disk im = Images.openQcow2(Path.of(args[0]), opts); Arena arena = Arena.ofConfined()) {
            long open = Rss.self();
            CacheStats sizes = im.l2CacheStatistics();
            int cluster = im.header().geometry().clusterSize();
            int entryBytes = im.header().geometry().l2EntrySize();
            long stride = (long) sizes.entrySize() / entryBytes * cluster; // guest bytes one L2 slice maps
            long reads = Math.min(sizes.entries(), im.size() / stride);
            MemorySegment buf = arena.allocate(4096, 4096);
            for (long i = 0; i < reads; i++) {
                im.read(i * stride, buf);
            }
            long loaded = im.l2CacheStatistics().loads();
            long full = Rss.self();
            long t0 = System.nanoTime();
            long interval = opts.cacheCleanInterval();
            long deadline = t0 + (3 * interval + 10) * 1_000_000_000L;
            while (im.l2CacheStatistics().cleaned() < loaded && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            long clean = Rss.self();
            System.out.printf(java.util.Locale.ROOT, "%d %d %d %d %d %.1f%n", open, full, clean, loaded,
                    im.l2CacheStatistics().cleaned(), secs);
        }
    }
}
