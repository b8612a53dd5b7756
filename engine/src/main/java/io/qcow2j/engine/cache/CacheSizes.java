package io.qcow2j.engine.cache;

/**
 * The sizes of an image's two caches from QEMU's options, with QEMU's rules ({@code read_cache_sizes} and
 * {@code qcow2_update_options_prepare} in {@code block/qcow2.c}):
 * <ul>
 *   <li>{@code l2-cache-size} defaults to what covers the whole image (every L2 table, each a full
 *       cluster on disk), capped at 32 MiB; a larger setting is also capped at what covers the image.</li>
 *   <li>{@code refcount-cache-size} defaults to 4 clusters, its minimum.</li>
 *   <li>{@code cache-size} is both together; at most two of the three may be given. With only
 *       {@code cache-size}, the L2 cache gets as much as it can use before the refcount cache grows.</li>
 *   <li>{@code l2-cache-entry-size} defaults to the cluster size, or 4 KiB (at most the cluster size) when
 *       the L2 cache does not cover the image: a miss then reads 4 KiB, not a whole cluster.</li>
 *   <li>Entries: L2 cache size / entry size (at least 2: copy-on-write of an L2 table holds two
 *       slices), refcount cache size / cluster size (at least 4).</li>
 * </ul>
 *
 * @param l2Tables          entries of the L2 cache
 * @param l2EntrySize       bytes per L2 cache entry (an L2 slice, or a whole table)
 * @param refcountBlocks    entries of the refcount cache (each one cluster)
 */
public record CacheSizes(int l2Tables, int l2EntrySize, int refcountBlocks) {
    /** QEMU's cap on the default L2 cache on Linux. */
    public static final long DEFAULT_L2_CACHE_MAX_SIZE = 32L << 20;
    public static final int MIN_L2_CACHE_ENTRIES = 2;
    public static final int MIN_REFCOUNT_CACHE_ENTRIES = 4;

    /**
     * Resolves the sizes. A {@code null} option was not given.
     *
     * @param clusterSize     the image's cluster size
     * @param virtualSize     the image's virtual (guest) size in bytes
     * @param l2EntryBytes    8, or 16 with extended L2 entries
     * @throws IllegalArgumentException with QEMU's message for a forbidden combination
     */
    public static CacheSizes resolve(Long l2CacheSize, Long refcountCacheSize, Long cacheSize, Long l2CacheEntrySize,
            int clusterSize, long virtualSize, int l2EntryBytes) {
        long maxL2Entries = ceilDiv(virtualSize, clusterSize);
        // virtualSize < 2^63 and clusters ≥ 512 bytes: at most 2^54 entries of ≤ 16 bytes, no overflow
        long maxL2Cache = roundUp(maxL2Entries * l2EntryBytes, clusterSize);
        long minRefcountCache = (long) MIN_REFCOUNT_CACHE_ENTRIES * clusterSize;

        long l2Setting = l2CacheSize != null ? nonNegative("l2-cache-size", l2CacheSize) : DEFAULT_L2_CACHE_MAX_SIZE;
        long refcount = refcountCacheSize != null ? nonNegative("refcount-cache-size", refcountCacheSize) : 0;
        long entrySize = l2CacheEntrySize != null ? l2CacheEntrySize : clusterSize;
        long l2 = Math.min(maxL2Cache, l2Setting);

        if (cacheSize != null) {
            long combined = nonNegative("cache-size", cacheSize);
            if (l2CacheSize != null && refcountCacheSize != null) {
                throw new IllegalArgumentException(
                        "cache-size, l2-cache-size and refcount-cache-size may not be set at the same time");
            } else if (l2CacheSize != null && l2Setting > combined) {
                throw new IllegalArgumentException("l2-cache-size may not exceed cache-size");
            } else if (refcount > combined) {
                throw new IllegalArgumentException("refcount-cache-size may not exceed cache-size");
            }
            if (l2CacheSize != null) {
                refcount = combined - l2;
            } else if (refcountCacheSize != null) {
                l2 = combined - refcount;
            } else if (combined >= maxL2Cache + minRefcountCache) {
                l2 = maxL2Cache;
                refcount = combined - l2;
            } else {
                refcount = Math.min(combined, minRefcountCache);
                l2 = combined - refcount;
            }
        }
        if (l2 < maxL2Cache && l2CacheEntrySize == null) {
            entrySize = Math.min(clusterSize, 4096);
        }
        if (entrySize < 512 || entrySize > clusterSize || Long.bitCount(entrySize) != 1) {
            throw new IllegalArgumentException("L2 cache entry size must be a power of two between 512 and the"
                    + " cluster size (" + clusterSize + ")");
        }
        long l2Tables = Math.max(MIN_L2_CACHE_ENTRIES, l2 / entrySize);
        if (l2Tables > MetadataCache.MAX_TABLES) {
            throw new IllegalArgumentException("L2 cache size too big");
        }
        long refcountBlocks = Math.max(MIN_REFCOUNT_CACHE_ENTRIES, refcount / clusterSize);
        if (refcountBlocks > MetadataCache.MAX_TABLES) {
            throw new IllegalArgumentException("Refcount cache size too big");
        }
        return new CacheSizes((int) l2Tables, (int) entrySize, (int) refcountBlocks);
    }

    private static long nonNegative(String name, long v) {
        if (v < 0) {
            throw new IllegalArgumentException(name + " must not be negative");
        }
        return v;
    }

    private static long ceilDiv(long a, long b) {
        return a / b + (a % b == 0 ? 0 : 1);
    }

    private static long roundUp(long v, long to) {
        return ceilDiv(v, to) * to;
    }

    /** Bytes of L2 cache. */
    public long l2CacheBytes() {
        return (long) l2Tables * l2EntrySize;
    }
}
