package io.qcow2j.engine.cache;

/**
 * Counters a cache keeps as it works: plain field increments under the cache's single-owner contract,
 * cheap enough to stay on. Read a consistent view with {@link #snapshot()} while holding the owner's lock.
 */
public final class CacheStatistics {
    /** Upper bounds of the probe-count histogram buckets; the last bucket takes everything above 16. */
    private static final int[] PROBE_BUCKET_LIMITS = {1, 2, 3, 4, 8, 16, Integer.MAX_VALUE};

    long hits;
    /** Hits of readers without the owner's lock ({@link MetadataCache#touch}); counted into {@code hits}. */
    final StripedCounter sharedHits = new StripedCounter();
    long misses;
    long loads;
    long evictions;
    long writebacks;
    long writebackBytes;
    long syncs;
    long releasedBytes;
    long discards;
    long cleaned;
    long lookups;
    long probes;
    long maxProbes;
    final long[] probeHistogram = new long[PROBE_BUCKET_LIMITS.length];

    void recordProbes(int n) {
        lookups++;
        probes += n;
        if (n > maxProbes) {
            maxProbes = n;
        }
        int b = 0;
        while (n > PROBE_BUCKET_LIMITS[b]) {
            b++;
        }
        probeHistogram[b]++;
    }

    /** An immutable copy of the counters. */
    public Snapshot snapshot() {
        return new Snapshot(hits + sharedHits.sum(), misses, loads, evictions, writebacks, writebackBytes, syncs, releasedBytes,
                discards, cleaned, lookups, probes, maxProbes, probeHistogram.clone());
    }

    /**
     * The counters at one moment.
     *
     * @param hits           gets that found the table cached
     * @param misses         gets that did not
     * @param loads          tables read from the file (misses of {@code get}, not of {@code getEmpty})
     * @param evictions      occupied entries replaced to make room
     * @param writebacks     table writes to the file (eviction, write, flush)
     * @param writebackBytes bytes of those writes
     * @param syncs          file flushes the cache issued (its own flush, dependency, depends-on-flush)
     * @param releasedBytes  memory handed back to the system (off-heap store only)
     * @param discards       entries dropped by {@code discard}
     * @param cleaned        entries dropped by {@code cleanUnused}
     * @param lookups        index lookups
     * @param probes         index buckets examined over all lookups
     * @param maxProbes      most buckets one lookup examined
     * @param probeHistogram lookups by probe count: 1, 2, 3, 4, 5–8, 9–16, more
     */
    public record Snapshot(long hits, long misses, long loads, long evictions, long writebacks,
            long writebackBytes, long syncs, long releasedBytes, long discards, long cleaned, long lookups,
            long probes, long maxProbes, long[] probeHistogram) {}
}
