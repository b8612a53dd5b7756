package io.qcow2j.proptest.cache;

import io.qcow2j.proptest.HarnessAccess;
import io.qcow2j.proptest.PropertyFailure;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Not a check but a measurement, run on demand ({@code -Dqcow2j.shrinkSeeds=30}): for every broken cache of
 * {@link BrokenCacheTest}, how long the shrunk failing sequence is over seeds 1..N, and whether the property's
 * invariant (I) or an action's answer (A) caught it.
 */
@EnabledIfSystemProperty(named = "qcow2j.shrinkSeeds", matches = "[0-9]+")
class ShrinkDistributionTest {
    @Test
    void shrunkLengthsOverSeeds() {
        int seeds = Integer.getInteger("qcow2j.shrinkSeeds");
        BrokenCacheTest.cases().forEach(a -> {
            BrokenCacheTest.Case c = (BrokenCacheTest.Case) a.get()[0];
            List<Integer> sizes = new ArrayList<>();
            StringBuilder where = new StringBuilder();
            for (long seed = 1; seed <= seeds; seed++) {
                try {
                    HarnessAccess.ignoreSystemProperties(CacheProperties.property("x", c.options(), c.invariant()))
                            .seed(seed).tries(CacheProperties.TRIES).check();
                    sizes.add(-1);
                    where.append('-');
                } catch (PropertyFailure f) {
                    sizes.add(f.shrunkActions().size());
                    where.append(f.location().startsWith("invariant") ? 'I' : 'A');
                }
            }
            List<Integer> sorted = new ArrayList<>(sizes);
            Collections.sort(sorted);
            System.out.println(c + ": median " + sorted.get(sorted.size() / 2) + ", max " + sorted.getLast() + " "
                    + sizes + " " + where);
        });
    }
}
