package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Compressed writes of whole clusters (QEMU's {@code qcow2_co_pwritev_compressed_part} with
 * {@code qcow2_alloc_compressed_cluster_offset} and {@code qcow2_alloc_bytes}).
 *
 * <p>Each guest cluster is compressed without any lock. A cluster that does not shrink below its size is
 * written uncompressed through {@link ClusterWriter}, as QEMU does. Otherwise, under the metadata lock, the
 * cluster's L2 entry must not name a host cluster (compression never overwrites; QEMU answers EIO), and the
 * compressed bytes get a place right after the previous compressed data ({@code free_byte_offset}): in the
 * same host cluster if they fit, else running on into the next host cluster when that one is free, else at
 * the start of a new host cluster. Every host cluster the bytes touch gains one reference. The bytes are
 * written without the lock; then the L2 entry gets the compressed descriptor (offset and extra sectors, as
 * {@link CompressedCluster#entry} encodes them). Between the two the guest cluster is in flight in the
 * {@link ClusterWriter}, so a plain write to it waits.
 *
 * <p>The last cluster of the disk may be partial: it is padded with zeros, as QEMU pads it.
 */
final class CompressedClusterWriter {
    private final ImageState s;
    private final ClusterWriter writer;
    private final MetadataFlush flush;
    /**
     * QEMU's {@code free_byte_offset}: where the next compressed bytes may start, inside the host cluster the
     * last compressed bytes went to; 0 when there is none (or it ended on a cluster boundary). Valid only
     * while {@link Refcounts#decrements()} equals {@link #decrementsSeen}: a freed cluster may be reused.
     * Under the metadata lock.
     */
    private long freeByteOffset;
    private long decrementsSeen;

    CompressedClusterWriter(ImageState s, ClusterWriter writer, MetadataFlush flush) {
        this.s = s;
        this.writer = writer;
        this.flush = flush;
    }

    /**
     * Writes {@code src} at {@code offset}, cluster by cluster, compressed. The caller holds the request lock
     * and checked the range; the offset must be cluster-aligned and the length a multiple of the cluster
     * size unless the request ends at the end of the disk.
     */
    void write(long offset, MemorySegment src) throws IOException {
        commit(prepare(offset, src));
    }

    /**
     * A request compressed and not written yet: per cluster its compressed bytes, or null where the cluster
     * does not shrink (then {@code src}'s bytes are written plain).
     */
    record Prepared(long offset, MemorySegment src, byte[][] clusters) {}

    /**
     * Compresses {@code src} (to be written at {@code offset}) without any lock and without touching the
     * image: the first half of {@link #write}, so that a copy may compress requests in parallel and commit
     * them in guest order. Checks the alignment as {@link #write} does.
     */
    Prepared prepare(long offset, MemorySegment src) throws IOException {
        int cs = s.clusterSize;
        long len = src.byteSize();
        if ((offset & (cs - 1)) != 0 || ((len & (cs - 1)) != 0 && offset + len != s.header.size())) {
            throw new IOException(s.filename + ": compressed writes must cover whole clusters (Invalid argument)");
        }
        byte[][] clusters = new byte[(int) ((len + cs - 1) / cs)][];
        try (ClusterCompressor c = ClusterCompressor.open(s.header.compressionType(), cs)) {
            for (long pos = 0; pos < len; pos += cs) {
                clusters[(int) (pos / cs)] = c.compress(src.asSlice(pos, Math.min(cs, len - pos)));
            }
        }
        return new Prepared(offset, src, clusters);
    }

    /** Writes what {@link #prepare} compressed. The caller holds the request lock and checked the range. */
    void commit(Prepared p) throws IOException {
        int cs = s.clusterSize;
        long len = p.src().byteSize();
        for (long pos = 0; pos < len; pos += cs) {
            byte[] data = p.clusters()[(int) (pos / cs)];
            if (data == null) {
                writer.write(p.offset() + pos, p.src().asSlice(pos, Math.min(cs, len - pos)));
            } else {
                writeCluster(p.offset() + pos, data, data.length);
            }
        }
    }

    private void writeCluster(long guest, byte[] data, int length) throws IOException {
        long cluster = guest >>> s.g.clusterBits();
        long host;
        s.lock.lock();
        try {
            s.requireWritable();
            requireNoHostCluster(guest);
            if (!writer.beginAllocation(cluster)) {
                throw new IOException(s.filename + ": compressed write to a cluster being written (Input/output error)");
            }
            try {
                host = allocateBytes(length);
                s.refuseOverlap(host, length, 0);
            } catch (IOException | RuntimeException e) {
                writer.endAllocation(cluster);
                throw e;
            }
        } catch (Qcow2FormatException e) {
            throw s.corrupted(e);
        } finally {
            s.lock.unlock();
        }
        boolean linked = false;
        try {
            s.file.write(host, MemorySegment.ofArray(data).asSlice(0, length));
            s.lock.lock();
            try {
                requireNoHostCluster(guest);
                link(guest, host, length);
                linked = true;
            } catch (Qcow2FormatException e) {
                throw s.corrupted(e);
            } finally {
                s.lock.unlock();
            }
        } finally {
            s.lock.lock();
            try {
                if (!linked) {
                    s.refcounts.free(host, length); // the bytes were never linked: give their references back
                }
            } finally {
                writer.endAllocation(cluster);
                s.lock.unlock();
            }
        }
    }

    /** QEMU refuses a compressed write onto a cluster that has a host cluster ({@code -EIO}). Holds the lock. */
    private void requireNoHostCluster(long guest) throws IOException {
        int l1Index = (int) s.g.l1Index(guest);
        long l2Offset = s.l1.ensureL2Table(l1Index);
        int l2Index = s.g.l2Index(guest);
        int slot = s.l2Cache.get(s.sliceOffset(l2Offset, l2Index));
        try {
            int word = (l2Index & (s.sliceEntries - 1)) * s.wordsPerEntry;
            long entry = s.l2Cache.word(slot, word);
            long bitmap = s.g.extendedL2() ? s.l2Cache.word(slot, word + 1) : 0;
            ClusterType t = L2Entry.checkedClusterType(entry, bitmap, s.g, l2Offset, l2Index);
            if (t != ClusterType.UNALLOCATED && t != ClusterType.ZERO_PLAIN) {
                throw new IOException(s.filename + ": compressed write to an allocated cluster at guest offset 0x"
                        + Long.toHexString(guest) + " (Input/output error)");
            }
        } finally {
            s.l2Cache.put(slot);
        }
    }

    /** Points the guest cluster's L2 entry at the compressed bytes. Holds the lock. */
    private void link(long guest, long host, int length) throws IOException {
        flush.beforeLinkingNewClusters();
        long l2Offset = s.l1.ensureL2Table((int) s.g.l1Index(guest));
        int l2Index = s.g.l2Index(guest);
        int slot = s.l2Cache.get(s.sliceOffset(l2Offset, l2Index));
        try {
            int word = (l2Index & (s.sliceEntries - 1)) * s.wordsPerEntry;
            s.l2Cache.setWord(slot, word, CompressedCluster.entry(host, length, s.g.clusterBits()));
            if (s.g.extendedL2()) {
                s.l2Cache.setWord(slot, word + 1, 0);
            }
            s.l2Cache.markDirty(slot);
        } finally {
            s.l2Cache.put(slot);
        }
    }

    /** QEMU's {@code qcow2_alloc_bytes}: {@code size} bytes after the last compressed data. Holds the lock. */
    private long allocateBytes(int size) throws IOException {
        int cs = s.clusterSize;
        long off = freeByteOffset;
        if (off != 0 && (s.refcounts.decrements() != decrementsSeen
                || Long.compareUnsigned(s.refcounts.get(off >>> s.g.clusterBits()), maxRefcount()) >= 0)) {
            off = 0;
        }
        long freeInCluster = cs - (off & (cs - 1));
        if (off == 0 || freeInCluster < size) {
            long next = s.allocate(1);
            if (off != 0 && ((off + cs - 1) & -(long) cs) == next) {
                // the bytes run on from the current cluster into the new one, which already counts them
                s.refcounts.change(off, 1, 1);
            } else {
                off = next;
            }
        } else {
            s.refcounts.change(off, size, 1);
        }
        long end = off + size;
        freeByteOffset = (end & (cs - 1)) == 0 ? 0 : end;
        decrementsSeen = s.refcounts.decrements();
        return off;
    }

    private long maxRefcount() {
        int bits = 1 << s.g.refcountOrder();
        return bits == 64 ? -1L : (1L << bits) - 1;
    }
}
