package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.CacheKind;
import io.qcow2j.engine.cache.CacheStatistics;
import io.qcow2j.engine.cache.TableStore;
import io.qcow2j.ffm.Errno;
import io.qcow2j.ffm.ErrnoException;
import io.qcow2j.proptest.Action;
import io.qcow2j.proptest.Context;
import io.qcow2j.proptest.Instance;
import io.qcow2j.proptest.StatefulProperty;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;

/**
 * The workload of the cache properties: the setup (an L2 and a refcount cache of a few tables over one
 * {@link RecordingTableFile}, and the {@link CacheModel}) and every action, each applied to the caches and to the
 * model side by side. An action checks only that the cache's answer (a handle, nothing, or an exception of the
 * same class and errno) is the one the model predicts, so that the model stays meaningful; the properties add
 * their own invariants to the builder {@link #property} returns.
 *
 * <p>Tables are 512 bytes (64 big-endian words) unless {@link Options#tableSizes} says otherwise. Each cache has 1..6 entries by default and a universe of
 * 12..24 table offsets, a few of them "hot", so that hits, misses and evictions are all frequent.
 */
public final class CacheWorkload {
    public static final int TABLE_SIZE = 512;

    private CacheWorkload() {}

    /** How the sequences of a property are set up. */
    public record Options(TableStore.Kind store, int minTables, int maxTables, int minUniverse, int maxUniverse,
                          boolean prefill, CacheSystem.Wrapper l2Wrapper, CacheSystem.Wrapper rcWrapper,
                          List<Integer> tableSizes) {
        public Options {
            Objects.requireNonNull(store);
            tableSizes = List.copyOf(tableSizes);
            if (tableSizes.isEmpty() || tableSizes.stream().anyMatch(t -> t < 512 || t > 65536 || Integer.bitCount(t) != 1)) {
                throw new IllegalArgumentException("table sizes must be powers of two in 512..65536: " + tableSizes);
            }
            Objects.requireNonNull(l2Wrapper);
            Objects.requireNonNull(rcWrapper);
            if (minTables < 1 || maxTables < minTables || minUniverse < 1 || maxUniverse < minUniverse
                    || maxUniverse >= CacheSystem.POSITIONS) {
                throw new IllegalArgumentException("bad options " + minTables + ".." + maxTables + ", "
                        + minUniverse + ".." + maxUniverse);
            }
        }

        /** Caches of 1..6 tables, universes of 12..24 tables, the real caches. */
        public static Options of(TableStore.Kind store) {
            return new Options(store, 1, 6, 12, 24, false, CacheSystem.Wrapper.NONE, CacheSystem.Wrapper.NONE,
                    List.of(TABLE_SIZE));
        }

        public Options tables(int min, int max) {
            return new Options(store, min, max, minUniverse, maxUniverse, prefill, l2Wrapper, rcWrapper, tableSizes);
        }

        public Options universe(int min, int max) {
            return new Options(store, minTables, maxTables, min, max, prefill, l2Wrapper, rcWrapper, tableSizes);
        }

        /** Each sequence starts with both caches full (every entry loaded and put). */
        public Options prefill(boolean prefill) {
            return new Options(store, minTables, maxTables, minUniverse, maxUniverse, prefill, l2Wrapper, rcWrapper, tableSizes);
        }

        /** Drives {@code wrapper}'s variant of both caches instead of the real ones. */
        public Options wrap(CacheSystem.Wrapper wrapper) {
            return new Options(store, minTables, maxTables, minUniverse, maxUniverse, prefill, wrapper, wrapper, tableSizes);
        }

        /** Each sequence picks its table size from {@code sizes} (default 512 only). */
        public Options tableSizes(Integer... sizes) {
            return new Options(store, minTables, maxTables, minUniverse, maxUniverse, prefill, l2Wrapper, rcWrapper,
                    List.of(sizes));
        }

        public Options wrap(CacheSystem.Wrapper l2, CacheSystem.Wrapper rc) {
            return new Options(store, minTables, maxTables, minUniverse, maxUniverse, prefill, l2, rc, tableSizes);
        }
    }

    /** A property named {@code name} with the setup and all the actions; add invariants, then check. */
    public static StatefulProperty.Builder<CacheSystem, CacheModel> property(String name, Options o) {
        return StatefulProperty.<CacheSystem, CacheModel>builder(name)
                .setup(rnd -> setup(rnd, o))
                .action(10, "get", io((rnd, m) -> {
                    CacheKind k = kind(rnd);
                    return new Get(k, pick(rnd, m, k), false, false);
                }))
                .action(3, "getEmpty", io((rnd, m) -> {
                    CacheKind k = kind(rnd);
                    return new Get(k, pick(rnd, m, k), true, rnd.nextInt(4) != 0);
                }))
                .action(7, "modify+markDirty", (rnd, m) -> {
                    CacheModel.Table t = anyTable(rnd, m, true);
                    return t == null ? null : new Modify(kindOf(m, t), t.offset(), rnd.nextInt(m.words()),
                            rnd.nextInt(1, 1000));
                })
                .action(12, "put", (rnd, m) -> {
                    CacheModel.Table t = anyTable(rnd, m, true);
                    return t == null ? null : new Put(kindOf(m, t), t.offset());
                })
                .action(1, "write", io((rnd, m) -> new Write(kind(rnd))))
                .action(2, "flush", io((rnd, m) -> new Flush(kind(rnd))))
                .action(2, "discard", (rnd, m) -> {
                    CacheModel.Table t = anyTable(rnd, m, false);
                    return t == null ? null : new Discard(kindOf(m, t), t.offset());
                })
                .action(2, "cleanUnused", (rnd, m) -> new Clean(kind(rnd)))
                .action(4, "peek (+ touch if cached)", (rnd, m) -> {
                    CacheKind k = kind(rnd);
                    long base = pick(rnd, m, k);
                    long off = switch (rnd.nextInt(12)) {
                        case 0 -> 0; // never a table
                        case 1 -> base + 8; // misaligned
                        default -> base;
                    };
                    return new Peek(k, off);
                })
                .action(1, "empty", io((rnd, m) -> {
                    CacheKind k = kind(rnd);
                    return m.cache(k).anyReferenced() ? null : new Empty(k);
                }))
                .action(2, "setDependency(L2, refcount)",
                        io((rnd, m) -> new SetDependency(CacheKind.L2_TABLE, CacheKind.REFCOUNT_BLOCK)))
                .action(1, "setDependency(refcount, L2)",
                        io((rnd, m) -> new SetDependency(CacheKind.REFCOUNT_BLOCK, CacheKind.L2_TABLE)))
                .action(1, "dependsOnFlush", (rnd, m) -> new DependsOnFlush(kind(rnd)))
                .action(1, "get misaligned", (rnd, m) -> {
                    CacheKind k = kind(rnd);
                    long base = pick(rnd, m, k);
                    long off = switch (rnd.nextInt(5)) {
                        case 0 -> -base;
                        case 1 -> base + 8;
                        case 2 -> base + m.tableSize() / 2;
                        case 3 -> base - 1;
                        default -> base + 8L * rnd.nextInt(1, m.tableSize() / 8);
                    };
                    return new Misaligned(k, off);
                });
    }

    // ---------------------------------------------------------------------------------------------- setup

    static Instance<CacheSystem, CacheModel> setup(Random rnd, Options o) throws IOException {
        int tableSize = o.tableSizes().get(rnd.nextInt(o.tableSizes().size()));
        int l2Tables = rnd.nextInt(o.minTables(), o.maxTables() + 1);
        int rcTables = rnd.nextInt(o.minTables(), o.maxTables() + 1);
        List<Long> l2 = universe(rnd, tableSize, CacheSystem.L2_BASE, rnd.nextInt(o.minUniverse(), o.maxUniverse() + 1));
        List<Long> rc = universe(rnd, tableSize, CacheSystem.REFCOUNT_BASE, rnd.nextInt(o.minUniverse(), o.maxUniverse() + 1));
        RecordingTableFile file = CacheSystem.newFile(tableSize);
        Map<Long, long[]> initial = new TreeMap<>();
        for (List<Long> u : List.of(l2, rc)) {
            for (long off : u) {
                if (rnd.nextBoolean()) {
                    long tag = rnd.nextInt(1, 1 << 16);
                    long[] w = new long[tableSize / 8];
                    for (int i = 0; i < w.length; i++) {
                        w[i] = tag << 32 | i;
                    }
                    initial.put(off, w);
                    file.preload(off, bytes(w));
                }
            }
        }
        CacheSystem sys = CacheSystem.create(file, o.store(), tableSize, l2Tables, rcTables, o.l2Wrapper(),
                o.rcWrapper());
        CacheModel model = new CacheModel(tableSize, l2Tables, l2, rcTables, rc, initial);
        if (o.prefill()) {
            try {
                for (CacheKind k : CacheKind.values()) {
                    List<Long> u = new ArrayList<>(model.cache(k).universe());
                    for (int i = 0; i < model.cache(k).size() && !u.isEmpty(); i++) {
                        long off = u.remove(rnd.nextInt(u.size()));
                        new Get(k, off, false, false).perform(sys, model);
                        new Put(k, off).perform(sys, model);
                    }
                }
            } catch (Exception e) {
                sys.close();
                throw new IllegalStateException("prefill failed", e);
            }
        }
        return new Instance<>(sys, model);
    }

    private static List<Long> universe(Random rnd, int tableSize, long base, int n) {
        Set<Long> s = new LinkedHashSet<>();
        while (s.size() < n) {
            s.add(base + (long) rnd.nextInt(1, CacheSystem.POSITIONS) * tableSize);
        }
        return List.copyOf(s);
    }

    static byte[] bytes(long[] words) {
        ByteBuffer b = ByteBuffer.allocate(words.length * 8).order(ByteOrder.BIG_ENDIAN);
        for (long w : words) {
            b.putLong(w);
        }
        return b.array();
    }

    // ---------------------------------------------------------------------------------------------- choices

    /** Percentage of I/O actions run with injected failures. */
    static final int FAILING = 15;

    /** An action that may do I/O: sometimes run with injected failures. */
    private static StatefulProperty.Generator<CacheSystem, CacheModel> io(
            StatefulProperty.Generator<CacheSystem, CacheModel> g) {
        return (rnd, m) -> {
            Action<CacheSystem, CacheModel> a = g.generate(rnd, m);
            if (a == null || rnd.nextInt(100) >= FAILING) {
                return a;
            }
            return new WithFailures((CacheAction) a, Failures.random(rnd));
        };
    }

    private static CacheKind kind(Random rnd) {
        return rnd.nextBoolean() ? CacheKind.L2_TABLE : CacheKind.REFCOUNT_BLOCK;
    }

    /** A table offset: mostly one of the few "hot" ones (the first size + 1 of the universe), else any. */
    private static long pick(Random rnd, CacheModel m, CacheKind kind) {
        CacheModel.Cache c = m.cache(kind);
        List<Long> u = c.universe();
        int hot = Math.min(u.size(), c.size() + 1);
        return rnd.nextInt(4) < 3 ? u.get(rnd.nextInt(hot)) : u.get(rnd.nextInt(u.size()));
    }

    /** A resident table, referenced or not, or null. */
    public static CacheModel.Table anyResident(Random rnd, CacheModel m) {
        return rnd.nextBoolean() ? anyTable(rnd, m, true) : anyTable(rnd, m, false);
    }

    /** The kind of the cache holding the resident table {@code t}. */
    public static CacheKind kindOf(CacheModel m, CacheModel.Table t) {
        return m.l2().table(t.offset()) == t ? CacheKind.L2_TABLE : CacheKind.REFCOUNT_BLOCK;
    }

    private static CacheModel.Table anyTable(Random rnd, CacheModel m, boolean referenced) {
        List<CacheModel.Table> ts = new ArrayList<>();
        for (CacheKind k : CacheKind.values()) {
            for (CacheModel.Table t : m.cache(k).tables()) {
                if (referenced == (t.refs() > 0)) {
                    ts.add(t);
                }
            }
        }
        return ts.isEmpty() ? null : ts.get(rnd.nextInt(ts.size()));
    }

    static String name(CacheKind k) {
        return k == CacheKind.L2_TABLE ? "L2" : "refcount";
    }

    static String at(CacheKind k, long offset) {
        return name(k) + " " + (offset < 0 ? "-0x" + Long.toHexString(-offset) : "0x" + Long.toHexString(offset));
    }

    // ---------------------------------------------------------------------------------------------- outcomes

    @FunctionalInterface
    interface Call {
        Object call() throws Exception;
    }

    /** What a call did: returned a value (null for void) or threw. */
    record Outcome(Object value, Exception error) {
        static Outcome of(Call c) {
            try {
                return new Outcome(c.call(), null);
            } catch (Exception e) {
                return new Outcome(null, e);
            }
        }

        static Outcome ofVoid(VoidCall c) {
            return of(() -> {
                c.call();
                return null;
            });
        }

        boolean sameAs(Outcome o) {
            if (error == null || o.error == null) {
                return error == null && o.error == null && Objects.equals(value, o.value);
            }
            if (error.getClass() != o.error.getClass()) {
                return false;
            }
            return !(error instanceof ErrnoException a) || a.errno() == ((ErrnoException) o.error).errno();
        }

        boolean ok() {
            return error == null;
        }

        String describe() {
            if (error == null) {
                return value == null ? "succeed" : "return " + value;
            }
            String errno = error instanceof ErrnoException e ? " " + e.errnoName() : "";
            return "throw " + error.getClass().getSimpleName() + errno + " (" + error.getMessage() + ")";
        }
    }

    @FunctionalInterface
    interface VoidCall {
        void call() throws Exception;
    }

    static void agree(Object what, Outcome cache, Outcome model, CacheSystem s, CacheModel m) {
        if (!cache.sameAs(model)) {
            AssertionError e = new AssertionError(what + ": the cache did " + cache.describe()
                    + ", the model expects it to " + model.describe() + "\nmodel after: " + m
                    + "\nfile log of this step:" + s.file().describeLog(m.stepStart() == null ? 0 : m.stepStart().logSize()));
            if (cache.error != null) {
                e.initCause(cache.error);
            }
            throw e;
        }
    }

    // ---------------------------------------------------------------------------------------------- actions

    /**
     * An action of the workload: {@link #run} tells the model a step starts, applies the action, and counts the
     * model's events (hits, evictions, write-backs, failures, ...) as statistics labels.
     */
    public interface CacheAction extends Action<CacheSystem, CacheModel> {
        @Override
        default void run(CacheSystem s, CacheModel m, Context ctx) throws Exception {
            apply(s, m, ctx);
        }

        /** Applies the action. */
        default void apply(CacheSystem s, CacheModel m, Context ctx) throws Exception {
            m.begin(s.file().logSize());
            int l2 = s.store(CacheKind.L2_TABLE).releases().size();
            int rc = s.store(CacheKind.REFCOUNT_BLOCK).releases().size();
            try {
                perform(s, m);
            } finally {
                m.events().forEach(ctx::count);
                long released = releasedSince(s.store(CacheKind.L2_TABLE), l2)
                        + releasedSince(s.store(CacheKind.REFCOUNT_BLOCK), rc);
                if (released > 0) {
                    ctx.count("bytes the store really released", released);
                }
            }
        }

        private static long releasedSince(RecordingTableStore store, int from) {
            List<RecordingTableStore.Release> r = store.releases();
            long n = 0;
            for (int i = from; i < r.size(); i++) {
                n += r.get(i).released();
            }
            return n;
        }

        void perform(CacheSystem s, CacheModel m) throws Exception;
    }

    /** The observations around a miss the model says must find every entry referenced. */
    public record Exhausted(CacheKind kind, long offset, Observation before, Observation after) {}

    /** The observations around a get of a misaligned offset, and what the cache threw. */
    public record MisalignedNote(CacheKind kind, long offset, Observation before, Observation after,
                                 int eventsBefore, Exception thrown) {}

    /** {@code get} or {@code getEmpty} (then, if {@code markDirty}, mark the fresh table dirty, as allocators do). */
    public record Get(CacheKind kind, long offset, boolean empty, boolean markDirty) implements CacheAction {
        @Override
        public void perform(CacheSystem s, CacheModel m) {
            CacheUnderTest c = s.cache(kind);
            Observation before = m.wouldExhaust(kind, offset) ? Observation.of(s, m) : null;
            Outcome sut = Outcome.of(() -> empty ? c.getEmpty(offset) : c.get(offset));
            int observed = sut.value() instanceof Integer i ? i : -1;
            Outcome model = Outcome.of(() -> m.get(kind, offset, empty, observed));
            agree(this, sut, model, s, m);
            if (before != null) {
                m.actionNote(new Exhausted(kind, offset, before, Observation.of(s, m)));
            }
            if (markDirty && sut.ok()) {
                c.markDirty(observed);
                m.markDirty(kind, offset);
            }
        }

        @Override
        public String toString() {
            return (empty ? "getEmpty(" : "get(") + at(kind, offset) + ")" + (markDirty ? " + markDirty" : "");
        }
    }

    /** Drops one reference of a table the model says is referenced. */
    public record Put(CacheKind kind, long offset) implements CacheAction {
        @Override
        public boolean precondition(CacheModel m) {
            return m.cache(kind).refs(offset) > 0;
        }

        @Override
        public void perform(CacheSystem s, CacheModel m) {
            int h = m.cache(kind).table(offset).slot();
            Outcome sut = Outcome.ofVoid(() -> s.cache(kind).put(h));
            Outcome model = Outcome.ofVoid(() -> m.put(kind, offset));
            agree(this, sut, model, s, m);
        }

        @Override
        public String toString() {
            return "put(" + at(kind, offset) + ")";
        }
    }

    /** Sets a word of a referenced table and marks it dirty. */
    public record Modify(CacheKind kind, long offset, int word, long value) implements CacheAction {
        @Override
        public boolean precondition(CacheModel m) {
            return m.cache(kind).refs(offset) > 0;
        }

        @Override
        public void perform(CacheSystem s, CacheModel m) {
            int h = m.cache(kind).table(offset).slot();
            Outcome sut = Outcome.ofVoid(() -> {
                s.cache(kind).setWord(h, word, value);
                s.cache(kind).markDirty(h);
            });
            Outcome model = Outcome.ofVoid(() -> m.modify(kind, offset, word, value));
            agree(this, sut, model, s, m);
        }

        @Override
        public String toString() {
            return "modify(" + at(kind, offset) + ", word " + word + " = " + value + ") + markDirty";
        }
    }

    public record Write(CacheKind kind) implements CacheAction {
        @Override
        public void perform(CacheSystem s, CacheModel m) {
            agree(this, Outcome.ofVoid(() -> s.cache(kind).write()), Outcome.ofVoid(() -> m.write(kind)), s, m);
        }

        @Override
        public String toString() {
            return "write(" + name(kind) + ")";
        }
    }

    public record Flush(CacheKind kind) implements CacheAction {
        @Override
        public void perform(CacheSystem s, CacheModel m) {
            agree(this, Outcome.ofVoid(() -> s.cache(kind).flush()), Outcome.ofVoid(() -> m.flush(kind)), s, m);
        }

        @Override
        public String toString() {
            return "flush(" + name(kind) + ")";
        }
    }

    /** Discards a resident, unreferenced table. */
    public record Discard(CacheKind kind, long offset) implements CacheAction {
        @Override
        public boolean precondition(CacheModel m) {
            CacheModel.Table t = m.cache(kind).table(offset);
            return t != null && t.refs() == 0;
        }

        @Override
        public void perform(CacheSystem s, CacheModel m) {
            int h = m.cache(kind).table(offset).slot();
            agree(this, Outcome.ofVoid(() -> s.cache(kind).discard(h)),
                    Outcome.ofVoid(() -> m.discard(kind, offset)), s, m);
        }

        @Override
        public String toString() {
            return "discard(" + at(kind, offset) + ")";
        }
    }

    /**
     * What a reader without the owner's lock does ({@code Qcow2Image.mapLocked}): {@code peek}, and if the table is
     * cached (the model decides: the owner's validation would succeed, nobody holds the lock here) {@code touch}
     * on the handle. The peek must find exactly the model's slot (or nothing), and change nothing observable:
     * tables, references, dirty flags, content, file, releases, statistics.
     */
    public record Peek(CacheKind kind, long offset) implements CacheAction {
        @Override
        public void perform(CacheSystem s, CacheModel m) {
            CacheUnderTest c = s.cache(kind);
            Observation before = Observation.of(s, m);
            io.qcow2j.engine.cache.CacheStatistics.Snapshot statsBefore = c.statistics();
            Outcome sut = Outcome.of(() -> c.peek(offset));
            Outcome model = Outcome.of(() -> m.peek(kind, offset));
            agree(this, sut, model, s, m);
            Observation after = Observation.of(s, m);
            io.qcow2j.engine.cache.CacheStatistics.Snapshot statsAfter = c.statistics();
            if (!before.equals(after) || statsBefore.hits() != statsAfter.hits()
                    || statsBefore.lookups() != statsAfter.lookups() || statsBefore.probes() != statsAfter.probes()) {
                throw new AssertionError(this + " changed the cache:\nbefore: " + before + " " + statsBefore
                        + "\nafter:  " + after + " " + statsAfter);
            }
            int slot = (Integer) model.value();
            if (slot >= 0) {
                c.touch(slot);
                m.touch(kind, offset);
            }
        }

        @Override
        public String toString() {
            return "peek(" + at(kind, offset) + ")";
        }
    }

    public record Clean(CacheKind kind) implements CacheAction {
        @Override
        public void perform(CacheSystem s, CacheModel m) {
            agree(this, Outcome.ofVoid(() -> s.cache(kind).cleanUnused()),
                    Outcome.ofVoid(() -> m.cleanUnused(kind)), s, m);
        }

        @Override
        public String toString() {
            return "cleanUnused(" + name(kind) + ")";
        }
    }

    /** Empties a cache none of whose tables is referenced. */
    public record Empty(CacheKind kind) implements CacheAction {
        @Override
        public boolean precondition(CacheModel m) {
            return !m.cache(kind).anyReferenced();
        }

        @Override
        public void perform(CacheSystem s, CacheModel m) {
            agree(this, Outcome.ofVoid(() -> s.cache(kind).empty()), Outcome.ofVoid(() -> m.empty(kind)), s, m);
        }

        @Override
        public String toString() {
            return "empty(" + name(kind) + ")";
        }
    }

    /**
     * {@code cache.setDependency(dependency)}: QEMU makes the L2 cache depend on the refcount cache when an L2 entry
     * will point at a newly allocated cluster, and the refcount cache on the L2 cache when a refcount decreases.
     */
    public record SetDependency(CacheKind kind, CacheKind dependency) implements CacheAction {
        @Override
        public void perform(CacheSystem s, CacheModel m) {
            agree(this, Outcome.ofVoid(() -> s.cache(kind).setDependency(s.cache(dependency))),
                    Outcome.ofVoid(() -> m.setDependency(kind, dependency)), s, m);
        }

        @Override
        public String toString() {
            return "setDependency(" + name(kind) + ", " + name(dependency) + ")";
        }
    }

    public record DependsOnFlush(CacheKind kind) implements CacheAction {
        @Override
        public void perform(CacheSystem s, CacheModel m) {
            s.cache(kind).dependsOnFlush();
            m.dependsOnFlush(kind);
        }

        @Override
        public String toString() {
            return "dependsOnFlush(" + name(kind) + ")";
        }
    }

    /** Which segment {@link HandleOf} gives {@code handleOf}. */
    public enum View {
        /** the cache's own view of the table: must map back to its handle */
        OWN,
        /** a view of a table of the other cache: must be refused */
        OTHER_CACHE,
        /** a fresh array of the table's size: must be refused */
        FOREIGN_ARRAY,
        /** the own view moved by one entry: must be refused */
        MISALIGNED
    }

    /**
     * {@code handleOf} (QEMU's table index from a table's address) of a view of a resident table: the cache's own
     * view maps back to the handle, anything else is refused with an IllegalArgumentException.
     */
    public record HandleOf(CacheKind kind, long offset, View view) implements CacheAction {
        @Override
        public boolean precondition(CacheModel m) {
            return m.cache(kind).table(offset) != null;
        }

        @Override
        public void perform(CacheSystem s, CacheModel m) {
            CacheUnderTest c = s.cache(kind);
            int h = m.cache(kind).table(offset).slot();
            MemorySegment seg = switch (view) {
                case OWN -> c.table(h);
                case OTHER_CACHE -> s.cache(kind == CacheKind.L2_TABLE ? CacheKind.REFCOUNT_BLOCK : CacheKind.L2_TABLE)
                        .table(Math.min(h, s.cache(kind == CacheKind.L2_TABLE ? CacheKind.REFCOUNT_BLOCK
                                : CacheKind.L2_TABLE).size() - 1));
                case FOREIGN_ARRAY -> MemorySegment.ofArray(new long[m.tableSize() / 8]);
                case MISALIGNED -> c.table(h).asSlice(8);
            };
            Outcome sut = Outcome.of(() -> c.handleOf(seg));
            Outcome expected = view == View.OWN ? new Outcome(h, null)
                    : new Outcome(null, new IllegalArgumentException("not one of its tables"));
            agree(this, sut, expected, s, m);
        }

        @Override
        public String toString() {
            return "handleOf(" + view.name().toLowerCase(java.util.Locale.ROOT).replace('_', ' ') + " view of "
                    + at(kind, offset) + ")";
        }
    }

    /** A get of an offset that is not aligned to the table size (or negative): image corruption. */
    public record Misaligned(CacheKind kind, long offset) implements CacheAction {
        @Override
        public void perform(CacheSystem s, CacheModel m) {
            Observation before = Observation.of(s, m);
            int events = s.corruptions().size();
            Outcome sut = Outcome.of(() -> s.cache(kind).get(offset));
            Outcome model = Outcome.of(() -> m.get(kind, offset, false, -1));
            agree(this, sut, model, s, m);
            m.actionNote(new MisalignedNote(kind, offset, before, Observation.of(s, m), events, sut.error()));
        }

        @Override
        public String toString() {
            return "get(" + at(kind, offset) + ")";
        }
    }

    /**
     * Failures the file (and the overlap check) inject during one action: the first {@code reads} reads, the first
     * {@code writes} writes (with {@code writeErrno}), the first {@code syncs} syncs and the first {@code overlaps}
     * overlap checks fail. Scoped to one action, so that removing the action while shrinking removes its failures.
     */
    public record Failures(int reads, int writes, int writeErrno, int syncs, int overlaps) {
        static Failures random(Random rnd) {
            return switch (rnd.nextInt(20)) {
                case 0, 1, 2, 3, 4, 5, 6, 7, 8 -> new Failures(0, rnd.nextInt(1, 4),
                        rnd.nextBoolean() ? Errno.EIO : Errno.ENOSPC, 0, 0);
                case 9, 10, 11, 12 -> new Failures(0, 0, Errno.EIO, rnd.nextInt(1, 3), 0);
                case 13, 14, 15 -> new Failures(rnd.nextInt(1, 3), 0, Errno.EIO, 0, 0);
                case 16, 17 -> new Failures(0, 0, Errno.EIO, 0, rnd.nextInt(1, 3));
                default -> new Failures(0, rnd.nextInt(1, 3), Errno.EIO, rnd.nextInt(1, 3), 0);
            };
        }

        @Override
        public String toString() {
            List<String> parts = new ArrayList<>();
            if (reads > 0) {
                parts.add(reads + " read" + (reads > 1 ? "s" : ""));
            }
            if (writes > 0) {
                parts.add(writes + " write" + (writes > 1 ? "s" : "") + " (" + Errno.name(writeErrno) + ")");
            }
            if (syncs > 0) {
                parts.add(syncs + " sync" + (syncs > 1 ? "s" : ""));
            }
            if (overlaps > 0) {
                parts.add(overlaps + " overlap check" + (overlaps > 1 ? "s" : ""));
            }
            return "failing the first " + String.join(", ", parts);
        }
    }

    /** An action run with injected failures (cleared afterwards, on the file and in the model). */
    public record WithFailures(CacheAction action, Failures failures) implements CacheAction {
        @Override
        public boolean precondition(CacheModel m) {
            return action.precondition(m);
        }

        @Override
        public void perform(CacheSystem s, CacheModel m) throws Exception {
            inject(s, m, failures);
            try {
                action.perform(s, m);
            } finally {
                inject(s, m, new Failures(0, 0, Errno.EIO, 0, 0));
            }
        }

        private static void inject(CacheSystem s, CacheModel m, Failures f) {
            s.file().failNextReads(f.reads(), Errno.EIO);
            s.file().failNextWrites(f.writes(), f.writeErrno());
            s.file().failNextSyncs(f.syncs(), Errno.EIO);
            s.failNextOverlapChecks(f.overlaps());
            m.failNextReads(f.reads(), Errno.EIO);
            m.failNextWrites(f.writes(), f.writeErrno());
            m.failNextSyncs(f.syncs(), Errno.EIO);
            m.failNextOverlapChecks(f.overlaps());
        }

        @Override
        public String toString() {
            return action + ", " + failures;
        }
    }
}
