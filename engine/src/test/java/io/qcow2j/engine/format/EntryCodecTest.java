package io.qcow2j.engine.format;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** L1, L2, compressed, extended L2 and refcount table entries, with values worked out by hand. */
class EntryCodecTest {
    private static final Geometry V3 = new Geometry(3, 16, 4, false, false);
    private static final Geometry V2 = new Geometry(2, 16, 4, false, false);
    private static final Geometry EXT = new Geometry(3, 16, 4, true, false);
    private static final Geometry DATA_FILE = new Geometry(3, 16, 4, false, true);

    @Test
    void l1Entry() throws Qcow2FormatException {
        long e = 0x8000_0000_0003_0000L;
        assertThat(L1Entry.l2Offset(e)).isEqualTo(0x30000L);
        assertThat(L1Entry.isCopied(e)).isTrue();
        assertThat(L1Entry.isUnallocated(e)).isFalse();
        assertThat(L1Entry.checkedL2Offset(e, 0, V3)).isEqualTo(0x30000L);
        assertThat(L1Entry.checkedL2Offset(0, 5, V3)).isZero();
        assertThat(L1Entry.isUnallocated(L1Entry.COPIED)).isTrue();
        assertThat(L1Entry.of(0x30000L, true)).isEqualTo(e);
        // The largest offset the field holds: bits 9..55.
        assertThat(L1Entry.l2Offset(-1L)).isEqualTo(0x00ff_ffff_ffff_fe00L);
        assertThatThrownBy(() -> L1Entry.of(0x100, false)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void l1EntryCorruption() {
        assertThatThrownBy(() -> L1Entry.checkedL2Offset(0x0000_0000_0003_0001L, 7, V3))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessage("qcow2 L1 entry 0x0000000000030001 (L1 index 7): reserved bits 0x1 set");
        assertThatThrownBy(() -> L1Entry.checkedL2Offset(0x0100_0000_0003_0000L, 0, V3))
                .hasMessageContaining("reserved bits 0x100000000000000 set");
        assertThatThrownBy(() -> L1Entry.checkedL2Offset(0x8000_0000_0003_0200L, 2, V3))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessage("qcow2 L1 entry 0x8000000000030200 (L1 index 2): L2 table offset 0x30200 not aligned to"
                        + " the cluster size 65536");
        // With 512-byte clusters every offset the field can hold is aligned.
        Geometry tiny = new Geometry(3, 9, 4, false, false);
        assertThat(catchless(() -> L1Entry.checkedL2Offset(0x30200L, 0, tiny))).isEqualTo(0x30200L);
    }

    @Test
    void standardL2Entries() throws Qcow2FormatException {
        long normal = 0x8000_0000_0005_0000L;
        assertThat(L2Entry.hostClusterOffset(normal)).isEqualTo(0x50000L);
        assertThat(L2Entry.isCopied(normal)).isTrue();
        assertThat(L2Entry.isCompressed(normal)).isFalse();
        assertThat(L2Entry.of(0x50000L, true, false)).isEqualTo(normal);
        assertThat(type(normal, V3)).isEqualTo(ClusterType.NORMAL);
        assertThat(type(0x50000L, V3)).isEqualTo(ClusterType.NORMAL); // shared (COW) cluster
        assertThat(type(0, V3)).isEqualTo(ClusterType.UNALLOCATED);
        assertThat(type(1, V3)).isEqualTo(ClusterType.ZERO_PLAIN);
        assertThat(type(0x8000_0000_0005_0001L, V3)).isEqualTo(ClusterType.ZERO_ALLOC);
        assertThat(type(L2Entry.COMPRESSED | 0x1234, V3)).isEqualTo(ClusterType.COMPRESSED);
        assertThat(ClusterType.ZERO_ALLOC.isAllocated()).isTrue();
        assertThat(ClusterType.ZERO_PLAIN.isAllocated()).isFalse();
    }

    @Test
    void l2SubclusterTypesWithoutExtendedL2() throws Qcow2FormatException {
        assertThat(sub(0x8000_0000_0005_0000L, 0, 0, V3)).isEqualTo(SubclusterType.NORMAL);
        assertThat(sub(0, 0, 0, V3)).isEqualTo(SubclusterType.UNALLOCATED_PLAIN);
        assertThat(sub(1, 0, 0, V3)).isEqualTo(SubclusterType.ZERO_PLAIN);
        assertThat(sub(0x50001L, 0, 0, V3)).isEqualTo(SubclusterType.ZERO_ALLOC);
        assertThat(sub(L2Entry.COMPRESSED | 0x1234, 0, 0, V3)).isEqualTo(SubclusterType.COMPRESSED);
        assertThatThrownBy(() -> L2Entry.subclusterType(ClusterType.NORMAL, 0, 1, V3))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(SubclusterType.UNALLOCATED_PLAIN.readsBacking()).isTrue();
        assertThat(SubclusterType.ZERO_ALLOC.readsZeros()).isTrue();
        assertThat(SubclusterType.COMPRESSED.hasData()).isTrue();
    }

    @Test
    void externalDataFileMakesOffsetZeroReal() throws Qcow2FormatException {
        assertThat(type(L2Entry.COPIED, DATA_FILE)).isEqualTo(ClusterType.NORMAL);
        assertThat(type(0, DATA_FILE)).isEqualTo(ClusterType.UNALLOCATED);
        assertThat(type(L2Entry.COPIED, V3)).isEqualTo(ClusterType.UNALLOCATED);
        assertThatThrownBy(() -> type(L2Entry.COMPRESSED | 0x1234, DATA_FILE))
                .hasMessageContaining("compressed cluster in an image with an external data file");
    }

    @Test
    void l2Corruption() {
        assertThatThrownBy(() -> type(0x8000_0000_0005_0200L, V3))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessage("qcow2 L2 entry 0x8000000000050200 (L2 table 0x40000, index 3): cluster offset 0x50200"
                        + " not aligned to the cluster size 65536");
        assertThatThrownBy(() -> type(0x50201L, V3)).hasMessageContaining("cluster offset 0x50200 not aligned");
        assertThatThrownBy(() -> type(0x50002L, V3)).hasMessageContaining("reserved bits 0x2 set");
        assertThatThrownBy(() -> type(0x0100_0000_0005_0000L, V3)).hasMessageContaining("reserved bits 0x100000000000000");
        assertThatThrownBy(() -> type(1, V2)).hasMessageContaining("zero flag set in a version 2 image");
        assertThatThrownBy(() -> type(0x50001L, V2)).hasMessageContaining("zero flag set in a version 2 image");
        assertThatThrownBy(() -> type(L2Entry.COPIED | L2Entry.COMPRESSED | 0x1234, V3))
                .hasMessageContaining("COPIED flag set on a compressed cluster");
        // 512-byte clusters: the compressed offset field reaches bit 60, but offsets stop below 2^56.
        Geometry tiny = new Geometry(3, 9, 4, false, false);
        assertThatThrownBy(() -> L2Entry.checkedClusterType(L2Entry.COMPRESSED | (1L << 56), 0, tiny, 0, 0))
                .hasMessageContaining("compressed data offset 0x100000000000000 beyond the 2^56");
    }

    @Test
    void extendedL2() throws Qcow2FormatException {
        long entry = 0x8000_0000_0005_0000L;
        // Subclusters 0 and 1 allocated, 4 reads as zero, the rest unallocated.
        long bitmap = 0x3L | (1L << 36);
        assertThat(L2Entry.checkedClusterType(entry, bitmap, EXT, 0, 0)).isEqualTo(ClusterType.NORMAL);
        assertThat(sub(entry, bitmap, 0, EXT)).isEqualTo(SubclusterType.NORMAL);
        assertThat(sub(entry, bitmap, 1, EXT)).isEqualTo(SubclusterType.NORMAL);
        assertThat(sub(entry, bitmap, 2, EXT)).isEqualTo(SubclusterType.UNALLOCATED_ALLOC);
        assertThat(sub(entry, bitmap, 4, EXT)).isEqualTo(SubclusterType.ZERO_ALLOC);
        assertThat(sub(entry, bitmap, 31, EXT)).isEqualTo(SubclusterType.UNALLOCATED_ALLOC);
        // No host cluster: zero bits still count, allocation bits may not be set.
        long zeros = SubclusterBitmap.zeroRange(8, 32);
        assertThat(sub(0, zeros, 7, EXT)).isEqualTo(SubclusterType.UNALLOCATED_PLAIN);
        assertThat(sub(0, zeros, 8, EXT)).isEqualTo(SubclusterType.ZERO_PLAIN);
        assertThat(sub(0, SubclusterBitmap.ALL_ZERO, 31, EXT)).isEqualTo(SubclusterType.ZERO_PLAIN);
        // The ZERO flag of a standard entry means nothing with extended L2 (QEMU ignores it).
        assertThat(type(1, EXT)).isEqualTo(ClusterType.UNALLOCATED);
        assertThat(sub(L2Entry.COMPRESSED | 0x1234, 0, 5, EXT)).isEqualTo(SubclusterType.COMPRESSED);

        assertThatThrownBy(() -> L2Entry.checkedClusterType(entry, 0x1L | (1L << 32), EXT, 0x10000, 9))
                .hasMessage("qcow2 L2 entry 0x8000000000050000 (L2 table 0x10000, index 9): subcluster bitmap"
                        + " 0x0000000100000001 marks subclusters both allocated and zero");
        assertThatThrownBy(() -> L2Entry.checkedClusterType(0, 0x4L, EXT, 0, 0))
                .hasMessageContaining("allocates subclusters of an unallocated cluster");
        assertThatThrownBy(() -> L2Entry.checkedClusterType(L2Entry.COMPRESSED | 0x1234, 0x1L << 40, EXT, 0, 0))
                .hasMessageContaining("compressed cluster with non-zero subcluster bitmap 0x0000010000000000");
    }

    @Test
    void subclusterBitmap() {
        assertThat(SubclusterBitmap.allocatedRange(0, 32)).isEqualTo(SubclusterBitmap.ALL_ALLOCATED);
        assertThat(SubclusterBitmap.zeroRange(0, 32)).isEqualTo(SubclusterBitmap.ALL_ZERO);
        assertThat(SubclusterBitmap.allocatedRange(2, 5)).isEqualTo(0b11100L);
        assertThat(SubclusterBitmap.zeroRange(2, 5)).isEqualTo(0b11100L << 32);
        assertThat(SubclusterBitmap.allocatedRange(7, 7)).isZero();
        assertThat(SubclusterBitmap.conflicts(0x0000_0006_0000_0003L)).isEqualTo(0x2L);
        assertThat(SubclusterBitmap.isAllocated(0x8000_0000L, 31)).isTrue();
        assertThat(SubclusterBitmap.readsAsZero(0x8000_0000_0000_0000L, 31)).isTrue();
        assertThatThrownBy(() -> SubclusterBitmap.allocatedRange(3, 33)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void compressedDescriptor() {
        // 64 KiB clusters: x = 62 - (16 - 8) = 54; offset in bits 0..53, 8 sector-count bits 54..61.
        long e = L2Entry.COMPRESSED | (3L << 54) | 0x123456L;
        assertThat(CompressedCluster.offsetBits(16)).isEqualTo(54);
        assertThat(CompressedCluster.hostOffset(e, 16)).isEqualTo(0x123456L);
        assertThat(CompressedCluster.additionalSectors(e, 16)).isEqualTo(3);
        // From 0x123456 (86 bytes into its sector) to the end of the 4th sector: 4 * 512 - 86.
        assertThat(CompressedCluster.compressedSize(e, 16)).isEqualTo(1962);
        assertThat(CompressedCluster.entry(0x123456L, 1962, 16)).isEqualTo(e);
        // One byte fewer still ends in the same sector; one more needs another.
        assertThat(CompressedCluster.entry(0x123456L, 1961, 16)).isEqualTo(e);
        assertThat(CompressedCluster.additionalSectors(CompressedCluster.entry(0x123456L, 1963, 16), 16)).isEqualTo(4);

        // 2 MiB clusters: x = 49, 13 sector bits; the offset field holds less than 2^49.
        long big = L2Entry.COMPRESSED | (4095L << 49) | 0x1_0000_0000_1200L;
        assertThat(CompressedCluster.offsetBits(21)).isEqualTo(49);
        assertThat(CompressedCluster.hostOffset(big, 21)).isEqualTo(0x1_0000_0000_1200L);
        assertThat(CompressedCluster.additionalSectors(big, 21)).isEqualTo(4095);
        assertThat(CompressedCluster.compressedSize(big, 21)).isEqualTo(4096 * 512);
        assertThat(CompressedCluster.additionalSectors(-1L, 21)).isEqualTo(8191);

        // 512-byte clusters: x = 61, one sector bit: at most two sectors.
        long tiny = L2Entry.COMPRESSED | (1L << 61) | 0x3ffL;
        assertThat(CompressedCluster.hostOffset(tiny, 9)).isEqualTo(0x3ffL);
        assertThat(CompressedCluster.additionalSectors(tiny, 9)).isEqualTo(1);
        assertThat(CompressedCluster.compressedSize(tiny, 9)).isEqualTo(1024 - 511);
        assertThatThrownBy(() -> CompressedCluster.entry(0x3ffL, 1024, 9)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> CompressedCluster.entry(1L << 54, 100, 16)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void compressedRoundTripForEveryClusterSize() {
        for (int bits = 9; bits <= 21; bits++) {
            int x = CompressedCluster.offsetBits(bits);
            long maxOffset = Math.min((1L << x) - 1, CompressedCluster.MAX_HOST_OFFSET);
            for (long offset : new long[] {0, 1, 511, 512, 0x123456789L & maxOffset, maxOffset - (1 << bits)}) {
                for (int size : new int[] {1, 100, 512, (1 << bits) - 1, 1 << bits}) {
                    long e = CompressedCluster.entry(offset, size, bits);
                    assertThat(L2Entry.isCompressed(e)).isTrue();
                    assertThat(L2Entry.isCopied(e)).isFalse();
                    assertThat(CompressedCluster.hostOffset(e, bits)).isEqualTo(offset);
                    int decoded = CompressedCluster.compressedSize(e, bits);
                    // The decoded length covers the data and ends on a sector boundary within one sector of it.
                    assertThat(decoded).isBetween(size, size + 511);
                    assertThat((offset + decoded) % 512).isZero();
                }
            }
        }
    }

    @Test
    void refcountTableEntry() throws Qcow2FormatException {
        assertThat(RefcountTableEntry.checkedBlockOffset(0x20000L, 0, V3)).isEqualTo(0x20000L);
        assertThat(RefcountTableEntry.checkedBlockOffset(0, 3, V3)).isZero();
        assertThat(RefcountTableEntry.blockOffset(0xffff_ffff_ffff_ffffL)).isEqualTo(0xffff_ffff_ffff_fe00L);
        assertThatThrownBy(() -> RefcountTableEntry.checkedBlockOffset(0x20001L, 4, V3))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessage("qcow2 refcount table entry 0x0000000000020001 (index 4): reserved bits 0x1 set");
        assertThatThrownBy(() -> RefcountTableEntry.checkedBlockOffset(0x20200L, 4, V3))
                .hasMessageContaining("refcount block offset 0x20200 not aligned to the cluster size 65536");
    }

    private static ClusterType type(long entry, Geometry g) throws Qcow2FormatException {
        ClusterType t = L2Entry.checkedClusterType(entry, 0, g, 0x40000, 3);
        assertThat(L2Entry.clusterType(entry, g)).isEqualTo(t);
        return t;
    }

    private static SubclusterType sub(long entry, long bitmap, int sc, Geometry g) throws Qcow2FormatException {
        return L2Entry.checkedSubclusterType(entry, bitmap, sc, g, 0, 0);
    }

    interface Call {
        long run() throws Qcow2FormatException;
    }

    private static long catchless(Call c) {
        try {
            return c.run();
        } catch (Qcow2FormatException e) {
            throw new AssertionError(e);
        }
    }
}
