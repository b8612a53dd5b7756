package io.qcow2j.engine;

import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link PositionalFile} that remembers how far into the file anything has ever been written (the size
 * at open, then the end of every write). Bytes past that point have never held data: they read as zeros
 * whatever happens, so a new cluster there needs no copy-on-write of zeros to be durable before an L2 entry
 * may point at it (the one {@code fdatasync} that QEMU avoids the same way).
 */
final class WrittenExtent implements PositionalFile {
    private final PositionalFile file;
    private final AtomicLong end;

    WrittenExtent(PositionalFile file) throws IOException {
        this.file = file;
        this.end = new AtomicLong(file.size());
    }

    /** Everything at or past this offset has never been written. */
    long end() {
        return end.get();
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        end.accumulateAndGet(offset + src.byteSize(), Math::max); // before: a concurrent reader must not see it lower
        file.write(offset, src);
    }

    @Override
    public void truncate(long length) throws IOException {
        end.accumulateAndGet(length, Math::max);
        file.truncate(length);
    }

    @Override
    public long read(long offset, MemorySegment dst) throws IOException {
        return file.read(offset, dst);
    }

    @Override
    public void readFully(long offset, MemorySegment dst) throws IOException {
        file.readFully(offset, dst);
    }

    @Override
    public long size() throws IOException {
        return file.size();
    }

    @Override
    public long allocatedBytes() throws IOException {
        return file.allocatedBytes();
    }

    @Override
    public void dataSync() throws IOException {
        file.dataSync();
    }

    @Override
    public void punchHole(long offset, long length) throws IOException {
        file.punchHole(offset, length);
    }

    @Override
    public long seekData(long offset) throws IOException {
        return file.seekData(offset);
    }

    @Override
    public long seekHole(long offset) throws IOException {
        return file.seekHole(offset);
    }

    @Override
    public String fallbackReason() {
        return file.fallbackReason();
    }

    @Override
    public Path path() {
        return file.path();
    }

    @Override
    public void close() throws IOException {
        file.close();
    }

    @Override
    public String toString() {
        return file.toString();
    }
}
