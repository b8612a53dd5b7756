package io.qcow2j.engine.check;

import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.format.RefcountTableEntry;
import io.qcow2j.engine.format.SnapshotTable;
import io.qcow2j.engine.format.SubclusterBitmap;
import io.qcow2j.engine.qcow2.OverlapChecker;
import io.qcow2j.ffm.ErrnoException;
import io.qcow2j.ffm.LibC;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Objects;

/**
 * The walk of QEMU's {@code calculate_refcounts} over the image's metadata: every table and cluster a
 * structure references is counted once per reference ({@link CheckState#inc}); on the way, entries that
 * {@code -r all} can fix are replaced (unaligned preallocated zero clusters) and refcount blocks outside the
 * file are brought inside it. Reads tables in bounded pieces, past the end of the file as zeros.
 */
final class ReferenceWalk {
    private final CheckState st;

    ReferenceWalk(CheckState st) {
        this.st = st;
    }


    // ---------------------------------------------------------------- L1 and L2 tables

    /**
     * The entries of one L1 table (QEMU's {@code check_refcounts_l1} loop). An L2 table that several entries
     * point at is walked once, for all of them ({@link SharedL2}).
     */
    void l1Table(long[] l1, boolean active) throws IOException {
        SharedL2 shared = SharedL2.of(l1);
        for (long e : l1) {
            if (e != 0) {
                l1Entry(e, active, shared == null ? 1 : shared.firstVisit(e & L1Entry.OFFSET_MASK));
            }
        }
    }

    /**
     * One L1 entry of the active table; its L2 table is walked for {@code references} references (0: it was
     * walked already for this entry too).
     */
    private void l1Entry(long entry, boolean active, int references) throws IOException {
        if (entry == 0) {
            return;
        }
        walkL2(countL1Entry(entry), active, references);
    }

    /**
     * QEMU's checks of one nonzero L1 entry and the reference it makes to its L2 table (for {@link
     * CheckState#times} references); returns the L2 table's offset.
     */
    long countL1Entry(long entry) {
        if ((entry & L1Entry.RESERVED_MASK) != 0) {
            st.corruption("ERROR found L1 entry with reserved bits set: " + CheckState.hex(entry));
        }
        long l2Offset = entry & L1Entry.OFFSET_MASK;
        st.inc(l2Offset, st.cs);
        if ((l2Offset & (st.cs - 1)) != 0) {
            st.corruption("ERROR l2_offset=" + CheckState.hex(l2Offset) + ": Table is not cluster aligned; L1 entry corrupted");
        }
        return l2Offset;
    }

    /**
     * Walks the L2 table at {@code l2Offset} for {@code references} references: once printing what it finds,
     * then once more quietly for the other references (they see the table as the first walk left it: a
     * repair changed it in place). Returns the walks made.
     */
    int walkL2(long l2Offset, boolean active, long references) throws IOException {
        if (references <= 0) {
            return 0;
        }
        checkL2(l2Offset, active);
        if (references > 1 && l2Offset < st.fileSize) {
            st.repeatQuietly(references - 1, "the L2 table at 0x" + CheckState.hex(l2Offset),
                    () -> checkL2(l2Offset, active));
            return 2;
        }
        return 1;
    }

    /**
     * The entries of one L2 table: counts the clusters they reference and checks them (QEMU's
     * {@code check_refcounts_l2}). Fragmentation and allocation are counted for the active table only.
     */
    private void checkL2(long l2Offset, boolean active) throws IOException {
        if (l2Offset >= st.fileSize) {
            return; // reads as zeros: every entry unallocated, nothing to count or check
        }
        L2Walk walk = new L2Walk(active);
        forEachL2Entry(l2Offset, active, walk);
    }

    /** Receives the entries of one L2 table in order. */
    interface L2Visitor {
        void entry(int index, long entry, long bitmap) throws IOException;
    }

    /**
     * Reads the L2 table at {@code l2Offset}: through the L2 cache when it is an active table at an aligned
     * offset (the cache holds tables or slices aligned to their size), else directly from the file. An entry
     * the visitor replaces ({@link #replaceWith}, a repair) is changed in the cache (written back with it)
     * or, for a table read from the file, in the table, which is written back (and synced) after the walk.
     */
    void forEachL2Entry(long l2Offset, boolean active, L2Visitor v) throws IOException {
        int wordsPerEntry = st.g.extendedL2() ? 2 : 1;
        if (active && l2Offset != 0 && (l2Offset & (st.cs - 1)) == 0) {
            int sliceBytes = st.l2Cache.tableSize();
            int entriesPerSlice = sliceBytes / st.g.l2EntrySize();
            int slices = st.cs / sliceBytes;
            st.l2EntriesVisited += (long) slices * entriesPerSlice;
            for (int s = 0; s < slices; s++) {
                int h = st.l2Cache.get(l2Offset + (long) s * sliceBytes);
                try {
                    for (int j = 0; j < entriesPerSlice; j++) {
                        long e = st.l2Cache.word(h, j * wordsPerEntry);
                        long b = wordsPerEntry == 2 ? st.l2Cache.word(h, j * 2 + 1) : 0;
                        st.replace = false;
                        v.entry(s * entriesPerSlice + j, e, b);
                        if (st.replace) {
                            st.l2Cache.setWord(h, j * wordsPerEntry, st.replaceEntry);
                            if (wordsPerEntry == 2) {
                                st.l2Cache.setWord(h, j * 2 + 1, st.replaceBitmap);
                            }
                            st.l2Cache.markDirty(h);
                            st.l2Repaired = true;
                        }
                    }
                } finally {
                    st.l2Cache.put(h);
                }
            }
            return;
        }
        st.readZeroPadded(l2Offset, st.tableBuf);
        int n = st.g.l2Entries();
        st.l2EntriesVisited += n;
        boolean changed = false;
        for (int j = 0; j < n; j++) {
            long e = st.tableBuf.getAtIndex(CheckState.BE64, (long) j * wordsPerEntry);
            long b = wordsPerEntry == 2 ? st.tableBuf.getAtIndex(CheckState.BE64, (long) j * 2 + 1) : 0;
            st.replace = false;
            v.entry(j, e, b);
            if (st.replace) {
                st.tableBuf.setAtIndex(CheckState.BE64, (long) j * wordsPerEntry, st.replaceEntry);
                if (wordsPerEntry == 2) {
                    st.tableBuf.setAtIndex(CheckState.BE64, (long) j * 2 + 1, st.replaceBitmap);
                }
                changed = true;
            }
        }
        if (changed) {
            st.image.refuseOverlap(l2Offset, st.cs, active ? OverlapChecker.ACTIVE_L2 : 0);
            st.file.write(l2Offset, st.tableBuf);
            st.image.syncMetadata();
            st.image.noteFileEnd(l2Offset + st.cs);
        }
    }

    /** Called by an L2 visitor: the entry it is visiting becomes {@code entry} (and {@code bitmap}). */
    void replaceWith(long entry, long bitmap) {
        st.replace = true;
        st.replaceEntry = entry;
        st.replaceBitmap = bitmap;
    }

    /** QEMU's checks and counts of one L2 table's entries. */
    private final class L2Walk implements L2Visitor {
        private final boolean active;
        private long nextContiguous;

        L2Walk(boolean active) {
            this.active = active;
        }

        @Override
        public void entry(int i, long entry, long bitmap) throws IOException {
            ClusterType type = L2Entry.clusterType(entry, st.g);
            if (type != ClusterType.COMPRESSED && (entry & L2Entry.STD_RESERVED_MASK) != 0) {
                st.corruption("ERROR found l2 entry with reserved bits set: " + CheckState.hex(entry));
            }
            switch (type) {
                case COMPRESSED -> compressed(i, entry, bitmap);
                case NORMAL, ZERO_ALLOC -> allocated(entry, bitmap);
                case UNALLOCATED -> {
                    if ((bitmap & SubclusterBitmap.ALL_ALLOCATED) != 0) {
                        st.corruption("ERROR: Unallocated cluster has non-zero subcluster allocation map");
                    }
                }
                case ZERO_PLAIN -> { }
            }
        }

        private void compressed(int i, long entry, long bitmap) {
            if (L2Entry.isCopied(entry)) {
                st.corruption("ERROR: coffset=0x" + CheckState.hex(CompressedCluster.hostOffset(entry, st.cb))
                        + ": copied flag must never be set for compressed clusters");
                entry &= ~L2Entry.COPIED;
            }
            if (bitmap != 0) {
                st.corruption("ERROR compressed cluster " + i + " with non-zero subcluster allocation bitmap, entry=0x"
                        + CheckState.hex(entry));
                return;
            }
            st.inc(CompressedCluster.hostOffset(entry, st.cb), CompressedCluster.compressedSize(entry, st.cb));
            if (active) {
                st.allocated += st.times;
                st.compressed += st.times;
                // Compressed clusters are fragmented by nature: neighbours share sectors, which are re-read.
                st.fragmented += st.times;
            }
        }

        private void allocated(long entry, long bitmap) {
            long offset = L2Entry.hostClusterOffset(entry);
            if (((bitmap >>> 32) & bitmap) != 0) {
                st.corruption("ERROR offset=" + CheckState.hex(offset) + ": Allocated cluster has corrupted subcluster allocation"
                        + " bitmap");
            }
            if ((offset & (st.cs - 1)) != 0) {
                boolean containsData = st.g.extendedL2() ? (bitmap & SubclusterBitmap.ALL_ALLOCATED) != 0
                        : !L2Entry.hasZeroFlag(entry);
                boolean fixErrors = (st.fix & CheckState.FIX_ERRORS) != 0;
                if (containsData) {
                    st.corruption("ERROR offset=" + CheckState.hex(offset) + ": Data cluster is not properly aligned; L2 entry"
                            + " corrupted.");
                } else {
                    st.corruption((fixErrors ? "Repairing" : "ERROR") + " offset=" + CheckState.hex(offset)
                            + ": Preallocated cluster is not properly aligned; L2 entry corrupted.");
                    if (fixErrors) {
                        // QEMU's fix_l2_entry_by_zero: the cluster reads as zeros without a host cluster
                        if (st.g.extendedL2()) {
                            replaceWith(0, (bitmap | bitmap << 32) & SubclusterBitmap.ALL_ZERO);
                        } else {
                            replaceWith(L2Entry.ZERO, 0);
                        }
                        st.corruptions--;
                        st.corruptionsFixed++;
                        return; // nothing is referenced any more
                    }
                }
            }
            if (active) {
                st.allocated += st.times;
                if (nextContiguous != 0 && offset != nextContiguous) {
                    st.fragmented += st.times;
                }
                nextContiguous = offset + st.cs;
            }
            st.inc(offset, st.cs);
        }
    }

    // ---------------------------------------------------------------- snapshot table

    List<Qcow2Snapshot> readSnapshots() throws IOException {
        try {
            return SnapshotTable.read(st.file, st.header);
        } catch (Qcow2FormatException e) {
            throw new Qcow2FormatException(st.image.filename() + ": failed to read the snapshot table: " + e.getMessage());
        }
    }

    /** Bytes of the snapshot table, from its start to the end of its last entry (QEMU's snapshots_size). */
    long snapshotTableSize(int count) throws IOException {
        long pos = 0;
        MemorySegment h = st.pieceBuf.asSlice(0, Qcow2Snapshot.HEADER_SIZE);
        for (int i = 0; i < count; i++) {
            pos = (pos + 7) & ~7L;
            st.readZeroPadded(st.header.snapshotsOffset() + pos, h);
            int idSize = h.get(CheckState.BE16, 12) & 0xffff;
            int nameSize = h.get(CheckState.BE16, 14) & 0xffff;
            long extraSize = h.get(CheckState.BE32, 36) & 0xffff_ffffL;
            pos += Qcow2Snapshot.HEADER_SIZE + extraSize + idSize + nameSize;
        }
        return pos;
    }

    // ---------------------------------------------------------------- refcount structures

    long[] readRefcountTable() throws IOException {
        long bytes = st.reftableClusters << st.cb; // ≤ 8 MiB by the header's validation (and a rebuild's)
        long[] table = new long[(int) (bytes / 8)];
        long done = 0;
        while (done < bytes) {
            int n = (int) Math.min(CheckState.PIECE, bytes - done);
            MemorySegment piece = st.pieceBuf.asSlice(0, n);
            st.readZeroPadded(st.reftableOffset + done, piece);
            MemorySegment.copy(piece, CheckState.BE64, 0, table, (int) (done / 8), n / 8);
            done += n;
        }
        return table;
    }

    /**
     * QEMU's {@code check_refblocks}: each refcount block must be inside the image and used once. A block
     * that is not (or whose entry is broken) means the refcount structure must be rebuilt; with
     * {@code -r all} a block past the end of the file is brought inside it by growing the file, as in QEMU.
     */
    void checkRefblocks() throws IOException {
        for (int i = 0; i < st.refcountTable.length; i++) {
            long raw = st.refcountTable[i];
            long offset = RefcountTableEntry.blockOffset(raw);
            if ((raw & RefcountTableEntry.RESERVED_MASK) != 0) {
                st.corruption("ERROR refcount table entry " + i + " has reserved bits set");
                st.rebuild = true;
                continue;
            }
            if ((offset & (st.cs - 1)) != 0) {
                st.corruption("ERROR refcount block " + i + " is not cluster aligned; refcount table entry corrupted");
                st.rebuild = true;
                continue;
            }
            long cluster = offset >>> st.cb;
            if (Long.compareUnsigned(cluster, st.nbClusters) >= 0) {
                boolean fixErrors = (st.fix & CheckState.FIX_ERRORS) != 0;
                st.corruption((fixErrors ? "Repairing" : "ERROR") + " refcount block " + i + " is outside image");
                if (fixErrors) {
                    String failure = growFileOver(offset);
                    if (failure == null && Long.compareUnsigned(cluster, st.nbClusters) < 0) {
                        st.corruptions--;
                        st.corruptionsFixed++;
                        st.inc(offset, st.cs); // a zeroed block, just allocated: refcount exactly 1
                        continue;
                    }
                    st.rebuild = true;
                    st.problems.accept("ERROR could not resize image: " + (failure != null ? failure : "Invalid argument"));
                }
                continue;
            }
            if (offset != 0) {
                st.inc(offset, st.cs);
                long c = st.counts.get(cluster);
                if (c != 1) {
                    st.corruption("ERROR refcount block " + i + " refcount=" + CheckState.udec(c));
                    st.rebuild = true;
                }
            }
        }
    }

    /**
     * Grows the file to the end of the cluster at {@code offset} (QEMU truncates it there); returns why it
     * could not (after QEMU's "Could not resize file" line for a failed truncation), or null. The file may
     * not grow past 2^31 clusters, the most a check handles (a larger file is refused as too large, as a
     * file system refuses QEMU's truncation past its limit).
     */
    private String growFileOver(long offset) throws IOException {
        if (offset < 0 || offset > Long.MAX_VALUE - st.cs) {
            return "Invalid argument";
        }
        long newSize = offset + st.cs;
        String failure = null;
        if (((newSize + st.cs - 1) >>> st.cb) + 1 > ClusterCounts.MAX_CAPACITY) {
            failure = "File too large";
        } else {
            try {
                st.file.truncate(newSize);
            } catch (ErrnoException e) {
                failure = LibC.strerror(e.errno());
            } catch (IOException e) {
                failure = Objects.requireNonNullElse(e.getMessage(), "Input/output error");
            }
        }
        if (failure != null) {
            st.problems.accept("Could not resize file: " + failure); // qemu-img: error_report_err
            return failure;
        }
        st.fileSize = st.file.size();
        st.image.noteFileEnd(st.fileSize);
        long fileClusters = st.fileClusters();
        st.counts.ensureCapacity(fileClusters + 1);
        st.nbClusters = Math.max(st.nbClusters, fileClusters);
        return null;
    }
}
