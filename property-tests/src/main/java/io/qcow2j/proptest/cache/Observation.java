package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.CacheKind;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Everything observable about a {@link CacheSystem} that an operation might change: which tables are resident,
 * in which slot, with how many references, dirty or not, with what content (a hash); occupancy and dirty counts,
 * dependency flags, the length of the file log and of the release logs. Two observations around a call that
 * must change nothing must be equal.
 */
public record Observation(List<Entry> tables, List<String> caches, int logSize, int l2Releases, int rcReleases) {

    /** A resident table. */
    public record Entry(CacheKind kind, int slot, long offset, int refs, boolean dirty, int contentHash) {
        @Override
        public String toString() {
            return CacheWorkload.at(kind, offset) + " slot " + slot + " refs " + refs + (dirty ? " dirty" : " clean")
                    + " content#" + Integer.toHexString(contentHash);
        }
    }

    public static Observation of(CacheSystem s, CacheModel m) {
        List<Entry> tables = new ArrayList<>();
        List<String> caches = new ArrayList<>();
        for (CacheKind k : CacheKind.values()) {
            CacheUnderTest c = s.cache(k);
            for (int h = 0; h < c.size(); h++) { // by slot, not by lookup: observing must not touch the index
                long off;
                try {
                    off = c.offsetOf(h);
                } catch (IllegalStateException empty) {
                    continue;
                }
                int hash = Arrays.hashCode(c.table(h).toArray(ValueLayout.JAVA_BYTE));
                tables.add(new Entry(k, h, off, c.references(h), c.isDirty(h), hash));
            }
            caches.add(k.label() + ": occupied " + c.occupied() + ", dirty " + c.dirtyCount() + ", dependency "
                    + c.hasDependency() + ", depends-on-flush " + c.isDependsOnFlush());
        }
        return new Observation(List.copyOf(tables), List.copyOf(caches), s.file().logSize(),
                s.store(CacheKind.L2_TABLE).releases().size(), s.store(CacheKind.REFCOUNT_BLOCK).releases().size());
    }
}
