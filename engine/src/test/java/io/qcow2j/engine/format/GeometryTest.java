package io.qcow2j.engine.format;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class GeometryTest {

    @Test
    void standardL2With64KClusters() {
        Geometry g = new Geometry(3, 16, 4, false, false);
        assertThat(g.clusterSize()).isEqualTo(65536);
        assertThat(g.l2EntrySize()).isEqualTo(8);
        assertThat(g.l2Entries()).isEqualTo(8192);
        assertThat(g.bytesPerL2Table()).isEqualTo(512L << 20);
        assertThat(g.subclustersPerCluster()).isEqualTo(1);
        assertThat(g.subclusterSize()).isEqualTo(65536);
        assertThat(g.refcountBits()).isEqualTo(16);
        assertThat(g.refcountBlockEntries()).isEqualTo(32768);
        assertThat(g.tableEntriesPerCluster()).isEqualTo(8192);
        // Guest offset 1 GiB + 3 clusters + 5 bytes: L1 index 2, L2 index 3.
        long off = (1L << 30) + 3 * 65536 + 5;
        assertThat(g.l1Index(off)).isEqualTo(2);
        assertThat(g.l2Index(off)).isEqualTo(3);
        assertThat(g.offsetInCluster(off)).isEqualTo(5);
        assertThat(g.subclusterIndex(off)).isZero();
        // Host offset of cluster 32768 + 7: refcount table index 1, block index 7.
        assertThat(g.refcountTableIndex((32768L + 7) << 16)).isEqualTo(1);
        assertThat(g.refcountBlockIndex((32768L + 7) << 16)).isEqualTo(7);
        assertThat(g.maxRefcount()).isEqualTo(65535);
    }

    @Test
    void extendedL2() {
        Geometry g = new Geometry(3, 16, 4, true, false);
        assertThat(g.l2EntrySize()).isEqualTo(16);
        assertThat(g.l2Entries()).isEqualTo(4096);
        assertThat(g.subclustersPerCluster()).isEqualTo(32);
        assertThat(g.subclusterSize()).isEqualTo(2048);
        assertThat(g.subclusterIndex(65536 + 2048 * 31 + 100)).isEqualTo(31);
        assertThat(g.l1Index(256L << 20)).isEqualTo(1);
        assertThat(g.l2Index((256L << 20) - 1)).isEqualTo(4095);
        assertThatThrownBy(() -> new Geometry(3, 13, 4, true, false)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Geometry(2, 16, 4, true, false)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void l1EntriesForSizeWithoutOverflow() {
        Geometry small = new Geometry(3, 9, 4, false, false); // one L2 table maps 64 * 512 = 32 KiB
        assertThat(small.l1EntriesFor(0)).isZero();
        assertThat(small.l1EntriesFor(1)).isEqualTo(1);
        assertThat(small.l1EntriesFor(32768)).isEqualTo(1);
        assertThat(small.l1EntriesFor(32769)).isEqualTo(2);
        assertThat(small.l1EntriesFor(Long.MAX_VALUE)).isEqualTo(1L << 48);
        Geometry big = new Geometry(3, 21, 6, false, false); // 2^18 entries * 2 MiB = 2^39 per table
        assertThat(big.l1EntriesFor(Long.MAX_VALUE)).isEqualTo(1L << 24);
        assertThat(big.l1EntriesFor(1L << 39)).isEqualTo(1);
        assertThat(big.clustersFor(Long.MAX_VALUE)).isEqualTo(1L << 42);
        assertThat(big.clustersFor((2L << 20) + 1)).isEqualTo(2);
        assertThat(big.refcountBlockEntries()).isEqualTo(1 << 18);
        assertThatThrownBy(() -> big.l1EntriesFor(-1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void refcountWidths() {
        for (int order = 0; order <= 6; order++) {
            Geometry g = new Geometry(3, 12, order, false, false);
            assertThat(g.refcountBlockEntries()).isEqualTo(4096 * 8 >> order);
            assertThat(g.maxRefcount()).isEqualTo(RefcountBlock.maxValue(order));
        }
        assertThatThrownBy(() -> new Geometry(3, 12, 7, false, false)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Geometry(3, 22, 4, false, false)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Geometry(4, 16, 4, false, false)).isInstanceOf(IllegalArgumentException.class);
    }
}
