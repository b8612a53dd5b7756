package io.qcow2j.engine.format;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Reads and writes entries of a refcount block held in a {@link MemorySegment}, for every refcount width
 * the spec allows: {@code refcount_bits = 1 << refcount_order}, order 0..6 (1 to 64 bits).
 *
 * <p>Widths of 8 bits and more are big-endian integers. Narrower ones are packed several to a byte with
 * entry 0 in the least significant bits (the spec's "bit 0 means the least significant bit"): entry
 * {@code i} of a 2-bit block is bits {@code 2*(i%4)..2*(i%4)+1} of byte {@code i/4}.
 *
 * <p>Values are unsigned; a 64-bit refcount above {@code Long.MAX_VALUE} comes back negative. Static and
 * allocation-free: the refcount code calls these per cluster.
 */
public final class RefcountBlock {
    private RefcountBlock() {}

    /** The largest refcount of the width, unsigned ({@code -1L}, i.e. 2^64-1, for order 6). */
    public static long maxValue(int refcountOrder) {
        checkOrder(refcountOrder);
        return -1L >>> (64 - (1 << refcountOrder));
    }

    /** Bytes needed for {@code entries} entries of the width (sub-byte widths round up). */
    public static long bytesFor(long entries, int refcountOrder) {
        checkOrder(refcountOrder);
        long bits = entries << refcountOrder;
        return (bits + 7) >>> 3;
    }

    /** Entry {@code index} of {@code block}. */
    public static long get(MemorySegment block, long index, int refcountOrder) {
        return get(block, 0, index, refcountOrder);
    }

    /**
     * Entry {@code index} of the block that starts at byte {@code base} of {@code tables} (a cache's table
     * store, without making a slice per access).
     */
    public static long get(MemorySegment tables, long base, long index, int refcountOrder) {
        return switch (refcountOrder) {
            case 0 -> (tables.get(ValueLayout.JAVA_BYTE, base + (index >>> 3)) >>> (index & 7)) & 0x1;
            case 1 -> (tables.get(ValueLayout.JAVA_BYTE, base + (index >>> 2)) >>> ((index & 3) << 1)) & 0x3;
            case 2 -> (tables.get(ValueLayout.JAVA_BYTE, base + (index >>> 1)) >>> ((index & 1) << 2)) & 0xf;
            case 3 -> tables.get(ValueLayout.JAVA_BYTE, base + index) & 0xffL;
            case 4 -> tables.get(Be.U16, base + (index << 1)) & 0xffffL;
            case 5 -> tables.get(Be.U32, base + (index << 2)) & 0xffff_ffffL;
            case 6 -> tables.get(Be.U64, base + (index << 3));
            default -> throw badOrder(refcountOrder);
        };
    }

    /**
     * Sets entry {@code index} of {@code block} to {@code value}, leaving its neighbours in the same byte
     * untouched.
     *
     * @throws IllegalArgumentException if {@code value} (unsigned) exceeds {@link #maxValue}
     */
    public static void set(MemorySegment block, long index, int refcountOrder, long value) {
        set(block, 0, index, refcountOrder, value);
    }

    /** As {@link #set(MemorySegment, long, int, long)} for the block at byte {@code base} of {@code tables}. */
    public static void set(MemorySegment tables, long base, long index, int refcountOrder, long value) {
        if (Long.compareUnsigned(value, maxValue(refcountOrder)) > 0) {
            throw new IllegalArgumentException("refcount " + Long.toUnsignedString(value) + " does not fit "
                    + (1 << refcountOrder) + " bits");
        }
        switch (refcountOrder) {
            case 0 -> setPacked(tables, base + (index >>> 3), (int) (index & 7), 0x1, value);
            case 1 -> setPacked(tables, base + (index >>> 2), (int) ((index & 3) << 1), 0x3, value);
            case 2 -> setPacked(tables, base + (index >>> 1), (int) ((index & 1) << 2), 0xf, value);
            case 3 -> tables.set(ValueLayout.JAVA_BYTE, base + index, (byte) value);
            case 4 -> tables.set(Be.U16, base + (index << 1), (short) value);
            case 5 -> tables.set(Be.U32, base + (index << 2), (int) value);
            case 6 -> tables.set(Be.U64, base + (index << 3), value);
            default -> throw badOrder(refcountOrder);
        }
    }

    private static void setPacked(MemorySegment block, long byteIndex, int shift, int mask, long value) {
        int b = block.get(ValueLayout.JAVA_BYTE, byteIndex);
        b = (b & ~(mask << shift)) | ((int) value << shift);
        block.set(ValueLayout.JAVA_BYTE, byteIndex, (byte) b);
    }

    private static void checkOrder(int refcountOrder) {
        if (refcountOrder < 0 || refcountOrder > Geometry.MAX_REFCOUNT_ORDER) {
            throw badOrder(refcountOrder);
        }
    }

    private static IllegalArgumentException badOrder(int refcountOrder) {
        return new IllegalArgumentException("refcount_order " + refcountOrder + " out of range (0..6)");
    }
}
