package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.CacheStats;
import io.qcow2j.engine.CheckResult;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.FastZeroUnsupportedException;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.Ranges;
import io.qcow2j.engine.RepairMode;
import io.qcow2j.engine.RepairResult;
import io.qcow2j.engine.TableStoreKind;
import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.engine.cache.AlignedTableFile;
import io.qcow2j.engine.cache.CacheCleaner;
import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheSizes;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.TableStore;
import io.qcow2j.engine.check.ImageCheck;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.format.SnapshotTable;
import io.qcow2j.engine.format.SubclusterType;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * An open qcow2 image (QEMU's {@code qcow2.c}): open and close, the requests of {@link Disk}, and what
 * {@link Qcow2Disk} tells of the image. The work is done by the driver's parts, which share an
 * {@link ImageState}:
 * <ul>
 *   <li>{@link ClusterMap} maps guest offsets through the {@link L1Table} and cached L2 slices;</li>
 *   <li>{@link ClusterReader} reads data, zeros, backing and compressed clusters;</li>
 *   <li>{@link ClusterWriter} writes in place or allocates with copy-on-write;</li>
 *   <li>{@link ZeroAndDiscard} changes L2 entries for write zeroes and discard;</li>
 *   <li>{@link Refcounts} allocates and frees host clusters; {@link MetadataFlush} orders and syncs metadata
 *       and keeps the dirty bit of lazy refcounts.</li>
 * </ul>
 *
 * <p>Threads: any number of requests at once. Each holds the request lock shared for its whole duration
 * (write zeroes and discard, which free clusters, hold it exclusively); metadata work happens under the
 * metadata lock, data I/O outside it. Close waits for the requests in flight, then flushes.
 */
public final class Qcow2Image implements Qcow2Disk {
    private final ImageState s;
    private final ClusterMap map;
    private final ClusterReader reader;
    private final FastReads fastReads;
    private final ClusterWriter writer;
    private final CompressedClusterWriter compressedWriter;
    private final ZeroAndDiscard zeroes;
    private final MetadataFlush flusher;
    private final CacheCleaner cleaner;
    /** {@link #metadataPreallocated()}, once known. Under the metadata lock. */
    private Boolean metadataPreallocated;

    private Qcow2Image(ImageState s) {
        this.s = s;
        this.map = new ClusterMap(s);
        this.reader = new ClusterReader(s, map);
        this.fastReads = new FastReads(s, map);
        this.flusher = new MetadataFlush(s);
        this.writer = new ClusterWriter(s, reader, flusher);
        this.zeroes = new ZeroAndDiscard(s, map, writer);
        this.compressedWriter = new CompressedClusterWriter(s, writer, flusher);
        this.cleaner = s.options.cacheCleanInterval() > 0
                ? CacheCleaner.start(Duration.ofSeconds(s.options.cacheCleanInterval()), s.lock, s.l2Cache,
                        s.refcountCache)
                : null;
    }

    /**
     * Opens the qcow2 image in {@code opened} whose header was read and validated (see
     * {@link io.qcow2j.engine.chain.ChainOpener} for backing files and format probing). Takes ownership of the
     * file and of {@code backing}, closing them on failure too. With {@code forRepair} a writable open accepts
     * an image whose header has the dirty or the corrupt bit (QEMU's {@code BDRV_O_CHECK}), to be repaired.
     */
    public static Qcow2Image open(String filename, PositionalFile opened, Qcow2Header header, ImageOptions options,
            Disk backing, List<String> openWarnings, boolean forRepair) throws IOException {
        MetadataCache l2 = null;
        MetadataCache rc = null;
        PositionalFile file = opened;
        try {
            file = new WrittenExtent(opened);
            if (header.hasExternalDataFile()) {
                throw new Qcow2FormatException(filename + ": images with an external data file are not supported");
            }
            Geometry g = header.geometry();
            long[] l1 = L1Table.read(file, header);
            CacheSizes sizes = CacheSizes.resolve(options.l2CacheSize(), options.refcountCacheSize(),
                    options.cacheSize(), options.l2CacheEntrySize(), g.clusterSize(), header.size(), g.l2EntrySize());
            AlignedTableFile tables = new AlignedTableFile(file, options.cacheMode() != CacheMode.UNSAFE);
            ImageState[] self = new ImageState[1];
            MetadataLock lock = new MetadataLock();
            TableStore.Kind store = options.tableStore() == TableStoreKind.HEAP ? TableStore.Kind.HEAP
                    : TableStore.Kind.OFF_HEAP;
            l2 = MetadataCache.builder(CacheKind.L2_TABLE, tables).tables(sizes.l2Tables())
                    .tableSize(sizes.l2EntrySize()).clusterSize(g.clusterSize()).store(store)
                    .loadsWithoutLock(lock)
                    .overlapCheck((kind, offset, length) -> self[0].refuseOverlap(offset, length, OverlapChecker.ACTIVE_L2))
                    .corruptionListener((kind, offset, message) -> self[0].signalCorruption(message)).build();
            rc = MetadataCache.builder(CacheKind.REFCOUNT_BLOCK, tables).tables(sizes.refcountBlocks())
                    .tableSize(g.clusterSize()).clusterSize(g.clusterSize()).store(store)
                    .overlapCheck((kind, offset, length) -> self[0].refuseOverlap(offset, length,
                            OverlapChecker.REFCOUNT_BLOCK))
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
            if (options.snapshot() != null) { // a read-only view (ImageOptions refuses a writable one)
                l1 = L1Table.readSnapshot(filename, file, header, snapshots, options.snapshot());
            }
            ImageState state = new ImageState(filename, (WrittenExtent) file, tables, header, options, backing, lock,
                    l2, rc, l1, refcountTable, snapshots);
            self[0] = state;
            state.warnings.addAll(openWarnings);
            if (header.isCorrupt() && options.readOnly()) {
                state.warnings.add(filename + ": the image is marked corrupt; it is opened read-only");
            }
            return new Qcow2Image(state);
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

    // ---------------------------------------------------------------- requests

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        Ranges.check(offset, dst.byteSize(), s.header.size(), s.filename);
        s.requests.lockShared();
        try {
            s.requireOpen();
            reader.read(offset, dst);
        } finally {
            s.requests.unlockShared();
        }
    }

    /** On the fast path when the mapping is cached ({@link FastReads}), else the blocking read on a virtual thread. */
    @Override
    public CompletableFuture<Void> readAsync(long offset, MemorySegment dst) {
        CompletableFuture<Void> f = fastReads.start(offset, dst, null);
        return f != null ? f : Qcow2Disk.super.readAsync(offset, dst);
    }

    /** Reads that took the fast path so far (tests). */
    long fastReads() {
        return fastReads.started();
    }

    @Override
    public CompletableFuture<Void> readvAsync(long offset, MemorySegment... buffers) {
        CompletableFuture<Void> f = fastReads.start(offset, null, buffers);
        return f != null ? f : Qcow2Disk.super.readvAsync(offset, buffers);
    }

    /**
     * Writes {@code src} at guest offset {@code offset}. Clusters that are not allocated, read as zeros, are
     * compressed or are shared with a snapshot get new host clusters (with the rest of the cluster copied
     * from what it read before); the others are written in place.
     */
    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        write(offset, src, writer::write);
    }

    @Override
    public void writeCompressed(long offset, MemorySegment src) throws IOException {
        write(offset, src, compressedWriter::write);
    }

    @Override
    public CompressedWrite prepareCompressed(long offset, MemorySegment src) throws IOException {
        Ranges.check(offset, src.byteSize(), s.header.size(), s.filename);
        s.requireWritable();
        CompressedClusterWriter.Prepared p = compressedWriter.prepare(offset, src);
        return () -> write(offset, src, (o, b) -> compressedWriter.commit(p));
    }

    /** A data write of one kind: plain or compressed. */
    private interface DataWrite {
        void write(long offset, MemorySegment src) throws IOException;
    }

    /** A write request: range check, request lock (shared) around {@code how}, writethrough flush. */
    private void write(long offset, MemorySegment src, DataWrite how) throws IOException {
        Ranges.check(offset, src.byteSize(), s.header.size(), s.filename);
        s.requireWritable();
        s.requests.lockShared();
        try {
            s.requireOpen();
            how.write(offset, src);
        } finally {
            s.requests.unlockShared();
        }
        flushIfWritethrough();
    }

    /**
     * Version 3 images mark whole clusters (extended L2: subclusters) with the zero flag: with
     * {@link ZeroFlag#MAY_UNMAP} their host clusters are freed, otherwise kept (QEMU's {@code write -z} versus
     * {@code write -z -u}); compressed clusters are always freed. The parts that are not whole clusters
     * (subclusters), and everything in version 2 images, are written as zeros, unless
     * {@link ZeroFlag#NO_FALLBACK} refuses that.
     */
    @Override
    public void writeZeroes(long offset, long length, Set<ZeroFlag> flags) throws IOException {
        Ranges.check(offset, length, s.header.size(), s.filename);
        s.requireWritable();
        s.requests.lockExclusive();
        try {
            s.requireOpen();
            if (flags.contains(ZeroFlag.NO_FALLBACK) && !zeroes.zeroesByMetadataOnly(offset, length)) {
                throw new FastZeroUnsupportedException(s.filename + ": zeroing " + length + " bytes at offset " + offset
                        + " needs buffers of zeros written (" + (s.header.version() < 3
                        ? "a version 2 image has no zero flag"
                        : "not whole " + (s.g.extendedL2() ? "subclusters" : "clusters")) + ")");
            }
            zeroes.zero(offset, length, flags.contains(ZeroFlag.MAY_UNMAP));
        } finally {
            s.requests.unlockExclusive();
        }
        flushIfWritethrough();
    }

    /**
     * Discards whole clusters (QEMU's guest discard): they read as zeros and their host clusters are freed.
     * Parts of clusters are left alone, except a last partial cluster at the end of the image; a version 2
     * image with a backing file (no zero flag) discards nothing.
     */
    @Override
    public void discard(long offset, long length) throws IOException {
        Ranges.check(offset, length, s.header.size(), s.filename);
        s.requireWritable();
        s.requests.lockExclusive();
        try {
            s.requireOpen();
            zeroes.discard(offset, length);
        } finally {
            s.requests.unlockExclusive();
        }
        flushIfWritethrough();
    }

    private void flushIfWritethrough() throws IOException {
        if (s.options.cacheMode() == CacheMode.WRITETHROUGH) {
            flush();
        }
    }

    /**
     * Makes every completed write durable: refcount blocks, then L2 tables, then one sync of the file (at most
     * two {@code fdatasync} calls; one with lazy refcounts).
     */
    @Override
    public void flush() throws IOException {
        s.requireOpen(); // a flush after close would report success for nothing: an error, as every other request
        if (!s.options.readOnly()) {
            flusher.flush();
        }
    }

    @Override
    public BlockStatus blockStatus(long offset, long maxLength) throws IOException {
        Ranges.check(offset, maxLength, s.header.size(), s.filename);
        ClusterMap.Extent ext = new ClusterMap.Extent();
        s.requests.lockShared(); // not while a discard frees clusters, nor after close
        try {
            s.requireOpen();
            map.map(offset, maxLength, ext);
        } finally {
            s.requests.unlockShared();
        }
        SubclusterType t = ext.type;
        boolean compressed = t == SubclusterType.COMPRESSED;
        return new BlockStatus(offset, ext.bytes, !t.readsBacking(), t.readsZeros(), t.hasData(), compressed,
                compressed ? -1 : ext.host);
    }

    // ---------------------------------------------------------------- facts

    @Override
    public long size() {
        return s.header.size();
    }

    @Override
    public boolean isReadOnly() {
        return !s.isWritable();
    }

    @Override
    public Qcow2Header header() {
        return s.header;
    }

    @Override
    public Optional<Disk> backing() {
        return Optional.ofNullable(s.backing);
    }

    @Override
    public String format() {
        return "qcow2";
    }

    @Override
    public String filename() {
        return s.filename;
    }

    /** End of the image file as far as this process knows: its size at open, or the end of the last allocation. */
    @Override
    public long fileSize() {
        return s.fileEnd();
    }

    @Override
    public long allocatedBytes() throws IOException {
        return s.file.allocatedBytes();
    }

    @Override
    public ImageOptions options() {
        return s.options;
    }

    @Override
    public String ioDescription() {
        return s.file.toString() + (s.file.fallbackReason() != null ? " (" + s.file.fallbackReason() + ")" : "");
    }

    @Override
    public List<String> warnings() {
        return List.copyOf(s.warnings);
    }

    /** Adds a line to {@link #warnings()} (a repair made at open). */
    public void addWarning(String warning) {
        s.warnings.add(warning);
    }

    @Override
    public long syncCount() {
        return s.tableFile.syncs();
    }

    /** Entries and entry size of the L2 cache, and entries of the refcount cache. */
    public CacheSizes cacheSizes() {
        return new CacheSizes(s.l2Cache.size(), s.l2Cache.tableSize(), s.refcountCache.size());
    }

    @Override
    public CacheStats l2CacheStatistics() {
        return stats(s.l2Cache);
    }

    @Override
    public CacheStats refcountCacheStatistics() {
        return stats(s.refcountCache);
    }

    /** The raw statistics of a cache, with its probe histogram (benchmarks, tests). */
    public CacheStatistics.Snapshot cacheStatistics(CacheKind kind) {
        s.lock.lock();
        try {
            return (kind == CacheKind.L2_TABLE ? s.l2Cache : s.refcountCache).statistics().snapshot();
        } finally {
            s.lock.unlock();
        }
    }

    private CacheStats stats(MetadataCache cache) {
        CacheStatistics.Snapshot x;
        s.lock.lock();
        try {
            x = cache.statistics().snapshot();
        } finally {
            s.lock.unlock();
        }
        return new CacheStats(cache.size(), cache.tableSize(), x.hits(), x.misses(), x.loads(), x.evictions(),
                x.writebacks(), x.writebackBytes(), x.syncs(), x.releasedBytes(), x.discards(), x.cleaned(),
                x.lookups(), x.probes(), x.maxProbes());
    }

    /** Entries of the active L1 table (a copy). */
    public long[] l1Table() {
        s.lock.lock();
        try {
            return s.l1.entries().clone();
        } finally {
            s.lock.unlock();
        }
    }

    @Override
    public CheckResult check(Consumer<String> problems) throws IOException {
        if (s.options.snapshot() != null) {
            throw new IOException(s.filename + ": a snapshot view cannot be checked (open the image itself)");
        }
        return ImageCheck.check(this, problems);
    }

    @Override
    public RepairResult repair(RepairMode mode, Consumer<String> messages) throws IOException {
        return ImageCheck.repair(this, mode, messages);
    }

    /**
     * The refcount of host cluster {@code clusterIndex} (host offset / cluster size), read through the
     * refcount cache; 0 for a cluster past the refcount table or in an unallocated refcount block.
     *
     * @throws Qcow2FormatException if the refcount table entry is invalid or points past the end of the file
     */
    public long refcount(long clusterIndex) throws IOException {
        s.lock.lock();
        try {
            return clusterIndex < 0 ? 0 : s.refcounts.get(clusterIndex);
        } finally {
            s.lock.unlock();
        }
    }

    /**
     * QEMU's {@code qcow2_detect_metadata_preallocation}: true when clearly more clusters of the file are in
     * use (refcount > 0) than the file has blocks allocated, as after {@code preallocation=metadata}: then
     * data clusters may be holes in the file, and block status should look at the file
     * ({@link #fileStatus}) to find zeros, as QEMU does. Counts refcounts through the refcount cache, once.
     */
    public boolean metadataPreallocated() throws IOException {
        s.lock.lock();
        try {
            if (metadataPreallocated == null) {
                int cs = s.clusterSize;
                long realClusters = s.file.allocatedBytes() / cs;
                long threshold = Math.max(realClusters * 10 / 9, realClusters + 2);
                long endCluster = (s.fileEnd() + cs - 1) / cs;
                long count = 0;
                for (long i = 0; i < endCluster && count <= threshold; i++) {
                    if (s.refcounts.get(i) != 0) {
                        count++;
                    }
                }
                metadataPreallocated = count > threshold;
            }
            return metadataPreallocated;
        } finally {
            s.lock.unlock();
        }
    }

    /**
     * Block status of the image file itself at host offset {@code hostOffset}, from {@code SEEK_DATA} /
     * {@code SEEK_HOLE} as QEMU's file driver reports it: data, or a hole (zero), at most {@code maxLength}
     * bytes and not past the end of the file (an extent starting at or past the end is empty and zero).
     */
    public BlockStatus fileStatus(long hostOffset, long maxLength) throws IOException {
        long end = Math.min(s.fileEnd(), hostOffset + maxLength);
        if (hostOffset >= end) {
            return new BlockStatus(hostOffset, 0, true, true, false, false, hostOffset);
        }
        long data = s.file.seekData(hostOffset);
        if (data < 0 || data >= end) {
            return new BlockStatus(hostOffset, end - hostOffset, true, true, false, false, hostOffset);
        }
        if (data > hostOffset) {
            return new BlockStatus(hostOffset, data - hostOffset, true, true, false, false, hostOffset);
        }
        long hole = s.file.seekHole(hostOffset);
        long stop = hole < 0 ? end : Math.min(hole, end);
        return new BlockStatus(hostOffset, stop - hostOffset, true, false, true, false, hostOffset);
    }

    /** What the driver's parts share: for the operations that rewrite the image's tables ({@link InternalSnapshots}). */
    ImageState state() {
        return s;
    }

    // ---------------------------------------------------------------- for check and repair (io.qcow2j.engine.check)

    /** The metadata lock: the caches, and whatever must see the metadata hold still, are used under it. */
    public ReentrantLock metadataLock() {
        return s.lock;
    }

    /**
     * The lock every request holds (shared; exclusive for requests that free clusters): a repair holds it
     * exclusively, so that no allocation is between its refcount update and its L2 entry meanwhile.
     */
    public RequestLock requestLock() {
        return s.requests;
    }

    /** The image file. */
    public PositionalFile file() {
        return s.file;
    }

    /** The L2 cache; only under {@link #metadataLock()}. */
    public MetadataCache l2Cache() {
        return s.l2Cache;
    }

    /** The refcount block cache; only under {@link #metadataLock()}. */
    public MetadataCache refcountCache() {
        return s.refcountCache;
    }

    /** The active L1 table's entries; not a copy: callers must not change them. Under {@link #metadataLock()}. */
    public long[] activeL1() {
        return s.l1.entries();
    }

    /** The refcounts; only under {@link #metadataLock()}. */
    public Refcounts refcounts() {
        return s.refcounts;
    }

    /** Rewrites header fields in place (synced). */
    public HeaderWriter headerWriter() {
        return s.headerWriter;
    }

    /** Writes (and syncs) one entry of the active L1 table. Under {@link #metadataLock()}. */
    public void writeL1Entry(int index, long value) throws IOException {
        s.l1.write(index, value);
    }

    /** Refuses a write that would land on metadata (QEMU's overlap check), ignoring the kinds in {@code ignore}. */
    public void refuseOverlap(long offset, long length, int ignore) throws Qcow2FormatException {
        s.refuseOverlap(offset, length, ignore);
    }

    /** Whether the image accepts writes: opened read/write and no corruption found since. */
    public boolean isWritable() {
        return s.isWritable();
    }

    /** Makes the metadata written so far durable (one {@code fdatasync}, unless {@code cache=unsafe}). */
    public void syncMetadata() throws IOException {
        s.tableFile.flush();
    }

    /** The file now reaches at least {@code end} (a repair wrote or grew it there). */
    public void noteFileEnd(long end) {
        s.noteFileEnd(end);
    }

    // ---------------------------------------------------------------- close

    /**
     * Flushes (when writable) and releases everything. If the flush fails, the image stays open with its
     * dirty tables and the error is thrown: close again to retry.
     */
    @Override
    public void close() throws IOException {
        if (s.closed) {
            return;
        }
        // requests in flight finish first (lookups of cached slices read the cache's memory without the
        // metadata lock), and only then is everything flushed: a write that returns while close waits must
        // reach the file, not be dropped with the caches. Later requests find the image closed.
        s.requests.lockExclusive();
        try {
            if (s.closed) {
                return; // closed by another thread meanwhile
            }
            if (!s.options.readOnly() && s.isWritable()) {
                flusher.flush();
                flusher.markClean();
            }
            try {
                s.growth.close(); // the space reserved past the end is given back
            } catch (IOException e) {
                s.warnings.add(s.filename + ": giving back the space reserved past the end failed: " + e.getMessage());
            }
            s.closed = true;
        } finally {
            s.requests.unlockExclusive();
        }
        if (cleaner != null) {
            cleaner.close();
        }
        List<Exception> errors = new ArrayList<>();
        s.lock.lock();
        try {
            for (AutoCloseable c : new AutoCloseable[] {s.l2Cache, s.refcountCache, s.file, s.backing}) {
                try {
                    if (c != null) {
                        c.close();
                    }
                } catch (Exception e) {
                    errors.add(e);
                }
            }
        } finally {
            s.lock.unlock();
        }
        if (!errors.isEmpty()) {
            throw errors.get(0) instanceof IOException io ? io : new IOException(errors.get(0));
        }
    }
}
