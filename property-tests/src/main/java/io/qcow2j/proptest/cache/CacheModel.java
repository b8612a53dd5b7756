package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.CacheExhaustedException;
import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CorruptMetadataException;
import io.qcow2j.ffm.Errno;
import io.qcow2j.ffm.ErrnoException;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The reference model of qcow2j's two metadata caches (an L2 cache and a refcount cache) over one file, in plain
 * collections and the most direct code: QEMU's {@code Qcow2Cache} as described in
 * {@code shared/reference/qcow2-cache-facts.md}, plus qcow2j's documented choices.
 *
 * <p>Per cache: the resident tables by slot, each with its reference count, dirty flag and LRU stamp (QEMU's
 * per-entry {@code lru_counter}: {@code ++counter} when the last reference is dropped), the cache's
 * {@code lru_counter} and {@code cache_clean_lru_counter}, its dependency and {@code depends_on_flush} flag.
 * Eviction takes an empty slot if there is one, else the unreferenced table with the smallest stamp. Which
 * empty slot is not specified (QEMU starts its scan at a hash): the model takes the one the cache reports
 * when it is free in the model too, so that it knows each table's slot (write order and released ranges
 * follow from slots).
 *
 * <p>Beside the caches: the expected content of the file (a simulation of the writes the caches must issue,
 * with the same injected read/write/sync failures as the {@link RecordingTableFile}), the logical content of
 * every table ({@link #content}: what a user reads back, from the cache when resident, else from the file),
 * the release requests the caches must make, and the corruption events they must raise.
 *
 * <p>Operations throw what the real cache must throw ({@link ErrnoException} with the errno of the injected
 * failure, {@link CacheExhaustedException}, {@link CorruptMetadataException}), so that an action can compare
 * outcomes. qcow2j's deliberate deviations from QEMU, modelled here: {@code getEmpty} zeroes the table,
 * {@code empty} also resets {@code cache_clean_lru_counter}, an all-referenced miss fails instead of aborting.
 */
public final class CacheModel {

    /** One resident table. */
    public static final class Table {
        private final int slot;
        private final long offset;
        private int refs;
        private boolean dirty;
        private long stamp;
        /** Hit by a lock-free reader ({@code peek} + {@code touch}) since its last stamp: a second chance pending. */
        private boolean used;

        Table(int slot, long offset) {
            this.slot = slot;
            this.offset = offset;
        }

        public int slot() {
            return slot;
        }

        public long offset() {
            return offset;
        }

        public int refs() {
            return refs;
        }

        public boolean dirty() {
            return dirty;
        }

        /** The LRU stamp: the cache's counter when the last reference was dropped or a second chance given (0 before). */
        public long stamp() {
            return stamp;
        }

        /** Touched (a lock-free hit) since its last stamp. */
        public boolean used() {
            return used;
        }

        @Override
        public String toString() {
            return "0x" + Long.toHexString(offset) + "@" + slot + "(refs " + refs + (dirty ? ", dirty" : "")
                    + ", stamp " + stamp + (used ? ", touched" : "") + ")";
        }
    }

    /** What a cache must have counted in its {@link io.qcow2j.engine.cache.CacheStatistics}. */
    public record Counts(long hits, long misses, long loads, long evictions, long writebacks, long syncs,
                         long discards, long cleaned) {}

    /** The model of one cache. */
    public final class Cache {
        private long hits;
        private long misses;
        private long loads;
        private long evictions;
        private long writebacks;
        private long syncs;
        private long discards;
        private long cleaned;
        private final CacheKind kind;
        private final int size;
        private final Table[] slots;
        private final TreeMap<Long, Table> byOffset = new TreeMap<>();
        private final List<Long> universe;
        private long lruCounter;
        private long cleanLruCounter;
        private Cache depends;
        private boolean dependsOnFlush;
        private final List<RecordingTableStore.Release> releases = new ArrayList<>();

        Cache(CacheKind kind, int size, List<Long> universe) {
            this.kind = kind;
            this.size = size;
            this.slots = new Table[size];
            this.universe = List.copyOf(universe);
        }

        public CacheKind kind() {
            return kind;
        }

        public int size() {
            return size;
        }

        /** The table offsets this cache is exercised with. */
        public List<Long> universe() {
            return universe;
        }

        /** The resident table at {@code offset}, or null. */
        public Table table(long offset) {
            return byOffset.get(offset);
        }

        /** The resident tables by offset. */
        public Collection<Table> tables() {
            return Collections.unmodifiableCollection(byOffset.values());
        }

        public Table atSlot(int slot) {
            return slots[slot];
        }

        public int free() {
            return size - byOffset.size();
        }

        public int refs(long offset) {
            Table t = byOffset.get(offset);
            return t == null ? 0 : t.refs;
        }

        public boolean anyReferenced() {
            for (Table t : slots) {
                if (t != null && t.refs > 0) {
                    return true;
                }
            }
            return false;
        }

        public Set<Long> dirtyOffsets() {
            TreeSet<Long> s = new TreeSet<>();
            for (Table t : slots) {
                if (t != null && t.dirty) {
                    s.add(t.offset);
                }
            }
            return s;
        }

        /**
         * The unreferenced table with the smallest stamp (the least recently used), or null. The eviction victim of a
         * miss on a full cache once the touched tables before it had their second chance (see {@link #get}).
         */
        public Table victim() {
            Table v = null;
            for (Table t : slots) {
                if (t != null && t.refs == 0 && (v == null || t.stamp < v.stamp)) {
                    v = t;
                }
            }
            return v;
        }

        public boolean hasDependency() {
            return depends != null;
        }

        public Cache dependency() {
            return depends;
        }

        public boolean dependsOnFlush() {
            return dependsOnFlush;
        }

        public long lruCounter() {
            return lruCounter;
        }

        public long cleanLruCounter() {
            return cleanLruCounter;
        }

        /** The statistics the cache must show. */
        public Counts counts() {
            return new Counts(hits, misses, loads, evictions, writebacks, syncs, discards, cleaned);
        }

        /** The release requests this cache must have made so far, in order. */
        public List<RecordingTableStore.Release> releases() {
            return Collections.unmodifiableList(releases);
        }

        private int freeSlot(int preferred) {
            if (preferred >= 0 && preferred < size && slots[preferred] == null) {
                return preferred;
            }
            for (int i = 0; i < size; i++) {
                if (slots[i] == null) {
                    return i;
                }
            }
            throw new IllegalStateException("no free slot");
        }

        private void place(Table t) {
            slots[t.slot] = t;
            byOffset.put(t.offset, t);
        }

        /** Drops a table from the cache: its logical content becomes the file's again. */
        private void leave(Table t) {
            slots[t.slot] = null;
            byOffset.remove(t.offset);
            content.remove(t.offset);
        }

        private void release(int first, int count) {
            releases.add(new RecordingTableStore.Release((long) first * tableSize, (long) count * tableSize, 0));
        }

        @Override
        public String toString() {
            return kind.label() + " cache " + byOffset.values() + " counter " + lruCounter + " clean "
                    + cleanLruCounter + (depends != null ? " depends on " + depends.kind.label() : "")
                    + (dependsOnFlush ? " depends-on-flush" : "");
        }
    }

    /** A corruption event the cache must raise. */
    public record Corruption(CacheKind kind, long offset) {}

    /**
     * The state when the current action started (for checks of what the action did): the length of the file log,
     * per cache the cache it depends on (absent if none), its depends-on-flush flag and its dirty tables.
     */
    public record StepStart(int logSize, Map<CacheKind, CacheKind> dependsOn, Map<CacheKind, Boolean> dependsOnFlush,
                            Map<CacheKind, Set<Long>> dirty) {}

    /** What a successful flush of {@code kind} must have achieved; {@code clean} are the caches it flushed. */
    public record FlushNote(CacheKind kind, Set<CacheKind> clean, Map<CacheKind, Set<Long>> dirtyBefore) {}

    private final int tableSize;
    private final int words;
    private final Map<CacheKind, Cache> caches = new EnumMap<>(CacheKind.class);
    private static final VarHandle BE_LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);
    /** What the file must hold, by table offset (big-endian bytes, as the caches store them). */
    private final HashMap<Long, byte[]> file = new HashMap<>();
    /** Logical content of the resident tables; any other table's is the file's. */
    private final HashMap<Long, byte[]> content = new HashMap<>();
    private final List<Corruption> corruptions = new ArrayList<>();
    private int failReads;
    private int readErrno = Errno.EIO;
    private int failWrites;
    private int writeErrno = Errno.EIO;
    private int failSyncs;
    private int syncErrno = Errno.EIO;
    private int failOverlapChecks;

    private StepStart stepStart;
    private final TreeMap<String, Long> events = new TreeMap<>();
    /** Notes the current action leaves for the invariants (null when it does not apply). */
    private FlushNote flushNote;
    private Object actionNote;

    /**
     * A model of an L2 cache of {@code l2Tables} and a refcount cache of {@code rcTables} tables of
     * {@code tableSize} bytes, exercised with the given table offsets, over a file that initially holds
     * {@code initial} (offset → big-endian words; zeros elsewhere).
     */
    public CacheModel(int tableSize, int l2Tables, List<Long> l2Universe, int rcTables, List<Long> rcUniverse,
                      Map<Long, long[]> initial) {
        this.tableSize = tableSize;
        this.words = tableSize / 8;
        this.zeros = new byte[tableSize];
        caches.put(CacheKind.L2_TABLE, new Cache(CacheKind.L2_TABLE, l2Tables, l2Universe));
        caches.put(CacheKind.REFCOUNT_BLOCK, new Cache(CacheKind.REFCOUNT_BLOCK, rcTables, rcUniverse));
        initial.forEach((k, v) -> {
            byte[] b = new byte[tableSize];
            for (int i = 0; i < v.length; i++) {
                BE_LONG.set(b, 8 * i, v[i]);
            }
            file.put(k, b);
        });
    }

    public int tableSize() {
        return tableSize;
    }

    public int words() {
        return words;
    }

    public Cache cache(CacheKind kind) {
        return caches.get(kind);
    }

    public Cache l2() {
        return caches.get(CacheKind.L2_TABLE);
    }

    public Cache refcount() {
        return caches.get(CacheKind.REFCOUNT_BLOCK);
    }

    /** The logical content of the table at {@code offset}, as 64-bit words (a copy). */
    public long[] content(long offset) {
        return words(contentBytes(offset));
    }

    /**
     * The logical content of the table at {@code offset}, as the big-endian bytes the cache holds: not a copy,
     * do not modify.
     */
    public byte[] contentBytes(long offset) {
        byte[] c = content.get(offset);
        return c != null ? c : fileBytes(offset);
    }

    private long[] words(byte[] b) {
        long[] w = new long[words];
        for (int i = 0; i < words; i++) {
            w[i] = (long) BE_LONG.get(b, 8 * i);
        }
        return w;
    }

    private final byte[] zeros;

    /** What the file must hold at {@code offset} (zeros if never written): not a copy, do not modify. */
    public byte[] fileBytes(long offset) {
        byte[] f = file.get(offset);
        return f != null ? f : zeros;
    }

    /** What the file must hold at {@code offset} (a copy; zeros if never written). */
    public long[] fileWords(long offset) {
        return words(fileBytes(offset));
    }

    /** The corruption events the caches must have raised so far. */
    public List<Corruption> corruptions() {
        return Collections.unmodifiableList(corruptions);
    }

    // -------------------------------------------------------------------------------------- per action

    /** Called by every action before it runs: remembers the state it starts from, clears the notes. */
    public void begin(int logSize) {
        Map<CacheKind, CacheKind> dependsOn = new EnumMap<>(CacheKind.class);
        Map<CacheKind, Boolean> dof = new EnumMap<>(CacheKind.class);
        Map<CacheKind, Set<Long>> dirty = new EnumMap<>(CacheKind.class);
        for (Cache c : caches.values()) {
            if (c.depends != null) {
                dependsOn.put(c.kind, c.depends.kind);
            }
            dof.put(c.kind, c.dependsOnFlush);
            dirty.put(c.kind, c.dirtyOffsets());
        }
        stepStart = new StepStart(logSize, dependsOn, dof, dirty);
        events.clear();
        flushNote = null;
        actionNote = null;
    }

    public StepStart stepStart() {
        return stepStart;
    }

    /** Events of the current action (for statistics), by label. */
    public Map<String, Long> events() {
        return Collections.unmodifiableMap(events);
    }

    private void event(String label) {
        events.merge(label, 1L, Long::sum);
    }

    public FlushNote flushNote() {
        return flushNote;
    }

    /** A note of the current action for an invariant (e.g. the observations around an exhausted miss). */
    public Object actionNote() {
        return actionNote;
    }

    public void actionNote(Object note) {
        this.actionNote = note;
    }

    // -------------------------------------------------------------------------------------- file

    public void failNextReads(int n, int errno) {
        failReads = n;
        readErrno = errno;
    }

    public void failNextWrites(int n, int errno) {
        failWrites = n;
        writeErrno = errno;
    }

    public void failNextSyncs(int n, int errno) {
        failSyncs = n;
        syncErrno = errno;
    }

    /** The next {@code n} pre-write overlap checks fail (with {@link CorruptMetadataException}). */
    public void failNextOverlapChecks(int n) {
        failOverlapChecks = n;
    }

    private void overlapCheck() throws IOException {
        if (failOverlapChecks > 0) {
            failOverlapChecks--;
            event("overlap check failed (injected)");
            throw new CorruptMetadataException("model: overlap");
        }
    }

    private byte[] fileRead(Cache c, long offset) throws IOException {
        if (failReads > 0) {
            failReads--;
            event("read failed (injected)");
            throw new ErrnoException("model pread", readErrno);
        }
        c.loads++;
        return fileBytes(offset).clone();
    }

    private void fileWrite(Cache c, long offset) throws IOException {
        if (failWrites > 0) {
            failWrites--;
            event("write failed (injected)");
            throw new ErrnoException("model pwrite", writeErrno);
        }
        file.put(offset, contentBytes(offset).clone());
        c.writebacks++;
        event("write-back " + c.kind.label());
    }

    private void sync(Cache c) throws IOException {
        if (failSyncs > 0) {
            failSyncs--;
            event("sync failed (injected)");
            throw new ErrnoException("model fdatasync", syncErrno);
        }
        c.syncs++;
        event("sync");
    }

    // -------------------------------------------------------------------------------------- operations

    /** Whether a get of {@code offset} must fail because every entry is referenced. */
    public boolean wouldExhaust(CacheKind kind, long offset) {
        Cache c = cache(kind);
        return aligned(offset) && c.table(offset) == null && c.free() == 0 && c.victim() == null;
    }

    public boolean aligned(long offset) {
        return offset > 0 && offset % tableSize == 0;
    }

    /**
     * {@code get} ({@code empty} false) or {@code getEmpty}; returns the slot. On a miss with a free slot the
     * table goes to slot {@code observed} (what the cache returned) if it is free, else to the first free one.
     */
    public int get(CacheKind kind, long offset, boolean empty, int observed) throws IOException {
        Cache c = cache(kind);
        if (offset == 0) {
            throw new IllegalArgumentException("offset 0");
        }
        if (!aligned(offset)) {
            corruptions.add(new Corruption(kind, offset));
            event("misaligned offset");
            throw new CorruptMetadataException("model: misaligned " + offset);
        }
        Table t = c.table(offset);
        if (t != null) {
            t.refs++;
            c.hits++;
            event("hit");
            return t.slot;
        }
        c.misses++;
        event("miss");
        int slot;
        if (c.free() > 0) {
            slot = c.freeSlot(observed);
        } else {
            Table v = c.victim();
            // a touched table is not evicted but restamped (the most recently used), once: then the next candidate;
            // at most one round over the cache, after which every candidate's mark is spent
            for (int n = 0; v != null && v.used && n < c.size; n++) {
                secondChance(c, v);
                event("second chance at eviction");
                v = c.victim();
            }
            if (v == null) {
                event("miss on an all-referenced cache");
                throw new CacheExhaustedException("model: all " + c.size + " referenced");
            }
            boolean wasDirty = v.dirty;
            entryFlush(c, v);
            c.leave(v);
            c.evictions++;
            slot = v.slot;
            event(wasDirty ? "eviction of a dirty table" : "eviction of a clean table");
        }
        byte[] data = empty ? new byte[tableSize] : fileRead(c, offset);
        content.put(offset, data);
        Table n = new Table(slot, offset);
        n.refs = 1;
        c.place(n);
        return slot;
    }

    /** Drops a reference; the last one stamps the table as the most recently used (and spends a touch's mark). */
    public void put(CacheKind kind, long offset) {
        Table t = requireReferenced(kind, offset);
        if (--t.refs == 0) {
            t.used = false;
            t.stamp = ++cache(kind).lruCounter;
        }
    }

    /**
     * {@code peek}: the slot of the resident table at {@code offset}, or -1 (offset 0, misaligned and negative
     * offsets are never resident). Changes nothing.
     */
    public int peek(CacheKind kind, long offset) {
        Table t = cache(kind).table(offset);
        return t == null ? -1 : t.slot;
    }

    /** {@code touch} after a peek that found the table: a hit, and the table's second chance is pending. */
    public void touch(CacheKind kind, long offset) {
        Table t = requireResident(kind, offset);
        t.used = true;
        cache(kind).hits++;
        event("touch");
    }

    /** A touched unreferenced table becomes the most recently used instead of being evicted or cleaned. */
    private static void secondChance(Cache c, Table t) {
        t.used = false;
        t.stamp = ++c.lruCounter;
    }

    /** Sets word {@code i} of a referenced table and marks it dirty. */
    public void modify(CacheKind kind, long offset, int i, long value) {
        requireReferenced(kind, offset);
        BE_LONG.set(content.get(offset), 8 * i, value);
        markDirty(kind, offset);
    }

    public void markDirty(CacheKind kind, long offset) {
        Table t = requireResident(kind, offset);
        t.dirty = true;
    }

    public void write(CacheKind kind) throws IOException {
        write(cache(kind));
    }

    public void flush(CacheKind kind) throws IOException {
        Map<CacheKind, Set<Long>> before = new EnumMap<>(CacheKind.class);
        caches.values().forEach(c -> before.put(c.kind, c.dirtyOffsets()));
        Set<CacheKind> clean = new TreeSet<>();
        clean.add(kind);
        Cache c = cache(kind);
        if (c.depends != null && !c.dirtyOffsets().isEmpty()) {
            clean.add(c.depends.kind);
        }
        flush(c);
        flushNote = new FlushNote(kind, clean, before);
    }

    /** Drops an unreferenced table without writing it: its content reverts to the file's. */
    public void discard(CacheKind kind, long offset) {
        Cache c = cache(kind);
        Table t = requireResident(kind, offset);
        if (t.refs != 0) {
            throw new IllegalStateException("discard of a referenced table");
        }
        if (t.dirty) {
            event("discard of a dirty table");
        }
        event("discard");
        c.discards++;
        c.leave(t);
        c.release(t.slot, 1);
    }

    /**
     * Drops the clean, unreferenced tables unused since the previous clean; runs of slots released together. First,
     * every touched unreferenced table (in slot order) gets its second chance: restamped, so it is kept.
     */
    public void cleanUnused(CacheKind kind) {
        Cache c = cache(kind);
        for (Table t : c.slots) { // in slot order: the order of their new stamps
            if (t != null && t.used && t.refs == 0) {
                secondChance(c, t);
                event("second chance at clean");
            }
        }
        int i = 0;
        while (i < c.size) {
            while (i < c.size && !canClean(c, i)) {
                i++;
            }
            int start = i;
            while (i < c.size && canClean(c, i)) {
                c.leave(c.slots[i]);
                c.cleaned++;
                event("cleaned");
                i++;
            }
            if (i > start) {
                c.release(start, i - start);
                event(i - start > 1 ? "clean run of several tables" : "clean run of one table");
            }
        }
        c.cleanLruCounter = c.lruCounter;
    }

    private static boolean canClean(Cache c, int i) {
        Table t = c.slots[i];
        return t != null && t.refs == 0 && !t.dirty && t.stamp <= c.cleanLruCounter;
    }

    /** Flushes, then drops every table (none may be referenced) and resets both LRU counters. */
    public void empty(CacheKind kind) throws IOException {
        Cache c = cache(kind);
        if (c.anyReferenced()) {
            throw new IllegalStateException("empty with a referenced table");
        }
        flush(c);
        for (Table t : List.copyOf(c.byOffset.values())) {
            c.leave(t);
        }
        c.release(0, c.size);
        c.lruCounter = 0;
        c.cleanLruCounter = 0;
        event("empty");
    }

    /** {@code kind} waits for {@code dependency}; dependencies do not chain (QEMU's rules). */
    public void setDependency(CacheKind kind, CacheKind dependency) throws IOException {
        Cache c = cache(kind);
        Cache d = cache(dependency);
        if (c == d) {
            throw new IllegalArgumentException("a cache cannot depend on itself");
        }
        if (d.depends != null) {
            flushDependency(d);
        }
        if (c.depends != null && c.depends != d) {
            flushDependency(c);
        }
        c.depends = d;
    }

    public void dependsOnFlush(CacheKind kind) {
        cache(kind).dependsOnFlush = true;
    }

    // -------------------------------------------------------------------------------------- write-back

    private void entryFlush(Cache c, Table t) throws IOException {
        if (!t.dirty) {
            return;
        }
        if (c.depends != null) {
            event("dependency flushed before a " + c.kind.label() + " write");
            flushDependency(c);
        } else if (c.dependsOnFlush) {
            sync(c);
            event("depends-on-flush sync");
            c.dependsOnFlush = false;
        }
        overlapCheck();
        fileWrite(c, t.offset);
        t.dirty = false;
    }

    private void flushDependency(Cache c) throws IOException {
        flush(c.depends);
        c.depends = null;
        c.dependsOnFlush = false;
    }

    private void write(Cache c) throws IOException {
        IOException result = null;
        for (int i = 0; i < c.size; i++) {
            Table t = c.slots[i];
            if (t == null || !t.dirty) {
                continue;
            }
            try {
                entryFlush(c, t);
            } catch (IOException e) {
                if (result == null || (noSpace(e) && !noSpace(result))) {
                    result = e;
                }
            }
        }
        if (result != null) {
            throw result;
        }
    }

    private void flush(Cache c) throws IOException {
        write(c);
        sync(c);
    }

    private static boolean noSpace(IOException e) {
        return e instanceof ErrnoException ee && (ee.errno() == Errno.ENOSPC || ee.errno() == Errno.EDQUOT);
    }

    private Table requireResident(CacheKind kind, long offset) {
        Table t = cache(kind).table(offset);
        if (t == null) {
            throw new IllegalStateException(kind.label() + " 0x" + Long.toHexString(offset) + " not resident");
        }
        return t;
    }

    private Table requireReferenced(CacheKind kind, long offset) {
        Table t = requireResident(kind, offset);
        if (t.refs <= 0) {
            throw new IllegalStateException(kind.label() + " 0x" + Long.toHexString(offset) + " not referenced");
        }
        return t;
    }

    @Override
    public String toString() {
        return l2() + "\n" + refcount();
    }
}
