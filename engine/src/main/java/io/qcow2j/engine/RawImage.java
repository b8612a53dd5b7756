package io.qcow2j.engine;

import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * A raw disk image: guest offset = file offset. Used as a backing file. Holes (from {@code SEEK_HOLE}) are
 * reported as zero extents, as QEMU's file driver does.
 */
public final class RawImage implements BlockDevice {
    private final PositionalFile file;
    private final long size;
    private final String filename;

    private RawImage(PositionalFile file, long size, String filename) {
        this.file = file;
        this.size = size;
        this.filename = filename;
    }

    /** Wraps an open file; its size is the file's size. Takes ownership of {@code f}. */
    static RawImage open(PositionalFile f, String filename) throws IOException {
        try {
            return new RawImage(f, f.size(), filename);
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
    public void read(long offset, MemorySegment dst) throws IOException {
        Ranges.check(offset, dst.byteSize(), size, filename);
        long n = file.read(offset, dst);
        if (n < dst.byteSize()) {
            dst.asSlice(n).fill((byte) 0); // the file shrank under us: what is gone reads as zeros
        }
    }

    @Override
    public BlockStatus blockStatus(long offset, long maxLength) throws IOException {
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
    public BlockDevice backing() {
        return null;
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
        file.close();
    }
}
