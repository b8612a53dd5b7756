package io.qcow2j.bench;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.TableFile;
import io.qcow2j.engine.cache.TableStore;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
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
 * Cost of a cache lookup across cache sizes: a hit (get + put of a cached table) and a miss (get + put of a
 * table not cached, evicting the least recently used), for qcow2j's cache on both stores and for QEMU's
 * algorithm. Misses load nothing (the table file is a no-op), so they measure the cache, not I/O. Tables
 * are 512 bytes so that 65,536 entries stay small.
 *
 * <p>Run: {@code java -jar bench/target/benchmarks.jar CacheLookupBenchmark}. Expect qcow2j flat across
 * sizes for hits and misses, and QEMU's miss growing linearly with the size.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class CacheLookupBenchmark {
    static final int TABLE = 512;
    static final int KEYS = 1 << 16; // precomputed key ring, a power of two

    @Param({"16", "256", "4096", "65536"})
    int entries;

    @Param({"OFF_HEAP", "HEAP"})
    TableStore.Kind store;

    MetadataCache cache;
    QemuStyleCache qemu;
    long[] hitKeys;
    long[] missKeys;
    int hitPos;
    int missPos;

    /** A file that stores nothing: misses measure the cache's own work. */
    static final TableFile NULL_FILE = new TableFile() {
        @Override
        public void read(long offset, MemorySegment dst) {}

        @Override
        public void write(long offset, MemorySegment src) {}

        @Override
        public void flush() {}
    };

    @Setup(Level.Trial)
    public void setup() throws IOException {
        cache = MetadataCache.builder(CacheKind.L2_TABLE, NULL_FILE).tables(entries).tableSize(TABLE)
                .clusterSize(65536).store(store).build();
        qemu = new QemuStyleCache(entries, TABLE);
        SplittableRandom rnd = new SplittableRandom(42);
        // Resident tables: random table numbers; fill both caches with them.
        long[] resident = new long[entries];
        for (int i = 0; i < entries; i++) {
            resident[i] = (1 + rnd.nextLong(1L << 30)) * TABLE;
            cache.put(cache.get(resident[i]));
            qemu.put(qemu.get(resident[i]));
        }
        hitKeys = new long[KEYS];
        for (int i = 0; i < KEYS; i++) {
            hitKeys[i] = resident[rnd.nextInt(entries)];
        }
        // Misses: a cycle over more distinct tables than the cache holds, so every access misses under LRU.
        missKeys = new long[KEYS];
        for (int i = 0; i < KEYS; i++) {
            missKeys[i] = ((1L << 31) + i) * TABLE;
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        cache.close();
    }

    @Benchmark
    public int hit() throws IOException {
        int t = cache.get(hitKeys[hitPos++ & (KEYS - 1)]);
        cache.put(t);
        return t;
    }

    @Benchmark
    public int miss() throws IOException {
        int t = cache.get(missKeys[missPos++ & (KEYS - 1)]);
        cache.put(t);
        return t;
    }

    @Benchmark
    public int qemuHit() {
        int t = qemu.get(hitKeys[hitPos++ & (KEYS - 1)]);
        qemu.put(t);
        return t;
    }

    @Benchmark
    public int qemuMiss() {
        int t = qemu.get(missKeys[missPos++ & (KEYS - 1)]);
        qemu.put(t);
        return t;
    }
}
