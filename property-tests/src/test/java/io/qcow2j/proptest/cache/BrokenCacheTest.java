package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.TableStore;
import io.qcow2j.proptest.HarnessAccess;
import io.qcow2j.proptest.PropertyFailure;
import io.qcow2j.proptest.StatefulProperty.ContextInvariant;
import io.qcow2j.proptest.cache.CacheWorkload.Options;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.util.concurrent.atomic.LongAccumulator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every cache property can fail: run against a deliberately broken cache ({@link BrokenCaches}) it fails, and the
 * failing sequence shrinks to a handful of actions. Runs with a fixed seed and ignores {@code -Dqcow2j.*}.
 */
class BrokenCacheTest {
    static final long SEED = 20_251_124L;
    static final int MAX_SHRUNK = 6;
    /**
     * The forgotten third markDirty needs about six actions by construction (three markDirty calls, the third on a
     * clean table, then an eviction or a flush that should have written it), and removal-only delta debugging stops
     * at a 1-minimal sequence: over seeds 1..30 ({@link ShrinkDistributionTest}) the shrunk sequences had up to 12
     * actions (median 8) for property 1, up to 12 (median 7) for property 2.
     */
    static final int FORGOTTEN_MARK_DIRTY_SHRUNK = 13;
    /**
     * A touched table that loses its second chance needs a full cache of at least two unreferenced tables, a peek,
     * and the miss that evicts the wrong one: at seed {@link #SEED} the sequence shrinks to 7 actions (a get that
     * pins a third entry, two tables loaded and put, the peek, the miss); the wrong victim shows in the miss's
     * answer (the handle), so an action catches it first.
     */
    static final int TOUCH_MARK_SHRUNK = 8;

    /**
     * @param caughtBy "invariant" when the property's own invariant must be what fails (the mutant gives every
     *                 call the right answer: over seeds 1..30 the invariant caught it every time, see
     *                 {@link ShrinkDistributionTest}), "any" when an action may see a wrong answer first (e.g. a
     *                 write the model expects to fail is not issued)
     * @param maxShrunk the most actions the shrunk sequence may keep
     */
    record Case(String property, ContextInvariant<CacheSystem, CacheModel> invariant, Options options,
                String mutant, String caughtBy, int maxShrunk) {
        Case(String property, ContextInvariant<CacheSystem, CacheModel> invariant, Options options, String mutant,
             String caughtBy) {
            this(property, invariant, options, mutant, caughtBy, MAX_SHRUNK);
        }

        @Override
        public String toString() {
            return mutant + " -> " + property;
        }
    }

    static Options heap() {
        return Options.of(TableStore.Kind.HEAP);
    }

    static Options offHeap() {
        return Options.of(TableStore.Kind.OFF_HEAP);
    }

    static Stream<Arguments> cases() {
        String p1 = "1. every table reads back its last content";
        String p2 = "2. after flush the file holds every dirty table";
        String p3 = "3. refcount blocks before dependent L2 tables";
        String p4 = "4. referenced tables stay; an all-referenced miss changes nothing";
        String p5 = "5. a misaligned offset is a corruption event";
        String p6 = "6. eviction takes exactly the least recently used table";
        String p7 = "7. release requests are the dropped slots";
        String p8 = "8. a lookup examines a few index buckets";
        String p9 = "9. every table write passes the overlap check first";
        String p10 = "10. the statistics count what happened";
        return Stream.of(
                new Case(p1, CacheInvariants.contentReadsBack(),
                        heap().wrap((c, f) -> new BrokenCaches.ForgetsThirdMarkDirty(c)), "markDirty ignored on its 3rd call", "any",
                        FORGOTTEN_MARK_DIRTY_SHRUNK),
                new Case(p1, CacheInvariants.contentReadsBack(),
                        offHeap().wrap(BrokenCaches.DiscardWrites::new), "discard writes the table", "invariant"),
                new Case(p1, CacheInvariants.contentReadsBack(),
                        heap().wrap((c, f) -> new BrokenCaches.CleanDropsDirty(c)), "cleanUnused also drops dirty tables", "any"),
                new Case(p2, CacheInvariants.flushWritesEverything(),
                        offHeap().wrap((c, f) -> new BrokenCaches.FlushWithoutSync(c)), "flush without the sync", "any"),
                new Case(p2, CacheInvariants.flushWritesEverything(),
                        heap().wrap((c, f) -> new BrokenCaches.ForgetsThirdMarkDirty(c)), "markDirty ignored on its 3rd call", "any",
                        FORGOTTEN_MARK_DIRTY_SHRUNK),
                new Case(p3, CacheInvariants.dependenciesFirst(),
                        offHeap().wrap((c, f) -> new BrokenCaches.IgnoresDependency(c), CacheSystem.Wrapper.NONE),
                        "setDependency ignored by the L2 cache", "any"),
                new Case(p3, CacheInvariants.dependenciesFirst(),
                        heap().wrap((c, f) -> new BrokenCaches.IgnoresDependsOnFlush(c)), "dependsOnFlush ignored", "any"),
                new Case(p4, CacheInvariants.referencedStay(),
                        heap().wrap((c, f) -> new BrokenCaches.PutDropsExtraReference(c)), "put drops an extra reference", "invariant"),
                new Case(p4, CacheInvariants.referencedStay(),
                        offHeap().wrap((c, f) -> new BrokenCaches.ExhaustedMissWritesBack(c)), "an exhausted miss writes back first", "invariant"),
                new Case(p5, CacheInvariants.misalignedIsCorruption(),
                        heap().wrap((c, f) -> new BrokenCaches.MisalignedNotReported(c)), "misaligned offset not reported", "invariant"),
                new Case(p6, CacheInvariants.sameResidentTables(),
                        offHeap().wrap((c, f) -> new BrokenCaches.PerturbsLru(c)), "put touches another table (LRU perturbed)", "any"),
                new Case(p6, CacheInvariants.sameResidentTables(),
                        heap().wrap((c, f) -> new BrokenCaches.CleanDropsRecentlyUsed(c)), "cleanUnused drops recently used tables", "invariant"),
                new Case(p6, CacheInvariants.sameResidentTables(),
                        offHeap().wrap((c, f) -> new BrokenCaches.IgnoresTouchMark(c)),
                        "touch does not mark the table (no second chance)", "any", TOUCH_MARK_SHRUNK),
                new Case(p7, CacheInvariants.releasesMatch(),
                        heap().wrap((c, f) -> new BrokenCaches.CleanDropsDirty(c)), "cleanUnused also drops dirty tables", "invariant"),
                new Case(p7, CacheInvariants.releasesMatch(),
                        offHeap().wrap((c, f) -> new BrokenCaches.EmptyByDiscards(c)), "empty by one discard per table", "invariant"),
                new Case(p8, CacheInvariants.probesBounded(CacheProperties.MAX_PROBES, new LongAccumulator(Math::max, 0)),
                        CacheProperties.lookupOptions(TableStore.Kind.HEAP).wrap((c, f) -> new BrokenCaches.QemuScanCost(c)),
                        "QEMU's linear scan (lookup cost)", "invariant"),
                new Case(p9, CacheInvariants.overlapCheckedFirst(),
                        heap().wrap(BrokenCaches.DiscardWrites::new), "discard writes the table", "invariant"),
                new Case(p10, CacheInvariants.statisticsAgree(),
                        offHeap().wrap((c, f) -> new BrokenCaches.ExhaustedMissWritesBack(c)),
                        "an exhausted miss writes back first", "invariant"))
                .map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void everyPropertyCatchesItsBrokenCache(Case c) {
        PropertyFailure f = catchThrowableOfType(PropertyFailure.class, () -> HarnessAccess.ignoreSystemProperties(
                CacheProperties.property("broken cache (" + c.mutant() + "): " + c.property(), c.options(), c.invariant()))
                .seed(SEED).tries(CacheProperties.TRIES).check());
        assertThat(f).as("property '%s' must catch: %s", c.property(), c.mutant()).isNotNull();
        System.out.println("=== " + c.mutant() + " caught by '" + c.property() + "' at " + f.location() + " after "
                + f.result().sequences() + " sequences; shrunk from " + f.originalActions().size() + " to "
                + f.shrunkActions().size() + " actions:");
        for (int i = 0; i < f.shrunkActions().size(); i++) {
            System.out.println("  " + (i + 1) + ". " + f.shrunkActions().get(i));
        }
        System.out.println("  -> " + firstLine(f.failure()));
        assertThat(f.reproduced()).isTrue();
        assertThat(f.shrunkActions()).as("shrunk sequence of %s", c.mutant()).hasSizeLessThanOrEqualTo(c.maxShrunk());
        if (c.caughtBy().equals("invariant")) {
            assertThat(f.location()).as("caught by the property's own invariant, not by an action's answer")
                    .startsWith("invariant");
        }
    }

    @Test
    void theReleaseArithmeticPropertyCatchesQemusUncheckedSubtraction() {
        PropertyFailure f = catchThrowableOfType(PropertyFailure.class, () -> HarnessAccess.ignoreSystemProperties(
                ReleaseSpans.property("broken release arithmetic", ReleaseSpans.UNCHECKED_SUBTRACTION, false))
                .seed(SEED).tries(CacheProperties.TRIES).check());
        assertThat(f).isNotNull();
        System.out.println("=== unchecked subtraction caught; shrunk to: " + f.shrunkActions().getFirst()
                + "\n  -> " + firstLine(f.failure()));
        assertThat(f.shrunkActions()).hasSize(1);
    }

    private static String firstLine(Throwable t) {
        String m = String.valueOf(t.getMessage());
        int nl = m.indexOf('\n');
        return t.getClass().getSimpleName() + ": " + (nl < 0 ? m : m.substring(0, nl));
    }
}
