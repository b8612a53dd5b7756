package io.qcow2j.ffm;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A {@link PositionalFile} that passes every call to another one: wrappers (write tracking, recording, fault
 * injection) extend it and override only what they change.
 */
public abstract class ForwardingFile implements PositionalFile {
    protected final PositionalFile delegate;

    protected ForwardingFile(PositionalFile delegate) {
        this.delegate = Objects.requireNonNull(delegate);
    }

    @Override
    public long read(long offset, MemorySegment dst) throws IOException {
        return delegate.read(offset, dst);
    }

    @Override
    public void readFully(long offset, MemorySegment dst) throws IOException {
        delegate.readFully(offset, dst);
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
    public void dataSync() throws IOException {
        delegate.dataSync();
    }

    @Override
    public void punchHole(long offset, long length) throws IOException {
        delegate.punchHole(offset, length);
    }

    @Override
    public void zeroRange(long offset, long length) throws IOException {
        delegate.zeroRange(offset, length);
    }

    @Override
    public boolean zeroRangeFast(long offset, long length) throws IOException {
        return delegate.zeroRangeFast(offset, length);
    }

    @Override
    public boolean reserve(long offset, long length) throws IOException {
        return delegate.reserve(offset, length);
    }

    @Override
    public boolean reservesCheaply() throws IOException {
        return delegate.reservesCheaply();
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
        return delegate.toString();
    }
}
