package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.CacheExhaustedException;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.CorruptMetadataException;
import io.qcow2j.engine.cache.TableFile;
import java.io.IOException;

/**
 * Deliberately broken caches: each wraps the real one ({@link ForwardingCache}) and breaks one rule, the way a
 * plausible bug would. The properties must catch every one of them.
 */
final class BrokenCaches {
    private BrokenCaches() {}

    /** {@code markDirty} silently does nothing on its third call: that table's change is never written. */
    static final class ForgetsThirdMarkDirty extends ForwardingCache {
        private int calls;

        ForgetsThirdMarkDirty(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void markDirty(int table) {
            if (++calls != 3) {
                delegate.markDirty(table);
            }
        }
    }

    /** {@code flush} writes the dirty tables but does not sync the file. */
    static final class FlushWithoutSync extends ForwardingCache {
        FlushWithoutSync(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void flush() throws IOException {
            delegate.write();
        }
    }

    /** {@code setDependency} is ignored: L2 tables may reach the disk before the refcount blocks they need. */
    static final class IgnoresDependency extends ForwardingCache {
        IgnoresDependency(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void setDependency(CacheUnderTest dependency) {}
    }

    /** {@code dependsOnFlush} is ignored: the next write does not sync the file first. */
    static final class IgnoresDependsOnFlush extends ForwardingCache {
        IgnoresDependsOnFlush(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void dependsOnFlush() {}
    }

    /** {@code put} drops an extra reference when the table has more than one: a still-held table may be evicted. */
    static final class PutDropsExtraReference extends ForwardingCache {
        PutDropsExtraReference(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void put(int table) {
            delegate.put(table);
            if (delegate.references(table) > 0) {
                delegate.put(table);
            }
        }
    }

    /** When every entry is referenced, a miss first writes the dirty tables back (trying to make room), then fails. */
    static final class ExhaustedMissWritesBack extends ForwardingCache {
        ExhaustedMissWritesBack(CacheUnderTest c) {
            super(c);
        }

        @Override
        public int get(long offset) throws IOException {
            try {
                return delegate.get(offset);
            } catch (CacheExhaustedException e) {
                try {
                    delegate.write();
                } catch (IOException ignored) {
                    // still exhausted
                }
                throw e;
            }
        }
    }

    /** A misaligned offset is refused with the right exception, but the corruption listener is never told. */
    static final class MisalignedNotReported extends ForwardingCache {
        MisalignedNotReported(CacheUnderTest c) {
            super(c);
        }

        private void check(long offset) throws CorruptMetadataException {
            if (offset < 0 || offset % tableSize() != 0) {
                throw new CorruptMetadataException("Cannot get entry from " + kind().label() + " cache: offset 0x"
                        + Long.toHexString(offset) + (offset < 0 ? " is invalid" : " is unaligned"));
            }
        }

        @Override
        public int get(long offset) throws IOException {
            check(offset);
            return delegate.get(offset);
        }

        @Override
        public int getEmpty(long offset) throws IOException {
            check(offset);
            return delegate.getEmpty(offset);
        }
    }

    /**
     * After each {@code put}, touches (get + put, a hit) the unreferenced table in the lowest other slot: the LRU
     * order is no longer the order of last use.
     */
    static final class PerturbsLru extends ForwardingCache {
        PerturbsLru(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void put(int table) {
            delegate.put(table);
            for (int s = 0; s < size(); s++) {
                if (s != table && isOccupied(delegate, s) && delegate.references(s) == 0) {
                    try {
                        delegate.put(delegate.get(delegate.offsetOf(s)));
                    } catch (IOException e) {
                        throw new AssertionError("a hit cannot fail", e);
                    }
                    return;
                }
            }
        }
    }

    /**
     * {@code cleanUnused} forgets the clean counter: it drops every clean, unreferenced table, also those used since
     * the previous pass (a second pass right after the first).
     */
    static final class CleanDropsRecentlyUsed extends ForwardingCache {
        CleanDropsRecentlyUsed(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void cleanUnused() {
            delegate.cleanUnused();
            delegate.cleanUnused();
        }
    }

    /** {@code discard} writes the table before dropping it: a freed cluster gets stale metadata written over it. */
    static final class DiscardWrites extends ForwardingCache {
        private final TableFile file;

        DiscardWrites(CacheUnderTest c, TableFile file) {
            super(c);
            this.file = file;
        }

        @Override
        public void discard(int table) {
            try {
                file.write(delegate.offsetOf(table), unwrap().table(table));
            } catch (IOException e) {
                // as if nothing happened
            }
            delegate.discard(table);
        }
    }

    /** {@code cleanUnused} also drops unreferenced dirty tables (discarding their changes). */
    static final class CleanDropsDirty extends ForwardingCache {
        CleanDropsDirty(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void cleanUnused() {
            delegate.cleanUnused();
            for (int s = 0; s < size(); s++) {
                if (isOccupied(delegate, s) && delegate.references(s) == 0 && delegate.isDirty(s)) {
                    delegate.discard(s);
                }
            }
        }
    }

    /** {@code empty} flushes, then discards the tables one by one: one release per table, not one for the array. */
    static final class EmptyByDiscards extends ForwardingCache {
        EmptyByDiscards(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void empty() throws IOException {
            for (int s = 0; s < size(); s++) {
                if (delegate.references(s) != 0) {
                    throw new IllegalStateException("empty with table " + s + " referenced");
                }
            }
            delegate.flush();
            for (int s = 0; s < size(); s++) {
                if (isOccupied(delegate, s)) {
                    delegate.discard(s);
                }
            }
        }
    }

    /**
     * The real cache with QEMU's lookup cost: the scan starts at {@code (offset / table_size * 4) % size} and walks
     * the entries until it finds the table, so a miss examines every entry. Its statistics count those probes.
     */
    static final class QemuScanCost extends ForwardingCache {
        private static final int[] LIMITS = {1, 2, 3, 4, 8, 16, Integer.MAX_VALUE};
        private long lookups;
        private long probes;
        private long maxProbes;
        private final long[] histogram = new long[LIMITS.length];

        QemuScanCost(CacheUnderTest c) {
            super(c);
        }

        private void scan(long offset) {
            if (offset <= 0 || offset % tableSize() != 0) {
                return;
            }
            int size = size();
            long start = offset / tableSize() * 4 % size;
            int slot = delegate.lookup(offset);
            int n = slot < 0 ? size : (int) ((slot - start + size) % size) + 1;
            lookups++;
            probes += n;
            maxProbes = Math.max(maxProbes, n);
            int b = 0;
            while (n > LIMITS[b]) {
                b++;
            }
            histogram[b]++;
        }

        @Override
        public int get(long offset) throws IOException {
            scan(offset);
            return delegate.get(offset);
        }

        @Override
        public int getEmpty(long offset) throws IOException {
            scan(offset);
            return delegate.getEmpty(offset);
        }

        @Override
        public int lookup(long offset) {
            scan(offset);
            return delegate.lookup(offset);
        }

        @Override
        public CacheStatistics.Snapshot statistics() {
            CacheStatistics.Snapshot s = delegate.statistics();
            return new CacheStatistics.Snapshot(s.hits(), s.misses(), s.loads(), s.evictions(), s.writebacks(),
                    s.writebackBytes(), s.syncs(), s.releasedBytes(), s.discards(), s.cleaned(), lookups, probes,
                    maxProbes, histogram.clone());
        }
    }

    /**
     * {@code touch} counts the hit but does not mark the table: a table only lock-free readers use is evicted (and
     * cleaned) as if unused, the way a cache without the second chance would behave. The hit is counted here
     * ({@link #statistics}), so that only the eviction order is wrong.
     */
    static final class IgnoresTouchMark extends ForwardingCache {
        private long touches;

        IgnoresTouchMark(CacheUnderTest c) {
            super(c);
        }

        @Override
        public void touch(int table) {
            java.util.Objects.checkIndex(table, size());
            touches++;
        }

        @Override
        public CacheStatistics.Snapshot statistics() {
            CacheStatistics.Snapshot s = delegate.statistics();
            return new CacheStatistics.Snapshot(s.hits() + touches, s.misses(), s.loads(), s.evictions(),
                    s.writebacks(), s.writebackBytes(), s.syncs(), s.releasedBytes(), s.discards(), s.cleaned(),
                    s.lookups(), s.probes(), s.maxProbes(), s.probeHistogram());
        }
    }

    /** Whether slot {@code s} of {@code c} holds a table. */
    static boolean isOccupied(CacheUnderTest c, int s) {
        try {
            c.offsetOf(s);
            return true;
        } catch (IllegalStateException e) {
            return false;
        }
    }
}
