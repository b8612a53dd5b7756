package io.qcow2j.proptest.driver;

import io.qcow2j.engine.Disk;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * The reference model of a guest disk: a flat byte array, changed by the requests with the rules the engine
 * documents for them (write zeroes: the range reads zeros; discard: only whole clusters read zeros, see
 * {@link #discard}). {@link #verify} compares an image's reads with it.
 */
public final class GuestModel {
    private final long size;
    private final int clusterSize;
    private final int version;
    private final boolean backing;
    private final byte[] data;

    /**
     * @param size        guest size in bytes
     * @param clusterSize the image's cluster size
     * @param version     qcow2 version (2 or 3): version 2 images have no zero flag
     * @param backing     whether the image has a backing file
     * @param initial     what the guest reads before any request (the backing file's content, shorter ones
     *                    padded with zeros), or null for zeros
     */
    public GuestModel(long size, int clusterSize, int version, boolean backing, byte[] initial) {
        this.size = size;
        this.clusterSize = clusterSize;
        this.version = version;
        this.backing = backing;
        this.data = new byte[Math.toIntExact(size)];
        if (initial != null) {
            System.arraycopy(initial, 0, data, 0, (int) Math.min(initial.length, size));
        }
    }

    private GuestModel(GuestModel o) {
        this.size = o.size;
        this.clusterSize = o.clusterSize;
        this.version = o.version;
        this.backing = o.backing;
        this.data = o.data.clone();
    }

    public GuestModel copy() {
        return new GuestModel(this);
    }

    public long size() {
        return size;
    }

    public int clusterSize() {
        return clusterSize;
    }

    /** The bytes (live, not a copy). */
    public byte[] data() {
        return data;
    }

    public void write(long offset, byte[] bytes) {
        System.arraycopy(bytes, 0, data, (int) offset, bytes.length);
    }

    /** Write zeroes, with or without unmap: the whole range reads zeros. */
    public void writeZeroes(long offset, long length) {
        Arrays.fill(data, (int) offset, (int) (offset + length), (byte) 0);
    }

    /**
     * The range a discard makes read zeros, as {start, end}, or null: the whole clusters inside the request, the
     * last one even when the image ends inside it; nothing in a version 2 image with a backing file (no zero flag:
     * the engine declines, as QEMU does). Partial clusters keep their data.
     */
    public long[] discardedRange(long offset, long length) {
        long end = offset + length;
        long a = (offset + clusterSize - 1) & -(long) clusterSize;
        long b = end == size ? end : end & -(long) clusterSize;
        if (a >= b || (version < 3 && backing)) {
            return null;
        }
        return new long[] {a, b};
    }

    /** Discard: see {@link #discardedRange}. */
    public void discard(long offset, long length) {
        long[] r = discardedRange(offset, length);
        if (r != null) {
            Arrays.fill(data, (int) r[0], (int) r[1], (byte) 0);
        }
    }

    /**
     * Reads {@code [offset, offset+length)} from {@code image} and compares it with the model, skipping the
     * bytes in {@code skip} (may be null); fails with the first difference.
     */
    public void verify(Disk image, long offset, long length, IntervalSet skip, String context)
            throws IOException {
        byte[] got = new byte[Math.toIntExact(length)];
        image.read(offset, MemorySegment.ofArray(got));
        compare(got, offset, skip, context);
    }

    /** Compares {@code got}, the guest bytes from {@code offset}, with the model, skipping {@code skip}. */
    public void compare(byte[] got, long offset, IntervalSet skip, String context) {
        compare(got, offset, got.length, skip, context);
    }

    /**
     * Compares the first {@code length} bytes of {@code got}, the guest bytes from {@code offset}, with the model,
     * skipping {@code skip} (may be null); fails with the first difference.
     */
    public void compare(byte[] got, long offset, long length, IntervalSet skip, String context) {
        long end = offset + length;
        for (long[] r : skip == null ? java.util.List.of(new long[] {offset, end}) : skip.gaps(offset, end)) {
            int from = (int) (r[0] - offset);
            int to = (int) (r[1] - offset);
            int m = Arrays.mismatch(got, from, to, data, (int) r[0], (int) r[1]);
            if (m >= 0) {
                long at = r[0] + m;
                throw new AssertionError(context + ": guest byte 0x" + Long.toHexString(at) + " (cluster "
                        + at / clusterSize + " +0x" + Long.toHexString(at % clusterSize) + ") reads "
                        + hex(got, (int) (at - offset), to) + " but should be " + hex(data, (int) at, (int) r[1])
                        + " (" + mismatchLength(got, (int) (at - offset), to, (int) at) + " bytes differ from there)");
            }
        }
    }

    private int mismatchLength(byte[] got, int from, int to, int modelFrom) {
        int n = 0;
        for (int i = from; i < to && got[i] != data[modelFrom + (i - from)]; i++) {
            n++;
        }
        return n;
    }

    private static String hex(byte[] b, int from, int to) {
        return HexFormat.of().formatHex(b, from, Math.min(to, from + 16)) + (to - from > 16 ? "…" : "");
    }
}
