package io.qcow2j.engine.cache;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Tables in one {@code long[]} (a {@code long[]} rather than a {@code byte[]} so that caches up to 16 GiB
 * fit in one array, and so that the segment is 8-byte aligned for 64-bit entry access). The garbage
 * collector cannot return part of an array, so {@link #release} is a documented no-op: a heap cache
 * holds its full size for its whole life.
 */
public final class HeapTableStore implements TableStore {
    private final MemorySegment tables;

    private HeapTableStore(MemorySegment tables) {
        this.tables = tables;
    }

    public static HeapTableStore allocate(long bytes) throws IOException {
        if (bytes <= 0 || bytes % Long.BYTES != 0 || bytes / Long.BYTES > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("heap table store cannot hold " + bytes + " bytes (at most "
                    + ((long) (Integer.MAX_VALUE - 8) * Long.BYTES) + ", a multiple of 8)");
        }
        long[] array;
        try {
            array = new long[(int) (bytes / Long.BYTES)];
        } catch (OutOfMemoryError e) {
            throw new IOException("not enough Java heap for a " + bytes + "-byte table store (raise -Xmx or use the off-heap store)", e);
        }
        return new HeapTableStore(MemorySegment.ofArray(array));
    }

    @Override
    public MemorySegment tables() {
        return tables;
    }

    /** Releases nothing: see the class comment. */
    @Override
    public long release(long offset, long length) {
        return 0;
    }

    @Override
    public boolean releasesMemory() {
        return false;
    }

    @Override
    public void close() {}
}
