package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.Qcow2FormatException;
import java.io.IOException;

/**
 * How an operation that rewrites an open image's tables runs (snapshots, resize, make empty): with the
 * request lock held exclusively (no request in flight) and the metadata lock; both caches flushed first, so
 * that the operation sees on disk what the caches held; afterwards the L2 cache emptied (QEMU's
 * {@code qcow2_cache_empty}: nothing cached may describe the tree as it was) and the refcounts flushed.
 */
final class TableSurgery {
    private TableSurgery() {}

    interface Operation<T> {
        T run() throws IOException;
    }

    static <T> T run(ImageState s, Operation<T> op) throws IOException {
        s.requireWritable();
        s.requests.lockExclusive();
        try {
            s.requireOpen();
            s.lock.lock();
            try {
                s.l2Cache.flush();
                s.refcountCache.flush();
                T result = op.run();
                s.l2Cache.empty();
                s.refcountCache.flush();
                return result;
            } catch (Qcow2FormatException e) {
                throw s.corrupted(e);
            } finally {
                s.lock.unlock();
            }
        } finally {
            s.requests.unlockExclusive();
        }
    }
}
