package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.TableStore;
import io.qcow2j.ffm.PageSpan;
import io.qcow2j.proptest.Result;
import io.qcow2j.proptest.StatefulProperty;
import io.qcow2j.proptest.cache.CacheWorkload.Options;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.Locale;
import java.util.concurrent.atomic.LongAccumulator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The properties of the metadata cache ({@link io.qcow2j.engine.cache.MetadataCache}). Random sequences of get,
 * getEmpty (+ markDirty), modify + markDirty, put, write, flush, discard, cleanUnused, empty, setDependency (both
 * ways), dependsOnFlush, misaligned gets and lock-free peeks (+ touch: a hit, and a second chance at the next
 * eviction or clean), some run with injected read/write/sync/overlap-check failures, drive
 * an L2 and a refcount cache of 1..6 tables sharing one {@link RecordingTableFile}, side by side with
 * {@link CacheModel}; every action checks that the cache answers what the model predicts. Each property adds one
 * invariant, and runs for the heap and the off-heap store:
 * <ol>
 *   <li>every table reads back its last content (no lost dirty table; a discarded one reverts to the file);</li>
 *   <li>after a successful flush the file holds every table that was dirty, nothing is dirty, a sync ends it;</li>
 *   <li>a cache's writes wait until the cache it depends on is written and synced; dependsOnFlush syncs first;</li>
 *   <li>referenced tables are never evicted; a miss on an all-referenced cache fails and changes nothing;</li>
 *   <li>a misaligned offset raises one corruption event and a CorruptMetadataException, and changes nothing;</li>
 *   <li>eviction takes exactly the model's LRU victim (the resident tables and their slots are the model's);</li>
 *   <li>release requests are exactly the discarded slots, the cleaned runs and the emptied array (plus the
 *       stateless release arithmetic against brute force);</li>
 *   <li>a lookup examines a few index buckets (probe histogram in the statistics);</li>
 *   <li>every table write passes the overlap check of exactly its range first;</li>
 *   <li>the cache's statistics count what happened;</li>
 *   <li>handleOf maps the cache's own table views back and refuses any other segment.</li>
 * </ol>
 * {@code -Dqcow2j.tries=N} changes the number of sequences (default 1000), {@code -Dqcow2j.seed=S
 * -Dqcow2j.property='NAME [HEAP]'} replays one. {@link BrokenCacheTest} shows that each property catches a broken
 * cache.
 */
class CacheProperties {
    static final int TRIES = 1000;
    static final int MAX_ACTIONS = 60;
    /** Below this many sequences (a replay, a small -Dqcow2j.tries) the "it really happened" checks are skipped. */
    static final int ENOUGH = 300;
    /** Most index buckets one lookup may examine (a hash index at load ≤ ½; QEMU's scan would take the whole cache). */
    static final int MAX_PROBES = 64;

    static StatefulProperty.Builder<CacheSystem, CacheModel> property(String name, Options o,
            StatefulProperty.ContextInvariant<CacheSystem, CacheModel> invariant) {
        return CacheWorkload.property(name + " [" + o.store() + "]", o).invariant(name, invariant)
                .tries(TRIES).maxActions(MAX_ACTIONS);
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void noLostDirtyEntries(TableStore.Kind store) {
        Result r = property("cache: every table reads back its last content", Options.of(store).tableSizes(512, 4096),
                CacheInvariants.contentReadsBack()).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.labels()).containsKeys("hit", "miss", "eviction of a dirty table", "eviction of a clean table",
                    "discard of a dirty table", "cleaned", "empty", "write failed (injected)", "read failed (injected)",
                    "sync failed (injected)", "overlap check failed (injected)", "dependency flushed before a L2 table write",
                    "dependency flushed before a refcount block write");
            if (store == TableStore.Kind.OFF_HEAP) { // 4096-byte tables: discards and cleans really free pages
                assertThat(r.count("bytes the store really released")).isPositive();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void flushWritesEveryDirtyTable(TableStore.Kind store) {
        Result r = property("cache: after flush the file holds every dirty table", Options.of(store),
                CacheInvariants.flushWritesEverything()).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.count("successful flushes checked")).isPositive();
            assertThat(r.count("dirty tables a flush had to write")).isPositive();
            assertThat(r.labels()).containsKeys("sync failed (injected)", "write failed (injected)");
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void refcountBlocksReachTheDiskBeforeL2Tables(TableStore.Kind store) {
        Result r = property("cache: a cache's writes wait until the cache it depends on is written and synced",
                Options.of(store), CacheInvariants.dependenciesFirst()).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.labels()).containsKeys("L2 write after a dependency flush of dirty refcount tables",
                    "L2 write after a dependency flush (nothing dirty)",
                    "refcount write after a dependency flush of dirty L2 tables", "first L2 write after dependsOnFlush",
                    "first refcount write after dependsOnFlush", "depends-on-flush sync");
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void everyWritePassesTheOverlapCheck(TableStore.Kind store) {
        Result r = property("cache: every table write passes the overlap check of its range first", Options.of(store),
                CacheInvariants.overlapCheckedFirst()).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.count("writes cleared by the overlap check")).isPositive();
            assertThat(r.count("overlap check failed (injected)")).isPositive();
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void referencedTablesAreNeverEvicted(TableStore.Kind store) {
        Result r = property("cache: referenced tables stay; an all-referenced miss changes nothing", Options.of(store),
                CacheInvariants.referencedStay()).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.count("exhausted misses that changed nothing")).isPositive();
            assertThat(r.count("eviction of a dirty table")).isPositive();
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void misalignedOffsetsAreCorruption(TableStore.Kind store) {
        Result r = property("cache: a misaligned offset is a corruption event and changes nothing", Options.of(store),
                CacheInvariants.misalignedIsCorruption()).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.count("misaligned gets checked")).isPositive();
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void evictionFollowsExactLru(TableStore.Kind store) {
        Result r = property("cache: eviction takes exactly the least recently used table", Options.of(store),
                CacheInvariants.sameResidentTables()).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.labels()).containsKeys("eviction of a dirty table", "eviction of a clean table", "cleaned",
                    "discard", "empty", "touch", "second chance at eviction", "second chance at clean");
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void releasesAreExactlyTheDroppedSlots(TableStore.Kind store) {
        Result r = property("cache: release requests are the discarded, cleaned and emptied slots",
                Options.of(store).tableSizes(512, 4096, 16384), CacheInvariants.releasesMatch()).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.labels()).containsKeys("discard", "clean run of one table", "clean run of several tables",
                    "empty");
            assertThat(r.count("release requests")).isPositive();
            if (store == TableStore.Kind.OFF_HEAP) {
                assertThat(r.count("bytes the store really released")).isPositive();
            } else {
                assertThat(r.count("bytes the store really released")).isZero();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void statisticsCountWhatHappened(TableStore.Kind store) {
        Result r = property("cache: the statistics count what happened", Options.of(store).tableSizes(512, 4096),
                CacheInvariants.statisticsAgree()).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.labels()).containsKeys("hit", "miss", "eviction of a dirty table", "cleaned", "discard",
                    "write failed (injected)", "read failed (injected)", "sync failed (injected)", "touch");
        }
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void tableViewsMapBackToTheirHandles(TableStore.Kind store) {
        Result r = property("cache: handleOf maps the cache's own table views back and refuses any other segment",
                Options.of(store), (s, m, ctx) -> {})
                .action(6, "handleOf", (rnd, m) -> {
                    CacheModel.Table t = CacheWorkload.anyResident(rnd, m);
                    CacheWorkload.View[] views = CacheWorkload.View.values();
                    return t == null ? null : new CacheWorkload.HandleOf(CacheWorkload.kindOf(m, t), t.offset(),
                            views[rnd.nextInt(views.length)]);
                }).check();
        if (r.sequences() >= ENOUGH) {
            assertThat(r.actionCount("handleOf")).isGreaterThan(1000);
        }
    }

    @Test
    void releasedRangesAreTheWholePagesOfTheReleasedTables() {
        Result r = ReleaseSpans.property("cache: a released run of tables frees exactly its whole pages",
                io.qcow2j.ffm.PageSpan::inside, true).tries(TRIES).check();
        assertThat(r.passed()).isTrue();
    }

    /** Larger caches (16..128 tables) filled before the first action, and a universe of 144..288 tables. */
    static Options lookupOptions(TableStore.Kind store) {
        return Options.of(store).tables(16, 128).universe(144, 288).prefill(true);
    }

    @ParameterizedTest
    @EnumSource(TableStore.Kind.class)
    void lookupsStayCheap(TableStore.Kind store) {
        LongAccumulator maxSeen = new LongAccumulator(Math::max, 0);
        Result r = property("cache: a lookup examines a few index buckets", lookupOptions(store),
                CacheInvariants.probesBounded(MAX_PROBES, maxSeen)).check();
        double mean = (double) r.count("probes") / Math.max(1, r.count("lookups"));
        System.out.printf(Locale.ROOT, "  probes per lookup: mean %.3f, max %d, over %d lookups%n", mean, maxSeen.get(),
                r.count("lookups"));
        if (r.sequences() >= ENOUGH) {
            assertThat(mean).isLessThan(2.0);
            assertThat(r.count("lookups")).isGreaterThan(100L * r.sequences());
        }
    }
}
