package io.qcow2j.proptest;

/** Placeholder until the harness lands. */
final class Seeds {
    private Seeds() {}
}
