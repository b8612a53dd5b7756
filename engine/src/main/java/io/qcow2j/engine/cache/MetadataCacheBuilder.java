package io.qcow2j.engine.cache;

import java.io.IOException;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;

/** Configures a {@link MetadataCache}; {@link #build()} validates and allocates. */
public final class MetadataCacheBuilder {
    final CacheKind kind;
    final TableFile file;
    int tables = 16;
    int tableSize = 65536;
    private int clusterSize = 65536;
    private TableStore.Kind storeKind = TableStore.Kind.OFF_HEAP;
    private TableStore storeInstance;
    OverlapCheck overlapCheck = OverlapCheck.NONE;
    CorruptionListener corruptionListener = CorruptionListener.IGNORE;
    ReentrantLock ownerLock;

    MetadataCacheBuilder(CacheKind kind, TableFile file) {
        this.kind = Objects.requireNonNull(kind);
        this.file = Objects.requireNonNull(file);
    }

    /** Number of tables the cache holds (at least 1). */
    public MetadataCacheBuilder tables(int tables) {
        this.tables = tables;
        return this;
    }

    /** Bytes per table: a power of two from 512 to the cluster size (an L2 slice when smaller). */
    public MetadataCacheBuilder tableSize(int tableSize) {
        this.tableSize = tableSize;
        return this;
    }

    /** The image's cluster size, the upper bound of the table size. */
    public MetadataCacheBuilder clusterSize(int clusterSize) {
        this.clusterSize = clusterSize;
        return this;
    }

    /**
     * The lock the owner holds around every use of the cache: a {@link MetadataCache#getReleasingLock} miss releases
     * it while it reads the table (see "Loads without the lock" in {@link MetadataCache}).
     */
    public MetadataCacheBuilder loadsWithoutLock(ReentrantLock ownerLock) {
        this.ownerLock = Objects.requireNonNull(ownerLock);
        return this;
    }

    public MetadataCacheBuilder store(TableStore.Kind storeKind) {
        this.storeKind = Objects.requireNonNull(storeKind);
        this.storeInstance = null;
        return this;
    }

    /**
     * Uses a store made elsewhere (it must hold at least {@code tables × tableSize} bytes); the cache
     * takes ownership and closes it.
     */
    public MetadataCacheBuilder store(TableStore store) {
        this.storeInstance = Objects.requireNonNull(store);
        return this;
    }

    public MetadataCacheBuilder overlapCheck(OverlapCheck overlapCheck) {
        this.overlapCheck = Objects.requireNonNull(overlapCheck);
        return this;
    }

    public MetadataCacheBuilder corruptionListener(CorruptionListener listener) {
        this.corruptionListener = Objects.requireNonNull(listener);
        return this;
    }

    /**
     * Validates the settings (clear {@link IllegalArgumentException}s) and allocates the store; an
     * allocation the system refuses is an {@link IOException}, never an abort.
     */
    public MetadataCache build() throws IOException {
        if (clusterSize < 512 || clusterSize > (1 << 21) || Integer.bitCount(clusterSize) != 1) {
            throw new IllegalArgumentException(
                    "cluster size must be a power of two between 512 and 2 MiB, not " + clusterSize);
        }
        if (tableSize < 512 || tableSize > clusterSize || Integer.bitCount(tableSize) != 1) {
            throw new IllegalArgumentException(kind.label() + " cache entry size must be a power of two"
                    + " between 512 and the cluster size (" + clusterSize + "), not " + tableSize);
        }
        if (tables < 1 || tables > MetadataCache.MAX_TABLES) {
            throw new IllegalArgumentException(kind.label() + " cache must hold between 1 and "
                    + MetadataCache.MAX_TABLES + " tables, not " + tables);
        }
        long bytes = (long) tables * tableSize;
        if (storeInstance != null && storeInstance.tables().byteSize() < bytes) {
            throw new IllegalArgumentException("table store of " + storeInstance.tables().byteSize()
                    + " bytes cannot hold " + tables + " tables of " + tableSize + " bytes");
        }
        TableStore store = storeInstance != null ? storeInstance : TableStore.allocate(storeKind, bytes);
        return new MetadataCache(this, store);
    }
}
