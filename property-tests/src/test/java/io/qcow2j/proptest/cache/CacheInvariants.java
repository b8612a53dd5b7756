package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.proptest.StatefulProperty.ContextInvariant;
import io.qcow2j.proptest.cache.CacheWorkload.Exhausted;
import io.qcow2j.proptest.cache.CacheWorkload.MisalignedNote;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.LongAccumulator;

/** The invariants of the cache properties, one per property, over a {@link CacheSystem} and its {@link CacheModel}. */
final class CacheInvariants {
    private CacheInvariants() {}

    static String at(CacheKind k, long offset) {
        return CacheWorkload.at(k, offset);
    }

    private static long[] cached(CacheUnderTest c, int h, int words) {
        long[] w = new long[words];
        for (int i = 0; i < words; i++) {
            w[i] = c.word(h, i);
        }
        return w;
    }

    private static String diff(long[] expected, long[] actual) {
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] != actual[i]) {
                return "word " + i + " is 0x" + Long.toHexString(actual[i]) + ", expected 0x"
                        + Long.toHexString(expected[i]);
            }
        }
        return "equal";
    }

    /**
     * 1. No lost dirty entries: every table offset reads back its last content, from the cache if resident, else
     * from the file (a discarded table's content is the file's).
     */
    static ContextInvariant<CacheSystem, CacheModel> contentReadsBack() {
        return (s, m, ctx) -> {
            for (CacheKind k : CacheKind.values()) {
                CacheUnderTest c = s.cache(k);
                for (long off : m.cache(k).universe()) {
                    int h = c.lookup(off);
                    byte[] expected = m.contentBytes(off);
                    boolean same = h >= 0
                            ? MemorySegment.mismatch(c.table(h), 0, expected.length, MemorySegment.ofArray(expected), 0,
                                    expected.length) < 0
                            : s.file().holds(off, expected);
                    if (!same) {
                        long[] actual = h >= 0 ? cached(c, h, m.words()) : s.file().words(off, m.words());
                        throw new AssertionError(at(k, off) + " reads back wrong content from the "
                                + (h >= 0 ? "cache (slot " + h + ")" : "file") + ": " + diff(m.content(off), actual)
                                + "\nmodel: " + m);
                    }
                }
            }
        };
    }

    /** 2. After a successful flush the file holds every table that was dirty, nothing is dirty, and a sync ends it. */
    static ContextInvariant<CacheSystem, CacheModel> flushWritesEverything() {
        return (s, m, ctx) -> {
            CacheModel.FlushNote note = m.flushNote();
            if (note == null) {
                return;
            }
            int dirtyTables = 0;
            for (CacheKind k : note.clean()) {
                CacheUnderTest c = s.cache(k);
                for (long off : note.dirtyBefore().get(k)) {
                    dirtyTables++;
                    long[] inFile = s.file().words(off, m.words());
                    if (!Arrays.equals(m.content(off), inFile)) {
                        throw new AssertionError("after flush(" + CacheWorkload.name(note.kind()) + ") the file does not hold "
                                + "dirty table " + at(k, off) + ": " + diff(m.content(off), inFile));
                    }
                }
                if (c.dirtyCount() != 0) {
                    throw new AssertionError("after flush(" + CacheWorkload.name(note.kind()) + ") the " + k.label()
                            + " cache still counts " + c.dirtyCount() + " dirty tables");
                }
                for (long off : m.cache(k).universe()) {
                    int h = c.lookup(off);
                    if (h >= 0 && c.isDirty(h)) {
                        throw new AssertionError("after flush(" + CacheWorkload.name(note.kind()) + ") " + at(k, off)
                                + " is still dirty");
                    }
                }
            }
            List<RecordingTableFile.Op> log = s.file().log();
            if (log.isEmpty() || !log.getLast().isSync() || !log.getLast().ok()) {
                throw new AssertionError("flush(" + CacheWorkload.name(note.kind()) + ") did not end with a successful sync;"
                        + " file log of the step:" + s.file().describeLog(m.stepStart().logSize()));
            }
            ctx.count("successful flushes checked");
            ctx.count("dirty tables a flush had to write", dirtyTables);
        };
    }

    /**
     * 3. Dependencies first (refcount blocks before the L2 tables that need them, and, for a decreasing refcount, L2
     * tables before the refcount blocks): in the file log of each step, if cache C depended on cache D when the
     * step began, every write of a C table the step issued comes after a successful write (in this step) of every
     * D table dirty at its start, and after a successful sync that follows the last successful D write. And for
     * either cache: if {@code dependsOnFlush} was set when the step began, the first table write of that cache in
     * the step comes after a successful sync in the step.
     */
    static ContextInvariant<CacheSystem, CacheModel> dependenciesFirst() {
        return (s, m, ctx) -> {
            CacheModel.StepStart start = m.stepStart();
            if (start == null) {
                return;
            }
            List<RecordingTableFile.Op> log = s.file().log();
            int from = start.logSize();
            boolean[] firstWriteSeen = new boolean[CacheKind.values().length];
            for (int j = from; j < log.size(); j++) {
                RecordingTableFile.Op op = log.get(j);
                if (!op.isWrite()) {
                    continue;
                }
                CacheKind k = kindOf(op);
                CacheKind dep = start.dependsOn().get(k);
                if (dep != null) {
                    Set<Long> dirty = start.dirty().get(dep);
                    for (long d : dirty) {
                        if (!writtenIn(log, from, j, d)) {
                            throw new AssertionError(op + " issued while the " + k.label() + " cache depends on the "
                                    + dep.label() + " cache, but dirty " + at(dep, d) + " was not written before it;"
                                    + " log of the step:" + s.file().describeLog(from));
                        }
                    }
                    int lastDep = -1;
                    for (int i = 0; i < j; i++) {
                        if (log.get(i).isWriteOf(region(dep)) && log.get(i).ok()) {
                            lastDep = i;
                        }
                    }
                    if (!syncedBetween(log, Math.max(lastDep, from - 1), j)) {
                        throw new AssertionError(op + " issued while the " + k.label() + " cache depends on the "
                                + dep.label() + " cache, without a successful sync after the " + dep.label()
                                + " writes; log of the step:" + s.file().describeLog(from));
                    }
                    ctx.count(CacheWorkload.name(k) + " write after a dependency flush"
                            + (dirty.isEmpty() ? " (nothing dirty)" : " of dirty " + CacheWorkload.name(dep) + " tables"));
                }
                if (!firstWriteSeen[k.ordinal()]) {
                    firstWriteSeen[k.ordinal()] = true;
                    if (start.dependsOnFlush().get(k)) {
                        if (!syncedBetween(log, from - 1, j)) {
                            throw new AssertionError(op + " is the first " + k.label() + " write after dependsOnFlush but"
                                    + " no successful sync precedes it; log of the step:" + s.file().describeLog(from));
                        }
                        ctx.count("first " + CacheWorkload.name(k) + " write after dependsOnFlush");
                    }
                }
            }
        };
    }

    static CacheKind kindOf(RecordingTableFile.Op op) {
        return op.region().equals(CacheSystem.L2_REGION) ? CacheKind.L2_TABLE : CacheKind.REFCOUNT_BLOCK;
    }

    static String region(CacheKind k) {
        return k == CacheKind.L2_TABLE ? CacheSystem.L2_REGION : CacheSystem.REFCOUNT_REGION;
    }

    /**
     * 9. Every table write passed the pre-write overlap check of exactly its range (kind, offset, table size)
     * just before it, and no write went out after a failed check.
     */
    static ContextInvariant<CacheSystem, CacheModel> overlapCheckedFirst() {
        return (s, m, ctx) -> {
            List<CacheSystem.OverlapCall> calls = s.overlapCalls();
            int seen = s.mark("overlap calls", calls.size());
            if (m.stepStart() == null) {
                return;
            }
            java.util.Map<Integer, CacheSystem.OverlapCall> lastAt = new java.util.HashMap<>();
            for (CacheSystem.OverlapCall c : calls.subList(seen, calls.size())) {
                lastAt.put(c.logSize(), c);
            }
            List<RecordingTableFile.Op> log = s.file().log();
            for (int j = m.stepStart().logSize(); j < log.size(); j++) {
                RecordingTableFile.Op op = log.get(j);
                if (!op.isWrite()) {
                    continue;
                }
                CacheSystem.OverlapCall c = lastAt.get(j);
                if (c == null || c.failed() || c.kind() != kindOf(op) || c.offset() != op.offset()
                        || c.length() != op.length()) {
                    throw new AssertionError(op + " was not cleared by an overlap check of its range just before it"
                            + " (last check there: " + c + ")");
                }
                ctx.count("writes cleared by the overlap check");
            }
        };
    }

    private static boolean writtenIn(List<RecordingTableFile.Op> log, int from, int to, long offset) {
        for (int i = from; i < to; i++) {
            RecordingTableFile.Op op = log.get(i);
            if (op.isWrite() && op.ok() && op.offset() == offset) {
                return true;
            }
        }
        return false;
    }

    /** A successful sync strictly between indexes {@code after} and {@code before}. */
    private static boolean syncedBetween(List<RecordingTableFile.Op> log, int after, int before) {
        for (int i = after + 1; i < before; i++) {
            if (log.get(i).isSync() && log.get(i).ok()) {
                return true;
            }
        }
        return false;
    }

    /**
     * 4. Referenced tables are never evicted: every table the model says is referenced is resident in the same
     * slot with the same reference count; a miss on an all-referenced cache changed nothing.
     */
    static ContextInvariant<CacheSystem, CacheModel> referencedStay() {
        return (s, m, ctx) -> {
            for (CacheKind k : CacheKind.values()) {
                CacheUnderTest c = s.cache(k);
                for (CacheModel.Table t : m.cache(k).tables()) {
                    if (t.refs() == 0) {
                        continue;
                    }
                    int h = c.lookup(t.offset());
                    if (h != t.slot()) {
                        throw new AssertionError("referenced table " + at(k, t.offset()) + " (" + t.refs()
                                + " references) is " + (h < 0 ? "no longer cached" : "in slot " + h + ", not " + t.slot()));
                    }
                    if (c.references(h) != t.refs()) {
                        throw new AssertionError(at(k, t.offset()) + " has " + c.references(h) + " references, expected "
                                + t.refs());
                    }
                }
            }
            if (m.actionNote() instanceof Exhausted e) {
                if (!e.before().equals(e.after())) {
                    throw new AssertionError("the exhausted miss of " + at(e.kind(), e.offset()) + " changed the caches:\n"
                            + "before: " + e.before() + "\nafter:  " + e.after());
                }
                ctx.count("exhausted misses that changed nothing");
            }
        };
    }

    /**
     * 5. A misaligned offset raises exactly one corruption event (kind, offset, the exception's message naming
     * the cache and the offset), throws CorruptMetadataException (checked by the action) and changes nothing; no
     * other step raises one.
     */
    static ContextInvariant<CacheSystem, CacheModel> misalignedIsCorruption() {
        return (s, m, ctx) -> {
            if (s.corruptions().size() != m.corruptions().size()) {
                throw new AssertionError(s.corruptions().size() + " corruption events so far, expected "
                        + m.corruptions().size() + ": " + s.corruptions());
            }
            if (!(m.actionNote() instanceof MisalignedNote n)) {
                return;
            }
            if (s.corruptions().size() != n.eventsBefore() + 1) {
                throw new AssertionError("get(" + at(n.kind(), n.offset()) + ") raised "
                        + (s.corruptions().size() - n.eventsBefore()) + " corruption events, expected 1");
            }
            CacheSystem.CorruptionEvent ev = s.corruptions().getLast();
            String hex = Long.toHexString(n.offset()); // two's complement for a negative offset, as the cache prints it
            if (ev.kind() != n.kind() || ev.offset() != n.offset() || !ev.message().equals(n.thrown().getMessage())
                    || !ev.message().contains(n.kind().label()) || !ev.message().contains("0x" + hex)) {
                throw new AssertionError("corruption event " + ev + " does not match get(" + at(n.kind(), n.offset())
                        + ") which threw: " + n.thrown().getMessage());
            }
            if (!n.before().equals(n.after())) {
                throw new AssertionError("the misaligned get(" + at(n.kind(), n.offset()) + ") changed the caches:\n"
                        + "before: " + n.before() + "\nafter:  " + n.after());
            }
            ctx.count("misaligned gets checked");
        };
    }

    /** 6. Exact LRU: the resident tables (and their slots) are the model's after every step. */
    static ContextInvariant<CacheSystem, CacheModel> sameResidentTables() {
        return (s, m, ctx) -> {
            for (CacheKind k : CacheKind.values()) {
                CacheUnderTest c = s.cache(k);
                for (long off : m.cache(k).universe()) {
                    CacheModel.Table t = m.cache(k).table(off);
                    int expected = t == null ? -1 : t.slot();
                    int h = c.lookup(off);
                    if (h != expected) {
                        throw new AssertionError(at(k, off) + (h < 0 ? " is not cached" : " is cached in slot " + h)
                                + ", expected " + (t == null ? "not cached (evicted or never loaded)" : "in slot " + expected)
                                + "\nmodel: " + m.cache(k));
                    }
                }
            }
        };
    }

    /** 7. The release requests of each cache are exactly the model's: discarded slots, cleaned runs, emptied caches. */
    static ContextInvariant<CacheSystem, CacheModel> releasesMatch() {
        return (s, m, ctx) -> {
            for (CacheKind k : CacheKind.values()) {
                List<RecordingTableStore.Release> actual = s.store(k).releases().stream()
                        .map(RecordingTableStore.Release::request).toList();
                List<RecordingTableStore.Release> expected = m.cache(k).releases();
                if (!actual.equals(expected)) {
                    throw new AssertionError("the " + k.label() + " cache released " + actual + ", expected " + expected);
                }
            }
            for (CacheKind k : CacheKind.values()) {
                List<RecordingTableStore.Release> r = s.store(k).releases();
                int seen = s.mark("releases checked " + k, r.size());
                ctx.count("release requests", r.size() - Math.min(seen, r.size()));
            }
        };
    }

    /**
     * 8. Lookup cost: no lookup examines more than {@code maxProbes} index buckets (a bound independent of the
     * cache size; QEMU's scan examines every entry on a miss). The probe histogram, lookups and probes are counted
     * as labels, and the largest probe count seen goes to {@code maxSeen}.
     */
    static ContextInvariant<CacheSystem, CacheModel> probesBounded(int maxProbes, LongAccumulator maxSeen) {
        return (s, m, ctx) -> {
            for (CacheKind k : CacheKind.values()) {
                CacheStatistics.Snapshot[] d = s.statisticsSinceLastCall(k);
                CacheStatistics.Snapshot now = d[1];
                maxSeen.accumulate(now.maxProbes());
                if (now.maxProbes() > maxProbes) {
                    throw new AssertionError("a lookup in the " + k.label() + " cache (" + s.cache(k).size()
                            + " entries) examined " + now.maxProbes() + " buckets, more than " + maxProbes
                            + "; histogram " + Arrays.toString(now.probeHistogram()));
                }
                long[] before = d[0] == null ? new long[now.probeHistogram().length] : d[0].probeHistogram();
                for (int b = 0; b < now.probeHistogram().length; b++) {
                    ctx.count(PROBE_BUCKETS[b], now.probeHistogram()[b] - before[b]);
                }
                ctx.count("lookups", now.lookups() - (d[0] == null ? 0 : d[0].lookups()));
                ctx.count("probes", now.probes() - (d[0] == null ? 0 : d[0].probes()));
            }
        };
    }

    /**
     * 10. The statistics count what happened: hits, misses, loads, evictions, write-backs (and their bytes), syncs,
     * discards, cleaned tables and released bytes equal the model's counts (and the store's answers).
     */
    static ContextInvariant<CacheSystem, CacheModel> statisticsAgree() {
        return (s, m, ctx) -> {
            for (CacheKind k : CacheKind.values()) {
                CacheStatistics.Snapshot st = s.cache(k).statistics();
                CacheModel.Counts actual = new CacheModel.Counts(st.hits(), st.misses(), st.loads(), st.evictions(),
                        st.writebacks(), st.syncs(), st.discards(), st.cleaned());
                CacheModel.Counts expected = m.cache(k).counts();
                if (!actual.equals(expected)) {
                    throw new AssertionError("the " + k.label() + " cache counts " + actual + ", expected " + expected);
                }
                if (st.writebackBytes() != st.writebacks() * m.tableSize()) {
                    throw new AssertionError(st.writebackBytes() + " write-back bytes for " + st.writebacks()
                            + " write-backs of " + m.tableSize() + " bytes");
                }
                long released = s.store(k).releases().stream().mapToLong(RecordingTableStore.Release::released).sum();
                if (st.releasedBytes() != released) {
                    throw new AssertionError("the " + k.label() + " cache counts " + st.releasedBytes()
                            + " released bytes, its store released " + released);
                }
            }
        };
    }

    static final String[] PROBE_BUCKETS = {"probes/lookup 1", "probes/lookup 2", "probes/lookup 3",
            "probes/lookup 4", "probes/lookup 5-8", "probes/lookup 9-16", "probes/lookup >16"};
}
