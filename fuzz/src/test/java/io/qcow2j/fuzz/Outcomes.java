package io.qcow2j.fuzz;

import java.io.IOException;

/**
 * The outcomes a fuzz target allows (issue 15): correct data, or a qcow2j error, an {@link IOException} with a
 * one-line message. Anything else (another exception, a multi-line or empty message) is a finding: the target
 * rethrows it and Jazzer keeps the input.
 */
final class Outcomes {
    private Outcomes() {}

    /** Accepts {@code e} as an allowed error, or throws an {@link AssertionError} naming what is wrong with it. */
    static void allowedError(IOException e) {
        String m = e.getMessage();
        if (m == null || m.isBlank() || m.indexOf('\n') >= 0) {
            throw new AssertionError("error without a one-line message: " + e.getClass().getName() + ": " + m, e);
        }
    }

    /** Fails unless {@code ok}: for data that must read back as written, files that must not change. */
    static void require(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }
}
