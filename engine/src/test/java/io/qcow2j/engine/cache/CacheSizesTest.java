package io.qcow2j.engine.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class CacheSizesTest {
    static final long M = 1 << 20;
    static final long G = 1 << 30;

    @Test
    void defaultCoversTheImageWithClusterSizedEntries() {
        // 8 GiB with 64 KiB clusters: 131072 L2 entries = 1 MiB of L2 tables = 16 tables of 64 KiB.
        assertThat(CacheSizes.resolve(null, null, null, null, 65536, 8 * G, 8))
                .isEqualTo(new CacheSizes(16, 65536, 4));
    }

    @Test
    void defaultIsCappedAt32MiBAndThenUses4KiBSlices() {
        // 1 TiB with 64 KiB clusters needs 128 MiB of L2: capped at 32 MiB in 4 KiB slices.
        assertThat(CacheSizes.resolve(null, null, null, null, 65536, 1024 * G, 8))
                .isEqualTo(new CacheSizes(8192, 4096, 4));
    }

    @Test
    void explicitL2SizeIsCappedByWhatTheImageNeeds() {
        assertThat(CacheSizes.resolve(64 * M, null, null, null, 65536, 8 * G, 8).l2CacheBytes()).isEqualTo(M);
        // 1 MiB for a 64 GiB image: does not cover, so 4 KiB slices (256 of them).
        assertThat(CacheSizes.resolve(M, null, null, null, 65536, 64 * G, 8)).isEqualTo(new CacheSizes(256, 4096, 4));
        assertThat(CacheSizes.resolve(M, null, null, 65536L, 65536, 64 * G, 8))
                .isEqualTo(new CacheSizes(16, 65536, 4));
    }

    @Test
    void minimumsApply() {
        assertThat(CacheSizes.resolve(0L, 0L, null, null, 65536, 8 * G, 8)).isEqualTo(new CacheSizes(2, 4096, 4));
    }

    @Test
    void combinedSizeFillsL2FirstThenRefcount() {
        // 8 GiB image needs 1 MiB of L2; 2 MiB combined: 1 MiB L2, 1 MiB refcount (16 clusters).
        assertThat(CacheSizes.resolve(null, null, 2 * M, null, 65536, 8 * G, 8))
                .isEqualTo(new CacheSizes(16, 65536, 16));
        // 512 KiB combined: refcount takes its 256 KiB minimum, L2 the rest in 4 KiB slices.
        assertThat(CacheSizes.resolve(null, null, 512L << 10, null, 65536, 8 * G, 8))
                .isEqualTo(new CacheSizes(64, 4096, 4));
    }

    @Test
    void extendedL2EntriesNeedTwiceTheCache() {
        assertThat(CacheSizes.resolve(null, null, null, null, 65536, 8 * G, 16).l2CacheBytes()).isEqualTo(2 * M);
    }

    @Test
    void forbiddenCombinationsHaveQemusMessages() {
        assertThatThrownBy(() -> CacheSizes.resolve(M, M, 2 * M, null, 65536, G, 8))
                .hasMessage("cache-size, l2-cache-size and refcount-cache-size may not be set at the same time");
        assertThatThrownBy(() -> CacheSizes.resolve(4 * M, null, 2 * M, null, 65536, G, 8))
                .hasMessage("l2-cache-size may not exceed cache-size");
        assertThatThrownBy(() -> CacheSizes.resolve(null, 4 * M, 2 * M, null, 65536, G, 8))
                .hasMessage("refcount-cache-size may not exceed cache-size");
        assertThatThrownBy(() -> CacheSizes.resolve(null, null, null, 3000L, 65536, G, 8))
                .hasMessage("L2 cache entry size must be a power of two between 512 and the cluster size (65536)");
        assertThatThrownBy(() -> CacheSizes.resolve(null, null, null, 131072L, 65536, G, 8))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
