package io.qcow2j.ffm;

/**
 * The whole pages strictly inside a byte range: the only memory {@code madvise(MADV_DONTNEED)} may drop
 * when a range is released, because a partial page at either end still holds bytes outside the range.
 *
 * <p>The arithmetic compares before it subtracts. QEMU once computed {@code mem_size - offset} in an
 * unsigned type when the rounded-up start lay past the range's end; the wrapped result asked madvise to
 * drop a huge range and crashed 32-bit builds. Here no subtraction can go negative.
 *
 * @param start  first byte of the first whole page (a multiple of the page size)
 * @param length bytes covered, a multiple of the page size; 0 when no whole page lies inside
 */
public record PageSpan(long start, long length) {
    public static final PageSpan EMPTY = new PageSpan(0, 0);

    /**
     * The whole pages inside {@code [offset, offset + length)}. {@code pageSize} must be a power of two;
     * {@code offset} and {@code length} non-negative, their sum not overflowing.
     */
    public static PageSpan inside(long offset, long length, long pageSize) {
        if (pageSize <= 0 || (pageSize & (pageSize - 1)) != 0) {
            throw new IllegalArgumentException("page size must be a power of two: " + pageSize);
        }
        if (offset < 0 || length < 0 || offset > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException("bad range: " + length + " bytes at " + offset);
        }
        long end = offset + length;
        long mask = pageSize - 1;
        if (offset > Long.MAX_VALUE - mask) {
            return EMPTY;
        }
        long start = (offset + mask) & ~mask;
        if (end <= start) {
            return EMPTY; // compare first: end - start would be negative
        }
        long whole = (end - start) & ~mask;
        return whole == 0 ? EMPTY : new PageSpan(start, whole);
    }

    public boolean isEmpty() {
        return length == 0;
    }
}
