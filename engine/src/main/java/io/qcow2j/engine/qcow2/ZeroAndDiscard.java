package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.SubclusterBitmap;
import io.qcow2j.engine.format.SubclusterType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Write zeroes and discard (QEMU's {@code qcow2_cluster_zeroize} and {@code qcow2_cluster_discard}): whole
 * clusters (with extended L2, subclusters) change their L2 entries, slice by slice under the metadata lock,
 * and the clusters they pointed at are freed after the entries changed (the refcount cache then waits for
 * the L2 cache). What is not whole clusters is written as zeros through {@link ClusterWriter}. Both run with
 * the request lock held exclusively, so no read or write uses a cluster while it is freed and reused.
 */
final class ZeroAndDiscard {
    private final ImageState s;
    private final ClusterMap map;
    private final ClusterWriter writer;

    ZeroAndDiscard(ImageState s, ClusterMap map, ClusterWriter writer) {
        this.s = s;
        this.map = map;
        this.writer = writer;
    }

    /**
     * The zero grain: version 3 images mark whole clusters (extended L2: subclusters) with the zero flag;
     * version 2 images have none (0): everything is written as zeros there.
     */
    private int grain() {
        return s.header.version() < 3 ? 0 : s.g.extendedL2() ? s.g.subclusterSize() : s.clusterSize;
    }

    /**
     * Makes {@code [offset, offset+length)} read as zeros. Whole grains are marked zero: with {@code mayUnmap}
     * their host clusters are freed, otherwise kept (QEMU's {@code write -z} versus {@code write -z -u});
     * compressed clusters are always freed. The rest is written as zeros.
     */
    void zero(long offset, long length, boolean mayUnmap) throws IOException {
        long end = offset + length;
        int grain = grain();
        long a = grain == 0 ? end : Math.min(end, (offset + grain - 1) & -(long) grain);
        long b = grain == 0 ? end : Math.max(a, end & -(long) grain);
        writeZeroBuffers(offset, a);
        EntryChange zero = (entry, bitmap, from, to) -> zeroEntry(entry, bitmap, from, to, mayUnmap);
        int cs = s.clusterSize;
        if (s.g.extendedL2() && a < b) {
            // Subclusters of a compressed cluster cannot be zeroed alone: those parts are written instead.
            long ca = Math.min(b, (a + cs - 1) & -(long) cs);
            long cb = Math.max(ca, b & -(long) cs);
            zeroPartialCluster(a, ca, zero);
            if (ca < cb) {
                rewriteEntries(ca, cb, true, zero);
            }
            zeroPartialCluster(cb, b, zero);
        } else if (a < b) {
            rewriteEntries(a, b, true, zero);
        }
        writeZeroBuffers(b, end);
    }

    /**
     * Whether {@link #zero} would change only L2 entries: the range is whole grains, and (extended L2) no
     * cluster it only partly covers is compressed (those parts would be written).
     */
    boolean zeroesByMetadataOnly(long offset, long length) throws IOException {
        if (length == 0) {
            return true;
        }
        int grain = grain();
        long end = offset + length;
        if (grain == 0 || ((offset | end) & (grain - 1)) != 0) {
            return false;
        }
        long inCluster = s.clusterSize - 1;
        return !s.g.extendedL2() || (((offset & inCluster) == 0 || !compressedAt(offset))
                && ((end & inCluster) == 0 || !compressedAt(end - 1)));
    }

    private boolean compressedAt(long guest) throws IOException {
        ClusterMap.Extent ext = new ClusterMap.Extent();
        map.map(guest, 1, ext);
        return ext.type == SubclusterType.COMPRESSED;
    }

    /**
     * Discards whole clusters of {@code [offset, offset+length)} (QEMU's guest discard): they read as zeros
     * and their host clusters are freed. Parts of clusters are left alone, except a last partial cluster at
     * the end of the image; a version 2 image with a backing file (no zero flag) discards nothing.
     */
    void discard(long offset, long length) throws IOException {
        int cs = s.clusterSize;
        long end = offset + length;
        long a = (offset + cs - 1) & -(long) cs;
        long b = end == s.header.size() ? end : end & -(long) cs;
        if (a >= b || (s.header.version() < 3 && s.backing != null)) {
            return; // without a zero flag, a discarded cluster would show stale backing data: QEMU declines too
        }
        rewriteEntries(a, b, s.backing != null, this::discardEntry);
    }

    private void zeroPartialCluster(long from, long to, EntryChange zero) throws IOException {
        if (from >= to) {
            return;
        }
        ClusterMap.Extent ext = new ClusterMap.Extent();
        map.map(from, to - from, ext);
        if (ext.type == SubclusterType.COMPRESSED) {
            writeZeroBuffers(from, to);
        } else {
            rewriteEntries(from, to, true, zero);
        }
    }

    private void writeZeroBuffers(long from, long to) throws IOException {
        if (from >= to) {
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment zeros = arena.allocate(Math.min(to - from, 1 << 20), 4096);
            for (long pos = from; pos < to; ) {
                MemorySegment part = zeros.asSlice(0, Math.min(zeros.byteSize(), to - pos));
                writer.write(pos, part);
                pos += part.byteSize();
            }
        }
    }

    /** A new L2 entry and bitmap for one cluster, and whether what the old one pointed at is freed. */
    private record EntryUpdate(long entry, long bitmap, boolean freeOld) {}

    @FunctionalInterface
    private interface EntryChange {
        /** The cluster's subclusters {@code [from, to)} are affected (all 32, or one, without extended L2). */
        EntryUpdate apply(long entry, long bitmap, int from, int to);
    }

    private EntryUpdate zeroEntry(long entry, long bitmap, int from, int to, boolean mayUnmap) {
        ClusterType type = L2Entry.clusterType(entry, s.g);
        if (s.g.extendedL2()) {
            boolean whole = from == 0 && to == s.g.subclustersPerCluster();
            if (!whole) {
                // (compressed clusters never come here: writeZeroes writes zeros over their parts)
                return new EntryUpdate(entry, (bitmap & ~SubclusterBitmap.allocatedRange(from, to))
                        | SubclusterBitmap.zeroRange(from, to), false);
            }
            boolean unmap = type == ClusterType.COMPRESSED || (mayUnmap && type.isAllocated());
            return new EntryUpdate(unmap ? 0 : entry, SubclusterBitmap.ALL_ZERO, unmap);
        }
        boolean unmap = type == ClusterType.COMPRESSED || (mayUnmap && type.isAllocated());
        return new EntryUpdate((unmap ? 0 : entry) | L2Entry.ZERO, 0, unmap);
    }

    private EntryUpdate discardEntry(long entry, long bitmap, int from, int to) {
        ClusterType type = L2Entry.clusterType(entry, s.g);
        if (s.backing == null && !type.isAllocated()) {
            return new EntryUpdate(entry, bitmap, false);
        }
        if (s.g.extendedL2()) {
            return new EntryUpdate(0, SubclusterBitmap.ALL_ZERO, type.isAllocated());
        }
        return new EntryUpdate(s.header.version() >= 3 ? L2Entry.ZERO : 0, 0, type.isAllocated());
    }

    /**
     * Rewrites the L2 entries of {@code [start, end)} (aligned to clusters, or with extended L2 to
     * subclusters) slice by slice under the metadata lock: entries first, then the old clusters freed (the
     * refcount cache then waits for the L2 cache). L2 tables that are missing are created only when
     * {@code createTables} (with a backing file an unallocated cluster must still become zero).
     */
    private void rewriteEntries(long start, long end, boolean createTables, EntryChange change) throws IOException {
        int cb = s.g.clusterBits();
        long tableSpan = (long) s.g.l2Entries() << cb;
        long pos = start;
        while (pos < end) {
            s.lock.lock();
            try {
                s.requireWritable();
                int l1Index = (int) s.g.l1Index(pos);
                long tableEnd = Math.min(end, (pos & -tableSpan) + tableSpan);
                long l2Offset = L1Entry.checkedL2Offset(s.l1.entry(l1Index), l1Index, s.g);
                if (l2Offset == 0 && !createTables) {
                    pos = tableEnd;
                    continue;
                }
                l2Offset = s.l1.ensureL2Table(l1Index);
                long sliceSpan = (long) s.sliceEntries << cb;
                long sliceEnd = Math.min(tableEnd, (pos & -sliceSpan) + sliceSpan);
                int l2Index = s.g.l2Index(pos);
                int slot = s.l2Cache.get(s.sliceOffset(l2Offset, l2Index));
                List<Long> toFree = new ArrayList<>();
                try {
                    boolean dirty = false;
                    for (long c = pos; c < sliceEnd; ) {
                        long clusterStart = c & -(long) s.clusterSize;
                        long clusterEnd = Math.min(sliceEnd, clusterStart + s.clusterSize);
                        int i = (s.g.l2Index(c) & (s.sliceEntries - 1)) * s.wordsPerEntry;
                        long entry = s.l2Cache.word(slot, i);
                        long bitmap = s.g.extendedL2() ? s.l2Cache.word(slot, i + 1) : 0;
                        L2Entry.checkedClusterType(entry, bitmap, s.g, l2Offset, s.g.l2Index(c));
                        int from = 0;
                        int to = 1;
                        if (s.g.extendedL2()) {
                            from = (int) ((c - clusterStart) >>> s.g.subclusterBits());
                            to = (int) ((clusterEnd - clusterStart) >>> s.g.subclusterBits());
                        }
                        EntryUpdate u = change.apply(entry, bitmap, from, to);
                        if (u.entry() != entry || u.bitmap() != bitmap) {
                            s.l2Cache.setWord(slot, i, u.entry());
                            if (s.g.extendedL2()) {
                                s.l2Cache.setWord(slot, i + 1, u.bitmap());
                            }
                            dirty = true;
                            if (u.freeOld()) {
                                toFree.add(entry);
                            }
                        }
                        c = clusterEnd;
                    }
                    if (dirty) {
                        s.l2Cache.markDirty(slot);
                    }
                } finally {
                    s.l2Cache.put(slot);
                }
                for (long old : toFree) {
                    s.freeAnyCluster(old, s.options.discardUnmap());
                }
                pos = sliceEnd;
            } catch (Qcow2FormatException e) {
                throw s.corrupted(e);
            } finally {
                s.lock.unlock();
            }
        }
    }
}
