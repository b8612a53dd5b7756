package io.qcow2j.engine.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/**
 * {@link MetadataCache#peek} and {@link MetadataCache#touch}: the lookups of readers without the owner's lock.
 * A peek finds what {@code lookup} finds and changes nothing; a touch counts a hit and gives the table a second
 * chance at the next eviction or clean (moved to the most recently used end instead of being dropped), once.
 */
class MetadataCachePeekTest {
    static final int T = MetadataCacheTest.T;

    static MetadataCache cache(TableStore.Kind store, int tables) throws IOException {
        return MetadataCacheTest.cache(store, new MemoryFile(), tables);
    }

    static long off(int n) {
        return MetadataCacheTest.off(n);
    }

    /** Loads and puts tables {@code from..to} in order (stamps ascending); returns their slots. */
    static int[] loadAndPut(MetadataCache c, int from, int to) throws IOException {
        int[] slots = new int[to - from + 1];
        for (int i = from; i <= to; i++) {
            slots[i - from] = c.get(off(i));
            c.put(slots[i - from]);
        }
        return slots;
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void peekFindsCachedTablesAndChangesNothing(TableStore.Kind store) throws IOException {
        try (MetadataCache c = cache(store, 3)) {
            assertThat(c.peek(off(1))).as("empty cache").isEqualTo(-1);
            int[] s = loadAndPut(c, 1, 2);
            int held = c.get(off(3)); // referenced: peek finds it too
            CacheStatistics.Snapshot before = c.statistics().snapshot();
            int p1 = c.peek(off(1));
            int p2 = c.peek(off(2));
            int p3 = c.peek(off(3));
            assertThat(c.peek(off(4))).as("never loaded").isEqualTo(-1);
            assertThat(c.peek(off(1) + 8)).as("misaligned").isEqualTo(-1);
            assertThat(c.peek(-off(1))).as("negative").isEqualTo(-1);
            CacheStatistics.Snapshot after = c.statistics().snapshot();
            assertThat(after).as("peek counts nothing (no hit, no lookup, no probe)")
                    .usingRecursiveComparison().isEqualTo(before);
            assertThat(p1).isEqualTo(s[0]).isEqualTo(c.lookup(off(1)));
            assertThat(p2).isEqualTo(s[1]).isEqualTo(c.lookup(off(2)));
            assertThat(p3).as("a referenced table").isEqualTo(held).isEqualTo(c.lookup(off(3)));
            assertThat(c.references(s[0])).isZero();
            assertThat(c.references(held)).isEqualTo(1);
            c.put(held);
            // the LRU order is untouched: 1 (the least recently put, peeked above) is still the victim
            int d = c.get(off(4));
            assertThat(d).isEqualTo(s[0]);
            assertThat(c.peek(off(1))).as("evicted").isEqualTo(-1);
            assertThat(c.peek(off(4))).isEqualTo(d);
            c.put(d);
            // a discarded table is gone for peek too
            c.discard(s[1]);
            assertThat(c.peek(off(2))).isEqualTo(-1);
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void peekOfOffsetZeroFindsNothing(TableStore.Kind store) throws IOException {
        // offset 0 is the header, never a table (lookup says -1); an empty index bucket must not look like it
        try (MetadataCache c = cache(store, 4)) {
            assertThat(c.peek(0)).as("fresh cache").isEqualTo(-1);
            int[] s = loadAndPut(c, 1, 4);
            c.discard(s[2]);
            assertThat(c.peek(0)).as("after loads and a discard").isEqualTo(-1);
            assertThat(c.lookup(0)).isEqualTo(-1);
        }
    }

    @Test
    void peekNeverLoopsOrLeavesTheSlotRange() throws IOException {
        // a full index (every slot occupied) and offsets that are not there: one pass at most, -1
        try (MetadataCache c = cache(TableStore.Kind.HEAP, 64)) {
            loadAndPut(c, 1, 64);
            for (int i = 65; i < 2000; i++) {
                assertThat(c.peek(off(i))).isEqualTo(-1);
            }
            for (int i = 1; i <= 64; i++) {
                int p = c.peek(off(i));
                assertThat(p).isBetween(0, 63).isEqualTo(c.lookup(off(i)));
            }
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void touchCountsAHitAndNothingElse(TableStore.Kind store) throws IOException {
        try (MetadataCache c = cache(store, 2)) {
            int[] s = loadAndPut(c, 1, 2);
            CacheStatistics.Snapshot before = c.statistics().snapshot();
            c.touch(s[0]);
            c.touch(s[0]); // a second hit on a marked table still counts
            c.touch(s[1]);
            CacheStatistics.Snapshot after = c.statistics().snapshot();
            assertThat(after.hits()).isEqualTo(before.hits() + 3);
            assertThat(after.misses()).isEqualTo(before.misses());
            assertThat(after.loads()).isEqualTo(before.loads());
            assertThat(after.lookups()).isEqualTo(before.lookups());
            assertThat(c.references(s[0])).isZero();
            assertThat(c.occupied()).isEqualTo(2);
            assertThat((double) after.hits() / (after.hits() + after.misses())).isEqualTo(3.0 / 5); // 3 touches, 2 misses
            assertThatThrownBy(() -> c.touch(2)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> c.touch(-1)).isInstanceOf(IndexOutOfBoundsException.class);
        }
    }

    @Test
    void touchesFromManyThreadsAreAllCounted() throws Exception {
        try (MetadataCache c = cache(TableStore.Kind.OFF_HEAP, 4)) {
            int[] s = loadAndPut(c, 1, 4);
            int threads = 4;
            int each = 20_000;
            CyclicBarrier start = new CyclicBarrier(threads);
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int me = t;
                ts.add(Thread.ofPlatform().start(() -> {
                    try {
                        start.await();
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                    for (int i = 0; i < each; i++) {
                        c.touch(s[(me + i) & 3]);
                    }
                }));
            }
            for (Thread t : ts) {
                t.join();
            }
            assertThat(c.statistics().snapshot().hits()).isEqualTo((long) threads * each);
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void aTouchedLeastRecentlyUsedTableGetsASecondChance(TableStore.Kind store) throws IOException {
        try (MetadataCache c = cache(store, 3)) {
            int[] s = loadAndPut(c, 1, 3); // LRU order 1, 2, 3
            c.touch(s[0]);
            int d = c.get(off(4)); // 1 is moved to the MRU end: the victim is 2
            assertThat(d).isEqualTo(s[1]);
            assertThat(c.lookup(off(1))).isEqualTo(s[0]);
            assertThat(c.lookup(off(2))).isEqualTo(-1);
            assertThat(c.statistics().snapshot().evictions()).isEqualTo(1);
            c.put(d); // order now 3, 1 (second chance), 4
            int e = c.get(off(5));
            assertThat(e).as("3 is the least recently used now").isEqualTo(s[2]);
            c.put(e); // order 1, 4, 5
            int f = c.get(off(6));
            assertThat(f).as("the second chance was only one: 1 goes next").isEqualTo(s[0]);
            assertThat(c.lookup(off(1))).isEqualTo(-1);
            assertThat(c.lookup(off(4))).isEqualTo(d);
            assertThat(c.lookup(off(5))).isEqualTo(e);
            c.put(f);
        }
    }

    @Test
    void theSecondChanceCountsAsUseAtTheTimeOfTheMissNotOfTheTouch() throws IOException {
        try (MetadataCache c = cache(TableStore.Kind.HEAP, 3)) {
            int[] s = loadAndPut(c, 1, 3); // order 1, 2, 3
            c.touch(s[0]);
            c.put(c.get(off(2))); // 2 used (a locked hit) after 1's touch: order 1*, 3, 2
            int d = c.get(off(4)); // 1 moves behind 2; victim 3
            assertThat(d).isEqualTo(s[2]);
            c.put(d); // order 2, 1, 4
            int e = c.get(off(5));
            assertThat(e).as("2 was used before 1's second chance").isEqualTo(s[1]);
            c.put(e);
            assertThat(c.lookup(off(1))).isEqualTo(s[0]);
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void whenEveryUnreferencedTableIsTouchedTheOldestGoesAfterAll(TableStore.Kind store) throws IOException {
        try (MetadataCache c = cache(store, 4)) {
            int[] s = loadAndPut(c, 1, 3);
            int held = c.get(off(4));
            for (int slot : s) {
                c.touch(slot);
            }
            c.touch(held);
            int d = c.get(off(5)); // every candidate gets its second chance, in LRU order; then 1 is first again
            assertThat(d).isEqualTo(s[0]);
            assertThat(c.lookup(off(4))).as("referenced").isEqualTo(held);
            c.put(d);
            int e = c.get(off(6));
            assertThat(e).as("then 2, their second chances used up").isEqualTo(s[1]);
            c.put(e);
            c.put(held);
        }
    }

    @Test
    void aSingleEntryCacheStillEvictsItsTouchedTable() throws IOException {
        try (MetadataCache c = cache(TableStore.Kind.OFF_HEAP, 1)) {
            int a = c.get(off(1));
            c.put(a);
            c.touch(a);
            int b = c.get(off(2));
            assertThat(b).isEqualTo(a);
            assertThat(c.lookup(off(1))).isEqualTo(-1);
            c.put(b);
        }
    }

    @Test
    void aTouchedButReferencedTableIsNeverEvictedAndAllReferencedStillFails() throws IOException {
        try (MetadataCache c = cache(TableStore.Kind.HEAP, 2)) {
            int a = c.get(off(1));
            int b = c.get(off(2));
            c.touch(a);
            c.touch(b);
            assertThatThrownBy(() -> c.get(off(3))).isInstanceOf(CacheExhaustedException.class);
            c.put(b);
            assertThat(c.get(off(3))).isEqualTo(b);
            c.put(a);
            c.put(b);
        }
    }

    @Test
    void theLastPutClearsTheMark() throws IOException {
        try (MetadataCache c = cache(TableStore.Kind.HEAP, 2)) {
            int a = c.get(off(1));
            c.touch(a); // a reader touched it while the owner held it
            c.put(a); // stamped as the most recent use: the mark is spent
            int b = c.get(off(2));
            c.put(b); // order 1, 2
            int d = c.get(off(3));
            assertThat(d).as("1 is evicted: its mark did not survive the put").isEqualTo(a);
            assertThat(c.lookup(off(2))).isEqualTo(b);
            c.put(d);
        }
    }

    @Test
    void aLockedHitAfterATouchSpendsTheMark() throws IOException {
        try (MetadataCache c = cache(TableStore.Kind.HEAP, 2)) {
            int a = c.get(off(1));
            c.put(a);
            c.touch(a);
            c.put(c.get(off(1))); // a hit takes a reference and the last put drops it: mark spent, a is MRU
            int b = c.get(off(2));
            c.put(b); // order 1, 2
            assertThat(c.get(off(3))).isEqualTo(a);
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void cleanUnusedKeepsATouchedTableOnceThenDropsIt(TableStore.Kind store) throws IOException {
        try (MetadataCache c = cache(store, 8)) {
            int[] s = loadAndPut(c, 1, 4);
            c.cleanUnused(); // first pass: nothing is older than the previous clean
            assertThat(c.occupied()).isEqualTo(4);
            c.touch(s[0]);
            c.touch(s[2]);
            c.cleanUnused();
            assertThat(c.lookup(off(1))).as("touched since the previous clean").isEqualTo(s[0]);
            assertThat(c.lookup(off(3))).isEqualTo(s[2]);
            assertThat(c.lookup(off(2))).isEqualTo(-1);
            assertThat(c.lookup(off(4))).isEqualTo(-1);
            assertThat(c.statistics().snapshot().cleaned()).isEqualTo(2);
            c.touch(s[2]); // touched again: survives again
            c.cleanUnused();
            assertThat(c.lookup(off(1))).as("not touched since").isEqualTo(-1);
            assertThat(c.lookup(off(3))).isEqualTo(s[2]);
            c.cleanUnused();
            assertThat(c.occupied()).isZero();
            assertThat(c.statistics().snapshot().cleaned()).isEqualTo(4);
        }
    }

    @Test
    void cleanUnusedLeavesReferencedAndDirtyTouchedTablesAndTheLastPutSpendsTheMark() throws IOException {
        MemoryFile f = new MemoryFile();
        try (MetadataCache c = MetadataCacheTest.cache(TableStore.Kind.HEAP, f, 4)) {
            int[] s = loadAndPut(c, 1, 3); // stamps 1, 2, 3
            int held = c.get(off(1));
            int dirty = c.get(off(2));
            c.markDirty(dirty);
            c.put(dirty); // stamp 4
            c.cleanUnused(); // nothing older than the previous clean yet; clean counter 4
            c.touch(held);
            c.touch(dirty);
            c.cleanUnused(); // 3 dropped; 1 referenced (its mark stays), 2 dirty (restamped 5); counter 5
            assertThat(c.lookup(off(3))).isEqualTo(-1);
            assertThat(c.lookup(off(1))).isEqualTo(s[0]);
            assertThat(c.lookup(off(2))).isEqualTo(s[1]);
            c.put(held); // last put: stamp 6, mark spent
            c.flush();
            c.cleanUnused(); // 2 (stamp 5) dropped; 1 (stamp 6) kept; counter 6
            assertThat(c.lookup(off(1))).isEqualTo(s[0]);
            assertThat(c.lookup(off(2))).isEqualTo(-1);
            c.cleanUnused(); // 1 is dropped: had its mark survived the put, it would get a second chance here
            assertThat(c.occupied()).isZero();
        }
    }

    @Test
    void aSecondChanceGivenByCleanAlsoReordersEviction() throws IOException {
        try (MetadataCache c = cache(TableStore.Kind.HEAP, 3)) {
            int[] s = loadAndPut(c, 1, 3); // order 1, 2, 3
            c.cleanUnused();
            c.touch(s[0]);
            c.put(c.get(off(2))); // order 1 (touched), 3, 2
            c.cleanUnused(); // 1 restamped (order 3, 2, 1), 3 dropped
            assertThat(c.lookup(off(3))).isEqualTo(-1);
            assertThat(c.lookup(off(1))).as("touched since the previous clean").isEqualTo(s[0]);
            int d = c.get(off(4)); // a free slot: 3's
            assertThat(d).isEqualTo(s[2]);
            c.put(d);
            int e = c.get(off(5)); // full: victim is the LRU, 2 (1 was restamped by the clean after 2's put)
            assertThat(e).isEqualTo(s[1]);
            c.put(e);
        }
    }
}
