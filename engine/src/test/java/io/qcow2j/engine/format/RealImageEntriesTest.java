package io.qcow2j.engine.format;

import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The entry codecs on metadata qemu-io wrote: walking L1 and L2 tables, classifying what qemu made of
 * each write, finding the data where the entries say it is, and refcounts of every width.
 */
class RealImageEntriesTest {
    @TempDir
    Path dir;

    /** An image's bytes with its parsed header, and the lookups a read path makes. */
    record Image(MemorySegment bytes, Qcow2Header header) {
        static Image of(Path path) throws IOException {
            byte[] b = Files.readAllBytes(path);
            return new Image(MemorySegment.ofArray(b), Qcow2Header.parse(b, b.length));
        }

        Geometry g() {
            return header.geometry();
        }

        long l1Entry(long guestOffset) {
            return bytes.get(Be.U64, header.l1TableOffset() + 8 * g().l1Index(guestOffset));
        }

        long l2TableOffset(long guestOffset) throws Qcow2FormatException {
            return L1Entry.checkedL2Offset(l1Entry(guestOffset), g().l1Index(guestOffset), g());
        }

        /** {entry, bitmap} of the L2 entry mapping {@code guestOffset}; zeros if no L2 table. */
        long[] l2Entry(long guestOffset) throws Qcow2FormatException {
            long l2 = l2TableOffset(guestOffset);
            if (l2 == 0) {
                return new long[2];
            }
            long at = l2 + (long) g().l2Index(guestOffset) * g().l2EntrySize();
            return new long[] {bytes.get(Be.U64, at), g().extendedL2() ? bytes.get(Be.U64, at + 8) : 0};
        }

        ClusterType type(long guestOffset) throws Qcow2FormatException {
            long[] e = l2Entry(guestOffset);
            return L2Entry.checkedClusterType(e[0], e[1], g(), l2TableOffset(guestOffset), g().l2Index(guestOffset));
        }

        SubclusterType subType(long guestOffset) throws Qcow2FormatException {
            long[] e = l2Entry(guestOffset);
            return L2Entry.checkedSubclusterType(e[0], e[1], g().subclusterIndex(guestOffset), g(),
                    l2TableOffset(guestOffset), g().l2Index(guestOffset));
        }

        byte[] read(long hostOffset, int len) {
            byte[] out = new byte[len];
            long n = Math.max(0, Math.min(len, bytes.byteSize() - hostOffset));
            MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, hostOffset, out, 0, (int) n);
            return out;
        }

        long refcount(long hostOffset) throws Qcow2FormatException {
            long index = g().refcountTableIndex(hostOffset);
            long entry = bytes.get(Be.U64, header.refcountTableOffset() + 8 * index);
            long block = RefcountTableEntry.checkedBlockOffset(entry, index, g());
            if (block == 0) {
                return 0;
            }
            return RefcountBlock.get(bytes.asSlice(block, g().clusterSize()), g().refcountBlockIndex(hostOffset),
                    g().refcountOrder());
        }
    }

    @ParameterizedTest(name = "cluster_size={0}")
    @ValueSource(ints = {4096, 65536})
    void normalZeroAndUnallocatedClusters(int cs) throws IOException {
        Path path = Qemu.create(dir, "img.qcow2", "cluster_size=" + cs, "1G");
        Qemu.io(path, "write -P 0xab 0 " + 2 * cs, "write -z 0 " + cs, "write -z " + 2 * cs + " " + cs,
                "write -P 0xcd " + 3 * cs + " 512");
        Image img = Image.of(path);
        assertThat(L1Entry.isCopied(img.l1Entry(0))).isTrue();
        // Zeroing an allocated cluster keeps the allocation; zeroing an unallocated one does not create one.
        assertThat(img.type(0)).isEqualTo(ClusterType.ZERO_ALLOC);
        assertThat(img.subType(0)).isEqualTo(SubclusterType.ZERO_ALLOC);
        assertThat(img.type(cs)).isEqualTo(ClusterType.NORMAL);
        assertThat(img.type(2L * cs)).isEqualTo(ClusterType.ZERO_PLAIN);
        assertThat(img.type(3L * cs)).isEqualTo(ClusterType.NORMAL);
        assertThat(img.type(4L * cs)).isEqualTo(ClusterType.UNALLOCATED);
        assertThat(img.type(1L << 29)).isEqualTo(ClusterType.UNALLOCATED); // no L2 table there at all
        long[] e = img.l2Entry(cs);
        assertThat(L2Entry.isCopied(e[0])).isTrue();
        assertThat(img.read(L2Entry.hostClusterOffset(e[0]), cs)).containsOnly((byte) 0xab);
        byte[] partial = img.read(L2Entry.hostClusterOffset(img.l2Entry(3L * cs)[0]), cs);
        assertThat(Arrays.copyOf(partial, 512)).containsOnly((byte) 0xcd);
        assertThat(Arrays.copyOfRange(partial, 512, cs)).containsOnly((byte) 0);
    }

    @Test
    void version2HasNoZeroClusters() throws IOException {
        Path path = Qemu.create(dir, "img.qcow2", "compat=0.10", "1G");
        Qemu.io(path, "write -P 0xab 0 64k", "write -z 64k 64k");
        Image img = Image.of(path);
        assertThat(img.type(0)).isEqualTo(ClusterType.NORMAL);
        assertThat(img.type(65536)).isIn(ClusterType.NORMAL, ClusterType.UNALLOCATED);
    }

    @ParameterizedTest(name = "cluster_size={0}")
    @ValueSource(ints = {512, 4096, 65536, 2 << 20})
    void compressedClustersDecompressToTheirData(int cs) throws IOException, DataFormatException {
        Path path = Qemu.create(dir, "img.qcow2", "cluster_size=" + cs, "64M");
        Qemu.io(path, "write -c -P 0xab 0 " + cs, "write -c -P 0x5c " + cs + " " + cs);
        Image img = Image.of(path);
        for (int i = 0; i < 2; i++) {
            long[] e = img.l2Entry((long) i * cs);
            assertThat(img.type((long) i * cs)).isEqualTo(ClusterType.COMPRESSED);
            assertThat(L2Entry.isCopied(e[0])).isFalse();
            int bits = img.g().clusterBits();
            long offset = CompressedCluster.hostOffset(e[0], bits);
            int size = CompressedCluster.compressedSize(e[0], bits);
            assertThat(size).isBetween(1, cs + 512);
            assertThat(offset).isLessThan(img.bytes().byteSize());
            // qcow2's zlib is raw deflate; the data must inflate to exactly one cluster of the pattern.
            Inflater inflater = new Inflater(true);
            inflater.setInput(img.read(offset, size));
            byte[] out = new byte[cs];
            int n = 0;
            while (n < cs && !inflater.finished()) {
                int k = inflater.inflate(out, n, cs - n);
                if (k == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
                    break;
                }
                n += k;
            }
            inflater.end();
            assertThat(n).isEqualTo(cs);
            assertThat(out).containsOnly(i == 0 ? (byte) 0xab : (byte) 0x5c);
            // The host cluster holding the compressed data is referenced (refcount counts each user).
            assertThat(img.refcount(offset)).isPositive();
        }
    }

    @Test
    void zstdCompressedClustersAreClassified() throws IOException {
        Path path = Qemu.create(dir, "img.qcow2", "compression_type=zstd", "64M");
        Qemu.io(path, "write -c -P 0xab 0 64k");
        Image img = Image.of(path);
        assertThat(img.header().compressionType()).isEqualTo(CompressionType.ZSTD);
        long[] e = img.l2Entry(0);
        assertThat(img.type(0)).isEqualTo(ClusterType.COMPRESSED);
        long offset = CompressedCluster.hostOffset(e[0], 16);
        // A zstd frame starts with the magic 0xFD2FB528 (little-endian on disk).
        assertThat(img.read(offset, 4)).containsExactly(0x28, 0xb5, 0x2f, 0xfd);
    }

    @Test
    void extendedL2Subclusters() throws IOException {
        Path path = Qemu.create(dir, "img.qcow2", "extended_l2=on,cluster_size=64k", "1G");
        Qemu.io(path, "write -P 0xab 0 4k", "write -z 8k 4k", "write -z 128k 64k", "write -z 256k 4k");
        Image img = Image.of(path);
        long[] e = img.l2Entry(0);
        assertThat(e[1]).isEqualTo(SubclusterBitmap.allocatedRange(0, 2) | SubclusterBitmap.zeroRange(4, 6));
        assertThat(img.type(0)).isEqualTo(ClusterType.NORMAL);
        assertThat(img.subType(0)).isEqualTo(SubclusterType.NORMAL);
        assertThat(img.subType(2048)).isEqualTo(SubclusterType.NORMAL);
        assertThat(img.subType(4096)).isEqualTo(SubclusterType.UNALLOCATED_ALLOC);
        assertThat(img.subType(8192)).isEqualTo(SubclusterType.ZERO_ALLOC);
        assertThat(img.subType(10240 + 2047)).isEqualTo(SubclusterType.ZERO_ALLOC);
        assertThat(img.subType(12288)).isEqualTo(SubclusterType.UNALLOCATED_ALLOC);
        assertThat(img.read(L2Entry.hostClusterOffset(e[0]), 4096)).containsOnly((byte) 0xab);
        assertThat(img.type(131072)).isEqualTo(ClusterType.UNALLOCATED);
        for (int sc = 0; sc < 32; sc++) {
            assertThat(img.subType(131072 + sc * 2048L)).isEqualTo(SubclusterType.ZERO_PLAIN);
        }
        assertThat(img.subType(262144)).isEqualTo(SubclusterType.ZERO_PLAIN);
        assertThat(img.subType(262144 + 4096)).isEqualTo(SubclusterType.UNALLOCATED_PLAIN);
        assertThat(img.subType(65536)).isEqualTo(SubclusterType.UNALLOCATED_PLAIN);
    }

    @ParameterizedTest(name = "refcount_bits={0}")
    @ValueSource(ints = {1, 2, 4, 8, 16, 32, 64})
    void refcountsOfEveryWidth(int refcountBits) throws IOException {
        Path path = Qemu.create(dir, "img.qcow2", "cluster_size=4096,refcount_bits=" + refcountBits, "1G");
        Qemu.io(path, "write -P 0xab 0 8k");
        if (refcountBits > 1) {
            Qemu.run(dir, "qemu-img", "snapshot", "-c", "s", "img.qcow2");
        }
        Image img = Image.of(path);
        Qcow2Header h = img.header();
        assertThat(h.refcountBits()).isEqualTo(refcountBits);
        long shared = refcountBits > 1 ? 2 : 1;
        long l2 = img.l2TableOffset(0);
        assertThat(img.refcount(0)).as("header").isEqualTo(1);
        assertThat(img.refcount(h.refcountTableOffset())).as("refcount table").isEqualTo(1);
        long block = RefcountTableEntry.blockOffset(img.bytes().get(Be.U64, h.refcountTableOffset()));
        assertThat(img.refcount(block)).as("refcount block").isEqualTo(1);
        assertThat(img.refcount(h.l1TableOffset())).as("L1 table").isEqualTo(1);
        assertThat(img.refcount(l2)).as("L2 table").isEqualTo(shared);
        assertThat(img.refcount(L2Entry.hostClusterOffset(img.l2Entry(0)[0]))).as("data").isEqualTo(shared);
        assertThat(img.refcount(L2Entry.hostClusterOffset(img.l2Entry(4096)[0]))).as("data").isEqualTo(shared);
        // Shared clusters lose COPIED; exclusively owned ones keep it.
        assertThat(L1Entry.isCopied(img.l1Entry(0))).isEqualTo(shared == 1);
        assertThat(L2Entry.isCopied(img.l2Entry(0)[0])).isEqualTo(shared == 1);
        long end = img.g().clustersFor(img.bytes().byteSize()) << img.g().clusterBits();
        assertThat(img.refcount(end)).as("past the end of the file").isZero();
        assertThat(img.refcount(end + (1L << 20))).isZero();
    }
}
