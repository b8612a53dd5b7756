package io.qcow2j.proptest.crash;

import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A {@link io.qcow2j.ffm.PositionalFile} held in memory ({@link ByteStore}): no system calls, so opening and
 * reading an image through it is cheap. {@link #dataSync} does nothing (everything is as durable as it will
 * get); wrap it in a {@link RecordingFile} to record writes and syncs.
 */
public final class MemoryFile implements io.qcow2j.ffm.PositionalFile {
    private final Path path;
    private final ByteStore store;
    private final boolean writable;
    private volatile boolean closed;

    /** A file named {@code path} (only reported, never opened) over {@code store}. */
    public MemoryFile(Path path, ByteStore store, boolean writable) {
        this.path = Objects.requireNonNull(path);
        this.store = Objects.requireNonNull(store);
        this.writable = writable;
    }

    /** A read-only file holding {@code content}. */
    public static MemoryFile readOnly(Path path, byte[] content) {
        return new MemoryFile(path, new ByteStore(content), false);
    }

    /** The bytes this file is made of (shared, not a copy). */
    public ByteStore store() {
        return store;
    }

    private void ensureOpen() throws IOException {
        if (closed) {
            throw new IOException(path + ": file is closed");
        }
    }

    private void requireWritable() throws IOException {
        ensureOpen();
        if (!writable) {
            throw new IOException(path + ": file is open read-only");
        }
    }

    @Override
    public long read(long offset, MemorySegment dst) throws IOException {
        ensureOpen();
        return store.read(offset, dst);
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        requireWritable();
        store.write(offset, src);
    }

    @Override
    public long size() throws IOException {
        ensureOpen();
        return store.size();
    }

    @Override
    public long allocatedBytes() throws IOException {
        ensureOpen();
        return (store.size() + 4095) & -4096L;
    }

    @Override
    public void truncate(long length) throws IOException {
        requireWritable();
        store.truncate(length);
    }

    @Override
    public void dataSync() throws IOException {
        ensureOpen();
    }

    @Override
    public void punchHole(long offset, long length) throws IOException {
        requireWritable();
        store.zero(offset, length);
    }

    /** Reserving space changes neither the size nor the content: nothing to do, and it is supported. */
    @Override
    public boolean reserve(long offset, long length) throws IOException {
        requireWritable();
        return true;
    }

    /** Said cheap, so that the engine's growth ahead runs (and is crash-tested) on memory files. */
    @Override
    public boolean reservesCheaply() {
        return true;
    }

    @Override
    public long seekData(long offset) throws IOException {
        ensureOpen();
        return offset < store.size() ? offset : -1;
    }

    @Override
    public long seekHole(long offset) throws IOException {
        ensureOpen();
        long size = store.size();
        return offset <= size ? size : -1;
    }

    @Override
    public String fallbackReason() {
        return null;
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public void close() {
        closed = true;
    }

    @Override
    public String toString() {
        return "in-memory file " + path + (writable ? "" : " (read-only)");
    }
}
