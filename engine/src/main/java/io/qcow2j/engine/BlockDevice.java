package io.qcow2j.engine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * A guest disk: a qcow2 image ({@link Qcow2Image}) or a raw file ({@link RawImage}), each possibly the
 * backing file of another. Thread-safe: reads from many threads at once are allowed.
 */
public interface BlockDevice extends AutoCloseable {

    /** The virtual (guest-visible) size in bytes. */
    long size();

    /**
     * Fills {@code dst} with the guest bytes at {@code offset}. The range must lie inside the disk.
     *
     * @throws IOException on an I/O error, or on corrupt metadata (then a one-line message names it)
     */
    void read(long offset, MemorySegment dst) throws IOException;

    /**
     * What the disk holds at {@code offset}: one extent of uniform status, at most {@code maxLength}
     * bytes long, starting at {@code offset} (QEMU's block status). The depth is 0 for this disk; unallocated
     * extents are not looked up in the backing chain (see {@link #backing()}).
     */
    BlockStatus blockStatus(long offset, long maxLength) throws IOException;

    /** The backing disk, or null. */
    BlockDevice backing();

    /** The format name as {@code qemu-img} prints it: {@code qcow2} or {@code raw}. */
    String format();

    /** The file name the disk was opened with. */
    String filename();

    @Override
    void close() throws IOException;
}
