package io.qcow2j.engine.format;

/**
 * Refcount table entry: the host offset of one refcount block (bits 9..63), 0 if the block is not
 * allocated (every refcount it would hold is 0). Bits 0..8 are reserved.
 */
public final class RefcountTableEntry {
    public static final long OFFSET_MASK = 0xffff_ffff_ffff_fe00L;
    public static final long RESERVED_MASK = 0x1ffL;

    private RefcountTableEntry() {}

    public static long blockOffset(long entry) {
        return entry & OFFSET_MASK;
    }

    /**
     * Validates the entry at {@code index} and returns the refcount block offset (0 if unallocated).
     *
     * @throws Qcow2FormatException if reserved bits are set or the offset is not cluster-aligned
     */
    public static long checkedBlockOffset(long entry, long index, Geometry g) throws Qcow2FormatException {
        if ((entry & RESERVED_MASK) != 0) {
            throw new Qcow2FormatException("qcow2 refcount table entry " + Be.entry(entry) + " (index " + index
                    + "): reserved bits " + Be.hex(entry & RESERVED_MASK) + " set");
        }
        long offset = entry & OFFSET_MASK;
        if (!g.isClusterAligned(offset)) {
            throw new Qcow2FormatException("qcow2 refcount table entry " + Be.entry(entry) + " (index " + index
                    + "): refcount block offset " + Be.hex(offset) + " not aligned to the cluster size "
                    + g.clusterSize());
        }
        return offset;
    }
}
