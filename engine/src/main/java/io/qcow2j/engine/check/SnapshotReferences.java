package io.qcow2j.engine.check;

import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The references of every snapshot's L1 table, counted in one sweep so that the work is bounded by the size
 * of the file whatever the snapshot table claims. QEMU walks each snapshot's L1 table, and every L2 table
 * it points at, once per snapshot: 65536 snapshots naming one 32 MiB L1 table whose entries all point at one
 * L2 table would cost snapshots × entries × L2 entries. Here:
 * <ol>
 * <li>snapshots naming the same L1 table (offset and size) count as one table with a multiplicity;</li>
 * <li>the clusters of the distinct tables are counted in one sweep over the file, each cluster once with
 * the number of tables that cover it (tables may overlap: a hostile table may start inside another);</li>
 * <li>each 8-byte L1 entry of the file that some table covers is read once and counted as many times as
 * tables cover it; the in-file L2 tables the entries name are gathered with their total reference count
 * ({@link OffsetCounts}, at most one per 512 bytes of file);</li>
 * <li>each distinct L2 table is walked once for all its references ({@link ReferenceWalk#walkL2}).</li>
 * </ol>
 * The counts are QEMU's (a reference is a reference, whichever snapshot makes it); only the order of the
 * lines a damaged image prints differs, and a line that several snapshots would repeat is printed once and
 * counted as often as QEMU counts it.
 *
 * <p>Memory: one record per snapshot, the gathered L2 offsets (bounded by the file size), one piece buffer.
 */
final class SnapshotReferences {
    /** One distinct snapshot L1 table: where, how many entries, how many lie in the file, how many snapshots. */
    private record Table(long offset, long entries, long inFile, long times) { }

    private final CheckState st;
    private final ReferenceWalk walk;
    private final long[] words = new long[CheckState.PIECE / 8];

    SnapshotReferences(CheckState st, ReferenceWalk walk) {
        this.st = st;
        this.walk = walk;
    }

    void count(List<Qcow2Snapshot> snapshots) throws IOException {
        List<Table> tables = distinctTables(snapshots);
        countTableClusters(tables);
        OffsetCounts l2Refs = sweepEntries(tables);
        long[] l2 = l2Refs.sortedKeys();
        for (long offset : l2) {
            walk.walkL2(offset, false, l2Refs.get(offset));
        }
    }

    /** QEMU's checks of each snapshot's L1 table entry, in snapshot order; then the tables grouped. */
    private List<Table> distinctTables(List<Qcow2Snapshot> snapshots) throws Qcow2FormatException {
        List<Table> all = new ArrayList<>(snapshots.size());
        for (Qcow2Snapshot sn : snapshots) {
            String who = "snapshot " + sn.id() + " (" + sn.name() + ")";
            long offset = sn.l1TableOffset();
            if ((offset & (st.cs - 1)) != 0) {
                st.corruption("ERROR " + who + " l1_offset=0x" + CheckState.hex(offset)
                        + ": L1 table is not cluster aligned; snapshot table entry corrupted");
                continue;
            }
            if (sn.l1Size() > Qcow2Header.MAX_L1_BYTES / 8) {
                st.corruption("ERROR " + who + " l1_size=0x" + CheckState.hex(sn.l1Size())
                        + ": L1 table is too large; snapshot table entry corrupted");
                continue;
            }
            long size = sn.l1Size();
            if (size == 0) {
                continue;
            }
            if (!CheckState.readable(offset, size * 8)) {
                throw new Qcow2FormatException(st.image.filename() + ": cannot read the L1 table of " + who + " at 0x"
                        + CheckState.hex(offset) + ": offset out of range");
            }
            // What lies past the end of the file reads as zeros, unallocated entries: only the rest is read
            // (the last entry may be cut by the end of the file: its missing bytes read as zeros).
            long inFile = Math.min(size, (Math.max(0, st.fileSize - offset) + 7) / 8);
            all.add(new Table(offset, size, inFile, 1));
        }
        all.sort(Comparator.comparingLong(Table::offset).thenComparingLong(Table::entries));
        List<Table> distinct = new ArrayList<>();
        for (Table t : all) {
            Table last = distinct.isEmpty() ? null : distinct.getLast();
            if (last != null && last.offset == t.offset && last.entries == t.entries) {
                distinct.set(distinct.size() - 1, new Table(t.offset, t.entries, t.inFile, last.times + 1));
            } else {
                distinct.add(t);
            }
        }
        return distinct;
    }

    /** The references to the tables' own clusters: each covered cluster counted once, for every table on it. */
    private void countTableClusters(List<Table> tables) {
        List<long[]> events = new ArrayList<>(); // {cluster, +times at the first, -times after the last}
        for (Table t : tables) {
            long bytes = t.entries * 8;
            long excess = t.offset - st.fileSize;
            if (excess >= st.cs || excess + bytes >= st.cs) {
                st.times = t.times; // past the end of the file: one corruption per snapshot, nothing counted
                st.inc(t.offset, bytes);
                st.times = 1;
                continue;
            }
            events.add(new long[] {t.offset >>> st.cb, t.times});
            events.add(new long[] {((t.offset + bytes - 1) >>> st.cb) + 1, -t.times});
        }
        events.sort(Comparator.comparingLong(e -> e[0]));
        long coverage = 0;
        for (int i = 0; i < events.size(); i++) {
            coverage += events.get(i)[1];
            long end = i + 1 < events.size() ? events.get(i + 1)[0] : events.get(i)[0];
            if (coverage > 0) {
                st.times = coverage;
                for (long k = events.get(i)[0]; k < end; k++) {
                    st.inc(k << st.cb, 1);
                }
                st.times = 1;
            }
        }
    }

    /** Reads every L1 entry the tables cover once, counting it for every table that covers it. */
    private OffsetCounts sweepEntries(List<Table> tables) throws IOException {
        List<long[]> events = new ArrayList<>(); // {byte position, +times at the start, -times at the end}
        for (Table t : tables) {
            if (t.inFile > 0) {
                events.add(new long[] {t.offset, t.times});
                events.add(new long[] {t.offset + t.inFile * 8, -t.times});
            }
        }
        events.sort(Comparator.comparingLong(e -> e[0]));
        OffsetCounts l2Refs = new OffsetCounts();
        long coverage = 0;
        for (int i = 0; i < events.size(); i++) {
            coverage += events.get(i)[1];
            long end = i + 1 < events.size() ? events.get(i + 1)[0] : events.get(i)[0];
            if (coverage > 0) {
                entries(events.get(i)[0], end, coverage, l2Refs);
            }
        }
        return l2Refs;
    }

    /** The entries in {@code [from, to)} of the file (both multiples of 8 from a table's start), each {@code times} references. */
    private void entries(long from, long to, long times, OffsetCounts l2Refs) throws IOException {
        for (long pos = from; pos < to; ) {
            int n = (int) Math.min(CheckState.PIECE, to - pos);
            MemorySegment piece = st.pieceBuf.asSlice(0, n);
            st.readZeroPadded(pos, piece);
            MemorySegment.copy(piece, CheckState.BE64, 0, words, 0, n / 8);
            st.l1EntriesRead += n / 8;
            st.times = times;
            try {
                for (int j = 0; j < n / 8; j++) {
                    long e = words[j];
                    if (e != 0) {
                        long l2Offset = walk.countL1Entry(e);
                        if (l2Offset < st.fileSize) {
                            l2Refs.add(l2Offset, times);
                        }
                    }
                }
            } finally {
                st.times = 1;
            }
            pos += n;
        }
    }

    /** L2 table offsets (multiples of 512 inside the file) and their reference counts: open addressing. */
    static final class OffsetCounts {
        private long[] keys = new long[64];
        private long[] values = new long[64];
        private int size;

        void add(long key, long n) {
            // key 0 is the header's cluster: stored as -1 so that 0 marks a free slot
            long k = key == 0 ? -1 : key;
            if (size * 2 >= keys.length) {
                grow();
            }
            int mask = keys.length - 1;
            int i = (int) (Long.hashCode(k * 0x9e37_79b9_7f4a_7c15L) & mask);
            while (keys[i] != 0 && keys[i] != k) {
                i = (i + 1) & mask;
            }
            if (keys[i] == 0) {
                keys[i] = k;
                size++;
            }
            values[i] += n;
        }

        long get(long key) {
            long k = key == 0 ? -1 : key;
            int mask = keys.length - 1;
            int i = (int) (Long.hashCode(k * 0x9e37_79b9_7f4a_7c15L) & mask);
            while (keys[i] != k) {
                i = (i + 1) & mask;
            }
            return values[i];
        }

        long[] sortedKeys() {
            long[] out = new long[size];
            int n = 0;
            for (long k : keys) {
                if (k != 0) {
                    out[n++] = k == -1 ? 0 : k;
                }
            }
            Arrays.sort(out);
            return out;
        }

        private void grow() {
            long[] oldKeys = keys;
            long[] oldValues = values;
            keys = new long[oldKeys.length * 2];
            values = new long[oldKeys.length * 2];
            size = 0;
            for (int i = 0; i < oldKeys.length; i++) {
                if (oldKeys[i] != 0) {
                    add(oldKeys[i] == -1 ? 0 : oldKeys[i], oldValues[i]);
                }
            }
        }
    }
}
