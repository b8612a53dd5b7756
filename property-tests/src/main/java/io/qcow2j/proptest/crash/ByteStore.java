package io.qcow2j.proptest.crash;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The bytes of a file held in memory: a growable array with a size. Bytes past the size read as zeros (a
 * write past the end leaves a hole of zeros), as in a sparse file. Thread-safe. Files are limited to
 * a little under 2 GiB, plenty for test images.
 */
public final class ByteStore {
    private static final long MAX = Integer.MAX_VALUE - 64;

    private byte[] bytes;
    private long size;

    /** An empty store. */
    public ByteStore() {
        this(new byte[0]);
    }

    /** A store holding a copy of {@code content}. */
    public ByteStore(byte[] content) {
        this.bytes = content.clone();
        this.size = content.length;
    }

    private ByteStore(byte[] bytes, long size) {
        this.bytes = bytes;
        this.size = size;
    }

    public synchronized long size() {
        return size;
    }

    /** Reads up to {@code dst.byteSize()} bytes at {@code offset}; returns how many (fewer at the end). */
    public synchronized long read(long offset, MemorySegment dst) {
        if (offset < 0) {
            throw new IllegalArgumentException("negative offset " + offset);
        }
        long n = Math.max(0, Math.min(dst.byteSize(), size - offset));
        if (n > 0) {
            MemorySegment.copy(bytes, (int) offset, dst, ValueLayout.JAVA_BYTE, 0, (int) n);
        }
        return n;
    }

    /** Writes {@code src} at {@code offset}, growing the store when it ends past the size. */
    public synchronized void write(long offset, MemorySegment src) {
        long end = offset + src.byteSize();
        ensure(end);
        MemorySegment.copy(src, ValueLayout.JAVA_BYTE, 0, bytes, (int) offset, (int) src.byteSize());
        size = Math.max(size, end);
    }

    /** Writes {@code src} at {@code offset}. */
    public void write(long offset, byte[] src) {
        write(offset, MemorySegment.ofArray(src));
    }

    /** Zeros {@code [offset, offset+length)} within the current size (a punched hole). */
    public synchronized void zero(long offset, long length) {
        long end = Math.min(size, offset + length);
        if (offset < end) {
            Arrays.fill(bytes, (int) offset, (int) end, (byte) 0);
        }
    }

    /** Sets the size: shrinking drops the bytes past it; growing adds zeros. */
    public synchronized void truncate(long length) {
        if (length < size) {
            Arrays.fill(bytes, (int) length, (int) Math.min(size, bytes.length), (byte) 0);
        } else {
            ensure(length);
        }
        size = length;
    }

    private void ensure(long end) {
        if (end < 0 || end > MAX) {
            throw new IllegalArgumentException("in-memory file would grow to " + end + " bytes (limit " + MAX + ")");
        }
        if (end > bytes.length) {
            long cap = Math.min(MAX, Math.max(end, bytes.length * 3L / 2 + 4096));
            bytes = Arrays.copyOf(bytes, (int) cap);
        }
    }

    /** A copy of the content (exactly {@link #size()} bytes). */
    public synchronized byte[] toArray() {
        return Arrays.copyOf(bytes, (int) size);
    }

    /** An independent copy of this store. */
    public synchronized ByteStore copy() {
        return new ByteStore(Arrays.copyOf(bytes, (int) Math.max(size, 0)), size);
    }
}
