package io.qcow2j.ffm;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * The one small interface through which the engine touches a file: positional reads and writes, size,
 * durability and space management. {@link AlignedFile} implements it over libc; tests wrap it to record every
 * write and sync (crash simulation) or to inject faults.
 *
 * <p>Implementations are safe for concurrent positional reads and writes.
 */
public interface PositionalFile extends AutoCloseable {

    /** Reads up to {@code dst.byteSize()} bytes at {@code offset}; fewer only at end of file. */
    long read(long offset, MemorySegment dst) throws IOException;

    /** Reads exactly {@code dst.byteSize()} bytes at {@code offset}, or fails with {@link EOFException}. */
    default void readFully(long offset, MemorySegment dst) throws IOException {
        long n = read(offset, dst);
        if (n != dst.byteSize()) {
            throw new EOFException(path() + ": read of " + dst.byteSize() + " bytes at " + offset + " ended after "
                    + n + " bytes (end of file)");
        }
    }

    /** Writes all of {@code src} at {@code offset}. */
    void write(long offset, MemorySegment src) throws IOException;

    /** Current size in bytes. */
    long size() throws IOException;

    /** Bytes the file occupies on its device (allocated blocks). */
    long allocatedBytes() throws IOException;

    /** Sets the size; growing leaves a hole. */
    void truncate(long length) throws IOException;

    /** Makes every completed write durable ({@code fdatasync}). */
    void dataSync() throws IOException;

    /** Deallocates a range: it reads back zeros; the size does not change. */
    void punchHole(long offset, long length) throws IOException;

    /**
     * Makes a range read as zeros, by the file system where it can (zero range, else punching a hole), else by
     * writing zeros; a range past the end extends the file. The default writes zeros.
     */
    default void zeroRange(long offset, long length) throws IOException {
        long chunk = Math.min(length, 1 << 20);
        MemorySegment zeros = MemorySegment.ofArray(new byte[(int) Math.max(chunk, 0)]);
        for (long done = 0; done < length; done += chunk) {
            write(offset + done, zeros.asSlice(0, Math.min(chunk, length - done)));
        }
    }

    /**
     * Makes a range inside the file read as zeros by the file system alone ({@code FALLOC_FL_ZERO_RANGE}, else
     * punching a hole), without writing data. Returns false, having changed nothing, where the file system can
     * do neither. The default can do neither.
     */
    default boolean zeroRangeFast(long offset, long length) throws IOException {
        return false;
    }

    /**
     * Reserves space for {@code [offset, offset + length)} without changing the size or what the file reads
     * ({@code fallocate(FALLOC_FL_KEEP_SIZE)}): later writes there, past the end too, find their blocks
     * allocated. Space reserved past the end is given back by a truncate to the size. Returns false, having
     * done nothing, where the file system cannot (the default); fails with {@code ENOSPC} where it has no room.
     */
    default boolean reserve(long offset, long length) throws IOException {
        return false;
    }

    /**
     * Whether {@link #reserve} only allocates (extents marked unwritten: ext4, xfs, btrfs) rather than
     * allocating and zeroing memory under the file's lock, as file systems in memory do (tmpfs), where writers
     * stall behind a reservation and gain nothing by it. The default says no.
     */
    default boolean reservesCheaply() throws IOException {
        return false;
    }

    /** First offset ≥ {@code offset} holding data, or -1 if none before the end. */
    long seekData(long offset) throws IOException;

    /** First offset ≥ {@code offset} in a hole (the end counts), or -1 past the end. */
    long seekHole(long offset) throws IOException;

    /** Why direct I/O was not used though asked for, or null. */
    String fallbackReason();

    Path path();

    @Override
    void close() throws IOException;
}
