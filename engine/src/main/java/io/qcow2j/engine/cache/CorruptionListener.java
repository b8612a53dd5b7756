package io.qcow2j.engine.cache;

/**
 * Told when the cache meets metadata that can only come from a corrupt image (a table offset not aligned to
 * the table size). The driver marks the image corrupt and goes read-only, as QEMU does on a corruption
 * event. Called before the failing call throws.
 */
@FunctionalInterface
public interface CorruptionListener {
    CorruptionListener IGNORE = (kind, offset, message) -> {};

    void corruption(CacheKind kind, long offset, String message);
}
