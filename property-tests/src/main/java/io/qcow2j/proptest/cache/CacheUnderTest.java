package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.MetadataCache;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * The face of {@link MetadataCache} the cache properties drive. {@code MetadataCache} is final, so a property
 * cannot subclass it to show that it catches a bug; instead it drives this interface, implemented by
 * {@link MetadataCacheUnderTest} (the real cache) and by deliberately broken wrappers built on
 * {@link ForwardingCache}. The methods mean what the same-named methods of {@link MetadataCache} mean.
 */
public interface CacheUnderTest extends AutoCloseable {
    CacheKind kind();

    int size();

    int tableSize();

    int get(long offset) throws IOException;

    int getEmpty(long offset) throws IOException;

    void put(int table);

    void markDirty(int table);

    long word(int table, int i);

    /** The table's bytes (a view into the store). */
    MemorySegment table(int table);

    /** The handle of a view returned by {@link #table}; refuses any other segment. */
    int handleOf(MemorySegment table);

    void setWord(int table, int i, long value);

    void write() throws IOException;

    void flush() throws IOException;

    void discard(int table);

    void cleanUnused();

    void empty() throws IOException;

    /** {@code this} waits for {@code dependency}: see {@link MetadataCache#setDependency}. */
    void setDependency(CacheUnderTest dependency) throws IOException;

    void dependsOnFlush();

    /** Whether this cache currently waits for another one. */
    boolean hasDependency();

    boolean isDependsOnFlush();

    int lookup(long offset);

    /** The lock-free reader's lookup: see {@link MetadataCache#peek}. */
    int peek(long offset);

    /** Reports a lock-free hit on a table {@link #peek} found: see {@link MetadataCache#touch}. */
    void touch(int table);

    int references(int table);

    boolean isDirty(int table);

    long offsetOf(int table);

    int occupied();

    int dirtyCount();

    CacheStatistics.Snapshot statistics();

    /** The real cache at the bottom of any wrapping (to wire dependencies). */
    MetadataCache unwrap();

    @Override
    void close() throws IOException;
}
