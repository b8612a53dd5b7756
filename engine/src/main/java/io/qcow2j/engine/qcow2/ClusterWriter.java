package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.SubclusterBitmap;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.locks.Condition;

/**
 * Guest writes, cluster by cluster (QEMU's {@code qcow2_alloc_host_offset} and {@code handle_copied} /
 * {@code handle_alloc} with copy-on-write): clusters the image owns alone (COPIED) are written in place;
 * clusters that are unallocated, zero, compressed or shared with a snapshot get new host clusters, with the
 * rest of each cluster copied from what the guest read there before.
 *
 * <p>One write step holds the metadata lock twice, briefly: to plan (map the run, allocate, mark its guest
 * clusters in flight) and to link (point the L2 entries at the written clusters, free what they pointed at).
 * The data is written between the two, without the lock. A write to a guest cluster in flight waits until it
 * is linked (QEMU's {@code handle_dependencies}), so two writers never allocate the same guest cluster twice
 * nor lose each other's copy-on-write. An L2 entry never reaches the disk before its data when copied bytes
 * are involved ({@code dependsOnFlush}), nor before the refcount of its new cluster.
 *
 * <p>What the metadata lock covers, and what it does not: the plan (the L2 lookup, the allocation with its
 * refcount update, the overlap check) and the link (the L2 update, the frees); never the data, its
 * copy-on-write reads, nor the file's growth ahead ({@link FileGrowth}, asked for after the plan by a step
 * that fills its new clusters). Sequential requests get neighbouring host clusters from the allocator's
 * cursor ({@link Refcounts}' free-cluster hint), a multi-cluster step one contiguous run.
 *
 * <p>Allocation: none per step on a platform thread (its plan is reused, the in-flight set is primitive);
 * a virtual thread's step makes one plan object, next to the thread and future its request already costs.
 */
final class ClusterWriter {
    private final ImageState s;
    private final ClusterReader reader;
    private final MetadataFlush flush;
    /** Guest clusters whose new host cluster is being written and not yet linked. Under the metadata lock. */
    private final InFlightClusters allocating = new InFlightClusters();
    /** A platform thread's plan, reused by its every step (a step never runs inside another of its thread). */
    private static final ThreadLocal<WritePlan> PLANS = ThreadLocal.withInitial(WritePlan::new);
    private final Condition allocationLinked;

    ClusterWriter(ImageState s, ClusterReader reader, MetadataFlush flush) {
        this.s = s;
        this.reader = reader;
        this.flush = flush;
        this.allocationLinked = s.lock.newCondition();
    }

    /** Writes {@code src} at {@code offset}, step by step. The caller holds the request lock. */
    void write(long offset, MemorySegment src) throws IOException {
        long pos = 0;
        long len = src.byteSize();
        while (pos < len) {
            pos += writeStep(offset + pos, pos == 0 ? src : src.asSlice(pos));
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
        /** The first {@code clusters} entries are what the L2 entries held at the plan (when {@link #link}). */
        long[] oldEntries = new long[4];
        /** Extended L2: the old bitmap of the one cluster. */
        long oldBitmap;
        /** The new host clusters lie where the file was never written: they read as zeros already. */
        boolean unwrittenSpace;

        /** The plan for a new step: every field as a fresh plan has it (the old-entries array is kept). */
        WritePlan reset() {
            clusterStart = 0;
            clusters = 0;
            bytes = 0;
            host = 0;
            fresh = false;
            windowStart = 0;
            windowEnd = 0;
            link = false;
            oldBitmap = 0;
            unwrittenSpace = false;
            return this;
        }

        void keepOldEntries(int n) {
            if (oldEntries.length < n) {
                oldEntries = new long[Math.max(n, 2 * oldEntries.length)];
            }
        }
    }

    private long writeStep(long guest, MemorySegment src) throws IOException {
        int cb = s.g.clusterBits();
        long first = guest >>> cb;
        WritePlan plan;
        s.lock.lock();
        try {
            while (allocating.contains(first)) {
                allocationLinked.awaitUninterruptibly();
            }
            s.requireWritable();
            plan = planWrite(guest, src.byteSize());
            if (!plan.fresh) {
                // (new clusters were checked whole by ImageState.allocate, under this same lock)
                s.refuseOverlap(plan.host + (plan.windowStart - plan.clusterStart), plan.windowEnd - plan.windowStart, 0);
                s.refuseUnreferenced(plan.host, plan.clusters);
            }
            if (plan.link) {
                // in flight until linked: a new cluster, or (extended L2) subclusters newly allocated in place,
                // whose bitmap update must not be lost to, nor its copy-on-write race, another writer's
                for (int k = 0; k < plan.clusters; k++) {
                    allocating.add(first + k);
                }
            }
        } catch (Qcow2FormatException e) {
            throw s.corrupted(e);
        } finally {
            s.lock.unlock();
        }
        if (plan.fresh && plan.windowStart == guest && plan.windowEnd == guest + plan.bytes) {
            s.growth.allocated(plan.host + ((long) plan.clusters << cb)); // it fills them: the file grows densely
        }
        boolean copied;
        try {
            copied = writeData(plan, guest, plan.bytes == src.byteSize() ? src : src.asSlice(0, plan.bytes));
        } catch (IOException | RuntimeException e) {
            s.lock.lock();
            try {
                if (plan.fresh) {
                    s.refcounts.free(plan.host, (long) plan.clusters << cb);
                }
            } catch (IOException | RuntimeException free) {
                e.addSuppressed(free);
            } finally {
                release(plan, first);
                s.lock.unlock();
            }
            throw e;
        }
        if (plan.link) {
            s.lock.lock();
            try {
                link(plan, guest, copied);
            } catch (Qcow2FormatException e) {
                throw s.corrupted(e);
            } finally {
                release(plan, first);
                s.lock.unlock();
            }
        }
        return plan.bytes;
    }

    /**
     * Marks guest cluster {@code cluster} in flight for another writer of this image (the compressed
     * writer): plain writes to it wait until {@link #endAllocation}. False if it is in flight already.
     * Holds the metadata lock.
     */
    boolean beginAllocation(long cluster) {
        return allocating.add(cluster);
    }

    /** Ends {@link #beginAllocation}. Holds the metadata lock. */
    void endAllocation(long cluster) {
        allocating.remove(cluster);
        allocationLinked.signalAll();
    }

    private void release(WritePlan plan, long first) {
        if (plan.link) {
            for (int k = 0; k < plan.clusters; k++) {
                allocating.remove(first + k);
            }
            allocationLinked.signalAll();
        }
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
            s.file.write(hostAt, src);
            return false;
        }
        if (plan.unwrittenSpace && copiedBytesReadZero(plan)) {
            // Never-written space reads as zeros already (a hole, or past the end of the file, which QEMU and
            // qemu-img check accept): writing the zeros would only cost a cluster of I/O and file memory.
            s.file.write(plan.host + (guest - plan.clusterStart), src);
            return false;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(plan.windowEnd - plan.windowStart, 4096);
            if (head > 0) {
                reader.read(plan.windowStart, buf.asSlice(0, head));
            }
            MemorySegment.copy(src, 0, buf, head, plan.bytes);
            if (tail > 0) {
                reader.read(guest + plan.bytes, buf.asSlice(head + plan.bytes, tail));
            }
            boolean zeros = isZero(buf.asSlice(0, head)) && isZero(buf.asSlice(head + plan.bytes, tail));
            if (plan.unwrittenSpace && zeros) {
                s.file.write(hostAt + head, src);
                return false;
            }
            s.file.write(hostAt, buf);
            return !plan.unwrittenSpace || !zeros;
        }
    }

    /**
     * Whether the copy-on-write bytes of a run of new clusters read as zeros, known from the old L2 entries
     * alone: unallocated without a backing file, or zero clusters. Extended L2 answers no (it reads instead).
     */
    private boolean copiedBytesReadZero(WritePlan plan) {
        if (s.g.extendedL2() || !plan.fresh) {
            return false;
        }
        for (int k = 0; k < plan.clusters; k++) {
            ClusterType t = L2Entry.clusterType(plan.oldEntries[k], s.g);
            boolean zero = t == ClusterType.ZERO_PLAIN || t == ClusterType.ZERO_ALLOC
                    || (t == ClusterType.UNALLOCATED && s.backing == null);
            if (!zero) {
                return false;
            }
        }
        return true;
    }

    private static final MemorySegment ZEROS = MemorySegment.ofArray(new byte[64 << 10]);

    private static boolean isZero(MemorySegment seg) {
        for (long pos = 0; pos < seg.byteSize(); pos += ZEROS.byteSize()) {
            long n = Math.min(ZEROS.byteSize(), seg.byteSize() - pos);
            if (MemorySegment.mismatch(seg, pos, pos + n, ZEROS, 0, n) != -1) {
                return false;
            }
        }
        return true;
    }

    /** Decides the next write step. Holds the metadata lock. */
    private WritePlan planWrite(long guest, long max) throws IOException {
        int cb = s.g.clusterBits();
        int cs = s.clusterSize;
        int l1Index = (int) s.g.l1Index(guest);
        long l2Offset = s.l1.ensureL2Table(l1Index);
        int l2Index = s.g.l2Index(guest);
        int inSlice = l2Index & (s.sliceEntries - 1);
        long sliceOffset = s.sliceOffset(l2Offset, l2Index);
        long inCluster = guest & (cs - 1);
        long limit = Math.min(max, ((long) (s.sliceEntries - inSlice) << cb) - inCluster);
        WritePlan p = Thread.currentThread().isVirtual() ? new WritePlan() : PLANS.get().reset();
        p.clusterStart = guest - inCluster;
        int slot = s.l2Cache.get(sliceOffset);
        try {
            long entry = s.l2Cache.word(slot, inSlice * s.wordsPerEntry);
            if (s.g.extendedL2()) {
                planSubclusters(p, slot, entry, l2Offset, l2Index, inSlice, guest, Math.min(limit, cs - inCluster));
                return p;
            }
            ClusterType type = L2Entry.checkedClusterType(entry, 0, s.g, l2Offset, l2Index);
            if (type == ClusterType.NORMAL && L2Entry.isCopied(entry)) {
                long host = L2Entry.hostClusterOffset(entry);
                long bytes = cs - inCluster;
                for (int i = inSlice + 1; i < s.sliceEntries && bytes < limit; i++) {
                    long e = s.l2Cache.word(slot, i);
                    if (L2Entry.checkedClusterType(e, 0, s.g, l2Offset, l2Index + (i - inSlice)) != ClusterType.NORMAL
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
            while (inSlice + n < s.sliceEntries && bytes < limit && !allocating.contains(first + n)) {
                long e = s.l2Cache.word(slot, inSlice + n);
                ClusterType t = L2Entry.checkedClusterType(e, 0, s.g, l2Offset, l2Index + n);
                if (t == ClusterType.NORMAL && L2Entry.isCopied(e)) {
                    break;
                }
                n++;
                bytes += cs;
            }
            p.clusters = n;
            p.bytes = Math.min(bytes, limit);
            p.keepOldEntries(n);
            for (int k = 0; k < n; k++) {
                p.oldEntries[k] = s.l2Cache.word(slot, inSlice + k);
            }
        } finally {
            s.l2Cache.put(slot);
        }
        p.windowStart = p.clusterStart;
        p.windowEnd = (guest + p.bytes + cs - 1) & -(long) cs;
        p.host = s.allocate(p.clusters);
        p.fresh = true;
        p.link = true;
        p.unwrittenSpace = s.file.end() <= p.host;
        return p;
    }

    /** Extended L2: one cluster; in place when its host cluster is ours, else a new one. */
    private void planSubclusters(WritePlan p, int slot, long entry, long l2Offset, int l2Index, int inSlice, long guest,
            long bytes) throws IOException {
        long bitmap = s.l2Cache.word(slot, inSlice * 2 + 1);
        ClusterType type = L2Entry.checkedClusterType(entry, bitmap, s.g, l2Offset, l2Index);
        int scs = s.g.subclusterSize();
        p.clusters = 1;
        p.bytes = bytes;
        p.oldEntries[0] = entry;
        p.oldBitmap = bitmap;
        p.link = true;
        boolean wholeCluster = type == ClusterType.COMPRESSED || (type == ClusterType.NORMAL && !L2Entry.isCopied(entry));
        if (wholeCluster) {
            p.windowStart = p.clusterStart;
            p.windowEnd = p.clusterStart + s.clusterSize;
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
        p.host = s.allocate(1);
        p.fresh = true;
        p.unwrittenSpace = s.file.end() <= p.host;
    }

    /** Points the L2 entries at the written clusters and frees what they pointed at before. Holds the lock. */
    private void link(WritePlan p, long guest, boolean copied) throws IOException {
        int cb = s.g.clusterBits();
        if (p.fresh) {
            flush.beforeLinkingNewClusters();
        }
        if (copied) {
            // the copied data must be on disk before an L2 entry points at it: in a new cluster, and (extended
            // L2) in subclusters newly allocated in a cluster the image already owns
            s.l2Cache.dependsOnFlush();
        }
        long l2Offset = L1Entry.l2Offset(s.l1.entry((int) s.g.l1Index(p.clusterStart)));
        int l2Index = s.g.l2Index(p.clusterStart);
        int inSlice = l2Index & (s.sliceEntries - 1);
        int slot = s.l2Cache.get(s.sliceOffset(l2Offset, l2Index));
        try {
            for (int k = 0; k < p.clusters; k++) {
                long host = p.host + ((long) k << cb);
                int i = inSlice + k;
                if (s.g.extendedL2()) {
                    int scs = s.g.subclusterSize();
                    int a = (int) ((p.windowStart - p.clusterStart) / scs);
                    int b = (int) ((p.windowEnd - p.clusterStart) / scs);
                    long old = p.oldBitmap;
                    ClusterType t = L2Entry.clusterType(p.oldEntries[k], s.g);
                    long keep = t == ClusterType.UNALLOCATED || (t == ClusterType.NORMAL && !p.fresh) ? old : 0;
                    long bitmap = (keep & ~SubclusterBitmap.zeroRange(a, b)) | SubclusterBitmap.allocatedRange(a, b);
                    s.l2Cache.setWord(slot, 2 * i, host | L2Entry.COPIED);
                    s.l2Cache.setWord(slot, 2 * i + 1, bitmap);
                } else {
                    s.l2Cache.setWord(slot, i, host | L2Entry.COPIED);
                }
            }
            s.l2Cache.markDirty(slot);
        } finally {
            s.l2Cache.put(slot);
        }
        if (p.fresh) {
            for (int k = 0; k < p.clusters; k++) {
                s.freeAnyCluster(p.oldEntries[k], false);
            }
        }
    }
}
