package io.qcow2j.engine.cache;

import java.io.IOException;

/**
 * QEMU's pre-write overlap check: called before every table write with the range about to be written. The
 * driver compares it with its metadata map (header, L1 table, refcount table, snapshots, and the tables of
 * the other cache) and throws to block the write, typically after marking the image corrupt.
 */
@FunctionalInterface
public interface OverlapCheck {
    OverlapCheck NONE = (kind, offset, length) -> {};

    void check(CacheKind kind, long offset, long length) throws IOException;
}
