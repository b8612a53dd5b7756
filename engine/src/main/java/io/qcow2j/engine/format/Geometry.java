package io.qcow2j.engine.format;

/**
 * The layout numbers of one image that every table lookup needs: cluster size, L2 entry width and
 * subclusters, refcount width, plus the two header facts that change how entries read (version 2 has no
 * zero flag; an external data file makes host offset 0 valid).
 *
 * <p>Immutable and allocation-free: the driver builds one per image ({@link Qcow2Header#geometry()}) and
 * passes it to the entry codecs on every lookup. The constructor checks the numbers are in the ranges a
 * valid header can produce, so the arithmetic below cannot overflow or shift by nonsense amounts.
 */
public final class Geometry {
    /** 512-byte clusters: the smallest the spec allows. */
    public static final int MIN_CLUSTER_BITS = 9;
    /** 2 MiB clusters: QEMU's implementation limit, which we share. */
    public static final int MAX_CLUSTER_BITS = 21;
    /** Extended L2 entries split each cluster into this many subclusters. */
    public static final int SUBCLUSTERS_PER_CLUSTER = 32;
    /** Extended L2 needs subclusters of at least 512 bytes, hence clusters of at least 16 KiB. */
    public static final int MIN_EXTENDED_L2_CLUSTER_BITS = 14;
    /** Refcount widths 1..64 bits are orders 0..6. */
    public static final int MAX_REFCOUNT_ORDER = 6;

    private final int version;
    private final int clusterBits;
    private final int refcountOrder;
    private final boolean extendedL2;
    private final boolean externalDataFile;
    private final int l2Bits;
    private final int subclusterBits;
    private final int refcountBlockBits;

    /**
     * @throws IllegalArgumentException if a value is outside what a valid header allows (this is a caller
     *     error: {@link Qcow2Header} validates the image before building one)
     */
    public Geometry(int version, int clusterBits, int refcountOrder, boolean extendedL2,
            boolean externalDataFile) {
        if (version != 2 && version != 3) {
            throw new IllegalArgumentException("version " + version);
        }
        if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
            throw new IllegalArgumentException("cluster_bits " + clusterBits);
        }
        if (refcountOrder < 0 || refcountOrder > MAX_REFCOUNT_ORDER) {
            throw new IllegalArgumentException("refcount_order " + refcountOrder);
        }
        if (extendedL2 && (version < 3 || clusterBits < MIN_EXTENDED_L2_CLUSTER_BITS)) {
            throw new IllegalArgumentException("extended L2 with version " + version + ", cluster_bits "
                    + clusterBits);
        }
        this.version = version;
        this.clusterBits = clusterBits;
        this.refcountOrder = refcountOrder;
        this.extendedL2 = extendedL2;
        this.externalDataFile = externalDataFile;
        this.l2Bits = clusterBits - (extendedL2 ? 4 : 3);
        this.subclusterBits = clusterBits - (extendedL2 ? 5 : 0);
        // A refcount block is one cluster of 2^refcountOrder-bit entries: 2^(clusterBits + 3 - order).
        this.refcountBlockBits = clusterBits + 3 - refcountOrder;
    }

    public int version() {
        return version;
    }

    public int clusterBits() {
        return clusterBits;
    }

    public int clusterSize() {
        return 1 << clusterBits;
    }

    public boolean extendedL2() {
        return extendedL2;
    }

    public boolean externalDataFile() {
        return externalDataFile;
    }

    /** Bytes per L2 entry: 8, or 16 with extended L2 (entry plus subcluster bitmap). */
    public int l2EntrySize() {
        return extendedL2 ? 16 : 8;
    }

    /** log2 of {@link #l2Entries()}. */
    public int l2Bits() {
        return l2Bits;
    }

    /** Entries in one L2 table (one cluster). */
    public int l2Entries() {
        return 1 << l2Bits;
    }

    /** 32 with extended L2, else 1 (the whole cluster is its only subcluster). */
    public int subclustersPerCluster() {
        return extendedL2 ? SUBCLUSTERS_PER_CLUSTER : 1;
    }

    public int subclusterBits() {
        return subclusterBits;
    }

    public int subclusterSize() {
        return 1 << subclusterBits;
    }

    public int refcountOrder() {
        return refcountOrder;
    }

    public int refcountBits() {
        return 1 << refcountOrder;
    }

    /** The largest refcount an entry can hold, as an unsigned value ({@code -1L} for 64-bit refcounts). */
    public long maxRefcount() {
        return RefcountBlock.maxValue(refcountOrder);
    }

    /** log2 of {@link #refcountBlockEntries()}. */
    public int refcountBlockBits() {
        return refcountBlockBits;
    }

    /** Entries in one refcount block (one cluster): {@code cluster_size * 8 / refcount_bits}. */
    public int refcountBlockEntries() {
        return 1 << refcountBlockBits;
    }

    /** 64-bit entries in one cluster of the L1 table or the refcount table. */
    public int tableEntriesPerCluster() {
        return 1 << (clusterBits - 3);
    }

    /** {@code offset mod cluster_size}. */
    public long offsetInCluster(long offset) {
        return offset & ((1L << clusterBits) - 1);
    }

    public boolean isClusterAligned(long offset) {
        return offsetInCluster(offset) == 0;
    }

    /** Index into the L1 table of the L2 table that maps {@code guestOffset} (non-negative). */
    public long l1Index(long guestOffset) {
        return guestOffset >>> (clusterBits + l2Bits);
    }

    /** Index within its L2 table of the entry that maps {@code guestOffset}. */
    public int l2Index(long guestOffset) {
        return (int) ((guestOffset >>> clusterBits) & ((1L << l2Bits) - 1));
    }

    /** Index of the subcluster that holds {@code guestOffset}; always 0 without extended L2. */
    public int subclusterIndex(long guestOffset) {
        return (int) ((guestOffset >>> subclusterBits) & (subclustersPerCluster() - 1));
    }

    /** Clusters needed to hold {@code bytes} (rounded up); exact for any non-negative long. */
    public long clustersFor(long bytes) {
        requireNonNegative(bytes);
        return (bytes >>> clusterBits) + ((bytes & ((1L << clusterBits) - 1)) != 0 ? 1 : 0);
    }

    /**
     * L1 entries needed to map a virtual disk of {@code virtualSize} bytes (QEMU's {@code size_to_l1}).
     * Computed without the {@code size + span - 1} that overflows near {@code Long.MAX_VALUE}.
     */
    public long l1EntriesFor(long virtualSize) {
        requireNonNegative(virtualSize);
        int shift = clusterBits + l2Bits;
        return (virtualSize >>> shift) + ((virtualSize & ((1L << shift) - 1)) != 0 ? 1 : 0);
    }

    /** Bytes of guest disk one L1 entry (one L2 table) maps. */
    public long bytesPerL2Table() {
        return 1L << (clusterBits + l2Bits);
    }

    /** Index into the refcount table of the refcount block that covers {@code hostOffset}. */
    public long refcountTableIndex(long hostOffset) {
        return hostOffset >>> (clusterBits + refcountBlockBits);
    }

    /** Index within its refcount block of the refcount of the cluster at {@code hostOffset}. */
    public int refcountBlockIndex(long hostOffset) {
        return (int) ((hostOffset >>> clusterBits) & ((1L << refcountBlockBits) - 1));
    }

    private static void requireNonNegative(long v) {
        if (v < 0) {
            throw new IllegalArgumentException("negative size " + v);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Geometry g && g.version == version && g.clusterBits == clusterBits
                && g.refcountOrder == refcountOrder && g.extendedL2 == extendedL2
                && g.externalDataFile == externalDataFile;
    }

    @Override
    public int hashCode() {
        return ((clusterBits * 7 + refcountOrder) * 31 + version) * 4 + (extendedL2 ? 2 : 0)
                + (externalDataFile ? 1 : 0);
    }

    @Override
    public String toString() {
        return "Geometry[version=" + version + ", cluster_bits=" + clusterBits + ", refcount_order="
                + refcountOrder + (extendedL2 ? ", extended L2" : "")
                + (externalDataFile ? ", external data file" : "") + "]";
    }
}
