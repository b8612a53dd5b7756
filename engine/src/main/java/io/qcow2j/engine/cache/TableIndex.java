package io.qcow2j.engine.cache;

/**
 * Image offset → cache slot, by open addressing with linear probing over two primitive arrays.
 *
 * <p>QEMU starts its scan at a hash of the offset, which makes hits cheap, but proving a miss still walks
 * every entry. Here the table has at least twice as many buckets as the cache has slots (load ≤ ½), so a
 * hit or a miss costs a couple of probes whatever the cache size. Deletion shifts later entries of the
 * probe run back (no tombstones), so probe lengths never degrade with churn. No allocation after
 * construction.
 */
final class TableIndex {
    /** 0 marks an empty bucket: offset 0 is never a table. */
    private final long[] keys;
    private final int[] slots;
    private final int mask;
    private final int shift;
    /** Keys are multiples of the table size: hash the table number, whose low bits all vary. */
    private final int keyShift;
    /** Probes of the last {@link #find} or {@link #insert}: the statistics read it. */
    int lastProbes;

    TableIndex(int entries, int tableSize) {
        keyShift = Integer.numberOfTrailingZeros(tableSize);
        int buckets = Integer.highestOneBit(Math.max(2, entries) * 2 - 1) << 1; // power of two ≥ 2 × entries
        keys = new long[buckets];
        slots = new int[buckets];
        mask = buckets - 1;
        shift = 64 - Integer.numberOfTrailingZeros(buckets);
    }

    /** Fibonacci hashing of the table number: consecutive tables spread evenly over the buckets. */
    private int home(long offset) {
        return (int) (((offset >>> keyShift) * 0x9E3779B97F4A7C15L) >>> shift) & mask;
    }

    /** The slot holding {@code offset}, or -1. */
    int find(long offset) {
        int b = home(offset);
        int probes = 1;
        while (true) {
            long k = keys[b];
            if (k == offset) {
                lastProbes = probes;
                return slots[b];
            }
            if (k == 0) {
                lastProbes = probes;
                return -1;
            }
            b = (b + 1) & mask;
            probes++;
        }
    }

    /**
     * As {@link #find}, for a reader racing the owner's changes (see {@link MetadataCache#peek}): no statistics,
     * and at most one pass over the buckets, so a probe run being shifted under it cannot keep it looping. The
     * answer may be wrong; the caller validates.
     */
    int findRacy(long offset) {
        int b = home(offset);
        for (int n = 0; n <= mask; n++) {
            long k = keys[b];
            if (k == offset) {
                return slots[b];
            }
            if (k == 0) {
                return -1;
            }
            b = (b + 1) & mask;
        }
        return -1;
    }

    /** Maps {@code offset} (not present, non-zero) to {@code slot}. */
    void insert(long offset, int slot) {
        int b = home(offset);
        while (keys[b] != 0) {
            b = (b + 1) & mask;
        }
        keys[b] = offset;
        slots[b] = slot;
    }

    /** Removes {@code offset}, which must be present. */
    void remove(long offset) {
        int b = home(offset);
        while (keys[b] != offset) {
            if (keys[b] == 0) {
                throw new IllegalStateException("offset 0x" + Long.toHexString(offset) + " not indexed");
            }
            b = (b + 1) & mask;
        }
        // Backward-shift deletion: move up any later entry of the run whose home is not in (hole, entry].
        int hole = b;
        int next = (hole + 1) & mask;
        while (keys[next] != 0) {
            int h = home(keys[next]);
            boolean movable = hole <= next ? (h <= hole || h > next) : (h <= hole && h > next);
            if (movable) {
                keys[hole] = keys[next];
                slots[hole] = slots[next];
                hole = next;
            }
            next = (next + 1) & mask;
        }
        keys[hole] = 0;
    }

    /** Empties the index. */
    void clear() {
        java.util.Arrays.fill(keys, 0L);
    }

    int buckets() {
        return keys.length;
    }
}
