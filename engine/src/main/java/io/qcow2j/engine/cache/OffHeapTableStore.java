package io.qcow2j.engine.cache;

import io.qcow2j.ffm.MappedArena;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Tables in an anonymous mapping. Pages cost memory only once a table is loaded into them, and released
 * tables' whole pages go back to the kernel ({@code MADV_DONTNEED}); a table smaller than a page frees
 * memory only when a run of released tables covers whole pages.
 */
public final class OffHeapTableStore implements TableStore {
    private final MappedArena arena;
    private final MemorySegment tables;

    private OffHeapTableStore(MappedArena arena) {
        this.arena = arena;
        this.tables = arena.segment();
    }

    public static OffHeapTableStore allocate(long bytes) throws IOException {
        return new OffHeapTableStore(MappedArena.map(bytes));
    }

    @Override
    public MemorySegment tables() {
        return tables;
    }

    @Override
    public long release(long offset, long length) throws IOException {
        return arena.release(offset, length);
    }

    @Override
    public boolean releasesMemory() {
        return true;
    }

    @Override
    public void close() throws IOException {
        arena.close();
    }
}
