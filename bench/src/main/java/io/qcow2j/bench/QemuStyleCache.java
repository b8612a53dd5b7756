package io.qcow2j.bench;

/**
 * The lookup QEMU's qcow2 cache does, for comparison: start at a hash of the offset
 * ({@code table number * 4 mod size}), probe linearly once around, remember the unreferenced entry with the
 * smallest LRU stamp as the victim. A hit stops early; a miss always walks every entry. Only the lookup and
 * eviction are modelled (the benchmark's misses load nothing), so the difference to
 * {@link io.qcow2j.engine.cache.MetadataCache} is the algorithm alone.
 *
 * <p>With {@code hashStart} false it is QEMU's lookup before the hash start was added (every search from
 * entry 0): the "430 comparisons per lookup" of that change's measurements.
 */
final class QemuStyleCache {
    private final long[] offsets;
    private final long[] lruStamps;
    private final int[] refs;
    private final int size;
    private final int tableShift;
    private final boolean hashStart;
    private long lruCounter;
    /** Entries compared over all lookups, to report comparisons per lookup as QEMU's history does. */
    long comparisons;
    long lookups;

    QemuStyleCache(int size, int tableSize) {
        this(size, tableSize, true);
    }

    QemuStyleCache(int size, int tableSize, boolean hashStart) {
        this.hashStart = hashStart;
        this.size = size;
        this.offsets = new long[size];
        this.lruStamps = new long[size];
        this.refs = new int[size];
        this.tableShift = Integer.numberOfTrailingZeros(tableSize);
    }

    /** Number of entries. */
    int capacity() {
        return size;
    }

    int get(long offset) {
        int start = hashStart ? (int) (((offset >>> tableShift) * 4) % size) : 0;
        int i = start;
        long minLru = Long.MAX_VALUE;
        int victim = -1;
        lookups++;
        do {
            comparisons++;
            if (offsets[i] == offset) {
                refs[i]++;
                return i;
            }
            if (refs[i] == 0 && lruStamps[i] < minLru) {
                minLru = lruStamps[i];
                victim = i;
            }
            if (++i == size) {
                i = 0;
            }
        } while (i != start);
        if (victim < 0) {
            throw new IllegalStateException("all entries referenced");
        }
        offsets[victim] = offset;
        refs[victim]++;
        return victim;
    }

    void put(int i) {
        if (--refs[i] == 0) {
            lruStamps[i] = ++lruCounter;
        }
    }
}
