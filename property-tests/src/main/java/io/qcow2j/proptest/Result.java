package io.qcow2j.proptest;

import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * The statistics of one run of a property: returned by {@code check()} when the property held, and carried by
 * {@link PropertyFailure#result()} (up to the failing sequence) when it did not. Also printed to standard
 * output after every property ({@link #report()}).
 *
 * <p>Everything here counts the sequences the property ran, not the replays made while shrinking.
 */
public final class Result {
    private final String property;
    private final long baseSeed;
    private final int tries;
    private final String origin;
    private final int sequences;
    private final long discarded;
    private final int stuck;
    private final Map<String, Long> actionCounts;
    private final Map<String, Long> labels;
    private final int minLength;
    private final int medianLength;
    private final int maxLength;
    private final Duration elapsed;
    private final boolean passed;

    Result(String property, long baseSeed, int tries, String origin, int sequences, long discarded, int stuck,
           Map<String, Long> actionCounts, Map<String, Long> labels, int[] sortedLengths, Duration elapsed,
           boolean passed) {
        this.property = property;
        this.baseSeed = baseSeed;
        this.tries = tries;
        this.origin = origin;
        this.sequences = sequences;
        this.discarded = discarded;
        this.stuck = stuck;
        this.actionCounts = Collections.unmodifiableMap(new LinkedHashMap<>(actionCounts));
        this.labels = Collections.unmodifiableMap(new TreeMap<>(labels));
        int n = sortedLengths.length;
        this.minLength = n == 0 ? 0 : sortedLengths[0];
        this.medianLength = n == 0 ? 0 : sortedLengths[(n - 1) / 2];
        this.maxLength = n == 0 ? 0 : sortedLengths[n - 1];
        this.elapsed = elapsed;
        this.passed = passed;
    }

    /** The property's name. */
    public String property() {
        return property;
    }

    /** The base seed of the run: the seed of its first sequence. */
    public long baseSeed() {
        return baseSeed;
    }

    /** How many sequences the run was to make (after {@code -Dqcow2j.tries} or a replayed seed). */
    public int tries() {
        return tries;
    }

    /** Where {@link #tries()} and the seed came from, e.g. "tries from -Dqcow2j.tries, random seed". */
    public String origin() {
        return origin;
    }

    /** How many sequences were run (equals {@link #tries()} when the property held). */
    public int sequences() {
        return sequences;
    }

    /** Whether the property held. */
    public boolean passed() {
        return passed;
    }

    /** Actions run in all sequences. */
    public long actions() {
        return actionCounts.values().stream().mapToLong(Long::longValue).sum();
    }

    /** Actions run per action name, for every declared action (0 for one that never ran), in declaration order. */
    public Map<String, Long> actionCounts() {
        return actionCounts;
    }

    /** How many times the action named {@code name} ran (0 if it never did or is unknown). */
    public long actionCount(String name) {
        return actionCounts.getOrDefault(name, 0L);
    }

    /** The user counters recorded with {@link Context#count}, by label, sorted by label. */
    public Map<String, Long> labels() {
        return labels;
    }

    /** The counter of {@code label} (0 if never counted). */
    public long count(String label) {
        return labels.getOrDefault(label, 0L);
    }

    /** Generated actions thrown away because the generator returned null or the precondition did not hold. */
    public long discarded() {
        return discarded;
    }

    /** Sequences that ended early because no applicable action could be generated. */
    public int stuck() {
        return stuck;
    }

    /** The shortest sequence run, in actions. */
    public int minLength() {
        return minLength;
    }

    /** The median sequence length (the lower one of an even count), in actions. */
    public int medianLength() {
        return medianLength;
    }

    /** The longest sequence run, in actions. */
    public int maxLength() {
        return maxLength;
    }

    /** Wall time of the run (without shrinking). */
    public Duration elapsed() {
        return elapsed;
    }

    /** The statistics as printed after the property: several lines, no trailing newline. */
    public String report() {
        StringBuilder b = new StringBuilder();
        b.append("property '").append(property).append("': ").append(passed ? "passed" : "FAILED")
                .append(", ").append(sequences).append(passed ? "" : " of " + tries).append(" sequences (tries=")
                .append(tries).append(": ").append(origin).append("), base seed ").append(baseSeed).append(", ")
                .append(elapsed.toMillis()).append(" ms");
        b.append("\n  actions: ").append(actions()).append(" run; sequence length min ").append(minLength)
                .append(" / median ").append(medianLength).append(" / max ").append(maxLength);
        if (discarded > 0 || stuck > 0) {
            b.append("; ").append(discarded).append(" generated actions discarded");
            if (stuck > 0) {
                b.append(", ").append(stuck).append(" sequences ended early (no applicable action)");
            }
        }
        appendTable(b, "actions run", actionCounts, actions());
        appendTable(b, "labels", labels, -1);
        return b.toString();
    }

    private static void appendTable(StringBuilder b, String title, Map<String, Long> counts, long total) {
        if (counts.isEmpty()) {
            return;
        }
        int width = counts.keySet().stream().mapToInt(String::length).max().orElse(0);
        int digits = counts.values().stream().mapToInt(v -> Long.toString(v).length()).max().orElse(1);
        b.append("\n  ").append(title).append(':');
        counts.forEach((k, v) -> {
            b.append("\n    ").append(k).append(" ".repeat(width - k.length() + 2))
                    .append(" ".repeat(digits - Long.toString(v).length())).append(v);
            if (total > 0) {
                b.append(String.format(java.util.Locale.ROOT, "  (%.1f%%)", 100.0 * v / total));
            }
        });
    }

    @Override
    public String toString() {
        return report();
    }
}
