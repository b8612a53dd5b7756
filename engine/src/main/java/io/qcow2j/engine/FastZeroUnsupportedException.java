package io.qcow2j.engine;

import java.io.IOException;

/**
 * A write zeroes request with {@link ZeroFlag#NO_FALLBACK} that the disk cannot do quickly: nothing was changed.
 * The caller may retry without the flag (NBD answers {@code NBD_ENOTSUP}).
 */
public final class FastZeroUnsupportedException extends IOException {
    private static final long serialVersionUID = 1L;

    public FastZeroUnsupportedException(String message) {
        super(message);
    }
}
