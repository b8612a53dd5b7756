package io.qcow2j.proptest;

import java.util.ArrayList;
import java.util.List;

/**
 * Shrinks a failing list by delta debugging: removes chunks of half the list, then quarters, ... down to single
 * elements, keeping every removal after which the list still fails the same way, until no single element can
 * be removed (the result is 1-minimal) or the replay budget is spent. Deterministic.
 */
final class DeltaDebugging {
    private DeltaDebugging() {}

    /** Tells whether a candidate list still fails the same way. */
    interface Oracle<T> {
        /**
         * Runs {@code candidate}; returns null if it does not fail the same way, else the list that actually
         * failed, which may be shorter than {@code candidate} (skipped elements dropped, cut after the failing
         * step) but never longer.
         */
        List<T> test(List<T> candidate);
    }

    /**
     * @param minimized the smallest failing list found
     * @param steps how many reductions were kept
     * @param replays how many candidates were tried
     * @param exhausted whether the budget ran out before the list was 1-minimal
     */
    record Outcome<T>(List<T> minimized, int steps, int replays, boolean exhausted) {}

    static <T> Outcome<T> minimize(List<T> failing, Oracle<T> oracle, int budget) {
        List<T> current = List.copyOf(failing);
        int steps = 0;
        int replays = 0;
        int chunk = Math.max(1, current.size() / 2);
        while (!current.isEmpty()) {
            boolean progress = false;
            for (int start = 0; start < current.size(); ) {
                if (replays >= budget) {
                    return new Outcome<>(current, steps, replays, true);
                }
                int end = Math.min(current.size(), start + chunk);
                List<T> candidate = new ArrayList<>(current.size() - (end - start));
                candidate.addAll(current.subList(0, start));
                candidate.addAll(current.subList(end, current.size()));
                replays++;
                List<T> reduced = oracle.test(List.copyOf(candidate));
                if (reduced != null && reduced.size() < current.size()) {
                    current = List.copyOf(reduced);
                    steps++;
                    progress = true; // try the same position again: the next chunk has moved into it
                } else {
                    start += chunk;
                }
            }
            if (!progress) {
                if (chunk == 1) {
                    break;
                }
                chunk = Math.max(1, chunk / 2);
            } else {
                chunk = Math.max(1, Math.min(chunk, current.size() / 2));
            }
        }
        return new Outcome<>(current, steps, replays, false);
    }
}
