package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.Qcow2Header;
import java.io.IOException;

/**
 * Making metadata durable: the flush of a guest flush, and the dirty bit of lazy refcounts.
 *
 * <p>A flush writes the refcount blocks, then the L2 tables (the dependency between the two caches orders
 * them: an L2 entry never reaches the disk before the refcount of the cluster it names), then syncs the file
 * once: at most two {@code fdatasync} calls, as QEMU.
 *
 * <p>Lazy refcounts (QEMU's {@code lazy_refcounts=on}, compat 1.1 only): before the first L2 entry points at
 * a new cluster the header's dirty bit is set (and synced); from then on refcount blocks are neither ordered
 * before L2 tables nor written by a flush, which costs one {@code fdatasync} per flush instead of two. A clean
 * close writes them and clears the bit; after a crash the next writable open rebuilds the refcounts from the
 * L2 tables ({@code check -r all}), as QEMU does.
 */
final class MetadataFlush {
    private final ImageState s;
    /** Refcounts may lag behind L2 tables while the header's dirty bit is set. */
    final boolean lazyRefcounts;
    /** This session set the dirty bit; a clean close clears it. Under the metadata lock. */
    private boolean dirtiedHere;

    MetadataFlush(ImageState s) {
        this.s = s;
        Boolean lazy = s.options.lazyRefcounts();
        this.lazyRefcounts = s.header.version() >= 3 && (lazy != null ? lazy : s.header.lazyRefcounts());
    }

    /** Makes every completed write durable. Holds or takes the metadata lock. */
    void flush() throws IOException {
        s.lock.lock();
        try {
            if (s.closed) {
                return; // a write-through write's flush that lost the race with close: close flushed it
            }
            s.l2Cache.write();
            if (!s.headerWriter.isSet(Qcow2Header.INCOMPAT_DIRTY)) {
                s.refcountCache.write(); // with lazy refcounts they wait for a clean close (or an eviction)
            }
            s.tableFile.flush();
        } finally {
            s.lock.unlock();
        }
    }

    /**
     * Before an L2 entry points at a newly allocated cluster: with lazy refcounts, the dirty bit is set first
     * (once); otherwise the L2 cache is made to wait for the refcount cache. Holds the metadata lock.
     */
    void beforeLinkingNewClusters() throws IOException {
        if (!lazyRefcounts) {
            s.l2Cache.setDependency(s.refcountCache);
        } else if (!s.headerWriter.isSet(Qcow2Header.INCOMPAT_DIRTY)) {
            s.refcountCache.flush();
            s.headerWriter.setIncompatible(Qcow2Header.INCOMPAT_DIRTY, true);
            dirtiedHere = true;
        }
    }

    /** QEMU's qcow2_mark_clean: every refcount written and synced, then the dirty bit cleared (synced). */
    void markClean() throws IOException {
        s.lock.lock();
        try {
            // Only the bit this session set: one found at open (an earlier unclean close) means the refcounts
            // are not known to be right, and only a repair may clear it.
            if (dirtiedHere && s.headerWriter.isSet(Qcow2Header.INCOMPAT_DIRTY)) {
                s.l2Cache.flush();
                s.refcountCache.flush();
                s.headerWriter.setIncompatible(Qcow2Header.INCOMPAT_DIRTY, false);
            }
        } finally {
            s.lock.unlock();
        }
    }
}
