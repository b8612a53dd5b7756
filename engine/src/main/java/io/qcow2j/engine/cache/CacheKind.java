package io.qcow2j.engine.cache;

/** Which metadata a cache holds; names the cache in errors and tells the overlap check what to exempt. */
public enum CacheKind {
    /** L2 tables, or slices of them ({@code l2-cache-entry-size}). */
    L2_TABLE("L2 table"),
    /** Refcount blocks; always one cluster each. */
    REFCOUNT_BLOCK("refcount block");

    private final String label;

    CacheKind(String label) {
        this.label = label;
    }

    /** As the spec and QEMU's messages say it: "L2 table" or "refcount block". */
    public String label() {
        return label;
    }
}
