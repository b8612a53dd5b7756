package io.qcow2j.engine.raw;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.FastZeroUnsupportedException;
import io.qcow2j.engine.Ranges;
import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.ffm.AsyncFile;
import io.qcow2j.ffm.AsyncReads;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;

/**
 * A raw disk image: guest offset = file offset, the virtual size the file's size at open. Holes (from
 * {@code SEEK_HOLE}) are reported as zero extents, as QEMU's file driver does. Writes past the end are refused
 * like any request outside the disk; the file never grows.
 */
public final class RawImage implements Disk {
    private final PositionalFile file;
    private final long size;
    private final String filename;
    private final boolean readOnly;
    private final CacheMode cacheMode;
    private volatile boolean closed;
    /**
     * Fast-path reads in flight ({@link #readAsync}): raised before {@link #closed} is read, lowered by the
     * read's completion; close raises {@code closed} and then waits for zero (both volatile, so one of the two
     * sees the other), so no read is handed the descriptor after close released it.
     */
    private final AtomicInteger inFlight = new AtomicInteger();
    /** Null unless the file completes I/O asynchronously (the engine's own files). */
    private final AsyncReads<Void> reads;
    private final LongAdder fast = new LongAdder();

    private RawImage(PositionalFile file, long size, String filename, boolean readOnly, CacheMode cacheMode) {
        this.file = file;
        this.size = size;
        this.filename = filename;
        this.readOnly = readOnly;
        this.cacheMode = cacheMode;
        this.reads = file instanceof AsyncFile a
                ? new AsyncReads<>(a, FAST_READS, 1, () -> null, inFlight::decrementAndGet) : null;
    }

    /** Fast-path reads that may be in flight at once; more take the virtual-thread path. */
    private static final int FAST_READS = 128;

    /** Wraps an open read-only file; its size is the file's size. Takes ownership of {@code f}. */
    public static RawImage open(PositionalFile f, String filename) throws IOException {
        return open(f, filename, true, CacheMode.WRITEBACK);
    }

    /**
     * Wraps an open file (opened writable unless {@code readOnly}); its size is the file's size. Takes ownership
     * of {@code f}, closing it on failure too.
     */
    public static RawImage open(PositionalFile f, String filename, boolean readOnly, CacheMode cacheMode) throws IOException {
        try {
            return new RawImage(f, f.size(), filename, readOnly, cacheMode);
        } catch (IOException | RuntimeException e) {
            f.close();
            throw e;
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        Ranges.check(offset, dst.byteSize(), size, filename);
        requireOpen();
        long n = file.read(offset, dst);
        if (n < dst.byteSize()) {
            dst.asSlice(n).fill((byte) 0); // the file shrank under us: what is gone reads as zeros
        }
    }

    /**
     * Straight to the file's I/O backend, completed by its completion (see {@link AsyncReads}); on a virtual
     * thread only for what the backend cannot take as it is (a heap or misaligned buffer, all fast reads busy).
     */
    @Override
    public CompletableFuture<Void> readAsync(long offset, MemorySegment dst) {
        CompletableFuture<Void> f = startRead(offset, dst);
        return f != null ? f : Disk.super.readAsync(offset, dst);
    }

    private CompletableFuture<Void> startRead(long offset, MemorySegment dst) {
        if (reads == null || offset < 0 || dst.byteSize() == 0 || dst.byteSize() > size - offset) {
            return null; // the general path reports a bad range
        }
        inFlight.incrementAndGet();
        AsyncReads.Group<Void> g = closed ? null : reads.begin();
        if (g == null) {
            inFlight.decrementAndGet();
            return null;
        }
        if (!g.add(offset, dst)) {
            g.abandon();
            inFlight.decrementAndGet();
            return null;
        }
        fast.increment();
        return g.submit();
    }

    /** Reads that took the fast path so far (tests). */
    long fastReads() {
        return fast.sum();
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        Ranges.check(offset, src.byteSize(), size, filename);
        requireWritable();
        file.write(offset, src);
        flushIfWritethrough();
    }

    @Override
    public void writeZeroes(long offset, long length, Set<ZeroFlag> flags) throws IOException {
        Ranges.check(offset, length, size, filename);
        requireWritable();
        if (length == 0) {
            return;
        }
        if (flags.contains(ZeroFlag.MAY_UNMAP)) {
            try {
                file.punchHole(offset, length); // reads back zeros; the size does not change
                flushIfWritethrough();
                return;
            } catch (IOException e) {
                // the file system cannot punch: zero the range instead
            }
        }
        if (flags.contains(ZeroFlag.NO_FALLBACK)) {
            if (!file.zeroRangeFast(offset, length)) {
                throw new FastZeroUnsupportedException(filename + ": cannot zero " + length + " bytes at offset "
                        + offset + " without writing zeros");
            }
        } else {
            file.zeroRange(offset, length);
        }
        flushIfWritethrough();
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        Ranges.check(offset, length, size, filename);
        requireWritable();
        try {
            file.punchHole(offset, length);
        } catch (IOException e) {
            // discard is advisory: a file system that cannot punch keeps the bytes
        }
    }

    @Override
    public void flush() throws IOException {
        if (!readOnly && !closed && cacheMode != CacheMode.UNSAFE) {
            file.dataSync();
        }
    }

    private void flushIfWritethrough() throws IOException {
        if (cacheMode == CacheMode.WRITETHROUGH) {
            file.dataSync();
        }
    }

    private void requireOpen() throws IOException {
        if (closed) {
            throw new IOException(filename + ": image is closed");
        }
    }

    private void requireWritable() throws IOException {
        requireOpen();
        if (readOnly) {
            throw new IOException(filename + ": image is read-only");
        }
    }

    @Override
    public BlockStatus blockStatus(long offset, long maxLength) throws IOException {
        Ranges.check(offset, maxLength, size, filename);
        requireOpen();
        long end = Math.min(size, offset + maxLength);
        long data = file.seekData(offset);
        if (data < 0 || data >= end) {
            return new BlockStatus(offset, end - offset, true, true, false, false, offset);
        }
        if (data > offset) {
            return new BlockStatus(offset, data - offset, true, true, false, false, offset);
        }
        long hole = file.seekHole(offset);
        long stop = hole < 0 ? end : Math.min(hole, end);
        return new BlockStatus(offset, stop - offset, true, false, true, false, offset);
    }

    @Override
    public Optional<Disk> backing() {
        return Optional.empty();
    }

    @Override
    public String format() {
        return "raw";
    }

    @Override
    public String filename() {
        return filename;
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        while (inFlight.get() > 0) {
            LockSupport.parkNanos(100_000); // fast reads in flight complete first (they use the descriptor)
        }
        try {
            if (!readOnly && cacheMode != CacheMode.UNSAFE) {
                file.dataSync();
            }
        } finally {
            file.close();
        }
    }
}
