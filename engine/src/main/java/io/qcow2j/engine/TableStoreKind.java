package io.qcow2j.engine;

/** Where an image's metadata caches keep their tables ({@code table-store=}, qcow2j's own option). */
public enum TableStoreKind {
    /**
     * One page-aligned {@code mmap}'d arena outside the Java heap: usable for {@code O_DIRECT}, and memory of
     * dropped tables is returned to the system ({@code madvise(MADV_DONTNEED)}). The default.
     */
    OFF_HEAP,
    /** One {@code long[]} on the Java heap; it never returns memory. */
    HEAP
}
