package io.qcow2j.engine;

import java.io.IOException;

/**
 * A repair that cannot be done in the mode asked for ({@code -r leaks} when the refcount structure must be
 * rebuilt), or that could not be completed; qemu-img reports these as "Check failed: Input/output error".
 */
public final class RepairFailedException extends IOException {
    private static final long serialVersionUID = 1L;

    public RepairFailedException(String message) {
        super(message);
    }
}
