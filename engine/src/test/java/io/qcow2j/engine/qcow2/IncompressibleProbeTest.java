package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.format.CompressionType;
import io.qcow2j.ffm.RawDeflater;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link IncompressibleProbe} against the compressor it spares: QEMU's deflate (the system zlib with
 * QEMU's parameters) run on the same clusters. Wherever the probe says a cluster cannot shrink, deflate
 * must either fail to fit it in {@code cluster size - 1} bytes or save less than 0.5% of it; random data
 * is judged incompressible at every cluster size from 16 KiB; text, skewed and locally repeated data are
 * left to the compressor.
 */
class IncompressibleProbeTest {
    /** The most a cluster the probe skips could have saved: 0.5%. */
    private static final double MAX_LOSS = 0.005;

    /** QEMU's deflate of {@code data}: its length, even when longer than the cluster. */
    private static int deflatedLength(Arena a, MemorySegment data) {
        try (RawDeflater z = RawDeflater.open(-1, 12, 9).orElseThrow()) {
            int len = z.deflate(data, a.allocate(data.byteSize() * 2 + 1024));
            assertThat(len).isPositive();
            return len;
        }
    }

    private static MemorySegment random(Arena a, int n, long seed) {
        MemorySegment s = a.allocate(n, 8);
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i + 8 <= n; i += 8) {
            s.set(ValueLayout.JAVA_LONG_UNALIGNED, i, r.nextLong());
        }
        return s;
    }

    @ParameterizedTest
    @ValueSource(ints = {16 << 10, 64 << 10, 256 << 10, 2 << 20})
    void randomClustersAreIncompressibleAndDeflateAgrees(int cs) {
        try (Arena a = Arena.ofConfined()) {
            IncompressibleProbe p = new IncompressibleProbe();
            for (long seed = 0; seed < 3; seed++) {
                MemorySegment c = random(a, cs, seed);
                assertThat(p.incompressible(c)).as("random %d-byte cluster, seed %d", cs, seed).isTrue();
                assertThat(deflatedLength(a, c)).as("deflate cannot shrink it either").isGreaterThan(cs - 1);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {512, 4096, 8192})
    void smallClustersAreLeftToTheCompressor(int cs) {
        try (Arena a = Arena.ofConfined()) {
            assertThat(new IncompressibleProbe().incompressible(random(a, cs, 7))).isFalse();
        }
    }

    @Test
    void textAndZerosAreLeftToTheCompressor() {
        try (Arena a = Arena.ofConfined()) {
            IncompressibleProbe p = new IncompressibleProbe();
            StringBuilder b = new StringBuilder();
            for (int i = 0; b.length() < 65536; i++) {
                b.append("line ").append(i).append(" of a text file\n");
            }
            byte[] text = b.substring(0, 65536).getBytes(StandardCharsets.US_ASCII);
            assertThat(p.incompressible(MemorySegment.ofArray(text))).isFalse();
            assertThat(p.incompressible(a.allocate(65536))).isFalse();
        }
    }

    /**
     * The bound that matters: over clusters built to sit near the threshold (random data with a share of
     * one skewed byte value, with short local repeats, with repeats beyond deflate's reach, with a smaller
     * alphabet), every one the probe skips is one deflate could not have shrunk by 0.5%, and the probe does
     * skip some of them (the test would pass vacuously otherwise).
     */
    @Test
    void whatTheProbeSkipsDeflateCouldNotHaveShrunk() {
        int cs = 65536;
        try (Arena a = Arena.ofConfined()) {
            IncompressibleProbe p = new IncompressibleProbe();
            SplittableRandom r = new SplittableRandom(42);
            List<String> skipped = new ArrayList<>();
            int kept = 0;
            for (int round = 0; round < 120; round++) {
                MemorySegment c = random(a, cs, r.nextLong());
                String kind = mutate(c, round % 4, r);
                int len = deflatedLength(a, c);
                if (p.incompressible(c)) {
                    skipped.add(kind);
                    assertThat(len).as("%s: skipped, so deflate must not save 0.5%%", kind)
                            .isGreaterThan((int) (cs * (1 - MAX_LOSS)));
                } else {
                    kept++;
                }
            }
            assertThat(skipped).as("some clusters skipped").hasSizeGreaterThan(10);
            assertThat(kept).as("some clusters left to the compressor").isGreaterThan(10);
        }
    }

    /** Changes random {@code c} by {@code kind}, with a strength drawn from {@code r}; names what it did. */
    private static String mutate(MemorySegment c, int kind, SplittableRandom r) {
        int n = (int) c.byteSize();
        switch (kind) {
            case 0 -> { // one value over-represented: the entropy coder's chance
                double share = r.nextDouble() * 0.03;
                for (int i = 0; i < n; i++) {
                    if (r.nextDouble() < share) {
                        c.set(ValueLayout.JAVA_BYTE, i, (byte) 0x20);
                    }
                }
                return "skew " + share;
            }
            case 1 -> { // short repeats of what came shortly before: LZ77's chance
                double share = r.nextDouble() * 0.02;
                int copied = 0;
                while (copied < share * n) {
                    int len = 4 + r.nextInt(60);
                    int to = 4096 + r.nextInt(n - 4096 - len);
                    int from = to - 1 - r.nextInt(4000);
                    MemorySegment.copy(c, from, c, to, len);
                    copied += len;
                }
                return "repeats " + share;
            }
            case 2 -> { // long repeats from further back than the window: no help to deflate
                int len = 1024 + r.nextInt(8192);
                MemorySegment.copy(c, 0, c, n - len, len);
                return "far repeat " + len;
            }
            default -> { // a smaller alphabet
                int values = 240 + r.nextInt(17);
                for (int i = 0; i < n; i++) {
                    c.set(ValueLayout.JAVA_BYTE, i, (byte) ((c.get(ValueLayout.JAVA_BYTE, i) & 0xff) % values));
                }
                return "alphabet " + values;
            }
        }
    }

    @Test
    void theCompressorSkipsWhatTheProbeRejectsAndStillCompressesText() {
        try (Arena a = Arena.ofConfined(); ClusterCompressor z = ClusterCompressor.open(CompressionType.ZLIB, 65536);
                ClusterCompressor zs = ClusterCompressor.open(CompressionType.ZSTD, 65536)) {
            MemorySegment rnd = random(a, 65536, 3);
            assertThat(z.compress(rnd)).isNull();
            assertThat(zs.compress(rnd)).isNull();
            byte[] text = "qcow2j compresses this line\n".repeat(65536 / 28 + 1).substring(0, 65536)
                    .getBytes(StandardCharsets.US_ASCII);
            assertThat(z.compress(MemorySegment.ofArray(text))).isNotNull().hasSizeLessThan(4096);
        }
    }
}
