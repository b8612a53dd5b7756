package io.qcow2j.proptest;

import java.util.Objects;

/**
 * A fresh pair of a system under test and its reference model, made by the setup of a
 * {@link StatefulProperty} once per sequence (and once per replay while shrinking). If the system or the
 * model is {@link AutoCloseable}, the harness closes it after the sequence, also when the sequence failed.
 *
 * @param sut the system under test (not null)
 * @param model the reference model; may be null when the property only checks invariants of the system
 */
public record Instance<S, M>(S sut, M model) {
    public Instance {
        Objects.requireNonNull(sut, "sut");
    }
}
