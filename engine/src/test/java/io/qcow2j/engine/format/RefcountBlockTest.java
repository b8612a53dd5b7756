package io.qcow2j.engine.format;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Refcount entries of every width against an independent bit-level model of the block's bytes. */
class RefcountBlockTest {

    @ParameterizedTest(name = "refcount_order {0}")
    @ValueSource(ints = {0, 1, 2, 3, 4, 5, 6})
    void setGetRoundTripAgainstBitModel(int order) {
        int width = 1 << order;
        int entries = 4096 * 8 / width; // one 4 KiB cluster
        MemorySegment block = MemorySegment.ofArray(new byte[4096]);
        long[] model = new long[entries];
        Random rnd = new Random(order * 7919L + 1);
        long max = RefcountBlock.maxValue(order);
        for (int n = 0; n < 20_000; n++) {
            int i = rnd.nextInt(entries);
            long v = switch (rnd.nextInt(4)) {
                case 0 -> 0;
                case 1 -> max;
                case 2 -> 1;
                default -> rnd.nextLong() & max;
            };
            RefcountBlock.set(block, i, order, v);
            model[i] = v;
            assertThat(RefcountBlock.get(block, i, order)).isEqualTo(v);
        }
        byte[] expected = bitModel(model, width);
        assertThat(block.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(expected);
        for (int i = 0; i < entries; i++) {
            assertThat(RefcountBlock.get(block, i, order)).as("entry %d", i).isEqualTo(model[i]);
        }
    }

    /**
     * The spec's layout, built bit by bit: entry {@code i} occupies bits {@code [i*w, (i+1)*w)} of the
     * block. Narrower than a byte, bits count from the least significant bit of each byte; from one byte
     * up, each entry is a big-endian integer.
     */
    private static byte[] bitModel(long[] values, int width) {
        byte[] out = new byte[(int) ((long) values.length * width / 8)];
        for (int i = 0; i < values.length; i++) {
            for (int bit = 0; bit < width; bit++) {
                if ((values[i] >>> bit & 1) == 0) {
                    continue;
                }
                int byteIndex;
                int bitInByte;
                if (width < 8) {
                    long pos = (long) i * width + bit;
                    byteIndex = (int) (pos / 8);
                    bitInByte = (int) (pos % 8);
                } else {
                    int bytes = width / 8;
                    byteIndex = i * bytes + (bytes - 1 - bit / 8);
                    bitInByte = bit % 8;
                }
                out[byteIndex] |= (byte) (1 << bitInByte);
            }
        }
        return out;
    }

    @Test
    void handComputedLayouts() {
        MemorySegment b = MemorySegment.ofArray(new byte[8]);
        RefcountBlock.set(b, 0, 0, 1);
        RefcountBlock.set(b, 3, 0, 1);
        RefcountBlock.set(b, 9, 0, 1);
        assertThat(b.toArray(ValueLayout.JAVA_BYTE)).startsWith((byte) 0b1001, (byte) 0b10);

        b = MemorySegment.ofArray(new byte[8]);
        RefcountBlock.set(b, 1, 1, 3); // 2-bit entry 1 = bits 2..3 of byte 0
        RefcountBlock.set(b, 5, 2, 0xa); // 4-bit entry 5 = high nibble of byte 2
        assertThat(b.toArray(ValueLayout.JAVA_BYTE)).startsWith((byte) 0x0c, (byte) 0, (byte) 0xa0);

        b = MemorySegment.ofArray(new byte[8]);
        RefcountBlock.set(b, 1, 4, 0x1234);
        assertThat(b.toArray(ValueLayout.JAVA_BYTE)).startsWith((byte) 0, (byte) 0, (byte) 0x12, (byte) 0x34);
        RefcountBlock.set(b, 1, 5, 0xdeadbeefL);
        assertThat(RefcountBlock.get(b, 1, 5)).isEqualTo(0xdeadbeefL);
        assertThat(b.toArray(ValueLayout.JAVA_BYTE)).endsWith((byte) 0xde, (byte) 0xad, (byte) 0xbe, (byte) 0xef);
        RefcountBlock.set(b, 0, 6, -2L);
        assertThat(RefcountBlock.get(b, 0, 6)).isEqualTo(-2L);
    }

    @Test
    void maxValuesAndLimits() {
        assertThat(RefcountBlock.maxValue(0)).isEqualTo(1);
        assertThat(RefcountBlock.maxValue(1)).isEqualTo(3);
        assertThat(RefcountBlock.maxValue(2)).isEqualTo(15);
        assertThat(RefcountBlock.maxValue(3)).isEqualTo(255);
        assertThat(RefcountBlock.maxValue(4)).isEqualTo(65535);
        assertThat(RefcountBlock.maxValue(5)).isEqualTo(0xffff_ffffL);
        assertThat(RefcountBlock.maxValue(6)).isEqualTo(-1L);
        assertThat(RefcountBlock.bytesFor(3, 0)).isEqualTo(1);
        assertThat(RefcountBlock.bytesFor(9, 0)).isEqualTo(2);
        assertThat(RefcountBlock.bytesFor(3, 6)).isEqualTo(24);
        MemorySegment b = MemorySegment.ofArray(new byte[8]);
        assertThatThrownBy(() -> RefcountBlock.set(b, 0, 0, 2)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> RefcountBlock.set(b, 0, 4, 65536)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> RefcountBlock.set(b, 0, 3, -1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> RefcountBlock.get(b, 0, 7)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> RefcountBlock.maxValue(-1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> RefcountBlock.get(b, 8, 3)).isInstanceOf(IndexOutOfBoundsException.class);
    }
}
