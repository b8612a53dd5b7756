package io.qcow2j.engine.check;

import java.util.Arrays;

/**
 * The reference counts {@link ImageCheck} computes, one per host cluster of the image file (QEMU's
 * in-memory refcount table), in a form whose memory follows what is actually referenced.
 *
 * <p>Clusters are grouped in chunks of {@value #CHUNK} that are allocated on first use and widened only
 * as far as their largest count needs: a bitmap while every count is 0 or 1 (the common case: 4 KiB per
 * chunk), bytes up to 255 (32 KiB), longs beyond (256 KiB). The capacity is fixed at construction from
 * the file size, so memory is bounded by the real file (at most one byte per cluster unless counts pass
 * 255), whatever offsets the metadata holds.
 *
 * <p>Counts are unsigned; the caller keeps them at or below the image's refcount maximum.
 */
final class ClusterCounts {
    static final int CHUNK_BITS = 15;
    static final int CHUNK = 1 << CHUNK_BITS;
    private static final int MASK = CHUNK - 1;

    /** At most 2^31 clusters: the most a check (or a repair, which may grow the counts) handles. */
    static final long MAX_CAPACITY = 1L << 31;

    private long capacity;
    private long[][] bits;
    private byte[][] bytes;
    private long[][] wide;

    /** Counts for clusters {@code 0 .. capacity-1}; {@code capacity} at most 2^31. */
    ClusterCounts(long capacity) {
        if (capacity < 0 || capacity > MAX_CAPACITY) {
            throw new IllegalArgumentException("capacity " + capacity);
        }
        this.capacity = capacity;
        int chunks = (int) ((capacity + MASK) >>> CHUNK_BITS);
        this.bits = new long[chunks][];
        this.bytes = new byte[chunks][];
        this.wide = new long[chunks][];
    }

    long capacity() {
        return capacity;
    }

    /**
     * Grows the capacity to at least {@code capacity} clusters (new clusters count 0): a repair counts the
     * clusters it allocates past the end of the file.
     *
     * @throws IllegalArgumentException past {@link #MAX_CAPACITY}
     */
    void ensureCapacity(long capacity) {
        if (capacity <= this.capacity) {
            return;
        }
        if (capacity > MAX_CAPACITY) {
            throw new IllegalArgumentException("capacity " + capacity);
        }
        int chunks = (int) ((capacity + MASK) >>> CHUNK_BITS);
        bits = Arrays.copyOf(bits, chunks);
        bytes = Arrays.copyOf(bytes, chunks);
        wide = Arrays.copyOf(wide, chunks);
        this.capacity = capacity;
    }

    /** Sets every count to 0 and releases the memory (the capacity stays). */
    void clear() {
        Arrays.fill(bits, null);
        Arrays.fill(bytes, null);
        Arrays.fill(wide, null);
    }

    long get(long cluster) {
        check(cluster);
        int c = (int) (cluster >>> CHUNK_BITS);
        int i = (int) (cluster & MASK);
        if (wide[c] != null) {
            return wide[c][i];
        }
        if (bytes[c] != null) {
            return bytes[c][i] & 0xffL;
        }
        if (bits[c] != null) {
            return (bits[c][i >>> 6] >>> i) & 1;
        }
        return 0;
    }

    void set(long cluster, long value) {
        check(cluster);
        int c = (int) (cluster >>> CHUNK_BITS);
        int i = (int) (cluster & MASK);
        if (wide[c] != null) {
            wide[c][i] = value;
        } else if (bytes[c] != null && Long.compareUnsigned(value, 0xff) <= 0) {
            bytes[c][i] = (byte) value;
        } else if (bytes[c] != null) {
            long[] w = new long[CHUNK];
            for (int k = 0; k < CHUNK; k++) {
                w[k] = bytes[c][k] & 0xffL;
            }
            w[i] = value;
            wide[c] = w;
            bytes[c] = null;
        } else if (value == 0 || value == 1) {
            if (bits[c] == null) {
                if (value == 0) {
                    return;
                }
                bits[c] = new long[CHUNK / 64];
            }
            if (value == 1) {
                bits[c][i >>> 6] |= 1L << i;
            } else {
                bits[c][i >>> 6] &= ~(1L << i);
            }
        } else {
            byte[] b = new byte[CHUNK];
            if (bits[c] != null) {
                for (int k = 0; k < CHUNK; k++) {
                    b[k] = (byte) ((bits[c][k >>> 6] >>> k) & 1);
                }
                bits[c] = null;
            }
            bytes[c] = b;
            set(cluster, value);
        }
    }

    /** The first cluster in {@code [from, to)} whose count is not 0, or {@code to}. */
    long nextNonZero(long from, long to) {
        long end = Math.min(to, capacity);
        long i = Math.max(0, from);
        while (i < end) {
            int c = (int) (i >>> CHUNK_BITS);
            long chunkEnd = Math.min(end, ((long) c + 1) << CHUNK_BITS);
            if (wide[c] == null && bytes[c] == null && bits[c] == null) {
                i = chunkEnd;
                continue;
            }
            if (bits[c] != null) {
                long[] words = bits[c];
                while (i < chunkEnd) {
                    int k = (int) (i & MASK);
                    long w = words[k >>> 6] >>> k;
                    if (w != 0) {
                        long hit = i + Long.numberOfTrailingZeros(w);
                        return hit < chunkEnd ? hit : to;
                    }
                    i = (i | 63) + 1;
                }
                continue;
            }
            for (; i < chunkEnd; i++) {
                if (get(i) != 0) {
                    return i;
                }
            }
        }
        return to;
    }

    private void check(long cluster) {
        if (cluster < 0 || cluster >= capacity) {
            throw new IndexOutOfBoundsException("cluster " + cluster + " outside 0.." + (capacity - 1));
        }
    }
}
