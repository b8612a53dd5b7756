package io.qcow2j.engine.format;

/**
 * L2 table entry (the first 64 bits of an extended entry): bit 63 COPIED, bit 62 COMPRESSED, and a
 * cluster descriptor in bits 0..61. A standard descriptor holds the host cluster offset in bits 9..55 and,
 * in version 3 images without extended L2, the ZERO flag in bit 0; a compressed one is decoded by
 * {@link CompressedCluster}.
 *
 * <p>Static, allocation-free helpers: the driver calls them for every cluster it maps. Classification
 * follows QEMU ({@code qcow2_get_cluster_type}, {@code qcow2_get_subcluster_type}); the checked variants
 * add the corruption checks QEMU makes when it maps a cluster, each failure a one-line
 * {@link Qcow2FormatException} giving the entry and offsets in hex.
 */
public final class L2Entry {
    /** Bits 9..55 of a standard descriptor: the host cluster offset. */
    public static final long OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    /** Bits 1..8 and 56..61 of a standard descriptor: must be zero. */
    public static final long STD_RESERVED_MASK = 0x3f00_0000_0000_01feL;
    /** Bit 63: the host cluster's refcount is exactly one (never set on compressed clusters). */
    public static final long COPIED = 1L << 63;
    /** Bit 62: the descriptor is a compressed cluster descriptor. */
    public static final long COMPRESSED = 1L << 62;
    /** Bit 0: the cluster reads as zeros (version 3, standard L2 entries only). */
    public static final long ZERO = 1L;

    private L2Entry() {}

    /** Host cluster offset of a standard descriptor (meaningless for compressed entries). */
    public static long hostClusterOffset(long entry) {
        return entry & OFFSET_MASK;
    }

    public static boolean isCompressed(long entry) {
        return (entry & COMPRESSED) != 0;
    }

    public static boolean isCopied(long entry) {
        return (entry & COPIED) != 0;
    }

    public static boolean hasZeroFlag(long entry) {
        return (entry & ZERO) != 0;
    }

    /** Builds a standard entry; {@code hostOffset} must fit the offset field. */
    public static long of(long hostOffset, boolean copied, boolean zero) {
        if ((hostOffset & ~OFFSET_MASK) != 0) {
            throw new IllegalArgumentException("host offset " + Be.hex(hostOffset) + " does not fit an L2 entry");
        }
        return hostOffset | (copied ? COPIED : 0) | (zero ? ZERO : 0);
    }

    /**
     * The cluster type as QEMU's {@code qcow2_get_cluster_type} computes it, with no corruption checks.
     * The ZERO flag counts only without extended L2. Offset 0 means unallocated, except with an external
     * data file where offset 0 plus COPIED is a real cluster (guest offset 0 maps to host offset 0 there).
     */
    public static ClusterType clusterType(long entry, Geometry g) {
        if ((entry & COMPRESSED) != 0) {
            return ClusterType.COMPRESSED;
        }
        if ((entry & ZERO) != 0 && !g.extendedL2()) {
            return (entry & OFFSET_MASK) != 0 ? ClusterType.ZERO_ALLOC : ClusterType.ZERO_PLAIN;
        }
        if ((entry & OFFSET_MASK) == 0) {
            return g.externalDataFile() && (entry & COPIED) != 0 ? ClusterType.NORMAL : ClusterType.UNALLOCATED;
        }
        return ClusterType.NORMAL;
    }

    /**
     * Classifies the entry at {@code l2Index} of the L2 table at {@code l2TableOffset} and checks it.
     * {@code bitmap} is the subcluster bitmap of an extended entry (ignored without extended L2).
     *
     * <p>Corrupt: a zero flag in a version 2 image; a compressed entry with COPIED set, with an external
     * data file, with a non-zero subcluster bitmap, or pointing at or past 2^56; reserved bits in a standard
     * descriptor; a host cluster offset that is not cluster-aligned; an extended bitmap that marks a
     * subcluster both allocated and zero, or allocates subclusters of an unallocated cluster.
     *
     * @throws Qcow2FormatException if the entry is corrupt
     */
    public static ClusterType checkedClusterType(long entry, long bitmap, Geometry g, long l2TableOffset,
            int l2Index) throws Qcow2FormatException {
        ClusterType type = clusterType(entry, g);
        switch (type) {
            case COMPRESSED -> {
                if ((entry & COPIED) != 0) {
                    throw corrupt(entry, l2TableOffset, l2Index, "COPIED flag set on a compressed cluster");
                }
                if (g.externalDataFile()) {
                    throw corrupt(entry, l2TableOffset, l2Index,
                            "compressed cluster in an image with an external data file");
                }
                if (g.extendedL2() && bitmap != 0) {
                    throw corrupt(entry, l2TableOffset, l2Index, "compressed cluster with non-zero subcluster bitmap "
                            + Be.entry(bitmap));
                }
                long offset = CompressedCluster.hostOffset(entry, g.clusterBits());
                if (offset > CompressedCluster.MAX_HOST_OFFSET) {
                    throw corrupt(entry, l2TableOffset, l2Index, "compressed data offset " + Be.hex(offset)
                            + " beyond the 2^56 host offset limit");
                }
                return type;
            }
            case ZERO_PLAIN, ZERO_ALLOC -> {
                if (g.version() < 3) {
                    throw corrupt(entry, l2TableOffset, l2Index, "zero flag set in a version 2 image");
                }
            }
            default -> { }
        }
        if ((entry & STD_RESERVED_MASK) != 0) {
            throw corrupt(entry, l2TableOffset, l2Index, "reserved bits " + Be.hex(entry & STD_RESERVED_MASK) + " set");
        }
        if ((type == ClusterType.NORMAL || type == ClusterType.ZERO_ALLOC)
                && !g.isClusterAligned(entry & OFFSET_MASK)) {
            throw corrupt(entry, l2TableOffset, l2Index, "cluster offset " + Be.hex(entry & OFFSET_MASK)
                    + " not aligned to the cluster size " + g.clusterSize());
        }
        if (g.extendedL2()) {
            if (type == ClusterType.NORMAL && SubclusterBitmap.conflicts(bitmap) != 0) {
                throw corrupt(entry, l2TableOffset, l2Index, "subcluster bitmap " + Be.entry(bitmap)
                        + " marks subclusters both allocated and zero");
            }
            if (type == ClusterType.UNALLOCATED && (bitmap & SubclusterBitmap.ALL_ALLOCATED) != 0) {
                throw corrupt(entry, l2TableOffset, l2Index, "subcluster bitmap " + Be.entry(bitmap)
                        + " allocates subclusters of an unallocated cluster");
            }
        }
        return type;
    }

    /**
     * The type of subcluster {@code subcluster} of a cluster already classified (and checked) by
     * {@link #checkedClusterType}. Without extended L2, {@code subcluster} must be 0 and {@code bitmap} is
     * ignored.
     */
    public static SubclusterType subclusterType(ClusterType type, long bitmap, int subcluster, Geometry g) {
        if (subcluster < 0 || subcluster >= g.subclustersPerCluster()) {
            throw new IllegalArgumentException("subcluster " + subcluster);
        }
        if (g.extendedL2()) {
            return switch (type) {
                case COMPRESSED -> SubclusterType.COMPRESSED;
                case NORMAL -> SubclusterBitmap.readsAsZero(bitmap, subcluster) ? SubclusterType.ZERO_ALLOC
                        : SubclusterBitmap.isAllocated(bitmap, subcluster) ? SubclusterType.NORMAL
                        : SubclusterType.UNALLOCATED_ALLOC;
                case UNALLOCATED -> SubclusterBitmap.readsAsZero(bitmap, subcluster) ? SubclusterType.ZERO_PLAIN
                        : SubclusterType.UNALLOCATED_PLAIN;
                // clusterType never yields zero types with extended L2.
                case ZERO_PLAIN, ZERO_ALLOC -> throw new IllegalArgumentException(type + " with extended L2");
            };
        }
        return switch (type) {
            case COMPRESSED -> SubclusterType.COMPRESSED;
            case ZERO_PLAIN -> SubclusterType.ZERO_PLAIN;
            case ZERO_ALLOC -> SubclusterType.ZERO_ALLOC;
            case NORMAL -> SubclusterType.NORMAL;
            case UNALLOCATED -> SubclusterType.UNALLOCATED_PLAIN;
        };
    }

    /** {@link #checkedClusterType} then {@link #subclusterType}: the one call a read of one subcluster needs. */
    public static SubclusterType checkedSubclusterType(long entry, long bitmap, int subcluster, Geometry g,
            long l2TableOffset, int l2Index) throws Qcow2FormatException {
        return subclusterType(checkedClusterType(entry, bitmap, g, l2TableOffset, l2Index), bitmap, subcluster, g);
    }

    private static Qcow2FormatException corrupt(long entry, long l2TableOffset, int l2Index, String what) {
        return new Qcow2FormatException("qcow2 L2 entry " + Be.entry(entry) + " (L2 table " + Be.hex(l2TableOffset)
                + ", index " + l2Index + "): " + what);
    }
}
