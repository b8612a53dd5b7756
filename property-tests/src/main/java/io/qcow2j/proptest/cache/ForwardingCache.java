package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.MetadataCache;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * A {@link CacheUnderTest} that forwards every call to another one: the base of the deliberately broken caches
 * (override the one method to break) and of instrumentation wrappers.
 */
public abstract class ForwardingCache implements CacheUnderTest {
    protected final CacheUnderTest delegate;

    protected ForwardingCache(CacheUnderTest delegate) {
        this.delegate = Objects.requireNonNull(delegate);
    }

    @Override
    public CacheKind kind() {
        return delegate.kind();
    }

    @Override
    public int size() {
        return delegate.size();
    }

    @Override
    public int tableSize() {
        return delegate.tableSize();
    }

    @Override
    public int get(long offset) throws IOException {
        return delegate.get(offset);
    }

    @Override
    public int getEmpty(long offset) throws IOException {
        return delegate.getEmpty(offset);
    }

    @Override
    public void put(int table) {
        delegate.put(table);
    }

    @Override
    public void markDirty(int table) {
        delegate.markDirty(table);
    }

    @Override
    public long word(int table, int i) {
        return delegate.word(table, i);
    }

    @Override
    public MemorySegment table(int table) {
        return delegate.table(table);
    }

    @Override
    public int handleOf(MemorySegment table) {
        return delegate.handleOf(table);
    }

    @Override
    public void setWord(int table, int i, long value) {
        delegate.setWord(table, i, value);
    }

    @Override
    public void write() throws IOException {
        delegate.write();
    }

    @Override
    public void flush() throws IOException {
        delegate.flush();
    }

    @Override
    public void discard(int table) {
        delegate.discard(table);
    }

    @Override
    public void cleanUnused() {
        delegate.cleanUnused();
    }

    @Override
    public void empty() throws IOException {
        delegate.empty();
    }

    @Override
    public void setDependency(CacheUnderTest dependency) throws IOException {
        delegate.setDependency(dependency);
    }

    @Override
    public void dependsOnFlush() {
        delegate.dependsOnFlush();
    }

    @Override
    public boolean hasDependency() {
        return delegate.hasDependency();
    }

    @Override
    public boolean isDependsOnFlush() {
        return delegate.isDependsOnFlush();
    }

    @Override
    public int lookup(long offset) {
        return delegate.lookup(offset);
    }

    @Override
    public int peek(long offset) {
        return delegate.peek(offset);
    }

    @Override
    public void touch(int table) {
        delegate.touch(table);
    }

    @Override
    public int references(int table) {
        return delegate.references(table);
    }

    @Override
    public boolean isDirty(int table) {
        return delegate.isDirty(table);
    }

    @Override
    public long offsetOf(int table) {
        return delegate.offsetOf(table);
    }

    @Override
    public int occupied() {
        return delegate.occupied();
    }

    @Override
    public int dirtyCount() {
        return delegate.dirtyCount();
    }

    @Override
    public CacheStatistics.Snapshot statistics() {
        return delegate.statistics();
    }

    @Override
    public MetadataCache unwrap() {
        return delegate.unwrap();
    }

    @Override
    public void close() throws IOException {
        delegate.close();
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "(" + delegate + ")";
    }
}
