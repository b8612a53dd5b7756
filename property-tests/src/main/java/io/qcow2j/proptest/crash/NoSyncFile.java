package io.qcow2j.proptest.crash;

import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A file that forwards every call except {@link #dataSync}, which it only counts: for tests that exercise the
 * engine's logic (its syncs included) without paying for {@code fdatasync} on a real disk, and without
 * simulating crashes. The engine cannot tell the difference.
 */
public final class NoSyncFile implements PositionalFile {
    private final PositionalFile delegate;
    private final AtomicLong syncs = new AtomicLong();

    public NoSyncFile(PositionalFile delegate) {
        this.delegate = Objects.requireNonNull(delegate);
    }

    /** Syncs asked for (and skipped). */
    public long syncs() {
        return syncs.get();
    }

    @Override
    public long read(long offset, MemorySegment dst) throws IOException {
        return delegate.read(offset, dst);
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        delegate.write(offset, src);
    }

    @Override
    public long size() throws IOException {
        return delegate.size();
    }

    @Override
    public long allocatedBytes() throws IOException {
        return delegate.allocatedBytes();
    }

    @Override
    public void truncate(long length) throws IOException {
        delegate.truncate(length);
    }

    @Override
    public void dataSync() {
        syncs.incrementAndGet();
    }

    @Override
    public void punchHole(long offset, long length) throws IOException {
        delegate.punchHole(offset, length);
    }

    @Override
    public long seekData(long offset) throws IOException {
        return delegate.seekData(offset);
    }

    @Override
    public long seekHole(long offset) throws IOException {
        return delegate.seekHole(offset);
    }

    @Override
    public String fallbackReason() {
        return delegate.fallbackReason();
    }

    @Override
    public Path path() {
        return delegate.path();
    }

    @Override
    public void close() throws IOException {
        delegate.close();
    }

    @Override
    public String toString() {
        return delegate + " (syncs skipped)";
    }
}
