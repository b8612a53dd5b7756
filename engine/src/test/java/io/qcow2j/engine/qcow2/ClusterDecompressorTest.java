package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.airlift.compress.v3.zstd.ZstdJavaCompressor;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.CompressionType;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.zip.Deflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link ClusterDecompressor} on its own: the compressed clusters qemu-img writes (zlib and zstd, small to 2 MiB
 * clusters) inflate to the data, and every broken stream (garbage, cut short, producing less than a cluster, or
 * for zstd more) ends in a one-line {@link Qcow2FormatException}, never another exception. A deflate stream
 * that would produce more than a cluster gives its first cluster, as QEMU's inflate accepts a full output
 * buffer whatever input is left (the descriptor's length is only known to the sector); a zstd frame that does is
 * refused, as QEMU refuses a frame it could not flush into the cluster.
 */
class ClusterDecompressorTest {
    private static final int CLUSTER = 4096;
    private static final String WHERE = "test.qcow2: compressed cluster at 0x1000 (guest offset 0)";

    @TempDir
    Path dir;

    /** Compressible, not trivial: numbered text lines with random bytes between them. */
    private static byte[] data(int length, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        byte[] b = new byte[length];
        int pos = 0;
        for (int line = 0; pos < length; line++) {
            byte[] text = ("cluster data line " + line + " of seed " + seed + "\n").getBytes(StandardCharsets.US_ASCII);
            System.arraycopy(text, 0, b, pos, Math.min(text.length, length - pos));
            pos += text.length;
            for (int i = 0; i < 8 && pos < length; i++) {
                b[pos++] = (byte) rnd.nextInt(256);
            }
        }
        return b;
    }

    private static byte[] deflate(byte[] in) {
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        d.setInput(in);
        d.finish();
        byte[] out = new byte[in.length * 2 + 64];
        int n = d.deflate(out);
        assertThat(d.finished()).isTrue();
        d.end();
        return Arrays.copyOf(out, n);
    }

    private static byte[] zstd(byte[] in) {
        ZstdJavaCompressor c = new ZstdJavaCompressor();
        byte[] out = new byte[c.maxCompressedLength(in.length)];
        return Arrays.copyOf(out, c.compress(in, 0, in.length, out, 0, out.length));
    }

    private static byte[] compress(CompressionType type, byte[] in) {
        return type == CompressionType.ZLIB ? deflate(in) : zstd(in);
    }

    /** Decompresses {@code in} into one cluster, padded to whole sectors as a descriptor would give it. */
    private static byte[] decompress(CompressionType type, byte[] in, int length) throws IOException {
        byte[] padded = Arrays.copyOf(in, (length + 511) & ~511);
        byte[] out = new byte[CLUSTER];
        ClusterDecompressor.decompress(type, padded, length, out, WHERE);
        return out;
    }

    /** Asserts that decompressing fails with a one-line qcow2j error naming the cluster. */
    private static void refused(CompressionType type, byte[] in, int length, String words) {
        assertThatThrownBy(() -> decompress(type, in, length))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessageStartingWith(WHERE + ": ")
                .hasMessageContaining(words)
                .message().doesNotContain("\n", "\r");
    }

    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void aWholeClusterInflates(CompressionType type) throws IOException {
        byte[] c = data(CLUSTER, 1);
        byte[] z = compress(type, c);
        assertThat(decompress(type, z, z.length)).isEqualTo(c);
    }

    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void aStreamThatEndsEarlyIsRefused(CompressionType type) {
        byte[] half = compress(type, data(CLUSTER / 2, 2)); // a complete stream of half a cluster
        refused(type, half, half.length, "decompresses to 2048 bytes, expected 4096");
    }

    @Test
    void truncatedDeflateIsRefused() {
        byte[] z = deflate(data(CLUSTER, 3));
        for (int cut : new int[] {0, 1, 2, z.length / 4, z.length / 2, z.length * 3 / 4}) {
            assertThatThrownBy(() -> decompress(CompressionType.ZLIB, z, cut))
                    .isExactlyInstanceOf(Qcow2FormatException.class)
                    .hasMessageStartingWith(WHERE)
                    .message().containsAnyOf("decompresses to", "bad deflate data").doesNotContain("\n");
        }
    }

    @Test
    void truncatedZstdIsRefused() {
        byte[] z = zstd(data(CLUSTER, 4));
        refused(CompressionType.ZSTD, z, 0, "not a zstd frame");
        refused(CompressionType.ZSTD, z, 5, "not a zstd frame");
        refused(CompressionType.ZSTD, z, z.length / 2, "zstd frame runs past the compressed data");
        refused(CompressionType.ZSTD, z, z.length - 1, "zstd frame runs past the compressed data");
    }

    @Test
    void garbageIsRefused() {
        byte[] garbage = new byte[CLUSTER];
        new SplittableRandom(5).nextBytes(garbage);
        garbage[0] = (byte) 0xff; // deflate block type 3: reserved
        refused(CompressionType.ZLIB, garbage, garbage.length, "bad deflate data");
        refused(CompressionType.ZSTD, garbage, garbage.length, "not a zstd frame");
        byte[] z = zstd(data(CLUSTER, 6));
        Arrays.fill(z, 12, z.length, (byte) 0xa5); // a real frame header, then garbage blocks
        assertThatThrownBy(() -> decompress(CompressionType.ZSTD, z, z.length))
                .isExactlyInstanceOf(Qcow2FormatException.class).message().doesNotContain("\n");
    }

    @Test
    void deflateOfMoreThanAClusterGivesTheFirstClusterAsQemu() throws IOException {
        byte[] two = data(2 * CLUSTER, 7);
        byte[] z = deflate(two);
        assertThat(decompress(CompressionType.ZLIB, z, z.length)).isEqualTo(Arrays.copyOf(two, CLUSTER));
    }

    @Test
    void zstdOfMoreThanAClusterIsRefused() {
        byte[] z = zstd(data(2 * CLUSTER, 8));
        refused(CompressionType.ZSTD, z, z.length, "bad zstd data");
    }

    /**
     * Seeded byte flips, cuts and overwrites of valid streams: each ends in a whole cluster or a one-line
     * {@link Qcow2FormatException}. (The fuzz module's {@code ImageFuzz} does the same through whole images.)
     */
    @ParameterizedTest
    @EnumSource(CompressionType.class)
    void mutatedStreamsEndInAClusterOrAOneLineError(CompressionType type) {
        SplittableRandom rnd = new SplittableRandom(9);
        int refusals = 0;
        for (int i = 0; i < 3000; i++) {
            byte[] z = compress(type, data(CLUSTER * (1 + rnd.nextInt(2)) / (1 + rnd.nextInt(2)), i));
            int flips = 1 + rnd.nextInt(4);
            for (int f = 0; f < flips; f++) {
                int at = rnd.nextInt(z.length);
                z[at] = rnd.nextBoolean() ? (byte) (z[at] ^ (1 << rnd.nextInt(8))) : (byte) rnd.nextInt(256);
            }
            int length = rnd.nextInt(8) == 0 ? rnd.nextInt(z.length + 1) : z.length;
            try {
                assertThat(decompress(type, z, length)).hasSize(CLUSTER);
            } catch (Qcow2FormatException e) {
                assertThat(e.getMessage()).startsWith(WHERE).doesNotContain("\n");
                refusals++;
            } catch (IOException e) {
                throw new AssertionError("not a Qcow2FormatException: " + e, e);
            }
        }
        assertThat(refusals).as("the mutations broke streams").isGreaterThan(1000);
    }

    @Test
    void theLargestDescriptorSpansTwoClusters() {
        for (int cb = 9; cb <= 21; cb++) {
            long entry = L2Entry.COMPRESSED | (((1L << (cb - 8)) - 1) << CompressedCluster.offsetBits(cb)) | 0x200;
            assertThat(CompressedCluster.compressedSize(entry, cb)).as("cluster_bits %d", cb)
                    .isEqualTo(CompressedCluster.maxCompressedSize(cb)).isEqualTo(2 << cb);
        }
    }

    /**
     * {@code qemu-img convert -c} writes the clusters; each compressed one, read as the descriptor says (to the
     * end of its last sector, zeros past the end of the file), inflates to the source's cluster.
     */
    @ParameterizedTest
    @CsvSource({"zlib,4096", "zlib,65536", "zlib,2097152", "zstd,4096", "zstd,65536", "zstd,2097152"})
    void qemuImgCompressedClustersInflateToTheSource(String type, int clusterSize) throws IOException {
        int clusters = 6;
        byte[] src = new byte[clusters * clusterSize];
        for (int i = 0; i < clusters; i++) {
            System.arraycopy(data(clusterSize, 100 + i), 0, src, i * clusterSize, clusterSize);
        }
        Files.write(dir.resolve("src.raw"), src);
        Qemu.run(dir, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o",
                "cluster_size=" + clusterSize + ",compression_type=" + type, "src.raw", "c.qcow2");
        byte[] file = Files.readAllBytes(dir.resolve("c.qcow2"));
        Qcow2Header h = Qcow2Header.parse(file, file.length);
        CompressionType ct = h.compressionType();
        assertThat(ct.qemuName()).isEqualTo(type);
        int cb = h.clusterBits();
        ByteBuffer b = ByteBuffer.wrap(file);
        long l2 = L1Entry.l2Offset(b.getLong((int) h.l1TableOffset()));
        int compressed = 0;
        for (int i = 0; i < clusters; i++) {
            long entry = b.getLong((int) l2 + 8 * i);
            assertThat(L2Entry.isCompressed(entry)).as("cluster %d compressed", i).isTrue();
            long host = CompressedCluster.hostOffset(entry, cb);
            int size = CompressedCluster.compressedSize(entry, cb);
            assertThat(size).isLessThanOrEqualTo(CompressedCluster.maxCompressedSize(cb));
            byte[] in = new byte[size];
            int n = (int) Math.min(size, file.length - host);
            System.arraycopy(file, (int) host, in, 0, n);
            byte[] out = new byte[clusterSize];
            ClusterDecompressor.decompress(ct, in, n, out, "c.qcow2");
            assertThat(Arrays.equals(out, 0, clusterSize, src, i * clusterSize, (i + 1) * clusterSize))
                    .as("cluster %d (%s, %d-byte clusters)", i, type, clusterSize).isTrue();
            compressed++;
        }
        assertThat(compressed).isEqualTo(clusters);
    }
}
