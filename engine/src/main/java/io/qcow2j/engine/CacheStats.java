package io.qcow2j.engine;

import java.util.Locale;

/**
 * What one metadata cache of an open qcow2 image (the L2 cache or the refcount cache) holds and has done:
 * a consistent snapshot, for {@code qcow2j map --cache-stats}, benchmarks and monitoring.
 *
 * @param entries        tables the cache holds at most (L2 slices, or refcount blocks)
 * @param entrySize      bytes per table
 * @param hits           lookups that found the table cached
 * @param misses         lookups that did not
 * @param loads          tables read from the image file
 * @param evictions      tables dropped to make room
 * @param writebacks     table writes to the image file
 * @param writebackBytes bytes of those writes
 * @param syncs          file flushes the cache issued (its own flush, a dependency, depends-on-flush)
 * @param releasedBytes  memory handed back to the system (off-heap table store only)
 * @param discards       tables dropped because their cluster was freed
 * @param cleaned        tables dropped by the periodic cleaner ({@code cache-clean-interval})
 * @param lookups        index lookups
 * @param probes         index buckets examined over all lookups
 * @param maxProbes      most buckets one lookup examined
 */
public record CacheStats(int entries, int entrySize, long hits, long misses, long loads, long evictions,
        long writebacks, long writebackBytes, long syncs, long releasedBytes, long discards, long cleaned,
        long lookups, long probes, long maxProbes) {

    /** Mean index buckets examined per lookup. */
    public double probesPerLookup() {
        return lookups == 0 ? 0 : (double) probes / lookups;
    }

    /** Hits over lookups that asked for a table (0 when none did). */
    public double hitRate() {
        long gets = hits + misses;
        return gets == 0 ? 0 : (double) hits / gets;
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT,
                "hits %d, misses %d (%.1f%% hits), loads %d, evictions %d, write-backs %d (%d bytes), "
                        + "syncs %d, released %d bytes, probes/lookup %.2f (max %d)",
                hits, misses, 100 * hitRate(), loads, evictions, writebacks, writebackBytes, syncs,
                releasedBytes, probesPerLookup(), maxProbes);
    }
}
