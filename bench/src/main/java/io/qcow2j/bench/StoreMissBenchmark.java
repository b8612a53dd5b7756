package io.qcow2j.bench;

import io.qcow2j.engine.cache.AlignedTableFile;
import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.TableStore;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
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
 * Misses that really load: a 16-entry cache over a file on tmpfs ({@code /dev/shm}, or
 * {@code -Dqcow2j.bench.dir=...}) of 1024 tables, read in a cycle so that every get misses. {@code miss}
 * loads a table (one pread into the store); {@code evictDirty} dirties every table it gets, so every
 * eviction also writes the victim back (one pwrite, then the pread): eviction churn. Both stores; L2
 * slices of 4 KiB and whole 64 KiB tables. On tmpfs the I/O is a memory copy in the kernel, so what
 * differs between the stores is the path from the file to the table memory.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "-Xmx1g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class StoreMissBenchmark {
    static final int ENTRIES = 16;
    static final int FILE_TABLES = 1024;

    @Param({"OFF_HEAP", "HEAP"})
    TableStore.Kind store;

    @Param({"4096", "65536"})
    int tableSize;

    Path path;
    AlignedFile file;
    MetadataCache cache;
    long[] keys;
    int pos;
    long word;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        Path dir = Path.of(System.getProperty("qcow2j.bench.dir", "/dev/shm"));
        path = Files.createTempFile(dir, "qcow2j-miss-", ".img");
        // Real bytes (not holes), so that every load copies data.
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.WRITE)) {
            ByteBuffer buf = ByteBuffer.allocate(1 << 20);
            new SplittableRandom(3).ints(buf.capacity() / 4).forEach(buf::putInt);
            long total = (long) (FILE_TABLES + 1) * tableSize;
            for (long off = 0; off < total; off += buf.capacity()) {
                buf.clear();
                buf.limit((int) Math.min(buf.capacity(), total - off));
                ch.write(buf, off);
            }
        }
        file = AlignedFile.open(path, IoMode.BUFFERED, StandardOpenOption.READ, StandardOpenOption.WRITE);
        cache = MetadataCache.builder(CacheKind.L2_TABLE, new AlignedTableFile(file, false)).tables(ENTRIES)
                .tableSize(tableSize).clusterSize(65536).store(store).build();
        keys = new long[FILE_TABLES];
        for (int i = 0; i < FILE_TABLES; i++) {
            keys[i] = (long) (i + 1) * tableSize; // table 0 would be offset 0: the header, never a table
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        cache.close();
        file.close();
        Files.deleteIfExists(path);
    }

    /** A miss: evict the LRU (clean) table, pread the new one into its slot. */
    @Benchmark
    public int miss() throws IOException {
        int t = cache.get(keys[pos++ & (FILE_TABLES - 1)]);
        cache.put(t);
        return t;
    }

    /** A miss whose victim is dirty: pwrite the victim, pread the new table; then dirty it. */
    @Benchmark
    public int evictDirty() throws IOException {
        int t = cache.get(keys[pos++ & (FILE_TABLES - 1)]);
        cache.setWord(t, 0, ++word);
        cache.markDirty(t);
        cache.put(t);
        return t;
    }
}
