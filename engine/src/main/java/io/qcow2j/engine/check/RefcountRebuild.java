package io.qcow2j.engine.check;

import io.qcow2j.engine.RepairFailedException;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.RefcountBlock;
import io.qcow2j.engine.qcow2.OverlapChecker;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Rebuilds an image's refcount structure from the reference counts a check computed, as QEMU's
 * {@code rebuild_refcount_structure} (QEMU 7.1 and later) does; used by {@link ImageCheck#repair} when the
 * structure is damaged beyond repair in place.
 *
 * <p>The computed counts ({@link ClusterCounts}, QEMU's in-memory refcount table) are the allocator: a new
 * refcount block or table goes into the first clusters whose computed count is 0 (no metadata or data
 * references them, whatever their stored refcount says) or past the end of the file, and is counted there at
 * once, so that the blocks written describe themselves and the table. Each block holding a non-zero count
 * is written as that range of the counts; then the table is placed, and the blocks covering it are written
 * again, until the table stops growing. The blocks and the table are written and synced, then the header is
 * switched to the new table in one synced write, and the image's refcounts use it. The old structure is left
 * as it is: its clusters are now leaks, which the repair frees right after.
 *
 * <p>Writes are checked against the image's metadata (an overlap is a corruption event and fails the
 * rebuild), except against the old refcount blocks and table, which are being replaced and may be the very
 * damage being repaired (an unaligned block offset "covers" a cluster that is free).
 */
final class RefcountRebuild {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** QEMU's limit on the refcount table (QCOW_MAX_REFTABLE_SIZE): 8 MiB. */
    private static final long MAX_TABLE_ENTRIES = Qcow2Header.MAX_REFCOUNT_TABLE_BYTES / 8;

    private final Qcow2Image image;
    private final PositionalFile file;
    private final ClusterCounts counts;
    private final int cb;
    private final int cs;
    private final int order;
    private final int blockBits;
    private long nbClusters;
    private long[] table = new long[0];
    private long tableOffset = -1;
    private int tableClusters;

    RefcountRebuild(Qcow2Image image, ClusterCounts counts, long nbClusters) {
        Geometry g = image.header().geometry();
        this.image = image;
        this.file = image.file();
        this.counts = counts;
        this.cb = g.clusterBits();
        this.cs = g.clusterSize();
        this.order = g.refcountOrder();
        this.blockBits = g.refcountBlockBits();
        this.nbClusters = nbClusters;
    }

    /** Clusters the counts now cover (the rebuild counts the clusters it allocates). */
    long nbClusters() {
        return nbClusters;
    }

    long[] table() {
        return table.clone();
    }

    long tableOffset() {
        return tableOffset;
    }

    int tableClusters() {
        return tableClusters;
    }

    void run() throws IOException {
        image.refcountCache().empty(); // nothing of the old structure may be written back or read again
        boolean grown = writeRefblocks(0, nbClusters);
        assert grown;
        do {
            tableClusters = (int) (((long) table.length * 8 + cs - 1) >>> cb);
            long[] firstFree = {0};
            tableOffset = allocate(tableClusters, firstFree);
            long start = tableOffset >>> cb;
            // the blocks covering the table must count it: write them again (the table may grow on the way)
            grown = writeRefblocks(start, start + tableClusters);
        } while (grown);

        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate((long) tableClusters << cb, 4096);
            for (int i = 0; i < table.length; i++) {
                buf.setAtIndex(BE64, i, table[i]);
            }
            image.refuseOverlap(tableOffset, buf.byteSize(), OverlapChecker.REFCOUNT_TABLE | OverlapChecker.REFCOUNT_BLOCK);
            file.write(tableOffset, buf);
        }
        image.noteFileEnd(tableOffset + ((long) tableClusters << cb));
        image.syncMetadata(); // blocks and table on disk before the header names them
        image.headerWriter().writeRefcountTable(tableOffset, tableClusters);
        image.refcounts().replaceTable(table.clone(), tableOffset, tableClusters);
    }

    /**
     * QEMU's {@code rebuild_refcounts_write_refblocks}: writes the refcount block of every block range that
     * holds a non-zero count among clusters {@code [first, end)}, allocating the blocks not allocated yet
     * (the table grows as needed). Returns whether the table grew.
     */
    private boolean writeRefblocks(long first, long end) throws IOException {
        boolean grown = false;
        long[] firstFree = {0};
        long blockEntries = 1L << blockBits;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment block = arena.allocate(cs, 4096);
            for (long c = counts.nextNonZero(first, end); c < end; c = counts.nextNonZero(c + 1, end)) {
                long index = c >>> blockBits;
                long start = index << blockBits;
                long blockOffset;
                if (index < table.length && table[(int) index] != 0) {
                    blockOffset = table[(int) index]; // allocated by an earlier round
                } else {
                    // never in a block range already written: that block would not count it
                    firstFree[0] = Math.max(firstFree[0], start);
                    blockOffset = allocate(1, firstFree);
                    long blockCluster = blockOffset >>> cb;
                    if (blockCluster >= end) {
                        end = blockCluster + 1; // the block that counts this block must be written too
                    }
                    if (index >= table.length) {
                        long entries = ((index + 1) * 8 + cs - 1) / cs * cs / 8;
                        if (entries > MAX_TABLE_ENTRIES) {
                            throw new RepairFailedException(image.filename() + ": the rebuilt refcount"
                                    + " table would exceed 8 MiB");
                        }
                        table = Arrays.copyOf(table, (int) entries);
                        grown = true;
                    }
                    table[(int) index] = blockOffset;
                }
                block.fill((byte) 0);
                long stop = Math.min(start + blockEntries, counts.capacity());
                for (long k = counts.nextNonZero(start, stop); k < stop; k = counts.nextNonZero(k + 1, stop)) {
                    RefcountBlock.set(block, k - start, order, counts.get(k));
                }
                image.refuseOverlap(blockOffset, cs, OverlapChecker.REFCOUNT_TABLE | OverlapChecker.REFCOUNT_BLOCK);
                file.write(blockOffset, block);
                image.noteFileEnd(blockOffset + cs);
                c = start + blockEntries - 1; // this range is done
            }
        }
        return grown;
    }

    /**
     * QEMU's {@code alloc_clusters_imrt}: {@code n} contiguous clusters whose count is 0, from
     * {@code firstFree[0]} on (which moves to the first free cluster seen), or past the clusters counted so
     * far; they are counted 1. Returns the offset of the first.
     */
    private long allocate(int n, long[] firstFree) throws IOException {
        long cluster = firstFree[0];
        boolean firstGap = true;
        long contiguous = 0;
        for (; cluster < nbClusters && contiguous < n; cluster++) {
            if (counts.get(cluster) == 0) {
                contiguous++;
                if (firstGap) {
                    firstFree[0] = cluster;
                    firstGap = false;
                }
            } else {
                contiguous = 0;
            }
        }
        if (contiguous < n) {
            long need = cluster + n - contiguous;
            if (need + 1 > ClusterCounts.MAX_CAPACITY) {
                throw new RepairFailedException(image.filename() + ": the rebuilt refcount structure"
                        + " would take the image past 2^31 clusters");
            }
            counts.ensureCapacity(need + 1);
            nbClusters = need;
        }
        cluster -= contiguous;
        for (int i = 0; i < n; i++) {
            counts.set(cluster + i, 1);
        }
        return cluster << cb;
    }
}
