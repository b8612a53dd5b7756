package io.qcow2j.engine;

import io.qcow2j.engine.cache.AlignedTableFile;
import io.qcow2j.engine.cache.CacheCleaner;
import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheSizes;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.OverlapCheck;
import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.RefcountBlock;
import io.qcow2j.engine.format.RefcountTableEntry;
import io.qcow2j.engine.format.SubclusterType;
import io.qcow2j.ffm.AlignedFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An open qcow2 image (read side). Every L2 lookup goes through the L2 cache (in slices of
 * {@code l2-cache-entry-size}), every refcount lookup through the refcount cache.
 *
 * <p>Threads: any number of threads may read at once. Metadata work (L2 lookups, the cache) happens under
 * one lock, which the cache cleaner also takes; the data I/O of a request (and decompression, and reads
 * from the backing file) happens outside it, so readers overlap their I/O.
 *
 * <p>Nothing read from the file is trusted: every table offset is checked for alignment and against the
 * file size, every entry is classified with QEMU's corruption checks, and every length is bounded, so a
 * hostile image ends in a one-line {@link Qcow2FormatException}, never an out-of-range access or a hang.
 */
public final class Qcow2Image implements BlockDevice {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final String filename;
    private final AlignedFile file;
    private final Qcow2Header header;
    private final Geometry g;
    private final int clusterSize;
    private final long fileSize;
    /** The active L1 table, read at open (≤ 32 MiB by the header's validation). */
    private final long[] l1;
    private final MetadataCache l2Cache;
    private final MetadataCache refcountCache;
    private final CacheCleaner cleaner;
    private final ReentrantLock lock = new ReentrantLock();
    private final BlockDevice backing;
    private final ImageOptions options;
    /** L2 entries in one cache entry (slice), a power of two; words per L2 entry: 1, or 2 with extended L2. */
    private final int sliceEntries;
    private final int sliceShift;
    private final int wordsPerEntry;
    private final List<String> warnings = new CopyOnWriteArrayList<>();
    private volatile String corruption;

    private Qcow2Image(String filename, AlignedFile file, Qcow2Header header, long[] l1, MetadataCache l2Cache,
            MetadataCache refcountCache, BlockDevice backing, ImageOptions options, long fileSize) {
        this.filename = filename;
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
        this.cleaner = options.cacheCleanInterval() > 0
                ? CacheCleaner.start(Duration.ofSeconds(options.cacheCleanInterval()), lock, l2Cache, refcountCache)
                : null;
    }

    /**
     * Opens the qcow2 image in {@code file} whose header was read and validated; see {@link Images#open} for
     * backing files and format probing. Takes ownership of {@code file} (closes it on failure too) and of {@code backing}.
     */
    static Qcow2Image open(String filename, AlignedFile file, Qcow2Header header, ImageOptions options,
            BlockDevice backing, List<String> openWarnings) throws IOException {
        MetadataCache l2 = null;
        MetadataCache rc = null;
        try {
            long fileSize = file.size();
            if (header.hasExternalDataFile()) {
                throw new Qcow2FormatException(filename + ": images with an external data file are not supported");
            }
            Geometry g = header.geometry();
            long[] l1 = readL1(file, header);
            CacheSizes sizes = CacheSizes.resolve(options.l2CacheSize(), options.refcountCacheSize(),
                    options.cacheSize(), options.l2CacheEntrySize(), g.clusterSize(), header.size(), g.l2EntrySize());
            AlignedTableFile tables = new AlignedTableFile(file);
            Qcow2Image[] self = new Qcow2Image[1];
            l2 = MetadataCache.builder(CacheKind.L2_TABLE, tables).tables(sizes.l2Tables())
                    .tableSize(sizes.l2EntrySize()).clusterSize(g.clusterSize()).store(options.tableStore())
                    .overlapCheck(OverlapCheck.NONE)
                    .corruptionListener((kind, offset, message) -> self[0].signalCorruption(message)).build();
            rc = MetadataCache.builder(CacheKind.REFCOUNT_BLOCK, tables).tables(sizes.refcountBlocks())
                    .tableSize(g.clusterSize()).clusterSize(g.clusterSize()).store(options.tableStore())
                    .overlapCheck(OverlapCheck.NONE)
                    .corruptionListener((kind, offset, message) -> self[0].signalCorruption(message)).build();
            Qcow2Image img = new Qcow2Image(filename, file, header, l1, l2, rc, backing, options, fileSize);
            self[0] = img;
            img.warnings.addAll(openWarnings);
            if (header.isCorrupt()) {
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

    private static long[] readL1(AlignedFile file, Qcow2Header h) throws IOException {
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

    /** QEMU's corruption event: remembered, reported through {@link #warnings()}; the image stays read-only. */
    private void signalCorruption(String message) {
        if (corruption == null) {
            corruption = message;
            warnings.add(filename + ": corruption detected: " + message);
        }
    }

    // ---------------------------------------------------------------- reading

    /** One mapped run of guest bytes: what they are and where they live. Reused within a request. */
    private static final class Extent {
        SubclusterType type;
        /** Host offset of the first byte (NORMAL, ZERO_ALLOC, UNALLOCATED_ALLOC), else -1. */
        long host;
        /** The L2 entry (for COMPRESSED: the descriptor). */
        long entry;
        long bytes;
    }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        long len = dst.byteSize();
        Ranges.check(offset, len, header.size(), filename);
        Extent ext = new Extent();
        long pos = 0;
        while (pos < len) {
            long guest = offset + pos;
            lock.lock();
            try {
                map(guest, len - pos, ext);
            } finally {
                lock.unlock();
            }
            MemorySegment part = dst.asSlice(pos, ext.bytes);
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

    /**
     * Maps the guest bytes from {@code guest} (at most {@code max}) to one extent of uniform type, within
     * one L2 slice. Holds the metadata lock.
     */
    private void map(long guest, long max, Extent ext) throws IOException {
        int cb = g.clusterBits();
        long inCluster = guest & (clusterSize - 1);
        long tableSpan = (long) g.l2Entries() << cb;
        long limit = Math.min(max, tableSpan - (guest & (tableSpan - 1)));
        long l1Index = g.l1Index(guest);
        long l2Offset = l1Index < l1.length ? L1Entry.checkedL2Offset(l1[(int) l1Index], l1Index, g) : 0;
        if (l2Offset == 0) {
            set(ext, SubclusterType.UNALLOCATED_PLAIN, -1, 0, limit);
            return;
        }
        if (l2Offset > fileSize - clusterSize) {
            String msg = "L2 table offset 0x" + Long.toHexString(l2Offset) + " (L1 index " + l1Index
                    + ") is past the end of the file";
            signalCorruption(msg);
            throw new Qcow2FormatException(filename + ": " + msg);
        }
        int l2Index = g.l2Index(guest);
        int inSlice = l2Index & (sliceEntries - 1);
        long sliceOffset = l2Offset + ((long) (l2Index >>> sliceShift) * l2Cache.tableSize());
        limit = Math.min(limit, ((long) (sliceEntries - inSlice) << cb) - inCluster);
        int slot = l2Cache.get(sliceOffset);
        try {
            long entry = l2Cache.word(slot, inSlice * wordsPerEntry);
            if (g.extendedL2()) {
                mapSubclusters(slot, entry, l2Offset, l2Index, inSlice, guest, limit, ext);
                return;
            }
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
        } finally {
            l2Cache.put(slot);
        }
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
        lock.lock();
        try {
            map(offset, maxLength, ext);
        } finally {
            lock.unlock();
        }
        SubclusterType t = ext.type;
        boolean compressed = t == SubclusterType.COMPRESSED;
        return new BlockStatus(offset, ext.bytes, !t.readsBacking(), t.readsZeros(), t.hasData(), compressed,
                compressed ? -1 : ext.host);
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
    public BlockDevice backing() {
        return backing;
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
        return file.stat().allocatedBytes();
    }

    /** The options the image was opened with. */
    public ImageOptions options() {
        return options;
    }

    /** How the image file is accessed: {@code O_DIRECT} or buffered, and why a fallback happened. */
    public String ioDescription() {
        return file.toString() + (file.fallbackReason() != null ? " (" + file.fallbackReason() + ")" : "");
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

    // ---------------------------------------------------------------- refcounts and the image file

    /** The refcount table, read on first use (at most 8 MiB by the header's validation). Under the lock. */
    private long[] refcountTable;
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
        if (refcountTable == null) {
            refcountTable = readRefcountTable();
        }
        long index = cluster >>> g.refcountBlockBits();
        if (cluster < 0 || index >= refcountTable.length) {
            return 0;
        }
        long block = RefcountTableEntry.checkedBlockOffset(refcountTable[(int) index], index, g);
        if (block == 0) {
            return 0;
        }
        if (block > fileSize - clusterSize) {
            String msg = "refcount block offset 0x" + Long.toHexString(block) + " (refcount table index " + index
                    + ") is past the end of the file";
            signalCorruption(msg);
            throw new Qcow2FormatException(filename + ": " + msg);
        }
        int slot = refcountCache.get(block);
        try {
            return RefcountBlock.get(refcountCache.table(slot), cluster & (g.refcountBlockEntries() - 1),
                    g.refcountOrder());
        } finally {
            refcountCache.put(slot);
        }
    }

    private long[] readRefcountTable() throws IOException {
        long bytes = header.refcountTableClusters() * clusterSize; // bounded by the header's 8 MiB check
        long[] table = new long[(int) (bytes / 8)];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(bytes, 4096);
            file.readFully(header.refcountTableOffset(), buf);
            for (int i = 0; i < table.length; i++) {
                table[i] = buf.getAtIndex(BE64, i);
            }
        }
        return table;
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
                long realClusters = file.stat().allocatedBytes() / clusterSize;
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

    @Override
    public void close() throws IOException {
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
