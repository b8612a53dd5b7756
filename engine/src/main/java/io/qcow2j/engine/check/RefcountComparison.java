package io.qcow2j.engine.check;

import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.RefcountBlock;
import io.qcow2j.engine.format.RefcountTableEntry;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * QEMU's {@code compare_refcounts} and {@code check_oflag_copied}: the computed counts against the refcounts
 * stored in the image (corruptions, leaks, and in a repair pass the refcounts set right), then the COPIED
 * flags of the active L1 and L2 tables against a refcount of exactly one.
 */
final class RefcountComparison {
    private final CheckState st;
    private final ReferenceWalk walk;

    RefcountComparison(CheckState st, ReferenceWalk walk) {
        this.st = st;
        this.walk = walk;
    }


    /**
     * QEMU's {@code compare_refcounts}: every cluster's stored refcount (read through the refcount cache)
     * against the computed one.
     */
    void compareRefcounts() throws IOException {
        int rbBits = st.g.refcountBlockBits();
        st.highestCluster = 0;
        for (long block = 0; (block << rbBits) < st.nbClusters; block++) {
            long first = block << rbBits;
            long end = Math.min(st.nbClusters, first + (1L << rbBits));
            long blockOffset = block < st.refcountTable.length ? RefcountTableEntry.blockOffset(st.refcountTable[(int) block])
                    : 0;
            if (blockOffset == 0) {
                for (long i = st.counts.nextNonZero(first, end); i < end; i = st.counts.nextNonZero(i + 1, end)) {
                    mismatch(i, 0, st.counts.get(i));
                    st.highestCluster = i;
                }
                continue;
            }
            if (unreadableBlock(blockOffset, block)) {
                for (long i = first; i < end; i++) {
                    st.checkErrors++;
                    st.problems.accept("Can't get refcount for cluster " + i + ": Input/output error");
                }
                continue;
            }
            int h = st.refcountCache.get(blockOffset);
            try {
                MemorySegment t = st.refcountCache.table(h);
                for (long i = first; i < end; i++) {
                    long stored = RefcountBlock.get(t, i - first, st.order);
                    long computed = st.counts.get(i);
                    if (stored != 0 || computed != 0) {
                        st.highestCluster = i;
                    }
                    if (stored != computed) {
                        mismatch(i, stored, computed);
                    }
                }
            } finally {
                st.refcountCache.put(h);
            }
        }
    }

    /**
     * One cluster whose stored refcount is not the computed one. A stored 0 cannot be repaired in place (the
     * refcount structure must be rebuilt, QEMU's rule); otherwise a leak is repaired under {@code -r leaks}
     * and a refcount too low under {@code -r all}, by setting the stored refcount to the computed one.
     */
    private void mismatch(long cluster, long stored, long computed) {
        boolean leak = Long.compareUnsigned(stored, computed) > 0;
        boolean repair = false;
        if (stored == 0) {
            st.rebuild = true;
        } else {
            repair = (st.fix & (leak ? CheckState.FIX_LEAKS : CheckState.FIX_ERRORS)) != 0;
        }
        st.problems.accept((repair ? "Repairing" : leak ? "Leaked" : "ERROR") + " cluster " + cluster + " refcount="
                + CheckState.udec(stored) + " reference=" + CheckState.udec(computed));
        if (repair) {
            try {
                st.image.refcounts().set(cluster, computed);
                if (computed == 0) {
                    st.punchHole(cluster << st.cb);
                }
                if (leak) {
                    st.leaksFixed++;
                } else {
                    st.corruptionsFixed++;
                }
                return;
            } catch (IOException e) {
                // as in QEMU: the update failed, the problem stays and is counted below
            }
        }
        if (leak) {
            st.leaks++;
        } else {
            st.corruptions++;
        }
    }

    /**
     * Whether a refcount block cannot be read: unaligned (QEMU signals a corruption and fails the lookup) or
     * beyond the offsets a read may reach (the read fails).
     */
    private boolean unreadableBlock(long blockOffset, long tableIndex) throws IOException {
        if ((blockOffset & (st.cs - 1)) != 0) {
            if (!st.refblockCorruptionSignalled) {
                st.refblockCorruptionSignalled = true;
                String what = "Refblock offset 0x" + CheckState.hex(blockOffset) + " unaligned (reftable index: "
                        + (tableIndex == 0 ? "0" : "0x" + CheckState.hex(tableIndex)) + ")";
                if (st.repairing) {
                    // QEMU, writing, marks the image corrupt; a repair that ends consistent clears the bit
                    st.problems.accept("qcow2: Marking image as corrupt: " + what
                            + "; further corruption events will be suppressed");
                    st.image.headerWriter().setIncompatible(Qcow2Header.INCOMPAT_CORRUPT, true);
                } else {
                    st.problems.accept("qcow2: Image is corrupt: " + what
                            + "; further non-fatal corruption events will be suppressed");
                }
            }
            return true;
        }
        return !CheckState.readable(blockOffset, st.cs);
    }

    /** The stored refcount of a cluster; sets {@link #unreadable} if its refcount block cannot be read. */
    private long storedRefcount(long cluster) throws IOException {
        st.unreadable = false;
        long block = cluster >>> st.g.refcountBlockBits();
        if (block >= st.refcountTable.length) {
            return 0;
        }
        long blockOffset = RefcountTableEntry.blockOffset(st.refcountTable[(int) block]);
        if (blockOffset == 0) {
            return 0;
        }
        if (unreadableBlock(blockOffset, block)) {
            st.unreadable = true;
            return 0;
        }
        int h = st.refcountCache.get(blockOffset);
        try {
            return RefcountBlock.get(st.refcountCache.table(h), cluster & (st.g.refcountBlockEntries() - 1), st.order);
        } finally {
            st.refcountCache.put(h);
        }
    }

    /**
     * QEMU's {@code check_oflag_copied}: in the active tables, COPIED must be set exactly where the stored
     * refcount is 1. A refcount that cannot be read skips the entry (and, for an L2 table, the whole table)
     * silently: the comparison has already counted it as a check error. Repaired (the flag set or cleared)
     * under {@code -r all}, and under {@code -r leaks} when the refcounts are now right (no corruption, leak
     * or check error left), as in QEMU.
     */
    void checkCopiedFlags() throws IOException {
        boolean repair = (st.fix & CheckState.FIX_ERRORS) != 0
                || (st.fix & CheckState.FIX_LEAKS) != 0 && st.checkErrors == 0 && st.corruptions == 0 && st.leaks == 0;
        long[] l1 = st.image.activeL1();
        SharedL2 shared = SharedL2.of(l1); // an L2 table several entries point at is walked once for all
        for (int i = 0; i < l1.length; i++) {
            long l1e = l1[i];
            long l2Offset = l1e & L1Entry.OFFSET_MASK;
            if (l2Offset == 0) {
                continue;
            }
            int references = shared == null ? 1 : shared.firstVisit(l2Offset);
            long rc = storedRefcount(l2Offset >>> st.cb);
            if (st.unreadable) {
                continue;
            }
            if ((rc == 1) != L1Entry.isCopied(l1e)) {
                st.corruption((repair ? "Repairing" : "ERROR") + " OFLAG_COPIED L2 cluster: l1_index=" + i + " l1_entry="
                        + CheckState.hex(l1e) + " refcount=" + CheckState.udec(rc));
                if (repair) {
                    st.image.writeL1Entry(i, rc == 1 ? l1e | L1Entry.COPIED : l1e & ~L1Entry.COPIED);
                    st.corruptions--;
                    st.corruptionsFixed++;
                }
            }
            if (l2Offset >= st.fileSize || references == 0) {
                continue;
            }
            checkCopiedFlags(l2Offset, repair);
            if (references > 1) {
                // the other references find what the first walk left: the same problems, or none once repaired
                st.repeatQuietly(references - 1, "the L2 table at 0x" + CheckState.hex(l2Offset),
                        () -> checkCopiedFlags(l2Offset, repair));
            }
        }
    }

    /** The COPIED flags of the data clusters of the L2 table at {@code l2Offset}. */
    private void checkCopiedFlags(long l2Offset, boolean repair) throws IOException {
        long[] repaired = {0};
        walk.forEachL2Entry(l2Offset, true, (j, entry, bitmap) -> {
            ClusterType t = L2Entry.clusterType(entry, st.g);
            if (t != ClusterType.NORMAL && t != ClusterType.ZERO_ALLOC) {
                return;
            }
            long r = storedRefcount(L2Entry.hostClusterOffset(entry) >>> st.cb);
            if (!st.unreadable && (r == 1) != L2Entry.isCopied(entry)) {
                st.corruption((repair ? "Repairing" : "ERROR") + " OFLAG_COPIED data cluster: l2_entry=" + CheckState.hex(entry)
                        + " refcount=" + CheckState.udec(r));
                if (repair) {
                    walk.replaceWith(r == 1 ? entry | L2Entry.COPIED : entry & ~L2Entry.COPIED, bitmap);
                    repaired[0]++;
                }
            }
        });
        st.corruptions -= repaired[0] * st.times;
        st.corruptionsFixed += repaired[0];
    }
}
