package io.qcow2j.engine.qcow2;

import io.qcow2j.ffm.AsyncFile;
import io.qcow2j.ffm.ForwardingFile;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link PositionalFile} that remembers how far into the file anything has ever been written (the size
 * at open, then the end of every write). Bytes past that point have never held data: they read as zeros
 * whatever happens, so a new cluster there needs no copy-on-write of zeros to be durable before an L2 entry
 * may point at it (the one {@code fdatasync} that QEMU avoids the same way).
 */
final class WrittenExtent extends ForwardingFile {
    private final AtomicLong end;

    WrittenExtent(PositionalFile file) throws IOException {
        super(file);
        this.end = new AtomicLong(file.size());
    }

    /**
     * The file underneath when it completes I/O asynchronously (the engine's own files), else null (a test's
     * recording or fault-injecting wrapper, whose calls must all go through it).
     */
    AsyncFile async() {
        return delegate instanceof AsyncFile a ? a : null;
    }

    /** Everything at or past this offset has never been written. */
    long end() {
        return end.get();
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        end.accumulateAndGet(offset + src.byteSize(), Math::max); // before: a concurrent reader must not see it lower
        delegate.write(offset, src);
    }

    @Override
    public void truncate(long length) throws IOException {
        end.accumulateAndGet(length, Math::max);
        delegate.truncate(length);
    }

}
