package io.qcow2j.engine.qcow2;

import java.util.Arrays;

/**
 * The guest clusters whose new host clusters are being written and not yet linked (QEMU's list of
 * {@code QCowL2Meta} that {@code handle_dependencies} walks): a set of cluster indices in an open-addressing
 * table (linear probing, deletion by backward shift), so that adding, testing and removing allocate nothing
 * (a {@code HashSet<Long>} boxed every cluster and made a node for it: one or two objects per request).
 *
 * <p>Used only under the metadata lock. Invariant: every index in {@link #slots} is {@link #EMPTY} or a
 * member; a member lies in the run of occupied slots that starts at its home slot; {@link #size} counts the
 * members; at most half the slots are occupied, so a probe always ends at an empty slot.
 */
final class InFlightClusters {
    private static final long EMPTY = -1;

    private long[] slots = newSlots(64);
    private int size;

    private static long[] newSlots(int n) {
        long[] a = new long[n];
        Arrays.fill(a, EMPTY);
        return a;
    }

    private static int home(long cluster, int mask) {
        long h = cluster * 0x9E37_79B9_7F4A_7C15L; // Fibonacci hashing: neighbouring clusters spread out
        return (int) (h >>> 40) & mask;
    }

    boolean contains(long cluster) {
        int mask = slots.length - 1;
        for (int i = home(cluster, mask);; i = (i + 1) & mask) {
            long v = slots[i];
            if (v == cluster) {
                return true;
            }
            if (v == EMPTY) {
                return false;
            }
        }
    }

    /** Adds {@code cluster} (an index ≥ 0); false if it was a member already. */
    boolean add(long cluster) {
        if (cluster < 0) {
            throw new IllegalArgumentException("cluster index " + cluster);
        }
        if (2 * (size + 1) > slots.length) {
            grow();
        }
        int mask = slots.length - 1;
        for (int i = home(cluster, mask);; i = (i + 1) & mask) {
            long v = slots[i];
            if (v == cluster) {
                return false;
            }
            if (v == EMPTY) {
                slots[i] = cluster;
                size++;
                return true;
            }
        }
    }

    /** Removes {@code cluster} if it is a member. */
    void remove(long cluster) {
        int mask = slots.length - 1;
        int i = home(cluster, mask);
        while (slots[i] != cluster) {
            if (slots[i] == EMPTY) {
                return;
            }
            i = (i + 1) & mask;
        }
        // backward shift: move later members of the run into the gap when their home slot allows it
        int gap = i;
        for (int j = (gap + 1) & mask; slots[j] != EMPTY; j = (j + 1) & mask) {
            int h = home(slots[j], mask);
            boolean homeOutsideGapToJ = gap <= j ? (h <= gap || h > j) : (h <= gap && h > j);
            if (homeOutsideGapToJ) {
                slots[gap] = slots[j];
                gap = j;
            }
        }
        slots[gap] = EMPTY;
        size--;
    }

    int size() {
        return size;
    }

    private void grow() {
        long[] old = slots;
        slots = newSlots(old.length * 2);
        size = 0;
        for (long v : old) {
            if (v != EMPTY) {
                add(v);
            }
        }
    }
}
