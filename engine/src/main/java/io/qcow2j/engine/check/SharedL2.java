package io.qcow2j.engine.check;

import io.qcow2j.engine.format.L1Entry;
import java.util.Arrays;

/**
 * The L2 tables that several entries of one L1 table point at, with how many entries point at each: so that
 * a check walks such a table once for all its references instead of once per reference, and stays bounded by
 * the size of the file when a hostile L1 table points 4 million entries at one L2 table (QEMU walks the table
 * again for every entry, counting each reference; the counts here are the same).
 *
 * <p>Memory: a sorted copy of the L1 table's offsets (the L1 table is in memory already, at most
 * {@code Qcow2Header.MAX_L1_BYTES}).
 */
final class SharedL2 {
    private final long[] offsets;
    private final int[] counts;
    private final boolean[] visited;

    private SharedL2(long[] offsets, int[] counts) {
        this.offsets = offsets;
        this.counts = counts;
        this.visited = new boolean[offsets.length];
    }

    /** The shared L2 tables of {@code l1}, or null when no two entries point at the same offset. */
    static SharedL2 of(long[] l1) {
        long[] sorted = new long[l1.length];
        int n = 0;
        for (long e : l1) {
            if (e != 0) {
                sorted[n++] = e & L1Entry.OFFSET_MASK;
            }
        }
        Arrays.sort(sorted, 0, n);
        int distinct = 0;
        for (int i = 0; i < n; i++) {
            if (i == 0 || sorted[i] != sorted[i - 1]) {
                distinct++;
            }
        }
        if (distinct == n) {
            return null;
        }
        long[] offsets = new long[distinct];
        int[] counts = new int[distinct];
        int d = -1;
        for (int i = 0; i < n; i++) {
            if (i == 0 || sorted[i] != sorted[i - 1]) {
                offsets[++d] = sorted[i];
            }
            counts[d]++;
        }
        return new SharedL2(offsets, counts);
    }

    /**
     * How many entries point at the L2 table at {@code l2Offset} if this is the first time it is asked for
     * (the walk of the table is to count that many references), else 0 (already walked).
     */
    int firstVisit(long l2Offset) {
        int i = Arrays.binarySearch(offsets, l2Offset);
        if (visited[i]) {
            return 0;
        }
        visited[i] = true;
        return counts[i];
    }
}
