package io.qcow2j.engine.cache;

import io.qcow2j.ffm.Errno;
import io.qcow2j.ffm.ErrnoException;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

class MetadataCacheTest {
    static final int T = 4096;

    static MetadataCache cache(TableStore.Kind store, MemoryFile file, int tables) throws IOException {
        return MetadataCache.builder(CacheKind.L2_TABLE, file).tables(tables).tableSize(T).clusterSize(65536)
                .store(store).build();
    }

    static long off(int n) {
        return (long) n * T;
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void missLoadsHitDoesNotAndLruEvictsLeastRecentlyPut(TableStore.Kind store) throws IOException {
        MemoryFile f = new MemoryFile();
        for (int i = 1; i <= 4; i++) {
            f.blocks.put(off(i), filled((byte) i));
        }
        try (MetadataCache c = cache(store, f, 3)) {
            int a = c.get(off(1));
            assertThat(c.word(a, 0)).isEqualTo(0x0101010101010101L);
            c.put(a);
            int b = c.get(off(2));
            c.put(b);
            int d = c.get(off(3));
            c.put(d);
            assertThat(c.get(off(1))).isEqualTo(a); // hit, makes 1 the most recently put
            c.put(a);
            assertThat(c.statistics().snapshot().hits()).isEqualTo(1);
            assertThat(c.statistics().snapshot().loads()).isEqualTo(3);
            int e = c.get(off(4)); // evicts 2, the least recently put
            c.put(e);
            assertThat(c.lookup(off(2))).isEqualTo(-1);
            assertThat(c.lookup(off(1))).isEqualTo(a);
            assertThat(c.lookup(off(3))).isEqualTo(d);
            assertThat(e).isEqualTo(b);
            assertThat(c.statistics().snapshot().evictions()).isEqualTo(1);
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void referencedTablesAreNeverEvictedAndFullCacheFailsCleanly(TableStore.Kind store) throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache c = cache(store, f, 2)) {
            int a = c.get(off(1));
            int b = c.get(off(2));
            int logSize = f.log.size();
            assertThatThrownBy(() -> c.get(off(3)))
                    .isInstanceOf(CacheExhaustedException.class)
                    .hasMessageContaining("L2 table cache: all 2 entries are in use");
            assertThat(f.log).hasSize(logSize);
            assertThat(c.lookup(off(1))).isEqualTo(a);
            assertThat(c.lookup(off(2))).isEqualTo(b);
            c.put(b);
            assertThat(c.get(off(3))).isEqualTo(b);
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void dirtyVictimIsWrittenFirstAndAFailedWriteKeepsIt(TableStore.Kind store) throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache c = cache(store, f, 1)) {
            int a = c.get(off(1));
            c.setWord(a, 0, 42);
            c.markDirty(a);
            c.put(a);
            f.failWrites = new ErrnoException("pwrite", Errno.EIO);
            assertThatThrownBy(() -> c.get(off(2))).isSameAs(f.failWrites);
            assertThat(c.lookup(off(1))).isEqualTo(a);
            assertThat(c.isDirty(a)).isTrue();
            f.failWrites = null;
            int b = c.get(off(2));
            assertThat(f.log).containsSubsequence("W 4096", "R 8192");
            assertThat(f.blocks.get(off(1))[7]).isEqualTo((byte) 42);
            assertThat(c.isDirty(b)).isFalse();
            c.put(b);
        }
    }

    @Test
    void writeTriesEveryTablePrefersNoSpaceAndFlushSyncsOnce() throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache c = cache(TableStore.Kind.HEAP, f, 4)) {
            for (int i = 1; i <= 3; i++) {
                int t = c.get(off(i));
                c.markDirty(t);
                c.put(t);
            }
            IOException eio = new ErrnoException("pwrite", Errno.EIO);
            f.failWrites = eio;
            assertThatThrownBy(c::flush).isSameAs(eio);
            assertThat(c.dirtyCount()).isEqualTo(3);
            assertThat(f.log).doesNotContain("S");
            f.failWrites = null;
            c.flush();
            assertThat(f.log.stream().filter(s -> s.startsWith("W")).count()).isEqualTo(3);
            assertThat(f.log.get(f.log.size() - 1)).isEqualTo("S");
            assertThat(f.log.stream().filter(s -> s.equals("S")).count()).isEqualTo(1);
            assertThat(c.dirtyCount()).isZero();
            assertThat(c.statistics().snapshot().syncs()).isEqualTo(1);
        }
    }

    @Test
    void noSpaceIsPreferredOverTheFirstError() throws IOException {
        MemoryFile f = new MemoryFile() {
            int n;

            @Override
            public void write(long offset, MemorySegment src) throws IOException {
                n++;
                throw new ErrnoException("pwrite#" + n, n == 1 ? Errno.EIO : Errno.ENOSPC);
            }
        };
        try (MetadataCache c = cache(TableStore.Kind.HEAP, f, 4)) {
            for (int i = 1; i <= 3; i++) {
                int t = c.get(off(i));
                c.markDirty(t);
                c.put(t);
            }
            assertThatThrownBy(c::write).isInstanceOf(ErrnoException.class)
                    .satisfies(e -> assertThat(((ErrnoException) e).errno()).isEqualTo(Errno.ENOSPC))
                    .hasMessageContaining("pwrite#2");
        }
    }

    @Test
    void dependencyFlushesRefcountBlocksAndSyncsBeforeAnyL2Write() throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache l2 = cache(TableStore.Kind.OFF_HEAP, f, 2);
                MetadataCache rc = MetadataCache.builder(CacheKind.REFCOUNT_BLOCK, f).tables(2).tableSize(T)
                        .clusterSize(T).build()) {
            int r = rc.get(off(100));
            rc.markDirty(r);
            rc.put(r);
            l2.setDependency(rc);
            int t = l2.get(off(1));
            l2.markDirty(t);
            l2.put(t);
            f.log.clear();
            l2.flush();
            assertThat(f.log).containsExactly("W " + off(100), "S", "W " + off(1), "S");
            assertThat(l2.dependency()).isNull();
            f.log.clear();
            // Without a dependency no extra sync happens.
            t = l2.get(off(1));
            l2.markDirty(t);
            l2.put(t);
            l2.flush();
            assertThat(f.log).containsExactly("W " + off(1), "S");
        }
    }

    @Test
    void dependsOnFlushSyncsBeforeTheNextWriteOnly() throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache c = cache(TableStore.Kind.HEAP, f, 4)) {
            int a = c.get(off(1));
            int b = c.get(off(2));
            c.markDirty(a);
            c.markDirty(b);
            c.put(a);
            c.put(b);
            c.dependsOnFlush();
            f.log.clear();
            c.write();
            assertThat(f.log).containsExactly("S", "W " + off(1), "W " + off(2));
            assertThat(c.isDependsOnFlush()).isFalse();
        }
    }

    @Test
    void setDependencyDoesNotChain() throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache a = cache(TableStore.Kind.HEAP, f, 2);
                MetadataCache b = cache(TableStore.Kind.HEAP, f, 2);
                MetadataCache c = cache(TableStore.Kind.HEAP, f, 2)) {
            int t = c.get(off(7));
            c.markDirty(t);
            c.put(t);
            b.setDependency(c);
            f.log.clear();
            a.setDependency(b); // b depends on c: c is flushed first
            assertThat(f.log).containsExactly("W " + off(7), "S");
            assertThat(b.dependency()).isNull();
            assertThat(a.dependency()).isSameAs(b);
            a.setDependency(c); // a already depends on b: b is flushed first
            assertThat(a.dependency()).isSameAs(c);
        }
    }

    @Test
    void overlapCheckRunsBeforeEveryWriteAndBlocksIt() throws IOException {
        MemoryFile f = new MemoryFile();
        List<String> checks = new ArrayList<>();
        try (MetadataCache c = MetadataCache.builder(CacheKind.REFCOUNT_BLOCK, f).tables(2).tableSize(T)
                .clusterSize(T).overlapCheck((kind, offset, length) -> {
                    checks.add(kind + "@" + offset + "+" + length);
                    if (offset == off(2)) {
                        throw new CorruptMetadataException("overlaps the L1 table");
                    }
                }).build()) {
            int a = c.get(off(1));
            int b = c.get(off(2));
            c.markDirty(a);
            c.markDirty(b);
            c.put(a);
            c.put(b);
            assertThatThrownBy(c::flush).hasMessage("overlaps the L1 table");
            assertThat(checks).containsExactly("REFCOUNT_BLOCK@4096+4096", "REFCOUNT_BLOCK@8192+4096");
            assertThat(f.blocks).containsOnlyKeys(off(1));
            assertThat(c.isDirty(b)).isTrue();
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void misalignedOffsetIsCorruptionAndChangesNothing(TableStore.Kind store) throws IOException {
        MemoryFile f = new MemoryFile();
        AtomicReference<String> event = new AtomicReference<>();
        try (MetadataCache c = MetadataCache.builder(CacheKind.L2_TABLE, f).tables(2).tableSize(T)
                .clusterSize(65536).store(store)
                .corruptionListener((kind, offset, message) -> event.set(kind + " " + offset + " " + message))
                .build()) {
            int a = c.get(off(1));
            c.put(a);
            var before = c.statistics().snapshot();
            assertThatThrownBy(() -> c.get(off(3) + 512)).isInstanceOf(CorruptMetadataException.class)
                    .hasMessage("Cannot get entry from L2 table cache: offset 0x3200 is unaligned");
            assertThat(event.get()).isEqualTo("L2_TABLE 12800 Cannot get entry from L2 table cache: offset"
                    + " 0x3200 is unaligned");
            assertThat(c.occupied()).isEqualTo(1);
            assertThat(c.statistics().snapshot().misses()).isEqualTo(before.misses());
            assertThat(f.log).containsExactly("R 4096");
            assertThatThrownBy(() -> c.get(0)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> c.getEmpty(-4096)).isInstanceOf(CorruptMetadataException.class)
                    .hasMessageContaining("is invalid");
        }
    }

    @Test
    void getEmptyReadsNothingAndZeroes() throws IOException {
        MemoryFile f = new MemoryFile();
        f.blocks.put(off(1), filled((byte) 9));
        try (MetadataCache c = cache(TableStore.Kind.OFF_HEAP, f, 1)) {
            int a = c.get(off(1));
            c.put(a);
            int b = c.getEmpty(off(2));
            assertThat(b).isEqualTo(a);
            assertThat(c.word(b, 0)).isZero();
            assertThat(f.log).containsExactly("R 4096");
            assertThat(c.statistics().snapshot().loads()).isEqualTo(1);
        }
    }

    @Test
    void discardDropsWithoutWritingAndFreesTheSlot() throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache c = cache(TableStore.Kind.OFF_HEAP, f, 2)) {
            int a = c.get(off(1));
            c.markDirty(a);
            assertThatThrownBy(() -> c.discard(a)).isInstanceOf(IllegalStateException.class);
            c.put(a);
            c.discard(a);
            assertThat(c.lookup(off(1))).isEqualTo(-1);
            assertThat(c.dirtyCount()).isZero();
            c.flush();
            assertThat(f.log).containsExactly("R 4096", "S");
            assertThat(c.statistics().snapshot().releasedBytes()).isEqualTo(T);
        }
    }

    @Test
    void cleanUnusedDropsOnlyTablesUnusedSinceThePreviousClean() throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache c = cache(TableStore.Kind.OFF_HEAP, f, 8)) {
            for (int i = 1; i <= 6; i++) {
                c.put(c.get(off(i)));
            }
            int held = c.get(off(1));
            int d = c.get(off(2));
            c.markDirty(d);
            c.put(d);
            c.cleanUnused(); // first pass: stamps are all after the (zero) clean counter
            assertThat(c.occupied()).isEqualTo(6);
            c.put(c.get(off(3))); // used since: survives the next pass
            c.cleanUnused();
            assertThat(c.lookup(off(1))).isEqualTo(held); // referenced
            assertThat(c.lookup(off(2))).isNotNegative(); // dirty
            assertThat(c.lookup(off(3))).isNotNegative(); // used since the previous pass
            assertThat(c.lookup(off(4))).isEqualTo(-1);
            assertThat(c.lookup(off(5))).isEqualTo(-1);
            assertThat(c.lookup(off(6))).isEqualTo(-1);
            assertThat(c.statistics().snapshot().cleaned()).isEqualTo(3);
            // slots 3, 4, 5 are consecutive: one run of 3 tables
            assertThat(c.statistics().snapshot().releasedBytes()).isEqualTo(3L * T);
            c.put(held);
        }
    }

    @Test
    void emptyFlushesDropsEverythingAndReleasesAllMemory() throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache c = cache(TableStore.Kind.OFF_HEAP, f, 4)) {
            int a = c.get(off(1));
            c.setWord(a, 3, 77);
            c.markDirty(a);
            assertThatThrownBy(c::empty).isInstanceOf(IllegalStateException.class);
            c.put(a);
            c.empty();
            assertThat(c.occupied()).isZero();
            assertThat(f.blocks.get(off(1))[31]).isEqualTo((byte) 77);
            assertThat(f.log).endsWith("W 4096", "S");
            assertThat(c.statistics().snapshot().releasedBytes()).isEqualTo(4L * T);
            int b = c.get(off(1));
            assertThat(c.word(b, 3)).isEqualTo(77);
            c.put(b);
        }
    }

    @Test
    void heapStoreReleasesNothing() throws IOException {
        try (MetadataCache c = cache(TableStore.Kind.HEAP, new MemoryFile(), 4)) {
            c.put(c.get(off(1)));
            c.empty();
            assertThat(c.releasesMemory()).isFalse();
            assertThat(c.statistics().snapshot().releasedBytes()).isZero();
        }
    }

    @Test
    void handlesMapToTablesInConstantTime() throws IOException {
        try (MetadataCache c = cache(TableStore.Kind.OFF_HEAP, new MemoryFile(), 4)) {
            int a = c.get(off(5));
            MemorySegment t = c.table(a);
            assertThat(c.handleOf(t)).isEqualTo(a);
            assertThat(t.address() % 4096).isZero(); // usable for O_DIRECT as it is
            assertThat(c.offsetOf(a)).isEqualTo(off(5));
            assertThatThrownBy(() -> c.handleOf(MemorySegment.ofArray(new byte[T])))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> c.word(a, T / 8)).isInstanceOf(IndexOutOfBoundsException.class);
            c.put(a);
            assertThatThrownBy(() -> c.put(a)).isInstanceOf(IllegalStateException.class);
        }
    }

    /**
     * Regression: a heap segment's address is its offset in its own array, so handleOf took a view of another heap
     * array (or of another heap cache's tables) at the same offset for one of its own tables.
     */
    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void handleOfRefusesViewsOfOtherMemory(TableStore.Kind store) throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache c = cache(store, f, 4); MetadataCache other = cache(store, f, 4)) {
            int a = c.get(off(1));
            int b = c.get(off(2));
            assertThat(c.handleOf(c.table(b))).isEqualTo(b);
            assertThatThrownBy(() -> c.handleOf(MemorySegment.ofArray(new long[T / 8])))
                    .isInstanceOf(IllegalArgumentException.class).hasMessage("L2 table cache: segment is not one of its tables");
            assertThatThrownBy(() -> c.handleOf(MemorySegment.ofArray(new byte[4 * T]).asSlice(T, T)))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> c.handleOf(other.table(a))).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> c.handleOf(c.table(a).asSlice(8))).isInstanceOf(IllegalArgumentException.class);
            c.put(a);
            c.put(b);
        }
    }

    @Test
    void builderRejectsBadSizesWithClearMessages() {
        MemoryFile f = new MemoryFile();
        assertThatThrownBy(() -> MetadataCache.builder(CacheKind.L2_TABLE, f).tableSize(1000).build())
                .hasMessage("L2 table cache entry size must be a power of two between 512 and the cluster size"
                        + " (65536), not 1000");
        assertThatThrownBy(() -> MetadataCache.builder(CacheKind.L2_TABLE, f).tableSize(256).build())
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> MetadataCache.builder(CacheKind.L2_TABLE, f).clusterSize(4096)
                .tableSize(8192).build()).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> MetadataCache.builder(CacheKind.REFCOUNT_BLOCK, f).tables(0).build())
                .hasMessageContaining("refcount block cache must hold between 1 and");
        assertThatThrownBy(() -> MetadataCache.builder(CacheKind.L2_TABLE, f).store(TableStore.Kind.HEAP)
                .tables(1 << 20).tableSize(1 << 21).clusterSize(1 << 21).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("heap table store");
    }

    @Test
    void concurrentUseIsDetected() throws Exception {
        MemoryFile f = new MemoryFile();
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        f.onRead = () -> {
            if (Thread.currentThread().getName().equals("loader")) {
                inside.countDown();
                try {
                    release.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        try (MetadataCache c = cache(TableStore.Kind.HEAP, f, 4)) {
            Thread loader = Thread.ofPlatform().name("loader").start(() -> {
                try {
                    c.get(off(1));
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            assertThat(inside.await(10, TimeUnit.SECONDS)).isTrue();
            assertThatThrownBy(() -> c.get(off(2))).isInstanceOf(AssertionError.class)
                    .hasMessageContaining("while loader is inside it");
            release.countDown();
            loader.join();
        }
    }

    @Test
    void cleanerRunsUnderTheOwnersLockAndStops() throws Exception {
        MemoryFile f = new MemoryFile();
        ReentrantLock lock = new ReentrantLock();
        try (MetadataCache c = cache(TableStore.Kind.OFF_HEAP, f, 4)) {
            lock.lock();
            try {
                c.put(c.get(off(1)));
            } finally {
                lock.unlock();
            }
            try (CacheCleaner cleaner = CacheCleaner.start(java.time.Duration.ofMillis(20), lock, c)) {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (System.nanoTime() < deadline) {
                    lock.lock();
                    try {
                        if (c.occupied() == 0) {
                            break;
                        }
                    } finally {
                        lock.unlock();
                    }
                    Thread.sleep(5);
                }
                assertThat(cleaner.passes()).isGreaterThanOrEqualTo(2);
            }
            assertThat(c.occupied()).isZero();
            assertThat(c.statistics().snapshot().releasedBytes()).isEqualTo(T);
        }
        assertThat(Thread.getAllStackTraces().keySet().stream().map(Thread::getName))
                .doesNotContain("qcow2j-cache-cleaner");
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void refcountEntriesOfEveryWidthRoundTripThroughTheFile(TableStore.Kind store) throws IOException {
        for (int order = 0; order <= 6; order++) {
            MemoryFile f = new MemoryFile();
            long entries = (8L * 512) >>> order;
            try (MetadataCache c = MetadataCache.builder(CacheKind.REFCOUNT_BLOCK, f).tables(2).tableSize(512)
                    .clusterSize(512).store(store).build()) {
                int t = c.getEmpty(512);
                java.util.SplittableRandom rnd = new java.util.SplittableRandom(order);
                long[] model = new long[(int) entries];
                long max = order == 6 ? -1L : (1L << (1 << order)) - 1;
                for (int k = 0; k < 3 * entries; k++) {
                    int i = rnd.nextInt((int) entries);
                    long v = order == 6 ? rnd.nextLong() : rnd.nextLong(max + 1);
                    c.setRefcount(t, i, order, v);
                    model[i] = v;
                }
                int o = order;
                assertThatThrownBy(() -> c.refcount(t, entries, o)).isInstanceOf(IndexOutOfBoundsException.class);
                if (order < 6) {
                    assertThatThrownBy(() -> c.setRefcount(t, 0, o, max + 1))
                            .isInstanceOf(IllegalArgumentException.class);
                }
                c.markDirty(t);
                c.put(t);
                c.flush();
                c.empty();
                int u = c.get(512);
                for (int i = 0; i < entries; i++) {
                    assertThat(c.refcount(u, i, order)).as("order %d entry %d", order, i).isEqualTo(model[i]);
                }
                c.put(u);
            }
        }
    }

    static byte[] filled(byte b) {
        byte[] a = new byte[T];
        java.util.Arrays.fill(a, b);
        return a;
    }
}
