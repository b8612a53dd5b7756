package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.ffm.AsyncFile;
import io.qcow2j.ffm.AsyncReads;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.LongAdder;

/**
 * The fast path of {@code readAsync}: a read whose mapping is in the L2 cache is looked up on the caller's
 * thread and its data reads go straight to the file's I/O backend (io_uring); the backend's completion of
 * the last one completes the future. No virtual thread, no park/unpark, nothing allocated per request but
 * the future (and a slice view when a request spans several extents). Anything else (a cache miss, the
 * metadata lock busy, a compressed cluster, a backing file to read, a heap or misaligned buffer, the pool
 * of groups empty, an exclusive request waiting) returns null and the caller runs the blocking read on a
 * virtual thread, as before.
 *
 * <p><b>Why the host clusters cannot change under a read in flight</b> (QEMU keeps a reference on them; this
 * restricts the fast path to what is safe without one). The read holds the request lock shared from before
 * its lookup until its last part completed ({@code AsyncReads}' release runs {@code unlockShared}). What
 * frees a host cluster while the image is open: discard and write zeroes, snapshot and resize surgery, repair
 * and close, all of which take the request lock exclusively, so they wait for this read; and an allocating
 * write's link step, which frees the clusters the L2 entries pointed at before, under the shared lock. A
 * write allocates (and so frees the old cluster) only for an entry that is not NORMAL with COPIED set: a
 * COPIED data cluster (refcount 1, owned by the active L1 alone) is written in place, never moved or freed
 * by a write. So the fast path reads from the file only for COPIED NORMAL entries, or any NORMAL entry when
 * the image is read-only (nothing in this process writes it). A racing in-place write gives old or new
 * bytes, as it does for the blocking read; a racing allocating write of an unallocated or zero cluster
 * links its L2 entry only after its data is written, so the lookup sees either the zeros or the new data.
 * A write that changes ClusterWriter's rule (moving COPIED clusters) must change this class too.
 */
final class FastReads {
    /** Requests that may be in flight on the fast path at once, per image. */
    private static final int GROUPS = 128;
    /** File reads one request may need (runs of contiguous host clusters, times buffers). */
    private static final int PARTS = 8;

    private final ImageState s;
    private final ClusterMap map;
    /** Null when the image file is not an {@link AsyncFile} (tests' wrappers): every read takes the general path. */
    private final AsyncReads<ClusterMap.Extent> reads;
    /** Reads that took the fast path (for tests and statistics; added to by the submitting threads). */
    private final LongAdder started = new LongAdder();

    FastReads(ImageState s, ClusterMap map) {
        this.s = s;
        this.map = map;
        AsyncFile f = s.file.async();
        RequestLock requests = s.requests;
        this.reads = f == null ? null
                : new AsyncReads<>(f, GROUPS, PARTS, ClusterMap.Extent::new, requests::unlockShared);
    }

    /**
     * Starts the read of {@code one} (or, if null, of {@code many} one after the other) at guest {@code offset};
     * returns its future, or null having started nothing (the caller takes the general path).
     */
    CompletableFuture<Void> start(long offset, MemorySegment one, MemorySegment[] many) {
        if (reads == null || !usable(offset, one, many) || !s.requests.tryLockShared()) {
            return null;
        }
        AsyncReads.Group<ClusterMap.Extent> g = null;
        boolean submitted = false;
        try {
            if (s.closed || (g = reads.begin()) == null || !plan(g, offset, one, many)) {
                return null;
            }
            submitted = true; // from here the group's completion releases the request lock
            started.increment();
            return g.submit();
        } finally {
            if (!submitted) {
                if (g != null) {
                    g.abandon();
                }
                s.requests.unlockShared();
            }
        }
    }

    /** Reads started on the fast path so far. */
    long started() {
        return started.sum();
    }

    /** Cheap checks first: a request inside the disk, native writable buffers, something to read. */
    private boolean usable(long offset, MemorySegment one, MemorySegment[] many) {
        long total = 0;
        int n = one != null ? 1 : many.length;
        for (int i = 0; i < n; i++) {
            MemorySegment b = one != null ? one : many[i];
            if (b == null || !b.isNative() || b.isReadOnly()) {
                return false;
            }
            total += b.byteSize();
        }
        return total > 0 && offset >= 0 && total <= s.header.size() - offset;
    }

    /**
     * Maps the request extent by extent, filling zero and unallocated runs at once and adding a file read for
     * each data run; false when any part needs the general path. The caller holds the request lock.
     */
    private boolean plan(AsyncReads.Group<ClusterMap.Extent> g, long offset, MemorySegment one, MemorySegment[] many) {
        ClusterMap.Extent ext = g.attachment();
        boolean readOnly = s.options.readOnly();
        long guest = offset;
        int n = one != null ? 1 : many.length;
        for (int i = 0; i < n; i++) {
            MemorySegment b = one != null ? one : many[i];
            long len = b.byteSize();
            for (long pos = 0; pos < len; pos += ext.bytes, guest += ext.bytes) {
                if (!map.mapCached(guest, len - pos, ext)) {
                    return false;
                }
                MemorySegment part = pos == 0 && ext.bytes == len ? b : b.asSlice(pos, ext.bytes);
                switch (ext.type) {
                    case NORMAL -> {
                        // the invariant in the class comment: only clusters no write can free while we read
                        if (!(readOnly || L2Entry.isCopied(ext.entry)) || !g.add(ext.host, part)) {
                            return false;
                        }
                    }
                    case ZERO_PLAIN, ZERO_ALLOC -> part.fill((byte) 0);
                    case UNALLOCATED_PLAIN, UNALLOCATED_ALLOC -> {
                        if (s.backing != null) {
                            return false;
                        }
                        part.fill((byte) 0);
                    }
                    default -> {
                        return false; // compressed
                    }
                }
            }
        }
        return true;
    }
}
