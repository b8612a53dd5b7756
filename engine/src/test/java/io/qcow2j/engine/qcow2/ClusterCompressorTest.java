package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.format.CompressionType;
import io.qcow2j.ffm.RawDeflater;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link ClusterCompressor}'s deflate, through the system's zlib and through the {@code java.util.zip}
 * fallback: what it writes inflates back, no reference reaches further back than QEMU's 4 KiB window, a
 * cluster that does not shrink answers null, and a partial or heap cluster compresses as its padded native
 * copy. (That the system route's clusters are qemu-img's, byte for byte, is {@code Qcow2ConvertTest}'s.)
 */
class ClusterCompressorTest {
    private static final int CS = 65536;

    private static ClusterCompressor open(boolean systemZlib) {
        return systemZlib ? ClusterCompressor.open(CompressionType.ZLIB, CS)
                : ClusterCompressor.openWithoutSystemZlib(CompressionType.ZLIB, CS);
    }

    private static byte[] text(int n) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; b.length() < n; i++) {
            b.append("service-").append(i % 97).append("\t").append(1000 + i * 7 % 5000).append("/tcp # line ").append(i).append('\n');
        }
        return Arrays.copyOf(b.toString().getBytes(StandardCharsets.US_ASCII), n);
    }

    private static MemorySegment nativeCopy(Arena a, byte[] b) {
        MemorySegment s = a.allocate(b.length, 8);
        MemorySegment.copy(MemorySegment.ofArray(b), 0, s, 0, b.length);
        return s;
    }

    private static byte[] inflate(byte[] compressed) throws Exception {
        Inflater inf = new Inflater(true);
        inf.setInput(compressed);
        byte[] out = new byte[CS];
        int n = inf.inflate(out);
        assertThat(inf.finished()).as("a complete stream").isTrue();
        inf.end();
        return Arrays.copyOf(out, n);
    }

    @Test
    void theSystemZlibIsUsedWhereThereIsOne() {
        assertThat(RawDeflater.available()).as("libz.so.1 on the test machine (qemu-img needs it too)").isTrue();
        try (ClusterCompressor c = open(true)) {
            assertThat(c.systemZlib()).isTrue();
        }
        try (ClusterCompressor c = ClusterCompressor.open(CompressionType.ZSTD, CS)) {
            assertThat(c.systemZlib()).isFalse();
        }
    }

    @ParameterizedTest(name = "system zlib {0}")
    @ValueSource(booleans = {true, false})
    void textCompressesAndInflatesBack(boolean systemZlib) throws Exception {
        byte[] t = text(CS);
        try (Arena a = Arena.ofConfined(); ClusterCompressor c = open(systemZlib)) {
            byte[] z = c.compress(nativeCopy(a, t));
            assertThat(z).isNotNull();
            assertThat(z.length).isLessThan(CS / 3);
            assertThat(inflate(z)).isEqualTo(t);
        }
    }

    /**
     * An 8 KiB random block repeated eight times: with deflate's 32 KiB window it shrinks to about 8 KiB; with
     * QEMU's 4 KiB window no repetition is in reach, so it does not shrink at all.
     */
    @ParameterizedTest(name = "system zlib {0}")
    @ValueSource(booleans = {true, false})
    void noReferenceReachesBeyondFourKiB(boolean systemZlib) {
        byte[] block = new byte[8192];
        new SplittableRandom(13).nextBytes(block);
        byte[] data = new byte[CS];
        for (int i = 0; i < CS; i += block.length) {
            System.arraycopy(block, 0, data, i, block.length);
        }
        try (Arena a = Arena.ofConfined(); ClusterCompressor c = open(systemZlib)) {
            assertThat(c.compress(nativeCopy(a, data))).isNull();
        }
    }

    @ParameterizedTest(name = "system zlib {0}")
    @ValueSource(booleans = {true, false})
    void randomDataDoesNotShrink(boolean systemZlib) {
        byte[] r = new byte[CS];
        new SplittableRandom(7).nextBytes(r);
        try (Arena a = Arena.ofConfined(); ClusterCompressor c = open(systemZlib)) {
            assertThat(c.compress(nativeCopy(a, r))).isNull();
        }
    }

    @ParameterizedTest(name = "system zlib {0}")
    @ValueSource(booleans = {true, false})
    void partialAndHeapClustersCompressAsTheirPaddedCopy(boolean systemZlib) throws Exception {
        byte[] t = text(CS);
        byte[] padded = Arrays.copyOf(Arrays.copyOf(t, 1000), CS);
        try (Arena a = Arena.ofConfined(); ClusterCompressor c = open(systemZlib)) {
            byte[] whole = c.compress(nativeCopy(a, padded));
            assertThat(c.compress(nativeCopy(a, Arrays.copyOf(t, 1000)))).isEqualTo(whole);
            assertThat(c.compress(MemorySegment.ofArray(Arrays.copyOf(t, 1000)))).isEqualTo(whole);
            assertThat(c.compress(MemorySegment.ofArray(t))).isEqualTo(c.compress(nativeCopy(a, t)));
            assertThat(inflate(whole)).isEqualTo(padded);
        }
    }
}
