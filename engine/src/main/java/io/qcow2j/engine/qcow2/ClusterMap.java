package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.SubclusterType;
import java.io.IOException;

/**
 * Guest offset to host cluster: the L1 entry, then the L2 entry in its cached slice (QEMU's
 * {@code qcow2_get_host_offset}). One lookup maps a run of guest bytes of one type, contiguous in the file,
 * within one L2 slice (and, with extended L2, within one cluster).
 *
 * <p>A lookup first runs without the metadata lock, on a slice that is already cached ({@code peek}), and is
 * kept only if no thread held the lock meanwhile ({@link MetadataLock}'s seqlock): the common case of a
 * read of mapped data takes no lock at all. Otherwise it runs under the lock; a miss there reads the slice
 * with the lock released ({@code getReleasingLock}), which is safe because nothing read before the miss but
 * the L1 entry is kept across it, and a concurrent change of that entry is a race the request lost, as if
 * it had come first.
 *
 * <p>Nothing read from the file is trusted: every L2 offset is checked for alignment and against the end of
 * the file, every entry classified with QEMU's corruption checks. Corrupt metadata is a corruption event and
 * a one-line {@link Qcow2FormatException} naming the image.
 */
final class ClusterMap {
    private final ImageState s;

    ClusterMap(ImageState s) {
        this.s = s;
    }

    /** One mapped run of guest bytes: what they are and where they live. Reused within a request. */
    static final class Extent {
        /** The L2 slice an optimistic lookup read (to report the hit once validated), else -1. */
        int sharedSlot;
        SubclusterType type;
        /** Host offset of the first byte (NORMAL, ZERO_ALLOC, UNALLOCATED_ALLOC), else -1. */
        long host;
        /** The L2 entry (for COMPRESSED: the descriptor). */
        long entry;
        long bytes;
    }

    /** Maps {@code guest} (at most {@code max} bytes) into {@code ext}: optimistically first, else under the lock. */
    void map(long guest, long max, Extent ext) throws IOException {
        if (mapOptimistically(guest, max, ext)) {
            return;
        }
        MetadataLock lock = s.lock;
        lock.lock();
        try {
            lookup(guest, max, ext, false);
        } catch (Qcow2FormatException e) {
            throw s.corrupted(e);
        } finally {
            lock.unlock();
        }
    }

    /** The lookup without the lock, kept if no thread held the lock meanwhile (then the hit is reported). */
    private boolean mapOptimistically(long guest, long max, Extent ext) {
        MetadataLock lock = s.lock;
        long version = lock.optimisticVersion();
        if (version == MetadataLock.HELD) {
            return false;
        }
        try {
            if (lookup(guest, max, ext, true) && lock.validate(version)) {
                if (ext.sharedSlot >= 0) {
                    s.l2Cache.touch(ext.sharedSlot);
                }
                return true;
            }
        } catch (IOException | RuntimeException e) {
            // metadata read while a lock holder changed it, or a closing cache: the locked path decides
        }
        return false;
    }

    /**
     * Maps {@code guest} as {@link #map} does, but only from a slice already in the cache and without waiting:
     * optimistically, else under the metadata lock if it is free at once. Returns false, with {@code ext}
     * meaningless, when that is not possible (a miss, the lock held, metadata that is not as it should be):
     * the caller then takes the general path, which loads, waits and reports corruption.
     */
    boolean mapCached(long guest, long max, Extent ext) {
        if (mapOptimistically(guest, max, ext)) {
            return true;
        }
        MetadataLock lock = s.lock;
        if (!lock.tryLock()) {
            return false;
        }
        try {
            // under the lock, peek finds what get would without loading anything; a miss returns false
            if (!lookup(guest, max, ext, true)) {
                return false;
            }
            if (ext.sharedSlot >= 0) {
                s.l2Cache.touch(ext.sharedSlot);
            }
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        } finally {
            lock.unlock();
        }
    }

    /**
     * One lookup. Holds the metadata lock, or ({@code optimistic}) reads without it what the caller then
     * validates; returns false when that needs the lock (the slice is not cached).
     */
    private boolean lookup(long guest, long max, Extent ext, boolean optimistic) throws IOException {
        ext.sharedSlot = -1;
        int cb = s.g.clusterBits();
        int cs = s.clusterSize;
        long inCluster = guest & (cs - 1);
        long tableSpan = (long) s.g.l2Entries() << cb;
        long limit = Math.min(max, tableSpan - (guest & (tableSpan - 1)));
        long l1Index = s.g.l1Index(guest);
        long l2Offset = s.l1.l2Offset(l1Index);
        if (l2Offset == 0) {
            set(ext, SubclusterType.UNALLOCATED_PLAIN, -1, 0, limit);
            return true;
        }
        if (l2Offset > s.fileEnd() - cs) {
            throw new Qcow2FormatException("L2 table offset 0x" + Long.toHexString(l2Offset) + " (L1 index "
                    + l1Index + ") is past the end of the file");
        }
        int l2Index = s.g.l2Index(guest);
        int inSlice = l2Index & (s.sliceEntries - 1);
        long sliceOffset = s.sliceOffset(l2Offset, l2Index);
        limit = Math.min(limit, ((long) (s.sliceEntries - inSlice) << cb) - inCluster);
        int slot = optimistic ? s.l2Cache.peek(sliceOffset) : s.l2Cache.getReleasingLock(sliceOffset);
        if (slot < 0) {
            return false;
        }
        try {
            long entry = s.l2Cache.word(slot, inSlice * s.wordsPerEntry);
            if (s.g.extendedL2()) {
                mapSubclusters(slot, entry, l2Offset, l2Index, inSlice, guest, limit, ext);
            } else {
                mapClusters(slot, entry, l2Offset, l2Index, inSlice, inCluster, limit, ext);
            }
            ext.sharedSlot = optimistic ? slot : -1;
            return true;
        } finally {
            if (!optimistic) {
                s.l2Cache.put(slot);
            }
        }
    }

    /** Standard L2: a run of clusters of the same type (and contiguous in the file), within the slice. */
    private void mapClusters(int slot, long entry, long l2Offset, int l2Index, int inSlice, long inCluster,
            long limit, Extent ext) throws IOException {
        int cb = s.g.clusterBits();
        ClusterType type = L2Entry.checkedClusterType(entry, 0, s.g, l2Offset, l2Index);
        SubclusterType st = L2Entry.subclusterType(type, 0, 0, s.g);
        long hostCluster = type == ClusterType.NORMAL || type == ClusterType.ZERO_ALLOC
                ? L2Entry.hostClusterOffset(entry) : -1;
        long bytes = s.clusterSize - inCluster;
        if (type != ClusterType.COMPRESSED) {
            for (int i = inSlice + 1; i < s.sliceEntries && bytes < limit; i++) {
                long e = s.l2Cache.word(slot, i);
                ClusterType t = L2Entry.checkedClusterType(e, 0, s.g, l2Offset, l2Index + (i - inSlice));
                if (t != type || (hostCluster >= 0
                        && L2Entry.hostClusterOffset(e) != hostCluster + ((long) (i - inSlice) << cb))) {
                    break;
                }
                bytes += s.clusterSize;
            }
        }
        set(ext, st, hostCluster >= 0 ? hostCluster + inCluster : -1, entry, Math.min(bytes, limit));
    }

    /** Extended L2: one run of subclusters of the same type, within the cluster. */
    private void mapSubclusters(int slot, long entry, long l2Offset, int l2Index, int inSlice, long guest, long limit,
            Extent ext) throws IOException {
        long bitmap = s.l2Cache.word(slot, inSlice * 2 + 1);
        int sc = s.g.subclusterIndex(guest);
        SubclusterType st = L2Entry.checkedSubclusterType(entry, bitmap, sc, s.g, l2Offset, l2Index);
        int scSize = s.g.subclusterSize();
        long inCluster = guest & (s.clusterSize - 1);
        long bytes = (long) (sc + 1) * scSize - inCluster;
        for (int i = sc + 1; i < s.g.subclustersPerCluster() && bytes < limit; i++) {
            if (L2Entry.subclusterType(L2Entry.clusterType(entry, s.g), bitmap, i, s.g) != st) {
                break;
            }
            bytes += scSize;
        }
        long hostCluster = L2Entry.hostClusterOffset(entry);
        boolean hasHost = st == SubclusterType.NORMAL || st == SubclusterType.ZERO_ALLOC
                || st == SubclusterType.UNALLOCATED_ALLOC;
        set(ext, st, hasHost ? hostCluster + inCluster : -1, entry, Math.min(bytes, limit));
    }

    private static void set(Extent ext, SubclusterType type, long host, long entry, long bytes) {
        ext.type = type;
        ext.host = host;
        ext.entry = entry;
        ext.bytes = bytes;
    }
}
