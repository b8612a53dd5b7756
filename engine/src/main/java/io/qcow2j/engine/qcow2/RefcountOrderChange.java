package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.RefcountBlock;
import io.qcow2j.engine.format.RefcountTableEntry;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Changes the width of an open image's refcounts ({@code amend -o refcount_bits=N}), as QEMU's
 * {@code qcow2_change_refcount_order} does: a complete new refcount structure (table and blocks) is built
 * beside the old one, every refcount copied into the new width, and the header switched to it in one write.
 *
 * <ol>
 *   <li>Refused, before anything changes, if a refcount does not fit the new width (QEMU's message).</li>
 *   <li>Space: the new refcount blocks (one per range of clusters with a non-zero refcount) and the new
 *       table are allocated through the old structure, which may need more of them; repeated until nothing
 *       more is needed. The old refcounts are flushed.</li>
 *   <li>The new blocks are written (synced), holding every cluster's refcount as the old structure counts
 *       it, except the old structure's own clusters (its table and blocks), which nothing references once
 *       the header points elsewhere: they are 0, so the switch frees them with no leak (QEMU frees them
 *       afterwards). Then the new table (synced).</li>
 *   <li>The header's refcount table offset, its size and the refcount order change in one write of bytes
 *       48..100 (inside the first sector, so a crash does not tear it), synced.</li>
 * </ol>
 * A crash before the header write leaves the old structure, which counts the new clusters: leaks only.
 * Afterwards the open image still describes the old structure: the operation is the last use of it.
 */
public final class RefcountOrderChange {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** Header bytes 48..100: refcount table offset and clusters, ..., refcount order (qcow2 spec, "Header"). */
    private static final long SWITCH_START = 48;
    private static final int SWITCH_LENGTH = 52;

    private final ImageState s;
    private final int newOrder;
    private final int bits;
    private final long perBlock;

    private RefcountOrderChange(ImageState s, int newOrder) {
        this.s = s;
        this.newOrder = newOrder;
        this.bits = s.g.clusterBits();
        this.perBlock = 1L << (bits + 3 - newOrder);
    }

    /**
     * Gives {@code image} refcounts of {@code refcountBits} bits (1, 2, 4, ..., 64).
     *
     * @throws IllegalArgumentException for a width that is not a power of two up to 64, a width other than 16
     *     on a version 2 image, or a refcount that does not fit the new width (QEMU's messages)
     */
    public static void change(Qcow2Image image, int refcountBits) throws IOException {
        ImageState s = image.state();
        int order = order(refcountBits);
        if (order == s.g.refcountOrder()) {
            return;
        }
        if (s.header.version() < 3) {
            throw new IllegalArgumentException("Refcount widths other than 16 bits require compatibility level 1.1 or"
                    + " above (use compat=1.1 or greater)");
        }
        TableSurgery.run(s, () -> {
            new RefcountOrderChange(s, order).run();
            return null;
        });
    }

    private static int order(int refcountBits) {
        if (refcountBits <= 0 || refcountBits > 64 || Integer.bitCount(refcountBits) != 1) {
            throw new IllegalArgumentException("Refcount width must be a power of two and may not exceed 64 bits");
        }
        return Integer.numberOfTrailingZeros(refcountBits);
    }

    /**
     * Refuses {@code refcountBits} for {@code image} if a refcount does not fit it (QEMU's message); reads only.
     */
    public static void checkFits(Qcow2Image image, int refcountBits) throws IOException {
        ImageState s = image.state();
        int order = order(refcountBits);
        s.lock.lock();
        try {
            checkFits(s, order);
        } finally {
            s.lock.unlock();
        }
    }

    private static void checkFits(ImageState s, int newOrder) throws IOException {
        if (newOrder >= s.g.refcountOrder()) {
            return;
        }
        long max = RefcountBlock.maxValue(newOrder);
        long last = s.refcounts.lastUsedCluster();
        for (long c = 0; c <= last; c++) {
            long v = s.refcounts.get(c);
            if (Long.compareUnsigned(v, max) > 0) {
                throw new IllegalArgumentException("Cannot decrease refcount entry width to " + (1 << newOrder)
                        + " bits: Cluster at offset 0x" + Long.toHexString(c << s.g.clusterBits()) + " has a refcount of "
                        + Long.toUnsignedString(v));
            }
        }
    }

    private void run() throws IOException {
        checkFits(s, newOrder);
        long last;
        Set<Long> oldStructure = oldStructureClusters();
        Map<Long, Long> blocks = new TreeMap<>();
        long tableOffset = 0;
        int tableClusters = 0;
        long blockCount;
        while (true) {
            boolean changed = false;
            last = s.refcounts.lastUsedCluster();
            blockCount = last / perBlock + 1;
            for (long i = 0; i < blockCount; i++) {
                if (!blocks.containsKey(i) && anyInUse(i * perBlock, Math.min(last + 1, (i + 1) * perBlock))) {
                    blocks.put(i, s.allocate(1));
                    changed = true;
                }
            }
            int need = (int) ((blockCount * 8 + s.clusterSize - 1) / s.clusterSize);
            if (need > tableClusters) {
                if (tableClusters > 0) {
                    s.refcounts.free(tableOffset, (long) tableClusters << bits);
                }
                tableOffset = s.allocate(need);
                tableClusters = need;
                changed = true;
            }
            if (!changed) {
                break;
            }
        }
        s.refcountCache.flush(); // the old structure counts the new one before anything of it is written
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment block = arena.allocate(s.clusterSize);
            for (Map.Entry<Long, Long> b : blocks.entrySet()) {
                block.fill((byte) 0);
                long first = b.getKey() * perBlock;
                for (long c = first; c < Math.min(first + perBlock, last + 1); c++) {
                    long v = oldStructure.contains(c) ? 0 : s.refcounts.get(c);
                    RefcountBlock.set(block, c - first, newOrder, v);
                }
                s.file.write(b.getValue(), block);
            }
            s.tableFile.flush();
            MemorySegment table = arena.allocate((long) tableClusters << bits);
            for (Map.Entry<Long, Long> b : blocks.entrySet()) {
                table.setAtIndex(BE64, b.getKey(), b.getValue());
            }
            s.file.write(tableOffset, table);
            s.tableFile.flush();
            MemorySegment h = arena.allocate(SWITCH_LENGTH);
            s.file.readFully(SWITCH_START, h);
            h.set(BE64, 0, tableOffset);
            h.set(BE32, 8, tableClusters);
            h.set(BE32, 96 - SWITCH_START, newOrder);
            s.file.write(SWITCH_START, h);
            s.tableFile.flush();
        }
    }

    /** The clusters of the refcount table and blocks in use now. */
    private Set<Long> oldStructureClusters() {
        Set<Long> out = new HashSet<>();
        long[] table = s.refcounts.table();
        for (long e : table) {
            long off = RefcountTableEntry.blockOffset(e);
            if (off != 0) {
                out.add(off >>> bits);
            }
        }
        long first = s.refcounts.tableOffset() >>> bits;
        for (long c = first; c < first + s.refcounts.tableClusters(); c++) {
            out.add(c);
        }
        return out;
    }

    private boolean anyInUse(long from, long to) throws IOException {
        for (long c = from; c < to; c++) {
            if (s.refcounts.get(c) != 0) {
                return true;
            }
        }
        return false;
    }
}
