package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.CorruptMetadataException;
import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.cache.TableFile;
import io.qcow2j.engine.cache.TableStore;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The system under test of the cache properties: an L2 cache and a refcount cache sharing one
 * {@link RecordingTableFile}, each over a {@link RecordingTableStore} (heap or off-heap), with the corruption
 * events they raised. Each cache may be wrapped (a deliberately broken variant) by a {@link Wrapper}.
 */
public final class CacheSystem implements AutoCloseable {
    /** The L2 region of the file: {@value #POSITIONS} table positions from 1 GiB. */
    public static final long L2_BASE = 1L << 30;
    /** The refcount region: {@value #POSITIONS} table positions from 2 GiB. */
    public static final long REFCOUNT_BASE = 2L << 30;
    public static final int POSITIONS = 4096;
    public static final String L2_REGION = "L2";
    public static final String REFCOUNT_REGION = "refcount";

    /** Builds the cache under test from the real one (the identity, or a broken variant). */
    @FunctionalInterface
    public interface Wrapper {
        Wrapper NONE = (cache, file) -> cache;

        CacheUnderTest wrap(CacheUnderTest real, TableFile file) throws IOException;
    }

    /** A corruption event the listener received. */
    public record CorruptionEvent(CacheKind kind, long offset, String message) {}

    /** A call of the pre-write overlap check, made when the file log had {@code logSize} operations. */
    public record OverlapCall(int logSize, CacheKind kind, long offset, long length, boolean failed) {}

    private final RecordingTableFile file;
    private final Map<CacheKind, CacheUnderTest> caches = new EnumMap<>(CacheKind.class);
    private final Map<CacheKind, RecordingTableStore> stores = new EnumMap<>(CacheKind.class);
    private final List<CorruptionEvent> corruptions = new ArrayList<>();
    private final List<OverlapCall> overlapCalls = new ArrayList<>();
    private int failOverlapChecks;
    /** Statistics last seen per cache (for per-step deltas). */
    private final Map<CacheKind, CacheStatistics.Snapshot> seen = new EnumMap<>(CacheKind.class);
    private final Map<String, Integer> marks = new java.util.TreeMap<>();

    private CacheSystem(RecordingTableFile file) {
        this.file = file;
    }

    /** The file with its two named regions, for tables of {@code tableSize} bytes. */
    public static RecordingTableFile newFile(int tableSize) {
        return new RecordingTableFile().region(L2_REGION, L2_BASE, (long) POSITIONS * tableSize)
                .region(REFCOUNT_REGION, REFCOUNT_BASE, (long) POSITIONS * tableSize);
    }

    /** Builds the two caches over {@code file}. */
    public static CacheSystem create(RecordingTableFile file, TableStore.Kind store, int tableSize, int l2Tables,
                                     int rcTables, Wrapper l2Wrapper, Wrapper rcWrapper) throws IOException {
        CacheSystem s = new CacheSystem(Objects.requireNonNull(file));
        try {
            s.add(CacheKind.L2_TABLE, store, tableSize, l2Tables, l2Wrapper);
            s.add(CacheKind.REFCOUNT_BLOCK, store, tableSize, rcTables, rcWrapper);
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
        return s;
    }

    private void add(CacheKind kind, TableStore.Kind storeKind, int tableSize, int tables, Wrapper wrapper)
            throws IOException {
        RecordingTableStore store = RecordingTableStore.allocate(storeKind, (long) tables * tableSize);
        MetadataCache cache;
        try {
            cache = MetadataCache.builder(kind, file).tables(tables).tableSize(tableSize).clusterSize(65536)
                    .store(store).corruptionListener((k, offset, message) ->
                            corruptions.add(new CorruptionEvent(k, offset, message)))
                    .overlapCheck((k, offset, length) -> {
                        boolean fail = failOverlapChecks > 0;
                        overlapCalls.add(new OverlapCall(file.logSize(), k, offset, length, fail));
                        if (fail) {
                            failOverlapChecks--;
                            throw new CorruptMetadataException("injected: " + k.label() + " at 0x"
                                    + Long.toHexString(offset) + " overlaps other metadata");
                        }
                    }).build();
        } catch (IOException | RuntimeException e) {
            store.close();
            throw e;
        }
        MetadataCacheUnderTest real = new MetadataCacheUnderTest(cache);
        stores.put(kind, store);
        caches.put(kind, real);
        caches.put(kind, wrapper.wrap(real, file));
    }

    public RecordingTableFile file() {
        return file;
    }

    public CacheUnderTest cache(CacheKind kind) {
        return caches.get(kind);
    }

    public CacheUnderTest l2() {
        return caches.get(CacheKind.L2_TABLE);
    }

    public CacheUnderTest refcount() {
        return caches.get(CacheKind.REFCOUNT_BLOCK);
    }

    public RecordingTableStore store(CacheKind kind) {
        return stores.get(kind);
    }

    /** The next {@code n} pre-write overlap checks (of either cache) fail, blocking the write. */
    public void failNextOverlapChecks(int n) {
        failOverlapChecks = n;
    }

    /** Every overlap check made so far, in order. */
    public List<OverlapCall> overlapCalls() {
        return Collections.unmodifiableList(overlapCalls);
    }

    /** The corruption events raised so far, in order. */
    public List<CorruptionEvent> corruptions() {
        return Collections.unmodifiableList(corruptions);
    }

    /**
     * The statistics of {@code kind}'s cache now, and the ones returned by the previous call (or null): for
     * per-step deltas.
     */
    public CacheStatistics.Snapshot[] statisticsSinceLastCall(CacheKind kind) {
        CacheStatistics.Snapshot now = cache(kind).statistics();
        CacheStatistics.Snapshot before = seen.put(kind, now);
        return new CacheStatistics.Snapshot[] {before, now};
    }

    /**
     * Bookkeeping for invariants that report per-step deltas: stores {@code value} under {@code key} and returns
     * the value stored before (0 the first time).
     */
    public int mark(String key, int value) {
        Integer before = marks.put(key, value);
        return before == null ? 0 : before;
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        for (CacheKind k : CacheKind.values()) {
            try {
                if (caches.containsKey(k)) {
                    caches.get(k).close();
                } else if (stores.containsKey(k)) {
                    stores.get(k).close();
                }
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
