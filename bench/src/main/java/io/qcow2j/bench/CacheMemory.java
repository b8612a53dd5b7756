package io.qcow2j.bench;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.TableStore;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The memory a large cache configuration really uses: a 128 MiB L2 cache (2048 tables of 64 KiB) and a
 * 32 MiB refcount cache (512 blocks), heap vs off-heap store. For each store a fresh JVM reports its RSS
 * (VmRSS from {@code /proc/self/status}) at start, after the caches are built, after every table was
 * filled, and after two {@link MetadataCache#cleanUnused} passes (the first marks, the second drops what
 * was not used since: QEMU's cache-clean-interval), then after a GC.
 *
 * <p>Run: {@code java -cp bench/target/benchmarks.jar io.qcow2j.bench.CacheMemory}. Prints a Markdown
 * table; {@code CacheMemory child HEAP|OFF_HEAP} is the per-store child.
 */
public final class CacheMemory {
    static final int TABLE = 65536;
    static final long L2_BYTES = 128L << 20;
    static final long REFCOUNT_BYTES = 32L << 20;

    private CacheMemory() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 2 && args[0].equals("child")) {
            child(TableStore.Kind.valueOf(args[1]));
            return;
        }
        String java = ProcessHandle.current().info().command().orElse("java");
        System.out.println("RSS (MiB) of a JVM holding a 128 MiB L2 cache + 32 MiB refcount cache of 64 KiB tables");
        System.out.println("(-Xmx1g, G1; VmRSS from /proc/self/status)");
        System.out.println();
        System.out.println("| store | JVM start | caches built | all tables filled | after clean-unused | after GC | cache memory (filled − start) | kept after clean (clean − start) |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (TableStore.Kind kind : TableStore.Kind.values()) {
            List<String> cmd = new ArrayList<>(List.of(java, "-Xmx1g", "--enable-native-access=ALL-UNNAMED", "-cp",
                    System.getProperty("java.class.path"), CacheMemory.class.getName(), "child", kind.name()));
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            String out = new String(p.getInputStream().readAllBytes()).trim();
            if (p.waitFor() != 0) {
                throw new IllegalStateException("child " + kind + " failed: " + out);
            }
            String[] v = out.split(" ");
            long start = Long.parseLong(v[0]);
            long filled = Long.parseLong(v[2]);
            long clean = Long.parseLong(v[3]);
            System.out.printf(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s | %s |%n", kind, Rss.mib(start),
                    Rss.mib(Long.parseLong(v[1])), Rss.mib(filled), Rss.mib(clean), Rss.mib(Long.parseLong(v[4])),
                    Rss.mib(filled - start), Rss.mib(clean - start));
        }
    }

    private static void child(TableStore.Kind kind) throws IOException {
        System.gc();
        long start = Rss.self();
        MetadataCache l2 = MetadataCache.builder(CacheKind.L2_TABLE, CacheLookupBenchmark.NULL_FILE)
                .tables((int) (L2_BYTES / TABLE)).tableSize(TABLE).clusterSize(TABLE).store(kind).build();
        MetadataCache rc = MetadataCache.builder(CacheKind.REFCOUNT_BLOCK, CacheLookupBenchmark.NULL_FILE)
                .tables((int) (REFCOUNT_BYTES / TABLE)).tableSize(TABLE).clusterSize(TABLE).store(kind).build();
        long built = Rss.self();
        // getEmpty zeroes the table: every page of the store is written once, as loads would.
        for (MetadataCache c : new MetadataCache[] {l2, rc}) {
            for (int i = 0; i < c.size(); i++) {
                int t = c.getEmpty((long) (i + 1) * TABLE);
                c.setWord(t, 0, i);
                c.put(t);
            }
        }
        long filled = Rss.self();
        for (MetadataCache c : new MetadataCache[] {l2, rc}) {
            c.cleanUnused(); // marks
            c.cleanUnused(); // drops everything unused since the mark
        }
        long clean = Rss.self();
        System.gc();
        long gc = Rss.self();
        if (l2.occupied() != 0 || rc.occupied() != 0) {
            throw new IllegalStateException("clean-unused left tables: " + l2.occupied() + ", " + rc.occupied());
        }
        System.out.println(start + " " + built + " " + filled + " " + clean + " " + gc);
        l2.close();
        rc.close();
    }
}
