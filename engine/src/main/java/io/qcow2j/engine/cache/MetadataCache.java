package io.qcow2j.engine.cache;

import io.qcow2j.engine.format.RefcountBlock;
import io.qcow2j.ffm.Errno;
import io.qcow2j.ffm.ErrnoException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * The qcow2 metadata cache: QEMU's {@code Qcow2Cache} ({@code block/qcow2-cache.c}) re-created, with O(1)
 * hits and misses. An image has two: one of L2 tables or L2 slices, one of refcount blocks.
 *
 * <h2>Handles</h2>
 * {@link #get} and {@link #getEmpty} return a <em>table handle</em>: the {@code int} slot of the table in
 * the store. Handles cost nothing to create, so hits allocate nothing. The table's bytes are read and
 * written through {@link #word}/{@link #setWord} (big-endian 64-bit entries) or {@link #table}. A handle is
 * valid until its reference is dropped with {@link #put}; a referenced table is never evicted.
 *
 * <h2>Semantics (QEMU's)</h2>
 * <ul>
 *   <li>Eviction takes an empty slot if there is one, else the unreferenced table whose last reference was
 *       dropped longest ago (exact LRU, QEMU's {@code lru_counter}). A dirty victim is written first; if
 *       that write fails, the get fails and the victim stays cached and dirty.</li>
 *   <li>A table is written only from here: on eviction, {@link #write}, {@link #flush}. Before any table
 *       of this cache is written, the cache it {@linkplain #setDependency depends on} is flushed (written
 *       and synced); or, after {@link #dependsOnFlush}, the file is synced. This is how refcount blocks
 *       reach the disk before the L2 entries that point at the clusters they count.</li>
 *   <li>Every table write first passes the {@link OverlapCheck}; a failed check blocks the write.</li>
 *   <li>A write error never drops dirty data: the entry stays dirty and is retried by the next flush.</li>
 * </ul>
 *
 * <h2>Beyond QEMU</h2>
 * QEMU's hash start makes hits cheap but a miss scans every entry (to prove absence and to find the LRU
 * victim), and so does {@code is_table_offset}. Here an offset index ({@link TableIndex}) and an intrusive
 * LRU list ({@link LruList}) make get, put, lookup, discard and eviction O(1) at any size; only
 * {@link #write}, {@link #empty} and {@link #cleanUnused} walk the entries, as in QEMU. Entries are kept as
 * parallel primitive arrays (struct of arrays), not objects.
 *
 * <h2>Threads</h2>
 * Not thread-safe, by contract: the owner (the image driver) serializes all metadata work under one lock,
 * and the periodic {@link CacheCleaner} takes that same lock. With assertions enabled, use from two threads
 * at once is detected and fails with an {@link AssertionError}. The one exception is {@link #peek} with
 * {@link #word} and {@link #touch}: reads the owner lets through without its lock and validates afterwards
 * (a seqlock). Such a hit cannot move the table in the LRU list; it marks the table used instead, and the
 * next eviction or clean that finds it unused-looking gives it a second chance (moves it to the most
 * recently used end) rather than dropping it.
 *
 * <p>Loads without the lock: built with {@link MetadataCacheBuilder#loadsWithoutLock}, a miss of {@link #getReleasingLock}
 * reads the table from the file with the owner's lock released, so other threads' hits and misses go on
 * meanwhile (QEMU holds its lock across that read). The slot is chosen, indexed, referenced and marked
 * {@code LOADING} first, so nothing evicts, writes, discards or cleans it, and {@link #peek} does not see it.
 * A {@link #get} of that table meanwhile waits for the load <em>without</em> releasing the owner's lock
 * (callers of {@code get} rely on holding it throughout), which is possible because the loader finishes
 * the load (or marks it failed) before it takes the lock again.
 */
public final class MetadataCache implements AutoCloseable {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG.withOrder(ByteOrder.BIG_ENDIAN);
    /** 2^28 slots: with 512-byte tables that is a 128 GiB cache, far beyond any sane setting. */
    static final int MAX_TABLES = 1 << 28;

    private final CacheKind kind;
    private final TableFile file;
    private final int tableSize;
    private final int tableShift;
    private final int size;
    private final TableStore store;
    private final MemorySegment tables;
    private final OverlapCheck overlapCheck;
    private final CorruptionListener corruptionListener;

    // Per-slot state, struct of arrays. Invariants, for every slot s:
    //   offsets[s] == 0  <=> s is on the free stack, refs[s] == 0, !dirty[s], s not in lru, not indexed
    //   offsets[s] != 0  <=> index maps offsets[s] to s
    //   s in lru         <=> offsets[s] != 0 && refs[s] == 0
    /** Image offset of the table held, 0 for an empty slot (offset 0 is the header, never a table). */
    private final long[] offsets;
    /** QEMU's per-entry lru_counter: the cache's counter when the last reference was dropped. */
    private final long[] lruStamps;
    /** How many users hold the table; a referenced table is never evicted, discarded or cleaned. */
    private final int[] refs;
    /** Modified since last written to the file. */
    private final boolean[] dirty;
    /**
     * Hit by {@link #touch} since its last LRU stamp. Written without the owner's lock (racy on purpose: a lost
     * or stray mark only changes which table is evicted first, never what a table holds).
     */
    private final boolean[] used;
    /** Loads that read the file with the owner's lock released, and the state of their slots. */
    private final UnlockedLoads loads;
    private int dirtyCount;

    private final TableIndex index;
    private final LruList lru;
    /** Empty slots, a stack: {@code free[0 .. freeCount)}. */
    private final int[] free;
    private int freeCount;

    /** Bumped whenever a table's last reference is dropped (QEMU's {@code lru_counter}). */
    private long lruCounter;
    /** {@link #cleanUnused} drops tables whose stamp is at most this: unused since the last clean. */
    private long cleanLruCounter;
    /** A cache to flush before any table of this one is written (QEMU's {@code depends}). */
    private MetadataCache depends;
    /** Sync the file before the next table write (QEMU's {@code depends_on_flush}). */
    private boolean dependsOnFlush;

    private final CacheStatistics stats = new CacheStatistics();
    /** The single-owner assertion (with assertions on): use from two threads at once fails. */
    private final OwnerCheck owner;
    private boolean closed;

    MetadataCache(MetadataCacheBuilder b, TableStore store) {
        this.kind = b.kind;
        this.file = b.file;
        this.tableSize = b.tableSize;
        this.tableShift = Integer.numberOfTrailingZeros(b.tableSize);
        this.size = b.tables;
        this.store = store;
        this.tables = store.tables().asSlice(0, (long) b.tables * b.tableSize);
        this.overlapCheck = b.overlapCheck;
        this.corruptionListener = b.corruptionListener;
        this.offsets = new long[size];
        this.lruStamps = new long[size];
        this.refs = new int[size];
        this.dirty = new boolean[size];
        this.used = new boolean[size];
        this.owner = new OwnerCheck(kind);
        this.loads = new UnlockedLoads(kind, size, b.ownerLock, owner);
        this.index = new TableIndex(size, tableSize);
        this.lru = new LruList(size);
        this.free = new int[size];
        for (int i = 0; i < size; i++) {
            free[i] = size - 1 - i; // pop order 0, 1, 2, ...
        }
        this.freeCount = size;
    }

    /** Starts a cache of the given kind over {@code file}. */
    public static MetadataCacheBuilder builder(CacheKind kind, TableFile file) {
        return new MetadataCacheBuilder(kind, file);
    }

    // ---------------------------------------------------------------- get / put

    /**
     * Returns a handle to the table at {@code offset}, loading it from the file on a miss, and takes a
     * reference to it.
     *
     * @throws IllegalArgumentException  if {@code offset} is 0 (callers must treat 0 as "unallocated")
     * @throws CorruptMetadataException  if {@code offset} is not aligned to the table size; the corruption
     *                                   listener has been told, and nothing in the cache changed
     * @throws CacheExhaustedException   if every entry is referenced; nothing changed
     * @throws IOException               if writing back the victim or loading the table failed
     */
    public int get(long offset) throws IOException {
        return doGet(offset, true, false);
    }

    /**
     * As {@link #get}, but a miss reads the table with the owner's lock released (if the cache was built
     * with {@link MetadataCacheBuilder#loadsWithoutLock} and the caller holds that lock once): for callers that keep no
     * state across the call that another thread could change meanwhile (the driver's L2 lookups for reads).
     */
    public int getReleasingLock(long offset) throws IOException {
        return doGet(offset, true, true);
    }

    /**
     * As {@link #get}, but for a table just allocated in the file: nothing is read, and the table's bytes
     * are zeroed (QEMU leaves them stale; zeroing means a caller that forgets to fill a field cannot write
     * another table's entries to disk).
     */
    public int getEmpty(long offset) throws IOException {
        return doGet(offset, false, false);
    }

    private int doGet(long offset, boolean readFromDisk, boolean mayRelease) throws IOException {
        assert owner.enter();
        try {
            checkOffset(offset);
            int slot = index.find(offset);
            stats.recordProbes(index.lastProbes);
            if (slot >= 0 && !loads.isReady(slot)) {
                loads.await(slot, offset);
            }
            if (slot >= 0) {
                stats.hits++;
                if (refs[slot]++ == 0) {
                    lru.remove(slot);
                }
                return slot;
            }
            stats.misses++;
            return load(offset, readFromDisk, mayRelease);
        } finally {
            assert owner.exit();
        }
    }

    private int load(long offset, boolean readFromDisk, boolean mayRelease) throws IOException {
        int slot;
        if (freeCount > 0) {
            slot = free[--freeCount];
        } else {
            slot = lru.first();
            for (int n = 0; slot >= 0 && used[slot] && n < size; n++) {
                secondChance(slot);
                slot = lru.first();
            }
            if (slot < 0) {
                throw new CacheExhaustedException(kind.label() + " cache: all " + size
                        + " entries are in use, none can be evicted (the cache is too small)");
            }
            entryFlush(slot); // may throw: the victim then stays cached and dirty
            evict(slot);
            stats.evictions++;
        }
        offsets[slot] = offset;
        index.insert(offset, slot);
        refs[slot] = 1;
        if (readFromDisk) {
            read(slot, offset, mayRelease);
        } else {
            table(slot).fill((byte) 0);
        }
        return slot;
    }

    /**
     * Reads the table into its (indexed, referenced) slot; with {@code mayRelease}, without the owner's lock
     * when the rules allow it. A failed read empties the slot again.
     */
    private void read(int slot, long offset, boolean mayRelease) throws IOException {
        stats.loads++;
        boolean unlocked = mayRelease && loads.release(slot);
        Exception failure = null;
        try {
            file.read(offset, table(slot));
        } catch (IOException | RuntimeException e) {
            failure = e;
        }
        if (unlocked) {
            loads.retake(slot, failure == null);
        }
        if (failure != null) {
            stats.loads--;
            index.remove(offset);
            offsets[slot] = 0;
            refs[slot] = 0;
            loads.reset(slot);
            free[freeCount++] = slot;
            if (failure instanceof IOException io) {
                throw io;
            }
            throw (RuntimeException) failure;
        }
    }

    /** Empties an occupied, unreferenced, clean slot without returning it to the free stack. */
    private void evict(int slot) {
        index.remove(offsets[slot]);
        lru.remove(slot);
        offsets[slot] = 0;
        lruStamps[slot] = 0;
        used[slot] = false;
    }

    /** An unreferenced table hit by {@link #touch}: now the most recently used, as if a put had just happened. */
    private void secondChance(int slot) {
        used[slot] = false;
        lru.remove(slot);
        lruStamps[slot] = ++lruCounter;
        lru.addLast(slot);
    }

    private void checkOffset(long offset) throws CorruptMetadataException {
        if (offset == 0) {
            throw new IllegalArgumentException(kind.label()
                    + " cache: offset 0 is not a table (an unallocated entry must be handled by the caller)");
        }
        if (offset < 0 || (offset & (tableSize - 1)) != 0) {
            String msg = "Cannot get entry from " + kind.label() + " cache: offset 0x" + Long.toHexString(offset)
                    + (offset < 0 ? " is invalid" : " is unaligned");
            corruptionListener.corruption(kind, offset, msg);
            throw new CorruptMetadataException(msg);
        }
    }

    /** Drops one reference to {@code table}; when the last one goes, the table becomes the most recently used. */
    public void put(int table) {
        assert owner.enter();
        try {
            checkOccupied(table);
            if (refs[table] <= 0) {
                throw new IllegalStateException(kind.label() + " cache: put of unreferenced table " + table);
            }
            if (--refs[table] == 0) {
                used[table] = false;
                lruStamps[table] = ++lruCounter;
                lru.addLast(table);
            }
        } finally {
            assert owner.exit();
        }
    }

    /** Marks the table as modified: it will be written before it is evicted, and by the next flush. */
    public void markDirty(int table) {
        checkOccupied(table);
        if (!dirty[table]) {
            dirty[table] = true;
            dirtyCount++;
        }
    }

    // ---------------------------------------------------------------- table access

    /** The table's bytes, a view into the store (allocates a view: for bulk work, not per entry). */
    public MemorySegment table(int table) {
        return tables.asSlice((long) table << tableShift, tableSize);
    }

    /**
     * The handle of a table view returned by {@link #table}, from its address alone (QEMU's table index). A heap
     * segment's address is only an offset into its array, so for the heap store the array must be the store's.
     */
    public int handleOf(MemorySegment table) {
        long rel = table.address() - tables.address();
        if (table.isNative() != tables.isNative()
                || (!tables.isNative() && table.heapBase().orElse(null) != tables.heapBase().orElse(null))
                || rel < 0 || (rel & (tableSize - 1)) != 0 || (rel >> tableShift) >= size) {
            throw new IllegalArgumentException(kind.label() + " cache: segment is not one of its tables");
        }
        return (int) (rel >> tableShift);
    }

    /** Big-endian 64-bit word {@code i} of the table (an L2 entry, or half of an extended one). */
    public long word(int table, int i) {
        return tables.get(BE64, wordOffset(table, i));
    }

    /** Sets word {@code i}; the caller marks the table dirty. */
    public void setWord(int table, int i, long value) {
        tables.set(BE64, wordOffset(table, i), value);
    }

    private long wordOffset(int table, int i) {
        Objects.checkIndex(table, size);
        Objects.checkIndex(i, tableSize >>> 3);
        return ((long) table << tableShift) + ((long) i << 3);
    }

    /**
     * Refcount entry {@code i} of a refcount block ({@code refcount_order} 0..6: widths 1 to 64 bits,
     * unsigned; a 64-bit count above {@code Long.MAX_VALUE} comes back negative).
     */
    public long refcount(int table, long i, int refcountOrder) {
        return RefcountBlock.get(tables, refcountBase(table, i, refcountOrder), i, refcountOrder);
    }

    /** Sets refcount entry {@code i}; the caller marks the table dirty. Refuses values the width cannot hold. */
    public void setRefcount(int table, long i, int refcountOrder, long value) {
        RefcountBlock.set(tables, refcountBase(table, i, refcountOrder), i, refcountOrder, value);
    }

    private long refcountBase(int table, long i, int refcountOrder) {
        Objects.checkIndex(table, size);
        if (refcountOrder < 0 || refcountOrder > 6) {
            throw new IllegalArgumentException("refcount_order " + refcountOrder + " out of range (0..6)");
        }
        Objects.checkIndex(i, ((long) tableSize << 3) >>> refcountOrder);
        return (long) table << tableShift;
    }

    /** The image offset of the table a handle refers to. */
    public long offsetOf(int table) {
        checkOccupied(table);
        return offsets[table];
    }

    /**
     * For a reader that does not hold the owner's lock and validates afterwards: the handle of the table at
     * {@code offset} if it looks cached, else -1. Takes no reference and changes nothing. Safe to call while
     * the owner changes the cache: it never throws or loops for long, and a handle it returns is in range for
     * {@link #word}; but the answer, and the words read through it, mean something only if the owner's
     * validation succeeds. Then report the hit with {@link #touch}.
     */
    public int peek(long offset) {
        if (offset == 0) {
            return -1; // never a table; and 0 is also the index's empty-bucket key, so findRacy would "find" it
        }
        int slot = index.findRacy(offset);
        return slot >= 0 && slot < size && loads.isReady(slot) ? slot : -1;
    }

    /**
     * Records a validated {@link #peek} hit, without the owner's lock: counts it, and marks the table used so
     * that eviction and {@link #cleanUnused} treat it as recently used.
     */
    public void touch(int table) {
        Objects.checkIndex(table, size);
        if (!used[table]) {
            used[table] = true; // read-mostly: no store (and no cache-line transfer) on repeated hits
        }
        stats.sharedHits.increment();
    }

    /** The handle of the cached table at {@code offset}, or -1; takes no reference (QEMU's is_table_offset). */
    public int lookup(long offset) {
        if (offset == 0) {
            return -1;
        }
        int slot = index.find(offset);
        stats.recordProbes(index.lastProbes);
        return slot;
    }

    public boolean isDirty(int table) {
        Objects.checkIndex(table, size);
        return dirty[table];
    }

    /** References currently held on {@code table}. */
    public int references(int table) {
        Objects.checkIndex(table, size);
        return refs[table];
    }

    private void checkOccupied(int table) {
        Objects.checkIndex(table, size);
        if (offsets[table] == 0) {
            throw new IllegalStateException(kind.label() + " cache: table handle " + table + " is not in use");
        }
    }

    // ---------------------------------------------------------------- write-back

    /** Writes one dirty table, after whatever must reach the disk before it. */
    private void entryFlush(int slot) throws IOException {
        if (!dirty[slot] || offsets[slot] == 0) {
            return;
        }
        if (depends != null) {
            flushDependency();
        } else if (dependsOnFlush) {
            syncFile();
            dependsOnFlush = false;
        }
        overlapCheck.check(kind, offsets[slot], tableSize);
        file.write(offsets[slot], table(slot));
        dirty[slot] = false;
        dirtyCount--;
        stats.writebacks++;
        stats.writebackBytes += tableSize;
    }

    private void flushDependency() throws IOException {
        depends.flush();
        depends = null;
        dependsOnFlush = false;
    }

    private void syncFile() throws IOException {
        file.flush();
        stats.syncs++;
    }

    /**
     * Writes every dirty table (without a sync). All are tried even after a failure; the first error is
     * thrown, except that an out-of-space error is preferred, as the one a user can act on.
     */
    public void write() throws IOException {
        assert owner.enter();
        try {
            IOException result = null;
            for (int i = 0; i < size && dirtyCount > 0; i++) {
                try {
                    entryFlush(i);
                } catch (IOException e) {
                    if (result == null || (isNoSpace(e) && !isNoSpace(result))) {
                        result = e;
                    }
                }
            }
            if (result != null) {
                throw result;
            }
        } finally {
            assert owner.exit();
        }
    }

    private static boolean isNoSpace(IOException e) {
        return e instanceof ErrnoException ee && (ee.errno() == Errno.ENOSPC || ee.errno() == Errno.EDQUOT);
    }

    /** {@link #write} then one sync of the file: afterwards every table written so far is durable. */
    public void flush() throws IOException {
        write();
        syncFile();
    }

    /**
     * Makes this cache's table writes wait for {@code dependency}: before the next table of this cache is
     * written, {@code dependency} is flushed. The driver calls {@code l2Cache.setDependency(refcountCache)}
     * when an L2 entry will point at a newly allocated cluster. As in QEMU, dependencies do not chain: a
     * dependency that itself depends on a cache is flushed first, and so is an existing different one.
     */
    public void setDependency(MetadataCache dependency) throws IOException {
        if (dependency == this) {
            throw new IllegalArgumentException("a cache cannot depend on itself");
        }
        if (dependency.depends != null) {
            dependency.flushDependency();
        }
        if (depends != null && depends != dependency) {
            flushDependency();
        }
        depends = dependency;
    }

    /** The next table write of this cache syncs the file first (e.g. after data COW the L2 entry follows). */
    public void dependsOnFlush() {
        dependsOnFlush = true;
    }

    /** The cache this one waits for, or null. */
    public MetadataCache dependency() {
        return depends;
    }

    public boolean isDependsOnFlush() {
        return dependsOnFlush;
    }

    // ---------------------------------------------------------------- dropping tables

    /**
     * Flushes, then empties every slot and releases all the memory. Every table must be unreferenced.
     * Resets the LRU counters (QEMU resets {@code lru_counter} but not {@code cache_clean_lru_counter},
     * which made the next {@link #cleanUnused} drop tables used since the empty; both are reset here).
     */
    public void empty() throws IOException {
        for (int i = 0; i < size; i++) {
            if (refs[i] != 0) {
                throw new IllegalStateException(kind.label() + " cache: empty with table " + i + " referenced");
            }
        }
        flush();
        assert owner.enter();
        try {
            index.clear();
            lru.clear();
            freeCount = 0;
            for (int i = size - 1; i >= 0; i--) {
                offsets[i] = 0;
                lruStamps[i] = 0;
                used[i] = false;
                free[freeCount++] = i;
            }
            release(0, size);
            lruCounter = 0;
            cleanLruCounter = 0;
        } finally {
            assert owner.exit();
        }
    }

    /**
     * Drops an unreferenced table without writing it, and releases its memory: for a table whose cluster
     * was freed, so that it neither occupies the cache nor is written over the reused cluster.
     */
    public void discard(int table) {
        assert owner.enter();
        try {
            checkOccupied(table);
            if (refs[table] != 0) {
                throw new IllegalStateException(kind.label() + " cache: discard of referenced table " + table);
            }
            if (dirty[table]) {
                dirty[table] = false;
                dirtyCount--;
            }
            evict(table);
            free[freeCount++] = table;
            stats.discards++;
            release(table, 1);
        } finally {
            assert owner.exit();
        }
    }

    /**
     * Drops the tables unused since the previous call (unreferenced, clean, last used at or before the
     * previous clean) and releases their memory, consecutive slots in one run. Called every
     * {@code cache-clean-interval} seconds by {@link CacheCleaner}.
     */
    public void cleanUnused() {
        assert owner.enter();
        try {
            for (int s = 0; s < size; s++) {
                if (used[s] && offsets[s] != 0 && refs[s] == 0) {
                    secondChance(s);
                }
            }
            int i = 0;
            while (i < size) {
                while (i < size && !canClean(i)) {
                    i++;
                }
                int start = i;
                while (i < size && canClean(i)) {
                    evict(i);
                    free[freeCount++] = i;
                    stats.cleaned++;
                    i++;
                }
                if (i > start) {
                    release(start, i - start);
                }
            }
            cleanLruCounter = lruCounter;
        } finally {
            assert owner.exit();
        }
    }

    private boolean canClean(int i) {
        return refs[i] == 0 && !dirty[i] && offsets[i] != 0 && lruStamps[i] <= cleanLruCounter;
    }

    /** Releases the memory of slots {@code [first, first + count)}; a failure only means memory is kept. */
    private void release(int first, int count) {
        try {
            stats.releasedBytes += store.release((long) first << tableShift, (long) count << tableShift);
        } catch (IOException e) {
            // madvise failing leaves the pages in use; nothing is lost, so this is not the caller's error
        }
    }

    // ---------------------------------------------------------------- facts

    public CacheKind kind() {
        return kind;
    }

    /** Number of entries (tables) the cache holds. */
    public int size() {
        return size;
    }

    /** Bytes per table. */
    public int tableSize() {
        return tableSize;
    }

    /** Occupied slots. */
    public int occupied() {
        return size - freeCount;
    }

    /** Dirty tables. */
    public int dirtyCount() {
        return dirtyCount;
    }

    public CacheStatistics statistics() {
        return stats;
    }

    /** True when the store is off-heap ({@code mmap}'d) and releases memory. */
    public boolean releasesMemory() {
        return store.releasesMemory();
    }

    /**
     * Frees the store's memory. Dirty tables not yet written are dropped: the owner flushes first (the
     * driver does, on close).
     */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        store.close();
    }
}
