package io.qcow2j.engine;

import io.qcow2j.engine.cache.AlignedTableFile;
import io.qcow2j.engine.cache.CacheCleaner;
import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheSizes;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.format.SnapshotTable;
import io.qcow2j.engine.format.SubclusterBitmap;
import io.qcow2j.engine.format.SubclusterType;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An open qcow2 image (read side). Every L2 lookup goes through the L2 cache (in slices of
 * {@code l2-cache-entry-size}), every refcount lookup through the refcount cache.
 *
 * <p>Threads: any number of threads may read at once. Metadata work (L2 lookups, the cache) happens under
 * one lock, which the cache cleaner also takes; the data I/O of a request (and decompression, and reads
 * from the backing file) happens outside it, so readers overlap their I/O. A lookup of an L2 slice that is
 * already cached first runs without the lock and is kept if no thread held the lock meanwhile
 * ({@link MetadataLock}); misses and writes take it.
 *
 * <p>Nothing read from the file is trusted: every table offset is checked for alignment and against the
 * file size, every entry is classified with QEMU's corruption checks, and every length is bounded, so a
 * hostile image ends in a one-line {@link Qcow2FormatException}, never an out-of-range access or a hang.
 */
public final class Qcow2Image implements Disk {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final String filename;
    private final WrittenExtent file;
    private final Qcow2Header header;
    private final Geometry g;
    private final int clusterSize;
    /** End of the image as far as this process knows: the file size at open, or the end of the last allocation. */
    private volatile long fileSize;
    /** The active L1 table, read at open (≤ 32 MiB by the header's validation). */
    private final long[] l1;
    private final MetadataCache l2Cache;
    private final MetadataCache refcountCache;
    private final CacheCleaner cleaner;
    private final MetadataLock lock;
    private final Disk backing;
    private final ImageOptions options;
    /** L2 entries in one cache entry (slice), a power of two; words per L2 entry: 1, or 2 with extended L2. */
    private final int sliceEntries;
    private final int sliceShift;
    private final int wordsPerEntry;
    private final List<String> warnings = new CopyOnWriteArrayList<>();
    private volatile String corruption;
    private volatile boolean closed;

    // Write side. Guarded by lock unless noted.
    /** Whether writes are allowed; cleared (for good) by a corruption event. */
    private volatile boolean writable;
    private final Refcounts refcounts;
    private final OverlapChecker overlaps;
    /** Refcounts may lag behind L2 tables while the header's dirty bit is set (see {@link #markDirtyIfLazy}). */
    private final boolean lazyRefcounts;
    /** This session set the dirty bit (lazy refcounts); a clean close clears it. Under the lock. */
    private boolean dirtiedHere;
    /** The image file as the caches see it; every fdatasync goes through it and is counted. */
    private final AlignedTableFile tableFile;
    private final HeaderWriter headerWriter;
    /**
     * Requests hold the shared side for their whole duration; requests that free clusters (discard, write
     * zeroes) hold the exclusive side, so no read or write is using a cluster while it is freed and reused.
     */
    private final RequestLock ioLock = new RequestLock();
    /** Guest clusters whose new host cluster is being written and not yet linked into the L2 table. */
    private final Set<Long> allocating = new HashSet<>();
    private final Condition allocationLinked;

    private Qcow2Image(String filename, WrittenExtent file, Qcow2Header header, long[] l1, MetadataCache l2Cache,
            MetadataCache refcountCache, Disk backing, ImageOptions options, long fileSize, long[] refcountTable,
            AlignedTableFile tableFile, List<Qcow2Snapshot> snapshots, MetadataLock lock) {
        this.filename = filename;
        this.lock = lock;
        this.allocationLinked = lock.newCondition();
        this.file = file;
        this.header = header;
        this.g = header.geometry();
        this.clusterSize = g.clusterSize();
        this.fileSize = fileSize;
        this.l1 = l1;
        this.l2Cache = l2Cache;
        this.refcountCache = refcountCache;
        this.backing = backing;
        this.options = options;
        this.wordsPerEntry = g.extendedL2() ? 2 : 1;
        this.sliceEntries = l2Cache.tableSize() / g.l2EntrySize();
        this.sliceShift = Integer.numberOfTrailingZeros(sliceEntries);
        this.tableFile = tableFile;
        this.headerWriter = new HeaderWriter(file, tableFile, header);
        this.refcounts = new Refcounts(file, tableFile, g, refcountCache, l2Cache, headerWriter, refcountTable,
                header.refcountTableOffset(), (int) header.refcountTableClusters());
        this.writable = !options.readOnly();
        this.lazyRefcounts = header.version() >= 3
                && (options.lazyRefcounts() != null ? options.lazyRefcounts() : header.lazyRefcounts());
        this.overlaps = new OverlapChecker(options.overlapCheck(), clusterSize, header.l1TableOffset(), l1, snapshots,
                header.snapshotsOffset(), refcounts::table, refcounts::tableOffset, refcounts::tableClusters);
        this.cleaner = options.cacheCleanInterval() > 0
                ? CacheCleaner.start(Duration.ofSeconds(options.cacheCleanInterval()), lock, l2Cache, refcountCache)
                : null;
    }

    /**
     * Opens the qcow2 image in {@code file} whose header was read and validated; see {@link Images#open} for
     * backing files and format probing. Takes ownership of {@code file} (closes it on failure too) and of {@code backing}.
     */
    static Qcow2Image open(String filename, PositionalFile opened, Qcow2Header header, ImageOptions options,
            Disk backing, List<String> openWarnings) throws IOException {
        return open(filename, opened, header, options, backing, openWarnings, false);
    }

    /**
     * As {@link #open(String, PositionalFile, Qcow2Header, ImageOptions, Disk, List)}; with
     * {@code forRepair} a writable open accepts an image whose header has the dirty or the corrupt bit
     * (QEMU's {@code BDRV_O_CHECK}): it is opened to be repaired by {@link ImageCheck#repair}.
     */
    static Qcow2Image open(String filename, PositionalFile opened, Qcow2Header header, ImageOptions options,
            Disk backing, List<String> openWarnings, boolean forRepair) throws IOException {
        MetadataCache l2 = null;
        MetadataCache rc = null;
        PositionalFile file = opened;
        try {
            file = new WrittenExtent(opened);
            long fileSize = file.size();
            if (header.hasExternalDataFile()) {
                throw new Qcow2FormatException(filename + ": images with an external data file are not supported");
            }
            Geometry g = header.geometry();
            long[] l1 = readL1(file, header);
            CacheSizes sizes = CacheSizes.resolve(options.l2CacheSize(), options.refcountCacheSize(),
                    options.cacheSize(), options.l2CacheEntrySize(), g.clusterSize(), header.size(), g.l2EntrySize());
            AlignedTableFile tables = new AlignedTableFile(file, options.cacheMode() != CacheMode.UNSAFE);
            Qcow2Image[] self = new Qcow2Image[1];
            MetadataLock lock = new MetadataLock();
            l2 = MetadataCache.builder(CacheKind.L2_TABLE, tables).tables(sizes.l2Tables())
                    .tableSize(sizes.l2EntrySize()).clusterSize(g.clusterSize()).store(options.tableStore())
                    .loadsWithoutLock(lock)
                    .overlapCheck((kind, offset, length) -> self[0].checkOverlap(kind, offset, length))
                    .corruptionListener((kind, offset, message) -> self[0].signalCorruption(message)).build();
            rc = MetadataCache.builder(CacheKind.REFCOUNT_BLOCK, tables).tables(sizes.refcountBlocks())
                    .tableSize(g.clusterSize()).clusterSize(g.clusterSize()).store(options.tableStore())
                    .overlapCheck((kind, offset, length) -> self[0].checkOverlap(kind, offset, length))
                    .corruptionListener((kind, offset, message) -> self[0].signalCorruption(message)).build();
            if (!options.readOnly() && header.isCorrupt() && !forRepair) {
                throw new Qcow2FormatException(filename + ": the image is marked corrupt and cannot be opened"
                        + " read/write (repair it: 'qcow2j check -r all')");
            }
            if (!options.readOnly() && header.isDirty() && !forRepair) {
                throw new Qcow2FormatException(filename + ": the image is dirty (lazy refcounts after an unclean"
                        + " close) and cannot be opened read/write: repair it first ('qcow2j check -r all')");
            }
            long[] refcountTable = Refcounts.readTable(file, header.refcountTableOffset(),
                    header.refcountTableClusters(), g.clusterSize());
            List<Qcow2Snapshot> snapshots = header.nbSnapshots() == 0 ? List.of() : SnapshotTable.read(file, header);
            Qcow2Image img = new Qcow2Image(filename, (WrittenExtent) file, header, l1, l2, rc, backing, options, fileSize,
                    refcountTable, tables, snapshots, lock);
            self[0] = img;
            img.warnings.addAll(openWarnings);
            if (header.isCorrupt() && options.readOnly()) {
                img.warnings.add(filename + ": the image is marked corrupt; it is opened read-only");
            }
            return img;
        } catch (IOException | RuntimeException | Error e) {
            closeQuietly(l2);
            closeQuietly(rc);
            closeQuietly(file);
            closeQuietly(backing);
            throw e;
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c != null) {
            try {
                c.close();
            } catch (Exception ignored) {
                // already failing: the first error is the one to report
            }
        }
    }

    private static long[] readL1(PositionalFile file, Qcow2Header h) throws IOException {
        int n = (int) h.l1Size(); // bounded by the header's 32 MiB check
        long[] l1 = new long[n];
        if (n == 0) {
            return l1;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate((long) n * 8, 4096);
            file.readFully(h.l1TableOffset(), buf);
            for (int i = 0; i < n; i++) {
                l1[i] = buf.getAtIndex(BE64, i);
            }
        }
        return l1;
    }

    /**
     * QEMU's corruption event: remembered and reported through {@link #warnings()}; a writable image is
     * marked corrupt in its header and becomes read-only, so no write can spread the damage.
     */
    private void signalCorruption(String message) {
        if (corruption != null) {
            return;
        }
        corruption = message;
        if (writable) {
            writable = false;
            try {
                headerWriter.setIncompatible(Qcow2Header.INCOMPAT_CORRUPT, true);
                warnings.add(filename + ": marking image as corrupt: " + message
                        + "; further corruption events will be suppressed");
            } catch (IOException e) {
                warnings.add(filename + ": corruption detected (" + message + "), and marking the image corrupt"
                        + " failed: " + e.getMessage());
            }
        } else {
            warnings.add(filename + ": corruption detected: " + message);
        }
    }

    // ---------------------------------------------------------------- reading

    /** One mapped run of guest bytes: what they are and where they live. Reused within a request. */
    private static final class Extent {
        /** The L2 slice an optimistic lookup read (to report the hit once validated), else -1. */
        int sharedSlot;
        SubclusterType type;
        /** Host offset of the first byte (NORMAL, ZERO_ALLOC, UNALLOCATED_ALLOC), else -1. */
        long host;
        /** The L2 entry (for COMPRESSED: the descriptor). */
        long entry;
        long bytes;
    }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        Ranges.check(offset, dst.byteSize(), header.size(), filename);
        ioLock.lockShared();
        try {
            requireOpen();
            readGuest(offset, dst);
        } finally {
            ioLock.unlockShared();
        }
    }

    /** The read itself, for callers that already hold the I/O lock (copy-on-write reads too). */
    private void readGuest(long offset, MemorySegment dst) throws IOException {
        long len = dst.byteSize();
        Extent ext = new Extent();
        long pos = 0;
        while (pos < len) {
            long guest = offset + pos;
            mapLocked(guest, len - pos, ext);
            MemorySegment part = ext.bytes == len ? dst : dst.asSlice(pos, ext.bytes); // one extent: no view to allocate
            switch (ext.type) {
                case NORMAL -> readHost(ext.host, part);
                case ZERO_PLAIN, ZERO_ALLOC -> part.fill((byte) 0);
                case UNALLOCATED_PLAIN, UNALLOCATED_ALLOC -> readBacking(guest, part);
                case COMPRESSED -> readCompressed(ext.entry, guest, part);
            }
            pos += ext.bytes;
        }
    }

    private void readHost(long host, MemorySegment part) throws IOException {
        long n = file.read(host, part);
        if (n < part.byteSize()) {
            part.asSlice(n).fill((byte) 0); // past the end of the file reads as zeros, as in QEMU
        }
    }

    private void readBacking(long guest, MemorySegment part) throws IOException {
        long n = part.byteSize();
        long inBacking = backing == null ? 0 : Math.max(0, Math.min(n, backing.size() - guest));
        if (inBacking > 0) {
            backing.read(guest, part.asSlice(0, inBacking));
        }
        if (inBacking < n) {
            part.asSlice(inBacking).fill((byte) 0);
        }
    }

    private void readCompressed(long entry, long guest, MemorySegment part) throws IOException {
        int cb = g.clusterBits();
        long coffset = CompressedCluster.hostOffset(entry, cb);
        int csize = CompressedCluster.compressedSize(entry, cb);
        String where = filename + ": compressed cluster at 0x" + Long.toHexString(coffset) + " (guest offset 0x"
                + Long.toHexString(guest & -clusterSize) + ")";
        if (coffset >= fileSize) {
            throw new Qcow2FormatException(where + " starts past the end of the file");
        }
        byte[] in = new byte[csize];
        long n = file.read(coffset, MemorySegment.ofArray(in)); // a tail past the end of the file reads as zeros
        byte[] out = new byte[clusterSize];
        ClusterDecompressor.decompress(header.compressionType(), in, (int) n, out, where);
        MemorySegment.copy(MemorySegment.ofArray(out), guest & (clusterSize - 1), part, 0, part.byteSize());
    }

    private void requireOpen() throws IOException {
        if (closed) {
            throw new IOException(filename + ": image is closed");
        }
    }

    /**
     * {@link #map}: first without the metadata lock (kept if the slice was cached and no thread held the lock
     * meanwhile), else under it. Corrupt metadata is a corruption event (remembered in {@link #warnings()})
     * and a one-line error naming the image.
     */
    private void mapLocked(long guest, long max, Extent ext) throws IOException {
        long version = lock.optimisticVersion();
        if (version != MetadataLock.HELD) {
            try {
                if (map(guest, max, ext, true) && lock.validate(version)) {
                    if (ext.sharedSlot >= 0) {
                        l2Cache.touch(ext.sharedSlot);
                    }
                    return;
                }
            } catch (IOException | RuntimeException e) {
                // metadata read while a lock holder changed it, or a closing cache: the locked path decides
            }
        }
        lock.lock();
        try {
            map(guest, max, ext, false);
        } catch (Qcow2FormatException e) {
            signalCorruption(e.getMessage());
            throw e.getMessage().startsWith(filename + ": ") ? e
                    : new Qcow2FormatException(filename + ": " + e.getMessage());
        } finally {
            lock.unlock();
        }
    }

    /**
     * Maps the guest bytes from {@code guest} (at most {@code max}) to one extent of uniform type, within
     * one L2 slice. Holds the metadata lock, or ({@code optimistic}) reads without it what the caller then
     * validates; returns false when that needs the lock (the slice is not cached).
     */
    private boolean map(long guest, long max, Extent ext, boolean optimistic) throws IOException {
        ext.sharedSlot = -1;
        int cb = g.clusterBits();
        long inCluster = guest & (clusterSize - 1);
        long tableSpan = (long) g.l2Entries() << cb;
        long limit = Math.min(max, tableSpan - (guest & (tableSpan - 1)));
        long l1Index = g.l1Index(guest);
        long l2Offset = l1Index < l1.length ? L1Entry.checkedL2Offset(l1[(int) l1Index], l1Index, g) : 0;
        if (l2Offset == 0) {
            set(ext, SubclusterType.UNALLOCATED_PLAIN, -1, 0, limit);
            return true;
        }
        if (l2Offset > fileSize - clusterSize) {
            throw new Qcow2FormatException("L2 table offset 0x" + Long.toHexString(l2Offset) + " (L1 index "
                    + l1Index + ") is past the end of the file");
        }
        int l2Index = g.l2Index(guest);
        int inSlice = l2Index & (sliceEntries - 1);
        long sliceOffset = l2Offset + ((long) (l2Index >>> sliceShift) * l2Cache.tableSize());
        limit = Math.min(limit, ((long) (sliceEntries - inSlice) << cb) - inCluster);
        // a miss reads the slice with the lock released: nothing read above is kept across it but the
        // L1 entry, and a concurrent change of that is a race the request lost, as if it had come first
        int slot = optimistic ? l2Cache.peek(sliceOffset) : l2Cache.getReleasingLock(sliceOffset);
        if (slot < 0) {
            return false;
        }
        try {
            long entry = l2Cache.word(slot, inSlice * wordsPerEntry);
            if (g.extendedL2()) {
                mapSubclusters(slot, entry, l2Offset, l2Index, inSlice, guest, limit, ext);
            } else {
                mapClusters(slot, entry, l2Offset, l2Index, inSlice, inCluster, limit, ext);
            }
            ext.sharedSlot = optimistic ? slot : -1;
            return true;
        } finally {
            if (!optimistic) {
                l2Cache.put(slot);
            }
        }
    }

    /** Standard L2: a run of clusters of the same type (and contiguous in the file), within the slice. */
    private void mapClusters(int slot, long entry, long l2Offset, int l2Index, int inSlice, long inCluster,
            long limit, Extent ext) throws IOException {
        int cb = g.clusterBits();
        ClusterType type = L2Entry.checkedClusterType(entry, 0, g, l2Offset, l2Index);
        SubclusterType st = L2Entry.subclusterType(type, 0, 0, g);
        long hostCluster = type == ClusterType.NORMAL || type == ClusterType.ZERO_ALLOC
                ? L2Entry.hostClusterOffset(entry) : -1;
        long bytes = clusterSize - inCluster;
        if (type != ClusterType.COMPRESSED) {
            for (int i = inSlice + 1; i < sliceEntries && bytes < limit; i++) {
                long e = l2Cache.word(slot, i);
                ClusterType t = L2Entry.checkedClusterType(e, 0, g, l2Offset, l2Index + (i - inSlice));
                if (t != type || (hostCluster >= 0
                        && L2Entry.hostClusterOffset(e) != hostCluster + ((long) (i - inSlice) << cb))) {
                    break;
                }
                bytes += clusterSize;
            }
        }
        set(ext, st, hostCluster >= 0 ? hostCluster + inCluster : -1, entry, Math.min(bytes, limit));
    }

    /** Extended L2: one run of subclusters of the same type, within the cluster. */
    private void mapSubclusters(int slot, long entry, long l2Offset, int l2Index, int inSlice, long guest, long limit,
            Extent ext) throws IOException {
        long bitmap = l2Cache.word(slot, inSlice * 2 + 1);
        int sc = g.subclusterIndex(guest);
        SubclusterType st = L2Entry.checkedSubclusterType(entry, bitmap, sc, g, l2Offset, l2Index);
        int scSize = g.subclusterSize();
        long inCluster = guest & (clusterSize - 1);
        long bytes = (long) (sc + 1) * scSize - inCluster;
        for (int i = sc + 1; i < g.subclustersPerCluster() && bytes < limit; i++) {
            if (L2Entry.subclusterType(L2Entry.clusterType(entry, g), bitmap, i, g) != st) {
                break;
            }
            bytes += scSize;
        }
        long hostCluster = L2Entry.hostClusterOffset(entry);
        boolean hasHost = st == SubclusterType.NORMAL || st == SubclusterType.ZERO_ALLOC
                || st == SubclusterType.UNALLOCATED_ALLOC;
        set(ext, st, hasHost ? hostCluster + inCluster : -1, entry, Math.min(bytes, limit));
    }

    private static void set(Extent ext, SubclusterType type, long host, long entry, long bytes) {
        ext.type = type;
        ext.host = host;
        ext.entry = entry;
        ext.bytes = bytes;
    }

    @Override
    public BlockStatus blockStatus(long offset, long maxLength) throws IOException {
        Ranges.check(offset, maxLength, header.size(), filename);
        Extent ext = new Extent();
        ioLock.lockShared(); // not while a discard frees clusters, nor after close
        try {
            requireOpen();
            mapLocked(offset, maxLength, ext);
        } finally {
            ioLock.unlockShared();
        }
        SubclusterType t = ext.type;
        boolean compressed = t == SubclusterType.COMPRESSED;
        return new BlockStatus(offset, ext.bytes, !t.readsBacking(), t.readsZeros(), t.hasData(), compressed,
                compressed ? -1 : ext.host);
    }

    // ---------------------------------------------------------------- writing

    /** Whether the image accepts writes: opened with {@code readOnly(false)} and no corruption found since. */
    public boolean isWritable() {
        return writable;
    }

    private void requireWritable() throws IOException {
        if (!writable) {
            throw new IOException(filename + ": image is read-only"
                    + (corruption != null ? " (corruption found: " + corruption + ")" : ""));
        }
    }

    /** What one step of a write does: a run of clusters within one L2 slice, written in place or anew. */
    private static final class WritePlan {
        /** Guest offset of the first cluster of the run. */
        long clusterStart;
        int clusters;
        /** Guest bytes of the request this step covers, from the request's offset. */
        long bytes;
        /** Host offset of the first cluster of the run. */
        long host;
        /** The host clusters were allocated for this step (and must be linked, or freed on failure). */
        boolean fresh;
        /** Guest range written to the host clusters: the request plus copy-on-write head and tail. */
        long windowStart;
        long windowEnd;
        /** L2 entries (and extended L2 bitmaps) must change after the data is written. */
        boolean link;
        long[] oldEntries;
        long[] oldBitmaps;
        /** The new host clusters lie where the file was never written: they read as zeros already. */
        boolean unwrittenSpace;
    }

    /**
     * Writes {@code src} at guest offset {@code offset}. Clusters that are not allocated, read as zeros, are
     * compressed or are shared with a snapshot get new host clusters (with the rest of the cluster copied
     * from what it read before); the others are written in place. Data is written outside the metadata lock;
     * two writers never allocate the same guest cluster twice.
     */
    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        Ranges.check(offset, src.byteSize(), header.size(), filename);
        requireWritable();
        ioLock.lockShared();
        try {
            requireOpen();
            long pos = 0;
            long len = src.byteSize();
            while (pos < len) {
                pos += writeStep(offset + pos, src.asSlice(pos));
            }
        } finally {
            ioLock.unlockShared();
        }
        if (options.cacheMode() == CacheMode.WRITETHROUGH) {
            flush();
        }
    }

    private long writeStep(long guest, MemorySegment src) throws IOException {
        int cb = g.clusterBits();
        long first = guest >>> cb;
        WritePlan plan;
        lock.lock();
        try {
            while (allocating.contains(first)) {
                allocationLinked.awaitUninterruptibly();
            }
            requireWritable();
            plan = planWrite(guest, src.byteSize());
            refuseOverlap(plan.host + (plan.windowStart - plan.clusterStart), plan.windowEnd - plan.windowStart, 0);
            if (plan.link) {
                // in flight until linked: a new cluster, or (extended L2) subclusters newly allocated in place,
                // whose bitmap update must not be lost to, nor its copy-on-write race, another writer's
                for (int k = 0; k < plan.clusters; k++) {
                    allocating.add(first + k);
                }
            }
        } catch (Qcow2FormatException e) {
            throw corrupted(e);
        } finally {
            lock.unlock();
        }
        boolean copied;
        try {
            copied = writeData(plan, guest, src.asSlice(0, plan.bytes));
        } catch (IOException | RuntimeException e) {
            lock.lock();
            try {
                if (plan.fresh) {
                    refcounts.free(plan.host, (long) plan.clusters << cb);
                }
            } catch (IOException | RuntimeException free) {
                e.addSuppressed(free);
            } finally {
                release(plan, first);
                lock.unlock();
            }
            throw e;
        }
        if (plan.link) {
            lock.lock();
            try {
                link(plan, guest, copied);
            } catch (Qcow2FormatException e) {
                throw corrupted(e);
            } finally {
                release(plan, first);
                lock.unlock();
            }
        }
        return plan.bytes;
    }

    private void release(WritePlan plan, long first) {
        if (plan.link) {
            for (int k = 0; k < plan.clusters; k++) {
                allocating.remove(first + k);
            }
            allocationLinked.signalAll();
        }
    }

    /** The cache's pre-write hook: a table write must not land on other metadata. */
    private void checkOverlap(CacheKind kind, long offset, long length) throws IOException {
        refuseOverlap(offset, length, kind == CacheKind.L2_TABLE ? OverlapChecker.ACTIVE_L2 : OverlapChecker.REFCOUNT_BLOCK);
    }

    /** Refuses a write that would land on metadata: the image is marked corrupt (QEMU's overlap check). */
    void refuseOverlap(long offset, long length, int ignore) throws Qcow2FormatException {
        String hit = overlaps.check(offset, length, ignore);
        if (hit != null) {
            String msg = "Preventing invalid write on metadata (overlaps with " + hit + "): " + length + " bytes at 0x"
                    + Long.toHexString(offset);
            signalCorruption(msg);
            throw new Qcow2FormatException(filename + ": " + msg);
        }
    }

    private Qcow2FormatException corrupted(Qcow2FormatException e) {
        signalCorruption(e.getMessage());
        return e.getMessage().startsWith(filename + ": ") ? e : new Qcow2FormatException(filename + ": " + e.getMessage());
    }

    /**
     * Writes the plan's window: the request's bytes, and around them (copy-on-write) the bytes the guest
     * reads there now. Returns whether the copied bytes must be durable before an L2 entry points at them:
     * not when they are zeros written where the file never held data (they read as zeros anyway).
     */
    private boolean writeData(WritePlan plan, long guest, MemorySegment src) throws IOException {
        long hostAt = plan.host + (plan.windowStart - plan.clusterStart);
        long head = guest - plan.windowStart;
        long tail = plan.windowEnd - (guest + plan.bytes);
        if (head == 0 && tail == 0) {
            file.write(hostAt, src);
            return false;
        }
        if (plan.unwrittenSpace && copiedBytesReadZero(plan)) {
            // Never-written space reads as zeros already (a hole, or past the end of the file, which QEMU and
            // qemu-img check accept): writing the zeros would only cost a cluster of I/O and file memory.
            file.write(plan.host + (guest - plan.clusterStart), src);
            return false;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(plan.windowEnd - plan.windowStart, 4096);
            if (head > 0) {
                readGuest(plan.windowStart, buf.asSlice(0, head));
            }
            MemorySegment.copy(src, 0, buf, head, plan.bytes);
            if (tail > 0) {
                readGuest(guest + plan.bytes, buf.asSlice(head + plan.bytes, tail));
            }
            boolean zeros = isZero(buf.asSlice(0, head)) && isZero(buf.asSlice(head + plan.bytes, tail));
            if (plan.unwrittenSpace && zeros) {
                file.write(hostAt + head, src);
                return false;
            }
            file.write(hostAt, buf);
            return !plan.unwrittenSpace || !zeros;
        }
    }

    /**
     * Whether the copy-on-write bytes of a run of new clusters read as zeros, known from the old L2 entries
     * alone: unallocated without a backing file, or zero clusters. Extended L2 answers no (it reads instead).
     */
    private boolean copiedBytesReadZero(WritePlan plan) {
        if (plan.oldBitmaps != null || plan.oldEntries == null) {
            return false;
        }
        for (long old : plan.oldEntries) {
            ClusterType t = L2Entry.clusterType(old, g);
            boolean zero = t == ClusterType.ZERO_PLAIN || t == ClusterType.ZERO_ALLOC
                    || (t == ClusterType.UNALLOCATED && backing == null);
            if (!zero) {
                return false;
            }
        }
        return true;
    }

    private static final MemorySegment ZEROS = MemorySegment.ofArray(new byte[64 << 10]);

    private static boolean isZero(MemorySegment s) {
        for (long pos = 0; pos < s.byteSize(); pos += ZEROS.byteSize()) {
            long n = Math.min(ZEROS.byteSize(), s.byteSize() - pos);
            if (MemorySegment.mismatch(s, pos, pos + n, ZEROS, 0, n) != -1) {
                return false;
            }
        }
        return true;
    }

    /** Decides the next write step. Holds the metadata lock. */
    private WritePlan planWrite(long guest, long max) throws IOException {
        int cb = g.clusterBits();
        int cs = clusterSize;
        int l1Index = (int) g.l1Index(guest);
        long l2Offset = ensureL2Table(l1Index);
        int l2Index = g.l2Index(guest);
        int inSlice = l2Index & (sliceEntries - 1);
        long sliceOffset = l2Offset + ((long) (l2Index >>> sliceShift) * l2Cache.tableSize());
        long inCluster = guest & (cs - 1);
        long limit = Math.min(max, ((long) (sliceEntries - inSlice) << cb) - inCluster);
        WritePlan p = new WritePlan();
        p.clusterStart = guest - inCluster;
        int slot = l2Cache.get(sliceOffset);
        try {
            long entry = l2Cache.word(slot, inSlice * wordsPerEntry);
            if (g.extendedL2()) {
                planSubclusters(p, slot, entry, l2Offset, l2Index, inSlice, guest, Math.min(limit, cs - inCluster));
                return p;
            }
            ClusterType type = L2Entry.checkedClusterType(entry, 0, g, l2Offset, l2Index);
            if (type == ClusterType.NORMAL && L2Entry.isCopied(entry)) {
                long host = L2Entry.hostClusterOffset(entry);
                long bytes = cs - inCluster;
                for (int i = inSlice + 1; i < sliceEntries && bytes < limit; i++) {
                    long e = l2Cache.word(slot, i);
                    if (L2Entry.checkedClusterType(e, 0, g, l2Offset, l2Index + (i - inSlice)) != ClusterType.NORMAL
                            || !L2Entry.isCopied(e) || L2Entry.hostClusterOffset(e) != host + ((long) (i - inSlice) << cb)) {
                        break;
                    }
                    bytes += cs;
                }
                p.bytes = Math.min(bytes, limit);
                p.clusters = (int) ((inCluster + p.bytes + cs - 1) >>> cb);
                p.host = host;
                p.windowStart = guest;
                p.windowEnd = guest + p.bytes;
                return p;
            }
            // A run of clusters that all need new host clusters, up to one already in flight.
            long first = guest >>> cb;
            int n = 1;
            long bytes = cs - inCluster;
            while (inSlice + n < sliceEntries && bytes < limit && !allocating.contains(first + n)) {
                long e = l2Cache.word(slot, inSlice + n);
                ClusterType t = L2Entry.checkedClusterType(e, 0, g, l2Offset, l2Index + n);
                if (t == ClusterType.NORMAL && L2Entry.isCopied(e)) {
                    break;
                }
                n++;
                bytes += cs;
            }
            p.clusters = n;
            p.bytes = Math.min(bytes, limit);
            p.oldEntries = new long[n];
            for (int k = 0; k < n; k++) {
                p.oldEntries[k] = l2Cache.word(slot, inSlice + k);
            }
        } finally {
            l2Cache.put(slot);
        }
        p.windowStart = p.clusterStart;
        p.windowEnd = (guest + p.bytes + cs - 1) & -(long) cs;
        p.host = allocate(p.clusters);
        p.fresh = true;
        p.link = true;
        p.unwrittenSpace = file.end() <= p.host;
        return p;
    }

    /** Extended L2: one cluster; in place when its host cluster is ours, else a new one. */
    private void planSubclusters(WritePlan p, int slot, long entry, long l2Offset, int l2Index, int inSlice, long guest,
            long bytes) throws IOException {
        long bitmap = l2Cache.word(slot, inSlice * 2 + 1);
        ClusterType type = L2Entry.checkedClusterType(entry, bitmap, g, l2Offset, l2Index);
        int scs = g.subclusterSize();
        p.clusters = 1;
        p.bytes = bytes;
        p.oldEntries = new long[] {entry};
        p.oldBitmaps = new long[] {bitmap};
        p.link = true;
        boolean wholeCluster = type == ClusterType.COMPRESSED || (type == ClusterType.NORMAL && !L2Entry.isCopied(entry));
        if (wholeCluster) {
            p.windowStart = p.clusterStart;
            p.windowEnd = p.clusterStart + clusterSize;
        } else {
            p.windowStart = guest & -(long) scs;
            p.windowEnd = (guest + bytes + scs - 1) & -(long) scs;
        }
        if (type == ClusterType.NORMAL && L2Entry.isCopied(entry)) {
            p.host = L2Entry.hostClusterOffset(entry);
            int a = (int) ((p.windowStart - p.clusterStart) / scs);
            int b = (int) ((p.windowEnd - p.clusterStart) / scs);
            long range = SubclusterBitmap.allocatedRange(a, b);
            p.link = (bitmap & range) != range || (bitmap & SubclusterBitmap.zeroRange(a, b)) != 0;
            // An allocated first or last subcluster is written in place without copy-on-write (as QEMU does):
            // rewriting the bytes around the request would undo a concurrent write to them.
            if ((bitmap & SubclusterBitmap.allocatedRange(a, a + 1)) != 0) {
                p.windowStart = guest;
            }
            if ((bitmap & SubclusterBitmap.allocatedRange(b - 1, b)) != 0) {
                p.windowEnd = guest + bytes;
            }
            return;
        }
        p.host = allocate(1);
        p.fresh = true;
        p.unwrittenSpace = file.end() <= p.host;
    }

    /** Allocates host clusters; the image now extends over them (they may not be written yet). */
    private long allocate(int clusters) throws IOException {
        long off = refcounts.allocate(clusters);
        long end = off + ((long) clusters << g.clusterBits());
        if (end > fileSize) {
            fileSize = end;
        }
        return off;
    }

    /** Points the L2 entries at the written clusters and frees what they pointed at before. Holds the lock. */
    private void link(WritePlan p, long guest, boolean copied) throws IOException {
        int cb = g.clusterBits();
        if (p.fresh) {
            markDirtyIfLazy();
            if (!lazyRefcounts) {
                l2Cache.setDependency(refcountCache);
            }
        }
        if (copied) {
            // the copied data must be on disk before an L2 entry points at it: in a new cluster, and (extended
            // L2) in subclusters newly allocated in a cluster the image already owns
            l2Cache.dependsOnFlush();
        }
        long l2Offset = L1Entry.l2Offset(l1[(int) g.l1Index(p.clusterStart)]);
        int l2Index = g.l2Index(p.clusterStart);
        int inSlice = l2Index & (sliceEntries - 1);
        int slot = l2Cache.get(l2Offset + ((long) (l2Index >>> sliceShift) * l2Cache.tableSize()));
        try {
            for (int k = 0; k < p.clusters; k++) {
                long host = p.host + ((long) k << cb);
                int i = inSlice + k;
                if (g.extendedL2()) {
                    int scs = g.subclusterSize();
                    int a = (int) ((p.windowStart - p.clusterStart) / scs);
                    int b = (int) ((p.windowEnd - p.clusterStart) / scs);
                    long old = p.oldBitmaps[k];
                    ClusterType t = L2Entry.clusterType(p.oldEntries[k], g);
                    long keep = t == ClusterType.UNALLOCATED || (t == ClusterType.NORMAL && !p.fresh) ? old : 0;
                    long bitmap = (keep & ~SubclusterBitmap.zeroRange(a, b)) | SubclusterBitmap.allocatedRange(a, b);
                    l2Cache.setWord(slot, 2 * i, host | L2Entry.COPIED);
                    l2Cache.setWord(slot, 2 * i + 1, bitmap);
                } else {
                    l2Cache.setWord(slot, i, host | L2Entry.COPIED);
                }
            }
            l2Cache.markDirty(slot);
        } finally {
            l2Cache.put(slot);
        }
        if (p.fresh) {
            for (long old : p.oldEntries) {
                freeCluster(old, false);
            }
        }
    }

    /**
     * Drops this image's reference to what an L2 entry points at (QEMU's qcow2_free_any_cluster); with
     * {@code punch}, a data cluster nothing references any more is also deallocated in the file.
     */
    private void freeCluster(long entry, boolean punch) throws IOException {
        ClusterType t = L2Entry.clusterType(entry, g);
        switch (t) {
            case NORMAL, ZERO_ALLOC -> {
                long host = L2Entry.hostClusterOffset(entry);
                refcounts.free(host, clusterSize);
                if (punch && refcounts.get(host >>> g.clusterBits()) == 0) {
                    try {
                        file.punchHole(host, clusterSize);
                    } catch (IOException e) {
                        // discard is advisory: a filesystem that cannot punch keeps the bytes
                    }
                }
            }
            case COMPRESSED -> {
                int cb = g.clusterBits();
                long start = CompressedCluster.hostOffset(entry, cb) & ~511L;
                refcounts.free(start, (CompressedCluster.additionalSectors(entry, cb) + 1L) * 512);
            }
            case UNALLOCATED, ZERO_PLAIN -> {}
        }
    }

    /**
     * The L2 table for L1 entry {@code l1Index}, allocated (zeroed) when missing and copied when shared with a
     * snapshot (QEMU's l2_allocate): new table written and synced before the L1 entry points at it.
     */
    private long ensureL2Table(int l1Index) throws IOException {
        long e = l1[l1Index];
        long old = L1Entry.checkedL2Offset(e, l1Index, g);
        if (old != 0 && L1Entry.isCopied(e)) {
            return old;
        }
        long table = allocate(1);
        refcountCache.flush();
        int slices = clusterSize / l2Cache.tableSize();
        for (int s = 0; s < slices; s++) {
            long off = (long) s * l2Cache.tableSize();
            int t = l2Cache.getEmpty(table + off);
            try {
                if (old != 0) {
                    int o = l2Cache.get(old + off);
                    try {
                        MemorySegment.copy(l2Cache.table(o), 0, l2Cache.table(t), 0, l2Cache.tableSize());
                    } finally {
                        l2Cache.put(o);
                    }
                }
                l2Cache.markDirty(t);
            } finally {
                l2Cache.put(t);
            }
        }
        l2Cache.flush();
        writeL1Entry(l1Index, table | L1Entry.COPIED);
        if (old != 0) {
            refcounts.free(old, clusterSize);
        }
        return table;
    }

    /** Writes (and syncs) one entry of the active L1 table, and keeps the in-memory table in step. */
    void writeL1Entry(int index, long value) throws IOException {
        refuseOverlap(header.l1TableOffset() + 8L * index, 8, OverlapChecker.ACTIVE_L1);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment b = arena.allocate(8);
            b.set(BE64, 0, value);
            file.write(header.l1TableOffset() + 8L * index, b);
        }
        tableFile.flush();
        l1[index] = value;
    }

    /**
     * Makes {@code [offset, offset+length)} read as zeros. Version 3 images mark whole clusters (extended
     * L2: subclusters) with the zero flag: with {@code mayUnmap} their host clusters are freed, otherwise kept
     * (QEMU's {@code write -z} versus {@code write -z -u}); compressed clusters are always freed. The parts
     * that are not whole clusters (subclusters), and everything in version 2 images, are written as zeros.
     */
    @Override
    public void writeZeroes(long offset, long length, Set<ZeroFlag> flags) throws IOException {
        Ranges.check(offset, length, header.size(), filename);
        requireWritable();
        boolean mayUnmap = flags.contains(ZeroFlag.MAY_UNMAP);
        long end = offset + length;
        int grain = header.version() < 3 ? 0 : g.extendedL2() ? g.subclusterSize() : clusterSize;
        long a = grain == 0 ? end : Math.min(end, (offset + grain - 1) & -(long) grain);
        long b = grain == 0 ? end : Math.max(a, end & -(long) grain);
        if (flags.contains(ZeroFlag.NO_FALLBACK) && length > 0 && !zeroesByMetadata(offset, a, b, end)) {
            throw new FastZeroUnsupportedException(filename + ": zeroing " + length + " bytes at offset " + offset
                    + " needs buffers of zeros written (" + (grain == 0 ? "a version 2 image has no zero flag"
                    : "not whole " + (g.extendedL2() ? "subclusters" : "clusters")) + ")");
        }
        ioLock.lockExclusive();
        try {
            requireOpen();
            writeZeroBuffers(offset, a);
            EntryChange zero = (entry, bitmap, from, to) -> zeroEntry(entry, bitmap, from, to, mayUnmap);
            if (g.extendedL2() && a < b) {
                // Subclusters of a compressed cluster cannot be zeroed alone: those parts are written instead.
                long ca = Math.min(b, (a + clusterSize - 1) & -(long) clusterSize);
                long cb = Math.max(ca, b & -(long) clusterSize);
                zeroPartialCluster(a, ca, zero);
                if (ca < cb) {
                    rewriteEntries(ca, cb, true, zero);
                }
                zeroPartialCluster(cb, b, zero);
            } else if (a < b) {
                rewriteEntries(a, b, true, zero);
            }
            writeZeroBuffers(b, end);
        } finally {
            ioLock.unlockExclusive();
        }
        if (options.cacheMode() == CacheMode.WRITETHROUGH) {
            flush();
        }
    }

    /**
     * Whether {@code [offset, end)} (split at {@code a}, {@code b} into head, aligned middle and tail) can be
     * zeroed through L2 entries alone: no head or tail to write, and (extended L2) no compressed cluster whose
     * subclusters would have to be written.
     */
    private boolean zeroesByMetadata(long offset, long a, long b, long end) throws IOException {
        if (offset != a || b != end || a >= b) {
            return false;
        }
        if (!g.extendedL2()) {
            return true;
        }
        long inCluster = clusterSize - 1;
        return ((a & inCluster) == 0 || !compressedAt(a)) && ((b & inCluster) == 0 || !compressedAt(b - 1));
    }

    private boolean compressedAt(long guest) throws IOException {
        Extent ext = new Extent();
        ioLock.lockShared();
        try {
            requireOpen();
            mapLocked(guest, 1, ext);
        } finally {
            ioLock.unlockShared();
        }
        return ext.type == SubclusterType.COMPRESSED;
    }

    private void zeroPartialCluster(long from, long to, EntryChange zero) throws IOException {
        if (from >= to) {
            return;
        }
        Extent ext = new Extent();
        mapLocked(from, to - from, ext);
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
                long done = 0;
                while (done < part.byteSize()) {
                    done += writeStep(pos + done, part.asSlice(done));
                }
                pos += part.byteSize();
            }
        }
    }

    /**
     * Discards whole clusters of {@code [offset, offset+length)} (QEMU's guest discard): they read as zeros
     * and their host clusters are freed. Parts of clusters are left alone, except a last partial cluster at
     * the end of the image; a version 2 image with a backing file (no zero flag) discards nothing.
     */
    @Override
    public void discard(long offset, long length) throws IOException {
        Ranges.check(offset, length, header.size(), filename);
        requireWritable();
        long end = offset + length;
        long a = (offset + clusterSize - 1) & -(long) clusterSize;
        long b = end == header.size() ? end : end & -(long) clusterSize;
        if (a >= b || (header.version() < 3 && backing != null)) {
            return; // without a zero flag, a discarded cluster would show stale backing data: QEMU declines too
        }
        ioLock.lockExclusive();
        try {
            requireOpen();
            rewriteEntries(a, b, backing != null, this::discardEntry);
        } finally {
            ioLock.unlockExclusive();
        }
        if (options.cacheMode() == CacheMode.WRITETHROUGH) {
            flush();
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
        ClusterType type = L2Entry.clusterType(entry, g);
        if (g.extendedL2()) {
            boolean whole = from == 0 && to == g.subclustersPerCluster();
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
        ClusterType type = L2Entry.clusterType(entry, g);
        if (backing == null && !type.isAllocated()) {
            return new EntryUpdate(entry, bitmap, false);
        }
        if (g.extendedL2()) {
            return new EntryUpdate(0, SubclusterBitmap.ALL_ZERO, type.isAllocated());
        }
        return new EntryUpdate(header.version() >= 3 ? L2Entry.ZERO : 0, 0, type.isAllocated());
    }

    /**
     * Rewrites the L2 entries of {@code [start, end)} (aligned to clusters, or with extended L2 to
     * subclusters) slice by slice under the metadata lock: entries first, then the old clusters freed (the
     * refcount cache then waits for the L2 cache). L2 tables that are missing are created only when
     * {@code createTables} (with a backing file an unallocated cluster must still become zero).
     */
    private void rewriteEntries(long start, long end, boolean createTables, EntryChange change) throws IOException {
        int cb = g.clusterBits();
        long tableSpan = (long) g.l2Entries() << cb;
        long pos = start;
        while (pos < end) {
            lock.lock();
            try {
                requireWritable();
                int l1Index = (int) g.l1Index(pos);
                long tableEnd = Math.min(end, (pos & -tableSpan) + tableSpan);
                long l2Offset = L1Entry.checkedL2Offset(l1[l1Index], l1Index, g);
                if (l2Offset == 0 && !createTables) {
                    pos = tableEnd;
                    continue;
                }
                l2Offset = ensureL2Table(l1Index);
                long sliceSpan = (long) sliceEntries << cb;
                long sliceEnd = Math.min(tableEnd, (pos & -sliceSpan) + sliceSpan);
                int l2Index = g.l2Index(pos);
                int slot = l2Cache.get(l2Offset + ((long) (l2Index >>> sliceShift) * l2Cache.tableSize()));
                List<Long> toFree = new ArrayList<>();
                try {
                    boolean dirty = false;
                    for (long c = pos; c < sliceEnd; ) {
                        long clusterStart = c & -(long) clusterSize;
                        long clusterEnd = Math.min(sliceEnd, clusterStart + clusterSize);
                        int i = (g.l2Index(c) & (sliceEntries - 1)) * wordsPerEntry;
                        long entry = l2Cache.word(slot, i);
                        long bitmap = g.extendedL2() ? l2Cache.word(slot, i + 1) : 0;
                        L2Entry.checkedClusterType(entry, bitmap, g, l2Offset, g.l2Index(c));
                        int from = 0;
                        int to = 1;
                        if (g.extendedL2()) {
                            from = (int) ((c - clusterStart) >>> g.subclusterBits());
                            to = (int) ((clusterEnd - clusterStart) >>> g.subclusterBits());
                        }
                        EntryUpdate u = change.apply(entry, bitmap, from, to);
                        if (u.entry() != entry || u.bitmap() != bitmap) {
                            l2Cache.setWord(slot, i, u.entry());
                            if (g.extendedL2()) {
                                l2Cache.setWord(slot, i + 1, u.bitmap());
                            }
                            dirty = true;
                            if (u.freeOld()) {
                                toFree.add(entry);
                            }
                        }
                        c = clusterEnd;
                    }
                    if (dirty) {
                        l2Cache.markDirty(slot);
                    }
                } finally {
                    l2Cache.put(slot);
                }
                for (long old : toFree) {
                    freeCluster(old, options.discardUnmap());
                }
                pos = sliceEnd;
            } catch (Qcow2FormatException e) {
                throw corrupted(e);
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Makes every completed write durable: refcount blocks, then L2 tables (the dependency between the two
     * caches orders them), then one sync of the file. At most two {@code fdatasync} calls.
     */
    @Override
    public void flush() throws IOException {
        if (options.readOnly()) {
            return;
        }
        lock.lock();
        try {
            if (closed) {
                return; // a write-through write's flush that lost the race with close: close flushed it
            }
            l2Cache.write();
            if (!headerWriter.isSet(Qcow2Header.INCOMPAT_DIRTY)) {
                refcountCache.write(); // with lazy refcounts they wait for a clean close (or an eviction)
            }
            tableFile.flush();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Lazy refcounts (QEMU's {@code lazy_refcounts=on}): before the first L2 entry points at a new cluster,
     * the header's dirty bit is set (and synced); from then on refcount blocks are not ordered before L2
     * tables nor written by a flush, which costs one {@code fdatasync} per flush instead of two. A clean
     * close writes them and clears the bit; after a crash the refcounts are rebuilt from the L2 tables.
     */
    private void markDirtyIfLazy() throws IOException {
        if (lazyRefcounts && !headerWriter.isSet(Qcow2Header.INCOMPAT_DIRTY)) {
            refcountCache.flush();
            headerWriter.setIncompatible(Qcow2Header.INCOMPAT_DIRTY, true);
            dirtiedHere = true;
        }
    }

    /** QEMU's qcow2_mark_clean: every refcount written and synced, then the dirty bit cleared (synced). */
    private void markClean() throws IOException {
        // Only the bit this session set: one found at open (an earlier unclean close) means the refcounts
        // are not known to be right, and only a repair may clear it.
        if (dirtiedHere && headerWriter.isSet(Qcow2Header.INCOMPAT_DIRTY)) {
            lock.lock();
            try {
                l2Cache.flush();
                refcountCache.flush();
                headerWriter.setIncompatible(Qcow2Header.INCOMPAT_DIRTY, false);
            } finally {
                lock.unlock();
            }
        }
    }

    /** {@code fdatasync} calls made so far (by flushes, the caches, and metadata updates). */
    public long syncCount() {
        return tableFile.syncs();
    }

    // ---------------------------------------------------------------- facts

    @Override
    public long size() {
        return header.size();
    }

    /** The parsed, validated header. */
    public Qcow2Header header() {
        return header;
    }

    @Override
    public Optional<Disk> backing() {
        return Optional.ofNullable(backing);
    }

    @Override
    public boolean isReadOnly() {
        return options.readOnly();
    }

    @Override
    public String format() {
        return "qcow2";
    }

    @Override
    public String filename() {
        return filename;
    }

    /** Size of the image file in bytes when it was opened. */
    public long fileSize() {
        return fileSize;
    }

    /** Bytes the image file occupies on disk (allocated blocks), as {@code qemu-img info}'s "disk size". */
    public long allocatedBytes() throws IOException {
        return file.allocatedBytes();
    }

    /** The options the image was opened with. */
    public ImageOptions options() {
        return options;
    }

    /** How the image file is accessed: {@code O_DIRECT} or buffered, and why a fallback happened. */
    public String ioDescription() {
        return file.toString() + (file.fallbackReason() != null ? " (" + file.fallbackReason() + ")" : "");
    }

    void addWarning(String warning) {
        warnings.add(warning);
    }

    /** Things a user should be told: a corrupt flag, a corruption found while reading, an I/O fallback. */
    public List<String> warnings() {
        return List.copyOf(warnings);
    }

    /** Entries and entry size of the L2 cache, and entries of the refcount cache. */
    public CacheSizes cacheSizes() {
        return new CacheSizes(l2Cache.size(), l2Cache.tableSize(), refcountCache.size());
    }

    public CacheStatistics.Snapshot l2CacheStatistics() {
        lock.lock();
        try {
            return l2Cache.statistics().snapshot();
        } finally {
            lock.unlock();
        }
    }

    public CacheStatistics.Snapshot refcountCacheStatistics() {
        lock.lock();
        try {
            return refcountCache.statistics().snapshot();
        } finally {
            lock.unlock();
        }
    }

    /** Entries of the active L1 table (a copy). */
    public long[] l1Table() {
        return l1.clone();
    }

    // ---------------------------------------------------------------- for ImageCheck

    /** The metadata lock: the caches, and whatever must see the metadata hold still, are used under it. */
    ReentrantLock metadataLock() {
        return lock;
    }

    PositionalFile file() {
        return file;
    }

    /** The L2 cache; only under {@link #metadataLock()}. */
    MetadataCache l2Cache() {
        return l2Cache;
    }

    /** The refcount block cache; only under {@link #metadataLock()}. */
    MetadataCache refcountCache() {
        return refcountCache;
    }

    /** The active L1 table as read at open; not a copy: callers must not change it. */
    long[] activeL1() {
        return l1;
    }

    // ---------------------------------------------------------------- refcounts and the image file

    /** {@link #metadataPreallocated()}, once known. Under the lock. */
    private Boolean metadataPreallocated;

    /**
     * The refcount of host cluster {@code clusterIndex} (host offset / cluster size), read through the
     * refcount cache; 0 for a cluster past the refcount table or in an unallocated refcount block.
     *
     * @throws Qcow2FormatException if the refcount table entry is invalid or points past the end of the file
     */
    public long refcount(long clusterIndex) throws IOException {
        lock.lock();
        try {
            return refcountLocked(clusterIndex);
        } finally {
            lock.unlock();
        }
    }

    private long refcountLocked(long cluster) throws IOException {
        return cluster < 0 ? 0 : refcounts.get(cluster);
    }

    /**
     * QEMU's {@code qcow2_detect_metadata_preallocation}: true when clearly more clusters of the file are in
     * use (refcount > 0) than the file has blocks allocated, as after {@code preallocation=metadata}: then
     * data clusters may be holes in the file, and block status should look at the file
     * ({@link #fileStatus}) to find zeros, as QEMU does. Counts refcounts through the refcount cache, once.
     */
    public boolean metadataPreallocated() throws IOException {
        lock.lock();
        try {
            if (metadataPreallocated == null) {
                long realClusters = file.allocatedBytes() / clusterSize;
                long threshold = Math.max(realClusters * 10 / 9, realClusters + 2);
                long endCluster = (fileSize + clusterSize - 1) / clusterSize;
                long count = 0;
                for (long i = 0; i < endCluster && count <= threshold; i++) {
                    if (refcountLocked(i) != 0) {
                        count++;
                    }
                }
                metadataPreallocated = count > threshold;
            }
            return metadataPreallocated;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Block status of the image file itself at host offset {@code hostOffset}, from {@code SEEK_DATA} /
     * {@code SEEK_HOLE} as QEMU's file driver reports it: data, or a hole (zero), at most {@code maxLength}
     * bytes and not past the end of the file (an extent starting at or past the end is empty and zero).
     */
    public BlockStatus fileStatus(long hostOffset, long maxLength) throws IOException {
        long end = Math.min(fileSize, hostOffset + maxLength);
        if (hostOffset >= end) {
            return new BlockStatus(hostOffset, 0, true, true, false, false, hostOffset);
        }
        long data = file.seekData(hostOffset);
        if (data < 0 || data >= end) {
            return new BlockStatus(hostOffset, end - hostOffset, true, true, false, false, hostOffset);
        }
        if (data > hostOffset) {
            return new BlockStatus(hostOffset, data - hostOffset, true, true, false, false, hostOffset);
        }
        long hole = file.seekHole(hostOffset);
        long stop = hole < 0 ? end : Math.min(hole, end);
        return new BlockStatus(hostOffset, stop - hostOffset, true, false, true, false, hostOffset);
    }

    /**
     * The lock every request holds (reads and writes the read side, discards the write side): a repair holds
     * the write side, so that no allocation is between its refcount update and its L2 entry meanwhile.
     */
    RequestLock ioLock() {
        return ioLock;
    }

    /** The refcounts; only under {@link #metadataLock()}. */
    Refcounts refcounts() {
        return refcounts;
    }

    /** Rewrites header fields in place (synced). */
    HeaderWriter headerWriter() {
        return headerWriter;
    }

    /** Makes the metadata written so far durable (one {@code fdatasync}, unless {@code cache=unsafe}). */
    void syncMetadata() throws IOException {
        tableFile.flush();
    }

    /** The file now reaches at least {@code end} (a repair wrote or grew it there). */
    void noteFileEnd(long end) {
        if (end > fileSize) {
            fileSize = end;
        }
    }

    /**
     * Flushes (when writable) and releases everything. If the flush fails, the image stays open with its
     * dirty tables and the error is thrown: close again to retry.
     */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        // requests in flight finish first (lookups of cached slices read the cache's memory without the
        // metadata lock), and only then is everything flushed: a write that returns while close waits must
        // reach the file, not be dropped with the caches. Later requests find the image closed.
        ioLock.lockExclusive();
        try {
            if (closed) {
                return; // closed by another thread meanwhile
            }
            if (!options.readOnly() && writable) {
                flush();
                markClean();
            }
            closed = true;
        } finally {
            ioLock.unlockExclusive();
        }
        if (cleaner != null) {
            cleaner.close();
        }
        List<Exception> errors = new ArrayList<>();
        lock.lock();
        try {
            for (AutoCloseable c : new AutoCloseable[] {l2Cache, refcountCache, file, backing}) {
                try {
                    if (c != null) {
                        c.close();
                    }
                } catch (Exception e) {
                    errors.add(e);
                }
            }
        } finally {
            lock.unlock();
        }
        if (!errors.isEmpty()) {
            throw errors.get(0) instanceof IOException io ? io : new IOException(errors.get(0));
        }
    }
}
