package io.qcow2j.engine.format;

/**
 * L1 table entry: the host offset of one L2 table (bits 9..55), the COPIED flag (bit 63, refcount exactly
 * one), everything else reserved. Static, allocation-free helpers: the driver calls them per lookup.
 */
public final class L1Entry {
    /** Bits 9..55: the L2 table's host offset. */
    public static final long OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    /** Bits 0..8 and 56..62: must be zero. */
    public static final long RESERVED_MASK = 0x7f00_0000_0000_01ffL;
    /** Bit 63: the L2 table's refcount is exactly one, so it may be written in place. */
    public static final long COPIED = 1L << 63;

    private L1Entry() {}

    /** The L2 table offset, 0 if the L2 table (and so every cluster it would map) is unallocated. */
    public static long l2Offset(long entry) {
        return entry & OFFSET_MASK;
    }

    public static boolean isCopied(long entry) {
        return (entry & COPIED) != 0;
    }

    public static boolean isUnallocated(long entry) {
        return (entry & OFFSET_MASK) == 0;
    }

    /** Builds an entry; {@code l2Offset} must fit the offset field. */
    public static long of(long l2Offset, boolean copied) {
        if ((l2Offset & ~OFFSET_MASK) != 0) {
            throw new IllegalArgumentException("L2 table offset " + Be.hex(l2Offset) + " does not fit an L1 entry");
        }
        return l2Offset | (copied ? COPIED : 0);
    }

    /**
     * Validates the entry at {@code l1Index} and returns the L2 table offset (0 if unallocated).
     *
     * @throws Qcow2FormatException if reserved bits are set or the L2 table offset is not cluster-aligned
     *     (the image is corrupt; the message gives the entry and the offset in hex)
     */
    public static long checkedL2Offset(long entry, long l1Index, Geometry g) throws Qcow2FormatException {
        if ((entry & RESERVED_MASK) != 0) {
            throw new Qcow2FormatException("qcow2 L1 entry " + Be.entry(entry) + " (L1 index " + l1Index
                    + "): reserved bits " + Be.hex(entry & RESERVED_MASK) + " set");
        }
        long offset = entry & OFFSET_MASK;
        if (!g.isClusterAligned(offset)) {
            throw new Qcow2FormatException("qcow2 L1 entry " + Be.entry(entry) + " (L1 index " + l1Index
                    + "): L2 table offset " + Be.hex(offset) + " not aligned to the cluster size "
                    + g.clusterSize());
        }
        return offset;
    }
}
