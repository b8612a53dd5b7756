package io.qcow2j.engine.format;

/**
 * The second 64-bit word of an extended L2 entry: bit {@code i} (0..31) says subcluster {@code i} is
 * allocated, bit {@code 32 + i} says it reads as zeros. Both set for one subcluster is corruption. For
 * compressed clusters the whole word is reserved (zero).
 */
public final class SubclusterBitmap {
    /** All 32 allocation bits. */
    public static final long ALL_ALLOCATED = 0x0000_0000_ffff_ffffL;
    /** All 32 reads-as-zero bits. */
    public static final long ALL_ZERO = 0xffff_ffff_0000_0000L;

    private SubclusterBitmap() {}

    public static boolean isAllocated(long bitmap, int subcluster) {
        return (bitmap & (1L << subcluster)) != 0;
    }

    public static boolean readsAsZero(long bitmap, int subcluster) {
        return (bitmap & (1L << (32 + subcluster))) != 0;
    }

    /** Allocation bits for subclusters {@code [from, to)}, {@code 0 <= from <= to <= 32}. */
    public static long allocatedRange(int from, int to) {
        checkRange(from, to);
        return (1L << to) - (1L << from);
    }

    /** Reads-as-zero bits for subclusters {@code [from, to)}, {@code 0 <= from <= to <= 32}. */
    public static long zeroRange(int from, int to) {
        return allocatedRange(from, to) << 32;
    }

    /** Subclusters marked both allocated and zero; non-zero means the entry is corrupt. */
    public static long conflicts(long bitmap) {
        return (bitmap >>> 32) & bitmap & ALL_ALLOCATED;
    }

    private static void checkRange(int from, int to) {
        if (from < 0 || from > to || to > 32) {
            throw new IllegalArgumentException("subcluster range [" + from + ", " + to + ")");
        }
    }
}
