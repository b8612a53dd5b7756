package io.qcow2j.proptest;

import java.util.Objects;
import java.util.function.Predicate;

/**
 * One step of a stateful property: a concrete operation, with its parameters already chosen, that is applied to
 * the system under test and to the model side by side.
 *
 * <p>An action is created by a generator from the random source and the current model (see
 * {@link StatefulProperty.Builder#action}); it must carry everything it needs (keys, values, which handle to
 * release, ...) so that the very same action object can be replayed later, while shrinking or when a seed is
 * replayed, without any randomness. {@link #run} applies the action to both sides and asserts on what the
 * system returned (typically against what the model predicts); it fails by throwing, usually an
 * {@link AssertionError}.
 *
 * <p>{@link #toString()} is what a failure report prints, one action per line, so it should name the action
 * and its parameters, e.g. {@code put(3, "x")}. Records do that by themselves; {@link #of} wraps a lambda
 * with a description.
 *
 * <p>Actions must not mutate the model in {@link #precondition} and should not keep state of their own
 * between runs: the same action object is run once per replay.
 *
 * @param <S> the system under test
 * @param <M> the reference model
 */
@FunctionalInterface
public interface Action<S, M> {

    /**
     * Whether this action may run in the current model state. Checked when the action is generated (an action
     * whose precondition does not hold is discarded and another one generated) and again on every replay,
     * where an action whose precondition no longer holds (because shrinking removed what it relied on) is
     * skipped. Must not change the model. Default: always.
     */
    default boolean precondition(M model) {
        return true;
    }

    /**
     * Applies this action to the system under test and to the model, and checks the system's answers.
     *
     * @param ctx counts user labels for the statistics ({@link Context#count})
     * @throws Exception (usually an {@link AssertionError}) when the system misbehaves: fails the property
     */
    void run(S sut, M model, Context ctx) throws Exception;

    /** The action with its concrete parameters, on one line, e.g. {@code put(3, "x")}. */
    @Override
    String toString();

    /** An action that runs {@code body} and prints as {@code description}. */
    static <S, M> Action<S, M> of(String description, Action<S, M> body) {
        return of(description, m -> true, body);
    }

    /**
     * An action that runs {@code body} when {@code precondition} holds for the model, and prints as
     * {@code description}.
     */
    static <S, M> Action<S, M> of(String description, Predicate<? super M> precondition, Action<S, M> body) {
        Objects.requireNonNull(description, "description");
        Objects.requireNonNull(precondition, "precondition");
        Objects.requireNonNull(body, "body");
        return new Action<>() {
            @Override
            public boolean precondition(M model) {
                return precondition.test(model);
            }

            @Override
            public void run(S sut, M model, Context ctx) throws Exception {
                body.run(sut, model, ctx);
            }

            @Override
            public String toString() {
                return description;
            }
        };
    }
}
