package io.qcow2j.engine.cache;

import java.io.IOException;

/**
 * A miss found every entry referenced, so nothing could be evicted. QEMU aborts here ("can't happen in
 * synchronous code"); we fail the request instead and leave the cache unchanged.
 */
public class CacheExhaustedException extends IOException {
    private static final long serialVersionUID = 1L;

    public CacheExhaustedException(String message) {
        super(message);
    }
}
