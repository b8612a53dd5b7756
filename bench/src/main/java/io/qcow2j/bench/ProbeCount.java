package io.qcow2j.bench;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.TableStore;
import java.io.IOException;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.LongUnaryOperator;

/**
 * Entries compared per lookup at a given cache size (default 2048, the size of QEMU's measurement: "430
 * comparisons per lookup on average, 2.5 with the hash start"), for three algorithms on the same lookups:
 * QEMU's cache before the hash start (search from entry 0), QEMU's cache today (search from a hash of the
 * offset, a full scan on a miss) and qcow2j's {@link MetadataCache} (index buckets examined, from its own
 * statistics). Workloads: uniform hits over a full cache, pure misses, and random requests over 25% more
 * tables than fit (mostly hits); table offsets laid out contiguously (as preallocated metadata) or at
 * random cluster offsets (as a grown image).
 *
 * <p>Run: {@code java -cp bench/target/benchmarks.jar io.qcow2j.bench.ProbeCount [entries]}. Prints a
 * Markdown table.
 */
public final class ProbeCount {
    static final int TABLE = 65536;
    static final int LOOKUPS = 1 << 18;

    private ProbeCount() {}

    public static void main(String[] args) throws IOException {
        int entries = args.length > 0 ? Integer.parseInt(args[0]) : 2048;
        System.out.printf(Locale.ROOT, "Entries compared per lookup, %d-entry cache, %d lookups per cell%n%n", entries,
                LOOKUPS);
        System.out.println("| workload | table offsets | QEMU before hash start | QEMU (hash start) | qcow2j |");
        System.out.println("|---|---|---:|---:|---:|");
        for (String layout : new String[] {"contiguous", "random"}) {
            for (String workload : new String[] {"hits", "misses", "mixed"}) {
                double[] r = run(entries, workload, layout);
                System.out.printf(Locale.ROOT, "| %s | %s | %.1f | %.2f | %.2f |%n", workload, layout, r[0], r[1], r[2]);
            }
        }
    }

    /** Returns comparisons per lookup: QEMU without hash, QEMU with hash, qcow2j. */
    static double[] run(int entries, String workload, String layout) throws IOException {
        int distinct = switch (workload) {
            case "hits" -> entries;
            case "misses" -> entries * 2;
            default -> entries + entries / 4;
        };
        SplittableRandom rnd = new SplittableRandom(11);
        long base = 1L << 30;
        long[] tables = new long[distinct];
        java.util.HashSet<Long> used = new java.util.HashSet<>();
        for (int i = 0; i < distinct; i++) {
            long off;
            if (layout.equals("contiguous")) {
                off = base + (long) i * TABLE;
            } else {
                do {
                    off = (1 + rnd.nextLong(1L << 26)) * TABLE;
                } while (!used.add(off));
            }
            tables[i] = off;
        }
        long[] seq = new long[LOOKUPS];
        for (int i = 0; i < LOOKUPS; i++) {
            // misses: start past the tables the warm-up loaded, so that every lookup of the cycle misses
            seq[i] = workload.equals("misses") ? tables[(i + entries) % distinct] : tables[rnd.nextInt(distinct)];
        }
        QemuStyleCache noHash = new QemuStyleCache(entries, TABLE, false);
        QemuStyleCache hash = new QemuStyleCache(entries, TABLE, true);
        double q0 = qemu(noHash, tables, seq);
        double q1 = qemu(hash, tables, seq);
        double j;
        try (MetadataCache c = MetadataCache.builder(CacheKind.L2_TABLE, CacheLookupBenchmark.NULL_FILE)
                .tables(entries).tableSize(TABLE).clusterSize(TABLE).store(TableStore.Kind.OFF_HEAP).build()) {
            LongUnaryOperator get = off -> {
                try {
                    int t = c.get(off);
                    c.put(t);
                    return t;
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            };
            for (int i = 0; i < Math.min(entries, distinct); i++) {
                get.applyAsLong(tables[i]);
            }
            CacheStatistics.Snapshot s0 = c.statistics().snapshot();
            for (long off : seq) {
                get.applyAsLong(off);
            }
            CacheStatistics.Snapshot s1 = c.statistics().snapshot();
            j = (double) (s1.probes() - s0.probes()) / (s1.lookups() - s0.lookups());
        }
        return new double[] {q0, q1, j};
    }

    private static double qemu(QemuStyleCache q, long[] tables, long[] seq) {
        for (int i = 0; i < Math.min(tables.length, q.capacity()); i++) {
            q.put(q.get(tables[i]));
        }
        long c0 = q.comparisons;
        long l0 = q.lookups;
        for (long off : seq) {
            q.put(q.get(off));
        }
        return (double) (q.comparisons - c0) / (q.lookups - l0);
    }
}
