package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.SnapshotNotFoundException;
import io.qcow2j.engine.SnapshotRef;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

/**
 * The active L1 table: one entry per L2 table, read at open and kept in memory (at most 32 MiB, by the
 * header's validation), every change written and synced in place before the in-memory entry changes. Also
 * QEMU's {@code l2_allocate}: a missing L2 table is created zeroed, one shared with a snapshot is copied.
 *
 * <p>Entries are read without the metadata lock by the optimistic lookups of {@link ClusterMap} (a stale
 * entry there is caught by the seqlock); they change only under it.
 */
final class L1Table {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final ImageState s;
    /**
     * The entries as on disk; never longer or shorter than the header says (for a snapshot view, opened
     * read-only, than the snapshot's entry says: it may cover less or more than the virtual size).
     */
    private final long[] entries;

    L1Table(ImageState s, long[] entries) {
        this.s = s;
        this.entries = entries;
    }

    /** Reads the active L1 table the header points at. */
    static long[] read(PositionalFile file, Qcow2Header h) throws IOException {
        return read(file, h.l1TableOffset(), (int) h.l1Size()); // bounded by the header's 32 MiB check
    }

    /**
     * Reads the L1 table of the snapshot {@code ref} names, for a read-only view of the disk as it was then
     * (QEMU's {@code qcow2_snapshot_load_tmp}); the table is checked as QEMU checks it before use.
     *
     * @throws SnapshotNotFoundException if no snapshot matches
     */
    static long[] readSnapshot(String filename, PositionalFile file, Qcow2Header h, List<Qcow2Snapshot> snapshots,
            SnapshotRef ref) throws IOException {
        Qcow2Snapshot sn = ref.find(snapshots).orElseThrow(() -> new SnapshotNotFoundException(
                filename + ": Can't find snapshot '" + ref + "'"));
        sn.checkL1Table(h, file.size()); // bounds l1Size to 32 MiB of entries
        return read(file, sn.l1TableOffset(), (int) sn.l1Size());
    }

    private static long[] read(PositionalFile file, long offset, int n) throws IOException {
        long[] l1 = new long[n];
        if (n == 0) {
            return l1;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate((long) n * 8, 4096);
            file.readFully(offset, buf);
            for (int i = 0; i < n; i++) {
                l1[i] = buf.getAtIndex(BE64, i);
            }
        }
        return l1;
    }

    int size() {
        return entries.length;
    }

    /** Entry {@code index} as stored. */
    long entry(int index) {
        return entries[index];
    }

    /** The L2 table offset of entry {@code index} (0: none), checked for alignment. */
    long l2Offset(long index) throws Qcow2FormatException {
        return index < entries.length ? L1Entry.checkedL2Offset(entries[(int) index], index, s.g) : 0;
    }

    /** The entries themselves, for check, repair and the overlap check; not a copy: do not change them. */
    long[] entries() {
        return entries;
    }

    /**
     * The L2 table for entry {@code index}, allocated (zeroed) when missing and copied when shared with a
     * snapshot (QEMU's l2_allocate): the new table is written and synced before the L1 entry points at it.
     * Holds the metadata lock.
     */
    long ensureL2Table(int index) throws IOException {
        long e = entries[index];
        long old = L1Entry.checkedL2Offset(e, index, s.g);
        if (old != 0 && L1Entry.isCopied(e)) {
            return old;
        }
        long table = s.allocate(1);
        s.refcountCache.flush();
        int tableSize = s.l2Cache.tableSize();
        int slices = s.clusterSize / tableSize;
        for (int k = 0; k < slices; k++) {
            long off = (long) k * tableSize;
            int t = s.l2Cache.getEmpty(table + off);
            try {
                if (old != 0) {
                    int o = s.l2Cache.get(old + off);
                    try {
                        MemorySegment.copy(s.l2Cache.table(o), 0, s.l2Cache.table(t), 0, tableSize);
                    } finally {
                        s.l2Cache.put(o);
                    }
                }
                s.l2Cache.markDirty(t);
            } finally {
                s.l2Cache.put(t);
            }
        }
        s.l2Cache.flush();
        write(index, table | L1Entry.COPIED);
        if (old != 0) {
            s.refcounts.free(old, s.clusterSize);
        }
        return table;
    }

    /** Writes (and syncs) entry {@code index}, then changes it in memory. Holds the metadata lock. */
    void write(int index, long value) throws IOException {
        long at = s.header.l1TableOffset() + 8L * index;
        s.refuseOverlap(at, 8, OverlapChecker.ACTIVE_L1);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment b = arena.allocate(8);
            b.set(BE64, 0, value);
            s.file.write(at, b);
        }
        s.tableFile.flush();
        entries[index] = value;
    }
}
