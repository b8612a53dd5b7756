package io.qcow2j.engine.format;

/**
 * What a read of one subcluster must do (QEMU's {@code QCow2SubclusterType}). Without extended L2 there
 * is one subcluster per cluster and this maps one to one onto {@link ClusterType}. QEMU's
 * {@code INVALID} has no constant: an invalid combination is a {@link Qcow2FormatException}.
 */
public enum SubclusterType {
    /** Unallocated, no host cluster: backing file or zeros. */
    UNALLOCATED_PLAIN,
    /** Unallocated subcluster of an allocated host cluster (extended L2 only): backing file or zeros. */
    UNALLOCATED_ALLOC,
    /** Reads as zeros, no host cluster. */
    ZERO_PLAIN,
    /** Reads as zeros, host cluster present. */
    ZERO_ALLOC,
    /** Data in the host cluster at the same offset within it. */
    NORMAL,
    /** Part of a compressed cluster: decompress the whole cluster. */
    COMPRESSED;

    /** Whether the read is served from the image file itself (not the backing file, not zeros). */
    public boolean hasData() {
        return this == NORMAL || this == COMPRESSED;
    }

    /** Whether the read falls through to the backing file (zeros if there is none). */
    public boolean readsBacking() {
        return this == UNALLOCATED_PLAIN || this == UNALLOCATED_ALLOC;
    }

    /** Whether the read returns zeros without looking at the backing file. */
    public boolean readsZeros() {
        return this == ZERO_PLAIN || this == ZERO_ALLOC;
    }
}
