package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.cache.AlignedTableFile;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * What every part of the driver shares about one open qcow2 image, as QEMU's {@code BDRVQcow2State} is
 * shared by {@code qcow2.c}, {@code qcow2-cluster.c} and {@code qcow2-refcount.c}: the file, the header's
 * geometry, the active L1 table, both metadata caches and the locks that guard them, the refcounts, and the
 * corruption event.
 *
 * <p>Locks, outermost first: {@link #requests} (held shared by every request for its whole duration,
 * exclusively by requests that free clusters, by a repair and by close), then {@link #lock} (the metadata
 * lock: the caches, the L1 table, the refcounts and the in-flight allocations are only used under it, except
 * for the seqlock-validated lookups of {@link ClusterMap}). Data I/O never happens under the metadata lock.
 */
final class ImageState {
    final String filename;
    /** The image file; knows how far anything was ever written (see {@link WrittenExtent}). */
    final WrittenExtent file;
    /** The image file as the caches see it; every {@code fdatasync} goes through it and is counted. */
    final AlignedTableFile tableFile;
    final Qcow2Header header;
    final Geometry g;
    final int clusterSize;
    final ImageOptions options;
    /** The backing disk, or null. */
    final Disk backing;
    final MetadataLock lock;
    final RequestLock requests = new RequestLock();
    final MetadataCache l2Cache;
    final MetadataCache refcountCache;
    final L1Table l1;
    final Refcounts refcounts;
    final HeaderWriter headerWriter;
    final OverlapChecker overlaps;
    /** Reserves file space ahead of the allocations, in large steps. */
    final FileGrowth growth;
    /** L2 entries in one cache entry (slice), a power of two; words per L2 entry: 1, or 2 with extended L2. */
    final int sliceEntries;
    final int sliceShift;
    final int wordsPerEntry;
    final List<String> warnings = new CopyOnWriteArrayList<>();

    /** End of the image as far as this process knows: the file size at open, or the end of the last allocation. */
    private volatile long fileEnd;
    /** The first corruption found, or null; once set the image stays read-only. */
    private volatile String corruption;
    /** Whether writes are allowed; cleared (for good) by a corruption event. */
    private volatile boolean writable;
    /** Set by close once everything is flushed; requests check it under {@link #requests}. */
    volatile boolean closed;

    ImageState(String filename, WrittenExtent file, AlignedTableFile tableFile, Qcow2Header header,
            ImageOptions options, Disk backing, MetadataLock lock, MetadataCache l2Cache, MetadataCache refcountCache,
            long[] l1Entries, long[] refcountTable, List<Qcow2Snapshot> snapshots) throws IOException {
        this.filename = filename;
        this.file = file;
        this.tableFile = tableFile;
        this.header = header;
        this.g = header.geometry();
        this.clusterSize = g.clusterSize();
        this.options = options;
        this.backing = backing;
        this.lock = lock;
        this.l2Cache = l2Cache;
        this.refcountCache = refcountCache;
        this.fileEnd = file.size();
        this.growth = new FileGrowth(file, fileEnd, !options.readOnly());
        this.writable = !options.readOnly();
        this.wordsPerEntry = g.extendedL2() ? 2 : 1;
        this.sliceEntries = l2Cache.tableSize() / g.l2EntrySize();
        this.sliceShift = Integer.numberOfTrailingZeros(sliceEntries);
        this.headerWriter = new HeaderWriter(file, tableFile, header);
        this.refcounts = new Refcounts(file, tableFile, g, refcountCache, l2Cache, headerWriter, refcountTable,
                header.refcountTableOffset(), (int) header.refcountTableClusters());
        this.l1 = new L1Table(this, l1Entries);
        this.overlaps = new OverlapChecker(options.overlapCheck(), clusterSize, header.l1TableOffset(), l1Entries,
                snapshots, header.snapshotsOffset(), refcounts::table, refcounts::usedTableEntries,
                refcounts::tableOffset, refcounts::tableClusters);
    }

    /** The cache offset of the L2 slice holding entry {@code l2Index} of the L2 table at {@code l2Offset}. */
    long sliceOffset(long l2Offset, int l2Index) {
        return l2Offset + ((long) (l2Index >>> sliceShift) * l2Cache.tableSize());
    }

    long fileEnd() {
        return fileEnd;
    }

    /** The file now reaches at least {@code end} (an allocation, or a repair that wrote or grew it there). */
    void noteFileEnd(long end) {
        if (end > fileEnd) {
            fileEnd = end;
        }
    }

    /** Allocates host clusters; the image now extends over them (they may not be written yet). Holds the lock. */
    long allocate(int clusters) throws IOException {
        long off;
        try {
            off = refcounts.allocate(clusters);
        } catch (Qcow2FormatException e) {
            // Free clusters come from the refcounts; in a corrupt image those can call the header or a table
            // free (Refcounts refuses a free header). Handing such a cluster out would overwrite metadata or
            // data (found by fuzzing): refuse it as corruption, and the image is marked corrupt.
            throw corrupted(e);
        }
        refuseOverlap(off, (long) clusters << g.clusterBits(), 0);
        noteFileEnd(off + ((long) clusters << g.clusterBits()));
        return off;
    }

    /**
     * Drops one reference to what an L2 entry points at ({@link Refcounts#freeAnyCluster}), once the overlap
     * check agrees it is guest data. In a corrupt image a data cluster can also be a table (an L2 table, the
     * refcount table): freeing it discards that cached table with its unwritten updates, so a write that
     * succeeded would not read back (found by fuzzing; QEMU loses such writes). Refused as corruption instead.
     */
    void freeAnyCluster(long entry, boolean punch) throws IOException {
        switch (L2Entry.clusterType(entry, g)) {
            case NORMAL, ZERO_ALLOC -> refuseOverlap(L2Entry.hostClusterOffset(entry), g.clusterSize(), 0);
            case COMPRESSED -> refuseOverlap(CompressedCluster.hostOffset(entry, g.clusterBits()) & ~511L,
                    (CompressedCluster.additionalSectors(entry, g.clusterBits()) + 1L) * 512, 0);
            case UNALLOCATED, ZERO_PLAIN -> {}
        }
        refcounts.freeAnyCluster(entry, punch);
    }

    /**
     * An in-place write trusts the L2 entry's COPIED flag (refcount 1). A cluster whose refcount is 0 is free to
     * the allocator, which may already have handed it to another guest cluster: writing it in place would make
     * two guest clusters share it and a write would not read back (found by fuzzing). Refused as corruption.
     */
    void refuseUnreferenced(long host, int clusters) throws IOException {
        for (int k = 0; k < clusters; k++) {
            long c = (host >>> g.clusterBits()) + k;
            if (refcounts.get(c) == 0) {
                String msg = "L2 entry names cluster 0x" + Long.toHexString(c << g.clusterBits())
                        + " as in use (COPIED) but its refcount is 0";
                signalCorruption(msg);
                throw new Qcow2FormatException(filename + ": " + msg);
            }
        }
    }

    boolean isWritable() {
        return writable;
    }

    void requireOpen() throws IOException {
        if (closed) {
            throw new IOException(filename + ": image is closed");
        }
    }

    void requireWritable() throws IOException {
        if (!writable) {
            throw new IOException(filename + ": image is read-only"
                    + (corruption != null ? " (corruption found: " + corruption + ")" : ""));
        }
    }

    /**
     * QEMU's corruption event: remembered and reported through the warnings; a writable image is marked
     * corrupt in its header and becomes read-only, so no write can spread the damage.
     */
    void signalCorruption(String message) {
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

    /** A corruption found in the metadata: signalled, and the error named after the image. */
    Qcow2FormatException corrupted(Qcow2FormatException e) {
        signalCorruption(e.getMessage());
        return e.getMessage().startsWith(filename + ": ") ? e : new Qcow2FormatException(filename + ": " + e.getMessage());
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
}
