package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.RefcountBlock;
import java.io.IOException;

/**
 * QEMU's {@code qcow2_update_snapshot_refcount}: walks one L1 table (active or a snapshot's) and changes
 * the refcount of every L2 table it names and of every cluster those tables reference, or fixes the COPIED
 * flags of the active tables after such a change.
 *
 * <p>Order, for crash safety: {@link #change} only touches refcount blocks; {@link #fixCopiedFlags} runs
 * after the refcounts it reads are durable (the caller flushes the refcount cache in between), so a
 * COPIED flag never reaches the disk while the cluster's refcount there is above 1. A crash between the two
 * leaves leaked clusters and at worst refcount-1 clusters without the flag (extra copy-on-write, which
 * {@code qemu-img check -r all} clears), never a shared cluster marked as owned.
 */
final class SnapshotRefcounts {
    private final ImageState s;

    SnapshotRefcounts(ImageState s) {
        this.s = s;
    }

    /**
     * Adds {@code addend} (+1 or -1) to the refcount of every L2 table in {@code l1} and of every cluster
     * those tables reference. Clusters whose refcount drops to 0 are discarded in the file (QEMU's
     * {@code pass-discard-snapshot}, on by default). Holds the metadata lock.
     */
    void change(long[] l1, int addend) throws IOException {
        walk(l1, (i, l2) -> changeRange(l2, s.clusterSize, addend), (sliceOffset, entries) -> {
            for (long e : entries) {
                changeCluster(e, addend);
            }
        });
    }

    /**
     * Whether every cluster {@code l1} reaches can take one more reference within the refcount width (checked
     * before a snapshot is created, so that a refusal changes nothing). Holds the metadata lock.
     */
    boolean fitsOneMore(long[] l1) throws IOException {
        long max = RefcountBlock.maxValue(s.g.refcountOrder());
        boolean[] fits = {true};
        walk(l1, (i, l2) -> fits[0] &= below(s.refcounts.get(l2 >>> s.g.clusterBits()), max), (sliceOffset, entries) -> {
            for (long e : entries) {
                if (pointsAtHostCluster(e)) {
                    fits[0] &= below(s.refcounts.get(L2Entry.hostClusterOffset(e) >>> s.g.clusterBits()), max);
                } else if (L2Entry.clusterType(e, s.g) == ClusterType.COMPRESSED) {
                    int bits = s.g.clusterBits();
                    long start = CompressedCluster.hostOffset(e, bits) & ~511L;
                    long end = start + (CompressedCluster.additionalSectors(e, bits) + 1L) * 512;
                    for (long c = start >>> bits; c <= (end - 1) >>> bits; c++) {
                        fits[0] &= below(s.refcounts.get(c), max);
                    }
                }
            }
        });
        return fits[0];
    }

    /** Refcounts are unsigned (64-bit ones use the sign bit). */
    private static boolean below(long refcount, long max) {
        return Long.compareUnsigned(refcount, max) < 0;
    }

    /** What a walk does with one slice of an L2 table (its entries' first words), and after each table. */
    private interface SliceVisitor {
        void slice(long sliceOffset, long[] entries) throws IOException;
    }

    private interface TableVisitor {
        void table(int l1Index, long l2Offset) throws IOException;
    }

    /** Visits every slice of every L2 table {@code l1} names, then the table itself. */
    private void walk(long[] l1, TableVisitor afterTable, SliceVisitor slice) throws IOException {
        int tableSize = s.l2Cache.tableSize();
        int slices = s.clusterSize / tableSize;
        int perSlice = tableSize / s.g.l2EntrySize();
        for (int i = 0; i < l1.length; i++) {
            long l2 = L1Entry.checkedL2Offset(l1[i], i, s.g);
            if (l2 == 0) {
                continue;
            }
            for (int k = 0; k < slices; k++) {
                long sliceOffset = l2 + (long) k * tableSize;
                slice.slice(sliceOffset, readSlice(sliceOffset, perSlice));
            }
            afterTable.table(i, l2);
        }
    }

    private void changeCluster(long entry, int addend) throws IOException {
        switch (L2Entry.clusterType(entry, s.g)) {
            case NORMAL, ZERO_ALLOC -> changeRange(L2Entry.hostClusterOffset(entry), s.clusterSize, addend);
            case COMPRESSED -> {
                int bits = s.g.clusterBits();
                long start = CompressedCluster.hostOffset(entry, bits) & ~511L;
                s.refcounts.change(start, (CompressedCluster.additionalSectors(entry, bits) + 1L) * 512, addend);
            }
            case UNALLOCATED, ZERO_PLAIN -> {}
        }
    }

    private void changeRange(long host, long length, int addend) throws IOException {
        s.refcounts.change(host, length, addend);
        if (addend < 0 && s.refcounts.get(host >>> s.g.clusterBits()) == 0) {
            try {
                s.file.punchHole(host, length);
            } catch (IOException e) {
                // discard is advisory: a filesystem that cannot punch keeps the bytes
            }
        }
    }

    /**
     * Sets the COPIED flag of every entry of the active tables whose cluster has refcount 1, clears it on the
     * others (QEMU's addend 0); the L2 slices change in the L2 cache (dirty). Returns the L1 entries with
     * their flags fixed (the caller writes them). Holds the metadata lock.
     */
    long[] fixCopiedFlags(long[] l1) throws IOException {
        return setCopiedFlags(l1, false);
    }

    /**
     * Clears the COPIED flag of every entry of the active tables (before their refcounts are raised for a new
     * snapshot: a crash in between then leaves refcount-1 clusters without the flag, never a flag on a
     * cluster whose refcount says it is shared). Returns the L1 entries without the flag.
     */
    long[] clearCopiedFlags(long[] l1) throws IOException {
        return setCopiedFlags(l1, true);
    }

    private long[] setCopiedFlags(long[] l1, boolean clearAll) throws IOException {
        long[] out = l1.clone();
        walk(l1, (i, l2) -> {
            boolean owned = !clearAll && s.refcounts.get(l2 >>> s.g.clusterBits()) == 1;
            out[i] = owned ? l1[i] | L1Entry.COPIED : l1[i] & ~L1Entry.COPIED;
        }, (sliceOffset, entries) -> {
            for (int j = 0; j < entries.length; j++) {
                long e = entries[j];
                if (!pointsAtHostCluster(e)) {
                    continue;
                }
                boolean owned = !clearAll
                        && s.refcounts.get(L2Entry.hostClusterOffset(e) >>> s.g.clusterBits()) == 1;
                long fixed = owned ? e | L2Entry.COPIED : e & ~L2Entry.COPIED;
                if (fixed != e) {
                    int t = s.l2Cache.get(sliceOffset);
                    try {
                        s.l2Cache.setWord(t, j * s.wordsPerEntry, fixed);
                        s.l2Cache.markDirty(t);
                    } finally {
                        s.l2Cache.put(t);
                    }
                }
            }
        });
        return out;
    }

    /** The first words of the {@code perSlice} L2 entries of the slice at {@code sliceOffset}. */
    private long[] readSlice(long sliceOffset, int perSlice) throws IOException {
        long[] entries = new long[perSlice];
        int t = s.l2Cache.get(sliceOffset);
        try {
            for (int j = 0; j < perSlice; j++) {
                entries[j] = s.l2Cache.word(t, j * s.wordsPerEntry);
            }
        } finally {
            s.l2Cache.put(t);
        }
        return entries;
    }

    /** Data and preallocated zero clusters carry the COPIED flag; compressed ones never do. */
    private boolean pointsAtHostCluster(long entry) {
        return switch (L2Entry.clusterType(entry, s.g)) {
            case NORMAL, ZERO_ALLOC -> true;
            default -> false;
        };
    }
}
