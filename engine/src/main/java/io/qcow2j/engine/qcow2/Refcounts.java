package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.TableFile;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.RefcountBlock;
import io.qcow2j.engine.format.RefcountTableEntry;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Reference counts of host clusters: the refcount table (kept in memory) and the refcount blocks (through
 * the refcount cache). Allocation and freeing follow QEMU's {@code qcow2-refcount.c}:
 * <ul>
 *   <li>Free space is searched from a hint that only moves back when a cluster is freed.</li>
 *   <li>A missing refcount block is allocated on demand in the first free cluster; when that cluster lies
 *       in the range the new block covers, the block describes itself. After a block is created, the caller's
 *       search restarts ({@link #allocate}), because the block may have taken the clusters it had found.</li>
 *   <li>When the table is full it is replaced by a larger one, placed with new self-describing blocks past
 *       every cluster in use, and switched in the header in one synced write.</li>
 *   <li>Decrements make the refcount cache depend on the L2 cache: an L2 entry that stops pointing at a
 *       cluster reaches the disk before the cluster is counted free.</li>
 * </ul>
 * Called only under the image's metadata lock.
 */
public final class Refcounts {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** QEMU's limit on the refcount table: 8 MiB of entries. */
    private static final long MAX_TABLE_ENTRIES = Qcow2Header.MAX_REFCOUNT_TABLE_BYTES / 8;
    /** The corruption an allocation meets when the refcounts call the header free. */
    static final String FREE_HEADER = "refcounts corrupt: cluster 0 (the header) is free and was about to be allocated";

    private final PositionalFile file;
    private final TableFile sync;
    private final Geometry g;
    private final MetadataCache cache;
    private final MetadataCache l2Cache;
    private final HeaderWriter headerWriter;
    private final int order;
    private final int clusterBits;
    private final int clusterSize;
    /** log2 of refcount entries per block. */
    private final int blockBits;
    private final long maxRefcount;

    private long[] table;
    /**
     * No entry of {@link #table} at or past this index is non-zero (so none names a block): its last non-zero
     * entry + 1, or more after ImageResize clears entries in place, which only makes it an upper bound.
     */
    private int tableUsed;
    private long tableOffset;
    private int tableClusters;
    /** No cluster below this index is free (QEMU's free_cluster_index). */
    private long freeHint;
    /**
     * No cluster below this index is allocated, whatever its stored refcount (0 outside a repair). While an
     * image is repaired its stored refcounts may be too low, so a cluster with refcount 0 may be in use:
     * {@link #setAllocationFloor} keeps every allocation past the end of the file until the refcounts are
     * right again.
     */
    private long allocationFloor;

    /** Thrown inside {@link #update} when it created a refcount block: the caller searches space again. */
    private static final class Restart extends Exception {
        private static final long serialVersionUID = 1L;

        Restart() {
            super(null, null, false, false);
        }
    }

    Refcounts(PositionalFile file, TableFile sync, Geometry g, MetadataCache cache, MetadataCache l2Cache, HeaderWriter headerWriter,
            long[] table, long tableOffset, int tableClusters) {
        this.file = file;
        this.sync = sync;
        this.g = g;
        this.cache = cache;
        this.l2Cache = l2Cache;
        this.headerWriter = headerWriter;
        this.order = g.refcountOrder();
        this.clusterBits = g.clusterBits();
        this.clusterSize = g.clusterSize();
        this.blockBits = clusterBits + 3 - order;
        this.maxRefcount = RefcountBlock.maxValue(order);
        this.table = table;
        this.tableUsed = used(table);
        this.tableOffset = tableOffset;
        this.tableClusters = tableClusters;
    }

    private static int used(long[] table) {
        int n = table.length;
        while (n > 0 && table[n - 1] == 0) {
            n--;
        }
        return n;
    }

    /** No entry of the refcount table at or past this index names a block (see {@link #tableUsed}). */
    public int usedTableEntries() {
        return tableUsed;
    }

    /** Reads the refcount table named by the header. */
    static long[] readTable(PositionalFile file, long offset, long clusters, int clusterSize) throws IOException {
        long entries = clusters * clusterSize / 8;
        if (entries > MAX_TABLE_ENTRIES) {
            throw new Qcow2FormatException("refcount table of " + entries + " entries is too large");
        }
        long[] t = new long[(int) entries];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(entries * 8, 4096);
            file.readFully(offset, buf);
            for (int i = 0; i < t.length; i++) {
                t[i] = buf.getAtIndex(BE64, i);
            }
        }
        return t;
    }
    /** Refcount decrements so far (see {@link #decrements()}). Under the metadata lock. */
    private long decrements;

    /** The refcount table as it is now (replaced, not changed in place, when it grows). */
    public long[] table() {
        return table;
    }

    public long tableOffset() {
        return tableOffset;
    }

    public int tableClusters() {
        return tableClusters;
    }

    /** The offset of refcount block {@code index}, 0 if none; corruption if unaligned. */
    private long blockOffset(long index) throws Qcow2FormatException {
        if (index >= table.length) {
            return 0;
        }
        return RefcountTableEntry.checkedBlockOffset(table[(int) index], index, g);
    }

    /** The refcount of host cluster {@code cluster} (0 where no block covers it). */
    public long get(long cluster) throws IOException {
        long block = blockOffset(cluster >>> blockBits);
        if (block == 0) {
            return 0;
        }
        int t = cache.get(block);
        try {
            return cache.refcount(t, cluster & ((1L << blockBits) - 1), order);
        } finally {
            cache.put(t);
        }
    }

    /** Allocates {@code n} contiguous clusters with refcount 1; returns the host offset of the first. */
    public long allocate(long n) throws IOException {
        while (true) {
            long start = findFree(n);
            try {
                update(start << clusterBits, n << clusterBits, 1);
                return start << clusterBits;
            } catch (Restart r) {
                // a refcount block was created, perhaps in the clusters just found: search again
            }
        }
    }

    /**
     * Finds {@code n} free clusters from the hint without counting them (QEMU's alloc_clusters_noref); the
     * hint moves past them.
     */
    private long findFree(long n) throws IOException {
        freeHint = Math.max(freeHint, allocationFloor);
        long found = 0;
        while (found < n) {
            long c = freeHint++;
            if (c > (Long.MAX_VALUE >>> clusterBits) - n) {
                throw new IOException("image file would grow past the largest qcow2 offset");
            }
            boolean free = get(c) == 0;
            if (free && c == 0) {
                // Cluster 0 is the header, always in use: refcounts that call it free are corrupt (typically no
                // refcount block covers it), and so is every other count they give. Caught here, before a search
                // that would otherwise restart past it (a refcount block created on the way) and hand out a
                // cluster in use by data, which no overlap check sees (found by fuzzing; QEMU: "Preventing
                // invalid allocation of refcount block at offset 0").
                freeHint = 0;
                throw new Qcow2FormatException(FREE_HEADER);
            }
            found = free ? found + 1 : 0;
        }
        return freeHint - n;
    }

    /**
     * Makes every allocation from now on land at or after cluster {@code cluster} (a repair passes the end
     * of the file, where nothing can be in use); 0 lifts the floor. Freeing clusters below it no longer
     * brings them back into use until the floor is lifted.
     */
    public void setAllocationFloor(long cluster) {
        allocationFloor = Math.max(0, cluster);
    }

    /**
     * Sets the refcount of host cluster {@code cluster} to {@code value} (unsigned) in its existing refcount
     * block: the repair of a refcount that disagrees with the references QEMU's compare_refcounts counted.
     * Lowering a refcount waits for the L2 cache as a free does, and a cluster that drops to 0 is freed
     * (its cached tables dropped). A missing block is not created.
     *
     * @throws Qcow2FormatException if no refcount block covers the cluster, its offset is corrupt, or the
     *     value does not fit the refcount width
     */
    public void set(long cluster, long value) throws IOException {
        long block = blockOffset(cluster >>> blockBits);
        if (block == 0) {
            throw new Qcow2FormatException("no refcount block covers cluster " + cluster);
        }
        if (Long.compareUnsigned(value, maxRefcount) > 0) {
            throw new Qcow2FormatException("refcount " + Long.toUnsignedString(value) + " of cluster " + cluster
                    + " does not fit " + (1 << order) + " bits");
        }
        int t = cache.get(block);
        try {
            long idx = cluster & ((1L << blockBits) - 1);
            long old = cache.refcount(t, idx, order);
            if (old == value) {
                return;
            }
            if (Long.compareUnsigned(value, old) < 0) {
                cache.setDependency(l2Cache);
            }
            cache.setRefcount(t, idx, order, value);
            cache.markDirty(t);
        } finally {
            cache.put(t);
        }
        if (value == 0) {
            freeHint = Math.min(freeHint, cluster);
            dropCachedTables(cluster << clusterBits);
        }
    }

    /**
     * Switches to a refcount table that was written to {@code offset} (and named in the header) by a
     * rebuild of the refcount structure; the refcount cache must hold no block of the old structure.
     */
    public void replaceTable(long[] newTable, long offset, int clusters) {
        table = newTable;
        tableUsed = used(newTable);
        tableOffset = offset;
        tableClusters = clusters;
        freeHint = 0;
    }

    /**
     * How many refcount decrements were made so far: the compressed writer reuses the tail of its last host
     * cluster only while none happened (a freed cluster may have been reused for something else).
     */
    public long decrements() {
        return decrements;
    }

    /** Frees clusters: their refcounts drop by one; cached tables at freed clusters are discarded. */
    public void free(long offset, long length) throws IOException {
        try {
            update(offset, length, -1);
        } catch (Restart r) {
            throw new IllegalStateException("freeing created a refcount block", r);
        }
    }

    /**
     * Drops one reference to what an L2 entry points at (QEMU's {@code qcow2_free_any_cluster}): a data or
     * preallocated zero cluster, or the sectors of a compressed cluster. With {@code punch}, a data cluster
     * nothing references any more is also deallocated in the file ({@code discard=unmap}).
     */
    public void freeAnyCluster(long entry, boolean punch) throws IOException {
        switch (L2Entry.clusterType(entry, g)) {
            case NORMAL, ZERO_ALLOC -> {
                long host = L2Entry.hostClusterOffset(entry);
                free(host, clusterSize);
                if (punch && get(host >>> clusterBits) == 0) {
                    try {
                        file.punchHole(host, clusterSize);
                    } catch (IOException e) {
                        // discard is advisory: a filesystem that cannot punch keeps the bytes
                    }
                }
            }
            case COMPRESSED -> {
                long start = CompressedCluster.hostOffset(entry, clusterBits) & ~511L;
                free(start, (CompressedCluster.additionalSectors(entry, clusterBits) + 1L) * 512);
            }
            case UNALLOCATED, ZERO_PLAIN -> {}
        }
    }

    /** Changes the refcount of every cluster touched by {@code [offset, offset+length)} by {@code addend}. */
    public void change(long offset, long length, long addend) throws IOException {
        while (true) {
            try {
                update(offset, length, addend);
                return;
            } catch (Restart r) {
                // the block now exists: apply the change again from the start
            }
        }
    }

    private void update(long offset, long length, long addend) throws IOException, Restart {
        if (length <= 0) {
            return;
        }
        if (addend < 0) {
            cache.setDependency(l2Cache);
            decrements++;
        }
        long first = offset >>> clusterBits;
        long last = (offset + length - 1) >>> clusterBits;
        long done = first;
        try {
            int t = -1;
            long tIndex = -1;
            try {
                for (long c = first; c <= last; c++) {
                    long bi = c >>> blockBits;
                    if (bi != tIndex) {
                        if (t >= 0) {
                            cache.put(t);
                            t = -1;
                        }
                        long block = blockOffset(bi);
                        if (block == 0) {
                            if (addend < 0) {
                                throw new Qcow2FormatException("refcount of cluster 0x"
                                        + Long.toHexString(c << clusterBits) + " would drop below 0 (no refcount block)");
                            }
                            createBlock(c);
                            throw new Restart();
                        }
                        t = cache.get(block);
                        tIndex = bi;
                    }
                    long idx = c & ((1L << blockBits) - 1);
                    long old = cache.refcount(t, idx, order);
                    long now = old + addend;
                    if (addend < 0 ? Long.compareUnsigned(old, -addend) < 0
                            : Long.compareUnsigned(now, old) < 0 || Long.compareUnsigned(now, maxRefcount) > 0) {
                        throw new Qcow2FormatException("refcount of cluster 0x" + Long.toHexString(c << clusterBits)
                                + (addend < 0 ? " would drop below 0" : " would exceed " + Long.toUnsignedString(maxRefcount)
                                        + " (refcount_bits=" + (1 << order) + ")"));
                    }
                    cache.setRefcount(t, idx, order, now);
                    cache.markDirty(t);
                    done = c + 1;
                    if (now == 0) {
                        freeHint = Math.min(freeHint, c);
                        dropCachedTables(c << clusterBits);
                    }
                }
            } finally {
                if (t >= 0) {
                    cache.put(t);
                }
            }
        } catch (IOException | Restart | RuntimeException e) {
            if (done > first) {
                try {
                    update(first << clusterBits, (done - first) << clusterBits, -addend); // undo, as QEMU tries
                } catch (IOException | Restart | RuntimeException undo) {
                    e.addSuppressed(undo);
                }
            }
            throw e;
        }
    }

    /** A freed cluster may hold a cached table: drop it so it is neither kept nor written over reused space. */
    private void dropCachedTables(long offset) {
        for (long off = offset; off < offset + clusterSize; off += l2Cache.tableSize()) {
            int s = l2Cache.lookup(off);
            if (s >= 0 && l2Cache.references(s) == 0) {
                l2Cache.discard(s);
            }
        }
        int s = cache.lookup(offset);
        if (s >= 0 && cache.references(s) == 0) {
            cache.discard(s);
        }
    }

    /** Creates the refcount block that covers cluster {@code c} (QEMU's alloc_refcount_block). */
    private void createBlock(long c) throws IOException {
        long bi = c >>> blockBits;
        l2Cache.flush(); // the refcount table changes: L2 tables written before may depend on it
        long nb = findFree(1);
        long newBlock = nb << clusterBits;
        int t;
        if ((nb >>> blockBits) == bi) {
            t = cache.getEmpty(newBlock); // describes itself
            cache.setRefcount(t, nb & ((1L << blockBits) - 1), order, 1);
        } else {
            change(newBlock, clusterSize, 1); // counted in another block, created first if needed
            cache.flush();
            t = cache.getEmpty(newBlock);
        }
        cache.markDirty(t);
        cache.put(t);
        cache.flush();
        if (bi < table.length) {
            writeTableEntry((int) bi, newBlock);
            return;
        }
        long blocksUsed = ceilDiv(Math.max(c + 1, nb + 1), 1L << blockBits);
        growTable(blocksUsed << blockBits << clusterBits, (int) bi, newBlock);
    }

    private void writeTableEntry(int index, long value) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment e = arena.allocate(8);
            e.set(BE64, 0, value);
            file.write(tableOffset + 8L * index, e);
        }
        sync.flush();
        table[index] = value;
        tableUsed = used(table);
    }

    /**
     * Replaces the refcount table by one 50 % larger than needed, placed at {@code start} (a cluster offset
     * past every cluster in use) after new refcount blocks that describe themselves and the table (QEMU's
     * qcow2_refcount_area). Block {@code newIndex} is {@code newBlock}.
     */
    private void growTable(long start, int newIndex, long newBlock) throws IOException {
        long startCluster = start >>> clusterBits;
        long blockEntries = 1L << blockBits;
        long entriesPerCluster = clusterSize / 8;
        // Blocks to cover everything up to the end of the new structures (which they are part of).
        long total = ceilDiv(startCluster, blockEntries);
        while (true) {
            long tableSize = roundUp(total + ceilDiv(total, 2), entriesPerCluster);
            long newBlocks = Math.max(0, total - ceilDiv(startCluster, blockEntries));
            long end = startCluster + newBlocks + tableSize / entriesPerCluster;
            long need = ceilDiv(end, blockEntries);
            if (need <= total) {
                break;
            }
            total = need;
        }
        long tableSize = roundUp(total + ceilDiv(total, 2), entriesPerCluster);
        if (tableSize > MAX_TABLE_ENTRIES) {
            throw new IOException("refcount table would exceed 8 MiB (image too large for this cluster size)");
        }
        long[] t = java.util.Arrays.copyOf(table, (int) tableSize);
        if (newBlock != 0) {
            t[newIndex] = newBlock;
        }
        int areaIndex = (int) (startCluster / blockEntries);
        long blockAt = start;
        for (int i = areaIndex; i < total; i++) {
            if (t[i] == 0) {
                t[i] = -blockAt; // marked: to create
                blockAt += clusterSize;
            }
        }
        long newTableOffset = blockAt;
        long end = newTableOffset + tableSize * 8;
        for (int i = areaIndex; i < total; i++) {
            int slot;
            if (t[i] < 0) {
                t[i] = -t[i];
                slot = cache.getEmpty(t[i]);
            } else {
                slot = cache.get(t[i]);
            }
            try {
                long firstCovered = (long) i * blockEntries << clusterBits;
                if (firstCovered < end) {
                    long j = firstCovered < start ? (start - firstCovered) >>> clusterBits : 0;
                    long stop = Math.min((end - firstCovered + clusterSize - 1) >>> clusterBits, blockEntries);
                    for (; j < stop; j++) {
                        cache.setRefcount(slot, j, order, 1);
                    }
                }
                cache.markDirty(slot);
            } finally {
                cache.put(slot);
            }
        }
        cache.flush();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(tableSize * 8, 4096);
            for (int i = 0; i < tableSize; i++) {
                buf.setAtIndex(BE64, i, t[i]);
            }
            file.write(newTableOffset, buf);
        }
        sync.flush();
        long oldOffset = tableOffset;
        int oldClusters = tableClusters;
        headerWriter.writeRefcountTable(newTableOffset, (int) (tableSize / entriesPerCluster));
        table = t;
        tableUsed = used(t);
        tableOffset = newTableOffset;
        tableClusters = (int) (tableSize / entriesPerCluster);
        free(oldOffset, (long) oldClusters << clusterBits);
    }

    /** Clusters the file would need to end at, from the highest cluster with a non-zero refcount. */
    public long lastUsedCluster() throws IOException {
        for (int bi = table.length - 1; bi >= 0; bi--) {
            long block = blockOffset(bi);
            if (block == 0) {
                continue;
            }
            int t = cache.get(block);
            try {
                for (long i = (1L << blockBits) - 1; i >= 0; i--) {
                    if (cache.refcount(t, i, order) != 0) {
                        return ((long) bi << blockBits) + i;
                    }
                }
            } finally {
                cache.put(t);
            }
        }
        return -1;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    private static long roundUp(long a, long b) {
        return ceilDiv(a, b) * b;
    }
}
