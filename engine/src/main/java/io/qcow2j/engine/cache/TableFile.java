package io.qcow2j.engine.cache;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Where a cache loads tables from and writes them back to: the image file, or in tests an in-memory file
 * that records every write and sync.
 */
public interface TableFile {
    /** Fills {@code dst} from {@code offset}; bytes past the end of the file read as zeros. */
    void read(long offset, MemorySegment dst) throws IOException;

    /** Writes all of {@code src} at {@code offset}. */
    void write(long offset, MemorySegment src) throws IOException;

    /** Makes every completed write durable ({@code fdatasync}). */
    void flush() throws IOException;
}
