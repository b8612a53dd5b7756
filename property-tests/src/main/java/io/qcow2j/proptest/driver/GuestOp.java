package io.qcow2j.proptest.driver;

import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.engine.qcow2.Qcow2Image;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/**
 * A guest request with its concrete parameters, applied to an image and to a {@link GuestModel} alike. Write
 * data is derived from a seed, so a request prints (and replays) in one line.
 */
public sealed interface GuestOp {

    void apply(Qcow2Image image) throws IOException;

    void apply(GuestModel model);

    /** The guest bytes the request may change, as {start, end}; null for none (flush). */
    long[] range();

    /** {@code length} bytes at {@code offset}, of pseudo-random data from {@code seed}. */
    record Write(long offset, int length, long seed) implements GuestOp {
        public byte[] data() {
            byte[] b = new byte[length];
            new SplittableRandom(seed).nextBytes(b);
            return b;
        }

        @Override
        public void apply(Qcow2Image image) throws IOException {
            image.write(offset, MemorySegment.ofArray(data()));
        }

        @Override
        public void apply(GuestModel model) {
            model.write(offset, data());
        }

        @Override
        public long[] range() {
            return new long[] {offset, offset + length};
        }

        @Override
        public String toString() {
            return "write(0x" + Long.toHexString(offset) + ", " + length + ", seed " + seed + ")";
        }
    }

    record WriteZeroes(long offset, long length, boolean unmap) implements GuestOp {
        @Override
        public void apply(Qcow2Image image) throws IOException {
            image.writeZeroes(offset, length, ZeroFlag.unmapIf(unmap));
        }

        @Override
        public void apply(GuestModel model) {
            model.writeZeroes(offset, length);
        }

        @Override
        public long[] range() {
            return new long[] {offset, offset + length};
        }

        @Override
        public String toString() {
            return "writeZeroes(0x" + Long.toHexString(offset) + ", " + length + (unmap ? ", unmap" : "") + ")";
        }
    }

    record Discard(long offset, long length) implements GuestOp {
        @Override
        public void apply(Qcow2Image image) throws IOException {
            image.discard(offset, length);
        }

        @Override
        public void apply(GuestModel model) {
            model.discard(offset, length);
        }

        @Override
        public long[] range() {
            return new long[] {offset, offset + length};
        }

        @Override
        public String toString() {
            return "discard(0x" + Long.toHexString(offset) + ", " + length + ")";
        }
    }

    record Flush() implements GuestOp {
        @Override
        public void apply(Qcow2Image image) throws IOException {
            image.flush();
        }

        @Override
        public void apply(GuestModel model) {
        }

        @Override
        public long[] range() {
            return null;
        }

        @Override
        public String toString() {
            return "flush()";
        }
    }
}
