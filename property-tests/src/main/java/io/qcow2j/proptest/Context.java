package io.qcow2j.proptest;

import java.util.Map;
import java.util.Objects;

/**
 * What an action or an invariant sees of the harness while a sequence runs: the seed and the step, and
 * counters of user labels that end up in the property's statistics ({@link Result#labels()}), e.g.
 * {@code ctx.count("hit")}, {@code ctx.count("eviction")}, to show (and assert) that the interesting cases
 * really happened. Labels are counted while the property runs; replays done while shrinking count nothing.
 */
public final class Context {
    private final long seed;
    private final Map<String, Long> labels; // null while shrinking: counts are dropped
    int step;

    Context(long seed, Map<String, Long> labels) {
        this.seed = seed;
        this.labels = labels;
    }

    /** Adds one to the counter of {@code label}. */
    public void count(String label) {
        count(label, 1);
    }

    /** Adds {@code n} to the counter of {@code label} (creating it at 0 first, so {@code n} may be 0). */
    public void count(String label, long n) {
        Objects.requireNonNull(label, "label");
        if (labels != null) {
            labels.merge(label, n, Long::sum);
        }
    }

    /** The seed of the running sequence (the one a failure report prints). */
    public long seed() {
        return seed;
    }

    /**
     * The 1-based number of the step being run (the action, or the invariants after it); 0 for the invariants
     * checked on the fresh instance before the first action.
     */
    public int step() {
        return step;
    }
}
