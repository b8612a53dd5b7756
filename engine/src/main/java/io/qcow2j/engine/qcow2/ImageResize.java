package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.RefcountTableEntry;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Changes the virtual size of an open qcow2 image (QEMU's {@code qcow2_co_truncate} without
 * preallocation). As for {@link InternalSnapshots}, this is the last thing done with the image before it is
 * closed: the image keeps the header it read at open.
 *
 * <p>Growing: a larger L1 table is written to new clusters and synced, the header points at it (l1_size and
 * l1_table_offset in one write), the old one is freed; then the size field. Shrinking: the L2 entries past
 * the new end are cleared and their clusters freed (discarded in the file), the L1 entries past the new
 * last L2 table are cleared in place and the tables they named released (with everything they reference),
 * then the size field; the file is cut after its last used cluster. The L1 table keeps its size, as in QEMU.
 * Every step is durable before the next, so a crash leaves at most leaked clusters.
 */
public final class ImageResize {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** Header fields (qcow2 spec, "Header"): size (u64), l1_size (u32) then l1_table_offset (u64). */
    private static final long SIZE = 24;
    private static final long L1_SIZE = 36;

    private final ImageState s;

    private ImageResize(ImageState s) {
        this.s = s;
    }

    /** Resizes {@code image} to {@code newSize} bytes (a multiple of 512, checked by the caller). */
    public static void resize(Qcow2Image image, long newSize) throws IOException {
        ImageState s = image.state();
        ImageResize r = new ImageResize(s);
        TableSurgery.run(s, () -> {
            if (newSize >= s.header.size()) {
                r.grow(newSize);
            } else {
                r.shrink(newSize);
            }
            return null;
        });
    }

    /** L1 entries a disk of {@code size} bytes needs. */
    private long l1EntriesFor(long size) {
        long span = (long) s.g.l2Entries() << s.g.clusterBits();
        return (size + span - 1) / span;
    }

    private void grow(long newSize) throws IOException {
        long need = l1EntriesFor(newSize);
        if (need > Qcow2Header.MAX_L1_BYTES / 8) {
            throw new IOException(s.filename + ": new size " + newSize + " needs an L1 table larger than 32 MiB");
        }
        if (need > s.l1.size()) {
            long[] old = s.l1.entries();
            long oldBytes = 8L * old.length;
            long bytes = 8L * need;
            int clusters = (int) ((bytes + s.clusterSize - 1) / s.clusterSize);
            long offset = s.allocate(clusters);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment buf = arena.allocate((long) clusters * s.clusterSize);
                for (int i = 0; i < old.length; i++) {
                    buf.setAtIndex(BE64, i, old[i]);
                }
                s.file.write(offset, buf);
                s.refcountCache.flush(); // the table's clusters are counted, and it is on disk, before the header names it
                MemorySegment h = arena.allocate(12);
                h.set(BE32, 0, (int) need);
                h.set(BE64, 4, offset);
                s.file.write(L1_SIZE, h);
                s.tableFile.flush();
            }
            if (oldBytes > 0) {
                s.refcounts.free(s.header.l1TableOffset(),
                        (oldBytes + s.clusterSize - 1) / s.clusterSize * s.clusterSize);
            }
        }
        writeSize(newSize);
    }

    private void shrink(long newSize) throws IOException {
        int cs = s.clusterSize;
        long keepEnd = (newSize + cs - 1) & -(long) cs; // clusters before this stay
        int keepTables = (int) l1EntriesFor(newSize);
        long span = (long) s.g.l2Entries() << s.g.clusterBits();
        if (keepTables > 0 && keepEnd < (long) keepTables * span && s.l1.entry(keepTables - 1) != 0) {
            clearTail(keepTables - 1, (int) ((keepEnd - (keepTables - 1) * span) >>> s.g.clusterBits()));
        }
        long[] l1 = s.l1.entries().clone();
        if (keepTables < l1.length) {
            long[] dropped = new long[l1.length - keepTables];
            System.arraycopy(l1, keepTables, dropped, 0, dropped.length);
            for (int i = keepTables; i < l1.length; i++) {
                l1[i] = 0;
            }
            writeWords(s.header.l1TableOffset(), l1);
            System.arraycopy(l1, 0, s.l1.entries(), 0, l1.length);
            // the L1 entries are gone from the disk: the tables they named, and what those reference, are released
            new SnapshotRefcounts(s).change(dropped, -1);
        }
        s.refcountCache.flush();
        writeSize(newSize);
        s.l2Cache.flush();
        shrinkRefcountTable();
        long last = s.refcounts.lastUsedCluster();
        long end = (last + 1) * cs;
        if (end < s.file.size()) {
            s.file.truncate(end);
        }
    }

    /**
     * QEMU's qcow2_shrink_reftable: refcount blocks that count nothing (but perhaps themselves) are dropped
     * from the refcount table (the table written and synced first, then the blocks released), so that the
     * file can be cut after its last used cluster.
     */
    private void shrinkRefcountTable() throws IOException {
        long[] table = s.refcounts.table();
        int bits = s.g.clusterBits();
        int blockBits = bits + 3 - s.g.refcountOrder();
        long[] next = table.clone();
        boolean changed = false;
        for (int i = 0; i < table.length; i++) {
            long block = RefcountTableEntry.checkedBlockOffset(table[i], i, s.g);
            if (block == 0) {
                continue;
            }
            long self = block >>> bits;
            long first = (long) i << blockBits;
            boolean unused = true;
            for (long c = first; c < first + (1L << blockBits) && unused; c++) {
                unused = c == self || s.refcounts.get(c) == 0;
            }
            if (unused) {
                next[i] = 0;
                changed = true;
            }
        }
        if (!changed) {
            return;
        }
        s.refcountCache.flush();
        writeWords(s.refcounts.tableOffset(), next);
        for (int i = 0; i < table.length; i++) {
            if (next[i] == table[i]) {
                continue;
            }
            long block = RefcountTableEntry.checkedBlockOffset(table[i], i, s.g);
            int slot = s.refcountCache.lookup(block);
            if (slot >= 0) {
                s.refcountCache.discard(slot);
            }
            table[i] = 0;
            if ((block >>> bits) >>> blockBits != i) {
                s.refcounts.free(block, s.clusterSize); // counted by another block
            }
            try {
                s.file.punchHole(block, s.clusterSize);
            } catch (IOException e) {
                // discard is advisory
            }
        }
        s.refcountCache.flush();
    }

    /** Clears the entries of L2 table {@code l1Index} from entry {@code from} on, freeing what they named. */
    private void clearTail(int l1Index, int from) throws IOException {
        long l2 = s.l1.ensureL2Table(l1Index);
        int entries = s.g.l2Entries();
        for (int i = from; i < entries; ) {
            int slot = s.l2Cache.get(s.sliceOffset(l2, i));
            int sliceEnd = Math.min(entries, (i & -s.sliceEntries) + s.sliceEntries);
            long[] freed = new long[sliceEnd - i];
            int n = 0;
            try {
                for (; i < sliceEnd; i++) {
                    int w = (i & (s.sliceEntries - 1)) * s.wordsPerEntry;
                    long e = s.l2Cache.word(slot, w);
                    long bitmap = s.g.extendedL2() ? s.l2Cache.word(slot, w + 1) : 0;
                    if (e == 0 && bitmap == 0) {
                        continue;
                    }
                    L2Entry.checkedClusterType(e, bitmap, s.g, l2, i);
                    s.l2Cache.setWord(slot, w, 0);
                    if (s.g.extendedL2()) {
                        s.l2Cache.setWord(slot, w + 1, 0);
                    }
                    s.l2Cache.markDirty(slot);
                    freed[n++] = e;
                }
            } finally {
                s.l2Cache.put(slot);
            }
            // the cleared entries reach the disk before their clusters are freed and punched: a crash must not
            // leave an entry naming a punched cluster
            s.l2Cache.flush();
            for (int k = 0; k < n; k++) {
                s.freeAnyCluster(freed[k], true);
            }
        }
    }

    /** Writes a table of big-endian words at {@code offset}, then syncs. */
    private void writeWords(long offset, long[] words) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(8L * words.length);
            for (int i = 0; i < words.length; i++) {
                buf.setAtIndex(BE64, i, words[i]);
            }
            s.file.write(offset, buf);
        }
        s.tableFile.flush();
    }

    private void writeSize(long newSize) throws IOException {
        writeSize(s, newSize);
    }

    /** Writes (and syncs) the header's size field. */
    static void writeSize(ImageState s, long newSize) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment b = arena.allocate(8);
            b.set(BE64, 0, newSize);
            s.file.write(SIZE, b);
        }
        s.tableFile.flush();
    }
}
