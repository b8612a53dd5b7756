package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.TableStore;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * A {@link TableStore} that wraps a real one (heap or off-heap) and records every {@link #release} request the
 * cache makes, with what the wrapped store actually gave back.
 */
public final class RecordingTableStore implements TableStore {

    /** One release request: {@code [offset, offset + length)} of the table array, and the bytes really released. */
    public record Release(long offset, long length, long released) {
        /** The request alone (what the cache asked for), for comparisons with a model. */
        public Release request() {
            return new Release(offset, length, 0);
        }

        @Override
        public String toString() {
            return "release(" + offset + ", " + length + ")";
        }
    }

    private final TableStore delegate;
    private final List<Release> releases = new ArrayList<>();

    public RecordingTableStore(TableStore delegate) {
        this.delegate = Objects.requireNonNull(delegate);
    }

    /** Allocates a store of {@code kind} and wraps it. */
    public static RecordingTableStore allocate(TableStore.Kind kind, long bytes) throws IOException {
        return new RecordingTableStore(TableStore.allocate(kind, bytes));
    }

    @Override
    public MemorySegment tables() {
        return delegate.tables();
    }

    @Override
    public long release(long offset, long length) throws IOException {
        long released = delegate.release(offset, length);
        releases.add(new Release(offset, length, released));
        return released;
    }

    @Override
    public boolean releasesMemory() {
        return delegate.releasesMemory();
    }

    @Override
    public void close() throws IOException {
        delegate.close();
    }

    /** Every release request so far, in order (a live, unmodifiable view). */
    public List<Release> releases() {
        return Collections.unmodifiableList(releases);
    }
}
