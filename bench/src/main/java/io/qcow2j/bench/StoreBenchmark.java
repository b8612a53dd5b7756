package io.qcow2j.bench;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.TableStore;
import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.L2Entry;
import java.io.IOException;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Heap vs off-heap table store on the paths a cached request takes: a hit (get + put), a hit that reads one
 * L2 entry, and the decode of an L2 entry into a cluster type and host offset (what the driver does per
 * cluster it maps). 512 L2 tables of 64 KiB (a 32 MiB cache) hold realistic entries (COPIED | offset).
 *
 * <p>All of these must allocate nothing: run with {@code -prof gc} and read {@code gc.alloc.rate.norm}
 * (0 B/op, up to JMH's noise of a few bytes per iteration spread over millions of operations).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class StoreBenchmark {
    static final int TABLE = 65536;
    static final int TABLES = 512;
    static final int KEYS = 1 << 16;
    static final int WORDS = TABLE / 8;

    @Param({"OFF_HEAP", "HEAP"})
    TableStore.Kind store;

    MetadataCache cache;
    long[] hitKeys;
    int[] resident;
    int[] entryIdx;
    int pos;
    final Geometry g = new Geometry(3, 16, 4, false, false);

    @Setup(Level.Trial)
    public void setup() throws IOException {
        cache = MetadataCache.builder(CacheKind.L2_TABLE, CacheLookupBenchmark.NULL_FILE).tables(TABLES)
                .tableSize(TABLE).clusterSize(TABLE).store(store).build();
        SplittableRandom rnd = new SplittableRandom(7);
        long[] offsets = new long[TABLES];
        resident = new int[TABLES];
        for (int i = 0; i < TABLES; i++) {
            offsets[i] = (1 + rnd.nextLong(1L << 24)) * TABLE;
            int t = cache.getEmpty(offsets[i]);
            resident[i] = t;
            for (int w = 0; w < WORDS; w++) {
                // a mix of what a used image holds: allocated (COPIED), zero, unallocated
                int kind = rnd.nextInt(8);
                long e = kind == 0 ? 0 : kind == 1 ? L2Entry.ZERO
                        : L2Entry.of((1 + rnd.nextLong(1L << 30)) * TABLE, true, false);
                cache.setWord(t, w, e);
            }
            cache.put(t);
        }
        hitKeys = new long[KEYS];
        entryIdx = new int[KEYS];
        for (int i = 0; i < KEYS; i++) {
            hitKeys[i] = offsets[rnd.nextInt(TABLES)];
            entryIdx[i] = rnd.nextInt(WORDS);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        cache.close();
    }

    /** A hit: get + put of a cached table. */
    @Benchmark
    public int hitGetPut() throws IOException {
        int t = cache.get(hitKeys[pos++ & (KEYS - 1)]);
        cache.put(t);
        return t;
    }

    /** A hit that reads one L2 entry, as a cached read request does. */
    @Benchmark
    public long hitReadEntry() throws IOException {
        int k = pos++ & (KEYS - 1);
        int t = cache.get(hitKeys[k]);
        long e = cache.word(t, entryIdx[k]);
        cache.put(t);
        return e;
    }

    /** Decode of one L2 entry of a referenced table: type and host cluster offset. */
    @Benchmark
    public long l2Decode() {
        int k = pos++ & (KEYS - 1);
        int t = resident[k & (TABLES - 1)];
        long e = cache.word(t, entryIdx[k]);
        ClusterType type = L2Entry.clusterType(e, g);
        return type == ClusterType.NORMAL ? L2Entry.hostClusterOffset(e) : type.ordinal();
    }
}
