package io.qcow2j.engine.format;

/**
 * What an L2 entry says about a whole guest cluster (QEMU's {@code QCow2ClusterType}).
 *
 * <p>With extended L2 entries, {@link #ZERO_PLAIN} and {@link #ZERO_ALLOC} never occur at this level:
 * zeroes are per subcluster there, see {@link SubclusterType}.
 */
public enum ClusterType {
    /** No host cluster: read from the backing file, or zeros without one. */
    UNALLOCATED,
    /** Reads as zeros; no host cluster (version 3 zero flag, offset 0). */
    ZERO_PLAIN,
    /** Reads as zeros; a host cluster is preallocated but its contents are not used. */
    ZERO_ALLOC,
    /** Data at a cluster-aligned host offset. */
    NORMAL,
    /** Compressed data somewhere in the file, described by a compressed cluster descriptor. */
    COMPRESSED;

    /** Whether a host cluster (or compressed byte range) belongs to this guest cluster. */
    public boolean isAllocated() {
        return this == NORMAL || this == ZERO_ALLOC || this == COMPRESSED;
    }
}
