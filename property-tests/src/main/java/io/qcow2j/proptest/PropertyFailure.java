package io.qcow2j.proptest;

import java.io.Serial;
import java.util.List;

/**
 * Thrown by {@code check()} when a property does not hold. An {@link AssertionError}, so test runners report
 * it as a failure; its message is the full report (property, seed, shrunk and original actions, the failure,
 * and how to replay it), and its cause is the failure of the shrunk sequence. The accessors expose the same
 * facts for tests that check the harness itself.
 */
public final class PropertyFailure extends AssertionError {
    @Serial
    private static final long serialVersionUID = 1L;

    private final String property;
    private final long seed;
    private final String location;
    private final transient Throwable originalFailure;
    private final List<String> originalActions;
    private final List<String> shrunkActions;
    private final int shrinkSteps;
    private final int replays;
    private final boolean reproduced;
    private final transient Result result;

    PropertyFailure(String message, String property, long seed, String location, Throwable failure,
                    Throwable originalFailure, List<String> originalActions, List<String> shrunkActions,
                    int shrinkSteps, int replays, boolean reproduced, Result result) {
        super(message, failure);
        this.property = property;
        this.seed = seed;
        this.location = location;
        this.originalFailure = originalFailure;
        this.originalActions = List.copyOf(originalActions);
        this.shrunkActions = List.copyOf(shrunkActions);
        this.shrinkSteps = shrinkSteps;
        this.replays = replays;
        this.reproduced = reproduced;
        this.result = result;
    }

    /** The property's name. */
    public String property() {
        return property;
    }

    /** The seed of the failing sequence: {@code -Dqcow2j.seed=<seed>} or {@code .seed(seed)} replays it. */
    public long seed() {
        return seed;
    }

    /** The replay arguments, e.g. {@code -Dqcow2j.seed=42 -Dqcow2j.property='my property'}. */
    public String replayArguments() {
        return Settings.replayArguments(property, seed);
    }

    /**
     * Where the shrunk sequence failed, e.g. {@code action 'get' at step 4}, {@code invariant 'sizes agree' after
     * step 3}, {@code close after step 5}, {@code setup}.
     */
    public String location() {
        return location;
    }

    /** The failure of the shrunk sequence (also the {@link #getCause() cause}). */
    public Throwable failure() {
        return getCause();
    }

    /** The failure of the sequence as first generated (same class as {@link #failure()}). */
    public Throwable originalFailure() {
        return originalFailure;
    }

    /** The actions of the failing sequence as generated, up to the failing one, as printed. */
    public List<String> originalActions() {
        return originalActions;
    }

    /** The actions of the shrunk sequence, up to the failing one, as printed. */
    public List<String> shrunkActions() {
        return shrunkActions;
    }

    /** How many reductions shrinking kept. */
    public int shrinkSteps() {
        return shrinkSteps;
    }

    /** How many replays shrinking made (bounded by the shrink budget). */
    public int replays() {
        return replays;
    }

    /** Whether replaying the failing sequence failed again the same way (false: not deterministic, not shrunk). */
    public boolean reproduced() {
        return reproduced;
    }

    /** The statistics of the run up to and including the failing sequence. */
    public Result result() {
        return result;
    }
}
