package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.MetadataCache;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/** The real {@link MetadataCache} as a {@link CacheUnderTest}: every call goes straight through. */
public final class MetadataCacheUnderTest implements CacheUnderTest {
    private final MetadataCache cache;

    public MetadataCacheUnderTest(MetadataCache cache) {
        this.cache = Objects.requireNonNull(cache);
    }

    @Override
    public CacheKind kind() {
        return cache.kind();
    }

    @Override
    public int size() {
        return cache.size();
    }

    @Override
    public int tableSize() {
        return cache.tableSize();
    }

    @Override
    public int get(long offset) throws IOException {
        return cache.get(offset);
    }

    @Override
    public int getEmpty(long offset) throws IOException {
        return cache.getEmpty(offset);
    }

    @Override
    public void put(int table) {
        cache.put(table);
    }

    @Override
    public void markDirty(int table) {
        cache.markDirty(table);
    }

    @Override
    public long word(int table, int i) {
        return cache.word(table, i);
    }

    @Override
    public MemorySegment table(int table) {
        return cache.table(table);
    }

    @Override
    public int handleOf(MemorySegment table) {
        return cache.handleOf(table);
    }

    @Override
    public void setWord(int table, int i, long value) {
        cache.setWord(table, i, value);
    }

    @Override
    public void write() throws IOException {
        cache.write();
    }

    @Override
    public void flush() throws IOException {
        cache.flush();
    }

    @Override
    public void discard(int table) {
        cache.discard(table);
    }

    @Override
    public void cleanUnused() {
        cache.cleanUnused();
    }

    @Override
    public void empty() throws IOException {
        cache.empty();
    }

    @Override
    public void setDependency(CacheUnderTest dependency) throws IOException {
        cache.setDependency(dependency.unwrap());
    }

    @Override
    public void dependsOnFlush() {
        cache.dependsOnFlush();
    }

    @Override
    public boolean hasDependency() {
        return cache.dependency() != null;
    }

    @Override
    public boolean isDependsOnFlush() {
        return cache.isDependsOnFlush();
    }

    @Override
    public int lookup(long offset) {
        return cache.lookup(offset);
    }

    @Override
    public int peek(long offset) {
        return cache.peek(offset);
    }

    @Override
    public void touch(int table) {
        cache.touch(table);
    }

    @Override
    public int references(int table) {
        return cache.references(table);
    }

    @Override
    public boolean isDirty(int table) {
        return cache.isDirty(table);
    }

    @Override
    public long offsetOf(int table) {
        return cache.offsetOf(table);
    }

    @Override
    public int occupied() {
        return cache.occupied();
    }

    @Override
    public int dirtyCount() {
        return cache.dirtyCount();
    }

    @Override
    public CacheStatistics.Snapshot statistics() {
        return cache.statistics().snapshot();
    }

    @Override
    public MetadataCache unwrap() {
        return cache;
    }

    @Override
    public void close() throws IOException {
        cache.close();
    }

    @Override
    public String toString() {
        return cache.kind().label() + " cache";
    }
}
