package io.qcow2j.bench;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.TableStore;
import io.qcow2j.engine.format.RefcountBlock;
import java.io.IOException;
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
 * A refcount entry update (read, +1 wrapping at the width's maximum, write, mark dirty) in a cached 64 KiB
 * refcount block, for every width qcow2 allows ({@code refcount_order} 0..6: 1 to 64 bits), on both
 * stores. Sub-byte widths are a read-modify-write of one byte; 16 bits (the default) a big-endian short.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class RefcountBenchmark {
    static final int BLOCK = 65536;

    @Param({"OFF_HEAP", "HEAP"})
    TableStore.Kind store;

    /** refcount_order: width 2^order bits. */
    @Param({"0", "1", "2", "3", "4", "5", "6"})
    int order;

    MetadataCache cache;
    int table;
    long entries;
    long max;
    long i;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        cache = MetadataCache.builder(CacheKind.REFCOUNT_BLOCK, CacheLookupBenchmark.NULL_FILE).tables(4)
                .tableSize(BLOCK).clusterSize(BLOCK).store(store).build();
        table = cache.getEmpty(BLOCK); // held for the whole trial, as the refcount code holds a block
        entries = ((long) BLOCK << 3) >>> order;
        max = RefcountBlock.maxValue(order);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        cache.put(table);
        cache.close();
    }

    @Benchmark
    public long update() {
        // stride 7 (odd): walks every entry, and neighbours in a byte are not touched back to back
        long idx = i;
        i = (i + 7) & (entries - 1);
        long v = cache.refcount(table, idx, order);
        long nv = v == max ? 0 : v + 1;
        cache.setRefcount(table, idx, order, nv);
        cache.markDirty(table);
        return nv;
    }
}
