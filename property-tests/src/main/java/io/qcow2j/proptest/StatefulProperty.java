package io.qcow2j.proptest;

import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.function.UnaryOperator;

/**
 * A model-based (stateful) property: random sequences of {@link Action actions} run against a system under test
 * and a reference model side by side, with named invariants checked after every action; a failing sequence is
 * shrunk by delta debugging and reported with the seed that replays it.
 *
 * <pre>{@code
 * Result r = StatefulProperty.<Lru, Map<Integer, Integer>>builder("lru behaves like its model")
 *         .setup(() -> new Lru(3), LinkedHashMap::new)
 *         .action(5, "put", (rnd, model) -> new Put(rnd.nextInt(8), rnd.nextInt(100)))
 *         .action(3, "get", (rnd, model) -> new Get(rnd.nextInt(8)))
 *         .action(1, "remove one held", (rnd, model) -> model.isEmpty() ? null : new Remove(anyKey(rnd, model)))
 *         .invariant("same size", (lru, model) -> assertThat(lru.size()).isEqualTo(model.size()))
 *         .tries(1000).maxActions(50)
 *         .check();          // throws PropertyFailure (an AssertionError) if the property does not hold
 * assertThat(r.count("eviction")).isPositive();
 * }</pre>
 *
 * <p>How a run goes: {@code tries} sequences, sequence {@code i} with a seed derived from the base seed
 * (sequence 0 uses the base seed itself). For each sequence: a fresh {@link Instance} from the setup, the
 * invariants on it, then {@code minActions..maxActions} (uniformly) steps; each step picks an action generator
 * by weight, generates an action from the random source and the current model, discards it if the generator
 * returned null or its precondition does not hold (and tries again, up to {@value #ATTEMPTS} times before the
 * sequence ends early), runs it, and checks every invariant. The instance is closed afterwards if it is
 * {@link AutoCloseable}, also on failure. The first failure stops the run: the failing sequence is shrunk
 * (replayed with chunks of actions removed, keeping removals after which it still fails at the same place
 * with the same exception class, bounded by the shrink budget) and a {@link PropertyFailure} is thrown.
 *
 * <p>System properties: {@code -Dqcow2j.seed=S} runs just the sequence with seed S (in every property, or
 * only in the one named by {@code -Dqcow2j.property=NAME}); {@code -Dqcow2j.tries=N} overrides the number of
 * sequences of every property. They win over {@link Builder#seed} and {@link Builder#tries}.
 *
 * <p>Determinism: the harness itself is deterministic for a seed (generation, weights, shrinking). The
 * property is reproducible when the setup, the generators and the actions are too: they should draw
 * randomness only from the {@link Random} they are given, and not depend on hash order or time.
 *
 * @param <S> the system under test
 * @param <M> the reference model
 */
public final class StatefulProperty<S, M> {

    /** How many times a step tries to generate an applicable action before the sequence ends early. */
    public static final int ATTEMPTS = 100;

    /** Makes a fresh system and model for one sequence; {@code rnd} is seeded from the sequence's seed. */
    @FunctionalInterface
    public interface Setup<S, M> {
        Instance<S, M> create(Random rnd) throws Exception;
    }

    /**
     * Generates a concrete action from the random source and the current model (which it must not change), or
     * returns null when it has nothing applicable to offer (e.g. "release a held handle" while none is held).
     */
    @FunctionalInterface
    public interface Generator<S, M> {
        Action<S, M> generate(Random rnd, M model);
    }

    /** A check of the system and the model that must hold after every action; fails by throwing. */
    @FunctionalInterface
    public interface Invariant<S, M> {
        void check(S sut, M model) throws Exception;
    }

    /** An {@link Invariant} that also sees the {@link Context} (to count labels). */
    @FunctionalInterface
    public interface ContextInvariant<S, M> {
        void check(S sut, M model, Context ctx) throws Exception;
    }

    /** Starts a property named {@code name} (the name is printed and matched by {@code -Dqcow2j.property}). */
    public static <S, M> Builder<S, M> builder(String name) {
        return new Builder<>(name);
    }

    /** Configures a {@link StatefulProperty}. Defaults: 1000 tries, 1..50 actions, shrink budget 1000 replays. */
    public static final class Builder<S, M> {
        private final String name;
        private Setup<S, M> setup;
        private final List<Weighted<S, M>> generators = new ArrayList<>();
        private final List<NamedInvariant<S, M>> invariants = new ArrayList<>();
        private int tries = 1000;
        private int minActions = 1;
        private int maxActions = 50;
        private int shrinkBudget = 1000;
        private Long seed;
        private Settings settings = Settings.system();
        private PrintStream out = System.out;

        private Builder(String name) {
            Objects.requireNonNull(name, "name");
            if (name.isBlank()) {
                throw new IllegalArgumentException("a property needs a name");
            }
            this.name = name;
        }

        /** Makes the (system, model) pair of each sequence; {@code rnd} is seeded from the sequence's seed. */
        public Builder<S, M> setup(Setup<S, M> setup) {
            this.setup = Objects.requireNonNull(setup, "setup");
            return this;
        }

        /** Makes the system and the model of each sequence from two factories. */
        public Builder<S, M> setup(Callable<? extends S> sut, Callable<? extends M> model) {
            Objects.requireNonNull(sut, "sut");
            Objects.requireNonNull(model, "model");
            return setup(rnd -> new Instance<>(sut.call(), model.call()));
        }

        /**
         * Adds an action: at each step, generator {@code name} is picked with probability
         * {@code weight / sum of weights}. Names must be unique; they key the statistics.
         *
         * @param weight relative frequency, at least 0 (0 disables the action)
         */
        public Builder<S, M> action(int weight, String name, Generator<S, M> generator) {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(generator, "generator");
            if (weight < 0) {
                throw new IllegalArgumentException("action '" + name + "': weight must be >= 0, not " + weight);
            }
            if (generators.stream().anyMatch(g -> g.name.equals(name))) {
                throw new IllegalArgumentException("action '" + name + "' is declared twice");
            }
            generators.add(new Weighted<>(weight, name, generator));
            return this;
        }

        /** Adds an invariant, checked on each fresh instance and after every action; its name is reported. */
        public Builder<S, M> invariant(String name, Invariant<S, M> invariant) {
            Objects.requireNonNull(invariant, "invariant");
            return invariant(name, (sut, model, ctx) -> invariant.check(sut, model));
        }

        /** Adds an invariant that also sees the {@link Context}. */
        public Builder<S, M> invariant(String name, ContextInvariant<S, M> invariant) {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(invariant, "invariant");
            if (invariants.stream().anyMatch(i -> i.name.equals(name))) {
                throw new IllegalArgumentException("invariant '" + name + "' is declared twice");
            }
            invariants.add(new NamedInvariant<>(name, invariant));
            return this;
        }

        /** How many sequences to run (default 1000); {@code -Dqcow2j.tries} overrides it. */
        public Builder<S, M> tries(int tries) {
            if (tries < 1) {
                throw new IllegalArgumentException("tries must be >= 1, not " + tries);
            }
            this.tries = tries;
            return this;
        }

        /** The fewest actions of a sequence (default 1; may be 0). */
        public Builder<S, M> minActions(int minActions) {
            if (minActions < 0) {
                throw new IllegalArgumentException("minActions must be >= 0, not " + minActions);
            }
            this.minActions = minActions;
            return this;
        }

        /** The most actions of a sequence (default 50). Lengths are uniform in {@code minActions..maxActions}. */
        public Builder<S, M> maxActions(int maxActions) {
            if (maxActions < 1) {
                throw new IllegalArgumentException("maxActions must be >= 1, not " + maxActions);
            }
            this.maxActions = maxActions;
            return this;
        }

        /** The most replays shrinking may make (default 1000); 0 turns shrinking off. */
        public Builder<S, M> shrinkBudget(int replays) {
            if (replays < 0) {
                throw new IllegalArgumentException("shrinkBudget must be >= 0, not " + replays);
            }
            this.shrinkBudget = replays;
            return this;
        }

        /**
         * The base seed (default: random per run). The first sequence uses it as is, so the seed printed by a
         * failure, given here, replays that failure as the first sequence. {@code -Dqcow2j.seed} overrides it.
         */
        public Builder<S, M> seed(long seed) {
            this.seed = seed;
            return this;
        }

        /** Reads the qcow2j.* settings from {@code properties} instead of the system properties (tests only). */
        Builder<S, M> settings(UnaryOperator<String> properties) {
            this.settings = Settings.of(properties);
            return this;
        }

        /** Where the statistics are printed (tests only; default standard output). */
        Builder<S, M> out(PrintStream out) {
            this.out = Objects.requireNonNull(out);
            return this;
        }

        /** Builds the property (checks the configuration). */
        public StatefulProperty<S, M> build() {
            if (setup == null) {
                throw new IllegalStateException("property '" + name + "' has no setup");
            }
            if (generators.stream().noneMatch(g -> g.weight > 0)) {
                throw new IllegalStateException("property '" + name + "' has no action with a positive weight");
            }
            if (minActions > maxActions) {
                throw new IllegalStateException("property '" + name + "': minActions " + minActions + " > maxActions " + maxActions);
            }
            return new StatefulProperty<>(this);
        }

        /** Builds and {@linkplain StatefulProperty#check() checks} the property. */
        public Result check() {
            return build().check();
        }
    }

    private record Weighted<S, M>(int weight, String name, Generator<S, M> generator) {}

    private record NamedInvariant<S, M>(String name, ContextInvariant<S, M> invariant) {}

    /** An action with the name of the generator that made it. */
    record Step<S, M>(String name, Action<S, M> action) {}

    enum Kind { SETUP, GENERATOR, ACTION, INVARIANT, CLOSE }

    /** Where and how a sequence failed. {@code step} is 1-based; 0 is before the first action. */
    record Failure(Kind kind, String name, int step, Throwable error) {
        String signature() {
            return kind + "/" + name + "/" + error.getClass().getName();
        }

        String location() {
            return switch (kind) {
                case SETUP -> "setup";
                case GENERATOR -> "generator of action '" + name + "' at step " + step;
                case ACTION -> "action '" + name + "' at step " + step;
                case INVARIANT -> "invariant '" + name + "' " + (step == 0 ? "on the fresh instance" : "after step " + step);
                case CLOSE -> "close after step " + step;
            };
        }

        boolean shrinkable() {
            return kind == Kind.ACTION || kind == Kind.INVARIANT || kind == Kind.CLOSE;
        }
    }

    /** What a sequence ran (without skipped actions; the failing action last) and how it ended. */
    record Execution<S, M>(List<Step<S, M>> executed, Failure failure) {}

    /** Counts of the main run; replays made while shrinking pass none. */
    private static final class Stats {
        final Map<String, Long> actions = new LinkedHashMap<>();
        final Map<String, Long> labels = new TreeMap<>();
        final List<Integer> lengths = new ArrayList<>();
        long discarded;
        int stuck;
    }

    private final String name;
    private final Setup<S, M> setup;
    private final List<Weighted<S, M>> generators;
    private final List<NamedInvariant<S, M>> invariants;
    private final int totalWeight;
    private final int tries;
    private final int minActions;
    private final int maxActions;
    private final int shrinkBudget;
    private final Long seed;
    private final Settings settings;
    private final PrintStream out;

    private StatefulProperty(Builder<S, M> b) {
        this.name = b.name;
        this.setup = b.setup;
        this.generators = List.copyOf(b.generators);
        this.invariants = List.copyOf(b.invariants);
        this.totalWeight = generators.stream().mapToInt(Weighted::weight).sum();
        this.tries = b.tries;
        this.minActions = b.minActions;
        this.maxActions = b.maxActions;
        this.shrinkBudget = b.shrinkBudget;
        this.seed = b.seed;
        this.settings = b.settings;
        this.out = b.out;
    }

    /** The property's name. */
    public String name() {
        return name;
    }

    /**
     * Runs the property: prints its statistics and returns them if every sequence passed, else shrinks the
     * failing sequence, prints the statistics and throws.
     *
     * @throws PropertyFailure (an {@link AssertionError}) describing the shrunk failure and how to replay it
     */
    public Result check() {
        Settings.Plan plan = settings.plan(name, tries, seed);
        Stats stats = new Stats();
        generators.forEach(g -> stats.actions.put(g.name, 0L));
        long start = System.nanoTime();
        for (int i = 0; i < plan.tries(); i++) {
            long sequenceSeed = Settings.sequenceSeed(plan.baseSeed(), i);
            Execution<S, M> run = execute(sequenceSeed, null, stats);
            stats.lengths.add(run.executed().size());
            if (run.failure() != null) {
                Result result = result(plan, stats, start, false);
                out.println(result.report());
                throw failure(plan, i, sequenceSeed, run, result);
            }
        }
        Result result = result(plan, stats, start, true);
        out.println(result.report());
        return result;
    }

    private Result result(Settings.Plan plan, Stats stats, long start, boolean passed) {
        int[] lengths = stats.lengths.stream().mapToInt(Integer::intValue).toArray();
        Arrays.sort(lengths);
        return new Result(name, plan.baseSeed(), plan.tries(), plan.origin(), stats.lengths.size(), stats.discarded,
                stats.stuck, stats.actions, stats.labels, lengths, Duration.ofNanos(System.nanoTime() - start), passed);
    }

    /** Replays {@code steps} with {@code sequenceSeed}'s setup, skipping steps whose precondition fails. */
    Execution<S, M> replay(long sequenceSeed, List<Step<S, M>> steps) {
        return execute(sequenceSeed, steps, null);
    }

    /** Generates the sequence of {@code sequenceSeed} (script null, counting into stats) or replays script. */
    private Execution<S, M> execute(long sequenceSeed, List<Step<S, M>> script, Stats stats) {
        List<Step<S, M>> executed = new ArrayList<>();
        Context ctx = new Context(sequenceSeed, stats == null ? null : stats.labels);
        Instance<S, M> instance;
        try {
            instance = Objects.requireNonNull(setup.create(new Random(Settings.setupSeed(sequenceSeed))),
                    "setup returned null");
        } catch (Throwable t) {
            rethrowIfFatal(t);
            return new Execution<>(executed, new Failure(Kind.SETUP, "setup", 0, t));
        }
        Failure failure = null;
        try {
            failure = checkInvariants(instance, ctx, 0);
            if (failure == null) {
                failure = script == null
                        ? generate(instance, ctx, executed, stats, new Random(Settings.generationSeed(sequenceSeed)))
                        : runScript(instance, ctx, executed, script);
            }
        } finally {
            Failure closing = close(instance, executed.size());
            if (failure == null) {
                failure = closing;
            } else if (closing != null) {
                failure.error().addSuppressed(closing.error());
            }
        }
        return new Execution<>(List.copyOf(executed), failure);
    }

    private Failure generate(Instance<S, M> instance, Context ctx, List<Step<S, M>> executed, Stats stats, Random rnd) {
        int length = minActions + rnd.nextInt(maxActions - minActions + 1);
        for (int n = 1; n <= length; n++) {
            Step<S, M> next = null;
            for (int attempt = 0; attempt < ATTEMPTS && next == null; attempt++) {
                Weighted<S, M> g = pick(rnd);
                Action<S, M> action;
                try {
                    action = g.generator.generate(rnd, instance.model());
                } catch (Throwable t) {
                    rethrowIfFatal(t);
                    return new Failure(Kind.GENERATOR, g.name, n, t);
                }
                if (action == null) {
                    stats.discarded++;
                    continue;
                }
                Step<S, M> step = new Step<>(g.name, action);
                boolean applicable;
                try {
                    applicable = action.precondition(instance.model());
                } catch (Throwable t) {
                    rethrowIfFatal(t);
                    executed.add(step);
                    return new Failure(Kind.ACTION, g.name, n, t);
                }
                if (applicable) {
                    next = step;
                } else {
                    stats.discarded++;
                }
            }
            if (next == null) {
                stats.stuck++;
                return null;
            }
            stats.actions.merge(next.name(), 1L, Long::sum);
            Failure f = runStep(instance, ctx, executed, next);
            if (f != null) {
                return f;
            }
        }
        return null;
    }

    private Failure runScript(Instance<S, M> instance, Context ctx, List<Step<S, M>> executed, List<Step<S, M>> script) {
        for (Step<S, M> step : script) {
            boolean applicable;
            try {
                applicable = step.action().precondition(instance.model());
            } catch (Throwable t) {
                rethrowIfFatal(t);
                executed.add(step);
                return new Failure(Kind.ACTION, step.name(), executed.size(), t);
            }
            if (applicable) { // a step whose precondition no longer holds is skipped
                Failure f = runStep(instance, ctx, executed, step);
                if (f != null) {
                    return f;
                }
            }
        }
        return null;
    }

    private Failure runStep(Instance<S, M> instance, Context ctx, List<Step<S, M>> executed, Step<S, M> step) {
        executed.add(step);
        int n = executed.size();
        ctx.step = n;
        try {
            step.action().run(instance.sut(), instance.model(), ctx);
        } catch (Throwable t) {
            rethrowIfFatal(t);
            return new Failure(Kind.ACTION, step.name(), n, t);
        }
        return checkInvariants(instance, ctx, n);
    }

    private Failure checkInvariants(Instance<S, M> instance, Context ctx, int n) {
        ctx.step = n;
        for (NamedInvariant<S, M> inv : invariants) {
            try {
                inv.invariant().check(instance.sut(), instance.model(), ctx);
            } catch (Throwable t) {
                rethrowIfFatal(t);
                return new Failure(Kind.INVARIANT, inv.name(), n, t);
            }
        }
        return null;
    }

    private static Failure close(Instance<?, ?> instance, int steps) {
        Throwable error = null;
        for (Object o : instance.model() == instance.sut() ? List.of(instance.sut()) : Arrays.asList(instance.sut(), instance.model())) {
            if (o instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Throwable t) {
                    rethrowIfFatal(t);
                    if (error == null) {
                        error = t;
                    } else {
                        error.addSuppressed(t);
                    }
                }
            }
        }
        return error == null ? null : new Failure(Kind.CLOSE, "close", steps, error);
    }

    private Weighted<S, M> pick(Random rnd) {
        int r = rnd.nextInt(totalWeight);
        for (Weighted<S, M> g : generators) {
            r -= g.weight;
            if (r < 0) {
                return g;
            }
        }
        throw new AssertionError("unreachable");
    }

    /** Errors a sequence must not swallow: the JVM's own trouble (except stack overflow, a plausible bug). */
    static void rethrowIfFatal(Throwable t) {
        if (t instanceof VirtualMachineError && !(t instanceof StackOverflowError)) {
            throw (VirtualMachineError) t;
        }
    }

    // ---------------------------------------------------------------------------------------- failure report

    private PropertyFailure failure(Settings.Plan plan, int index, long sequenceSeed, Execution<S, M> original, Result result) {
        Failure first = original.failure();
        Execution<S, M> shrunk = original;
        int steps = 0;
        int replays = 0;
        boolean exhausted = false;
        boolean reproduced = true;
        if (first.shrinkable() && shrinkBudget > 0) {
            String signature = first.signature();
            List<Execution<S, M>> last = new ArrayList<>(List.of(original));
            Execution<S, M> again = replay(sequenceSeed, original.executed());
            replays++;
            if (again.failure() == null || !again.failure().signature().equals(signature)) {
                reproduced = false;
            } else {
                last.set(0, again);
                DeltaDebugging.Outcome<Step<S, M>> outcome = DeltaDebugging.minimize(again.executed(), candidate -> {
                    Execution<S, M> e = replay(sequenceSeed, candidate);
                    if (e.failure() != null && e.failure().signature().equals(signature)) {
                        last.set(0, e);
                        return e.executed();
                    }
                    return null;
                }, shrinkBudget - 1);
                steps = outcome.steps();
                replays += outcome.replays();
                exhausted = outcome.exhausted();
                shrunk = last.get(0);
            }
        }
        List<String> originalLines = render(original.executed());
        List<String> shrunkLines = render(shrunk.executed());
        String message = message(plan, index, sequenceSeed, original, shrunk, originalLines, shrunkLines,
                steps, replays, exhausted, reproduced);
        return new PropertyFailure(message, name, sequenceSeed, shrunk.failure().location(), shrunk.failure().error(),
                first.error(), originalLines, shrunkLines, steps, replays, reproduced, result);
    }

    private String message(Settings.Plan plan, int index, long sequenceSeed, Execution<S, M> original,
                           Execution<S, M> shrunk, List<String> originalLines, List<String> shrunkLines,
                           int steps, int replays, boolean exhausted, boolean reproduced) {
        Failure f = shrunk.failure();
        StringBuilder b = new StringBuilder();
        b.append("Property '").append(name).append("' failed in sequence ").append(index + 1).append(" of ")
                .append(plan.tries()).append(", seed ").append(sequenceSeed).append(" (base seed ")
                .append(plan.baseSeed()).append("; ").append(plan.origin()).append(")\n");
        b.append("Failure: ").append(f.location()).append(": ").append(describe(f.error())).append('\n');
        if (!reproduced) {
            b.append("NOT SHRUNK: replaying the same sequence with the same seed did not fail the same way, so the system,")
                    .append("\n  the model or the actions are not deterministic (time, hash order, shared state, own randomness?)\n");
        } else if (f.shrinkable() && shrinkBudget > 0) {
            b.append("Shrunk from ").append(originalLines.size()).append(" to ").append(shrunkLines.size())
                    .append(" actions in ").append(steps).append(" shrink steps (").append(replays).append(" replays")
                    .append(exhausted ? ", budget of " + shrinkBudget + " spent: may not be minimal" : "").append(")\n");
        }
        b.append('\n');
        if (reproduced && f.shrinkable() && shrinkBudget > 0) {
            b.append("Shrunk actions (").append(shrunkLines.size()).append("):\n");
            appendActions(b, shrunkLines, f);
            b.append('\n');
            b.append("Original actions (").append(originalLines.size()).append("), failed at ")
                    .append(original.failure().location()).append(": ")
                    .append(describe(original.failure().error())).append('\n');
        } else {
            b.append("Actions (").append(originalLines.size()).append("):\n");
        }
        appendActions(b, originalLines, original.failure());
        b.append('\n');
        b.append("Replay this sequence with:\n  ").append(Settings.replayArguments(name, sequenceSeed)).append('\n');
        Optional<String> command = Settings.replayCommand(name, sequenceSeed);
        command.ifPresent(c -> b.append("  e.g. ").append(c).append('\n'));
        b.append("  or in code: .seed(").append(sequenceSeed).append("L) (a run's first sequence uses the base seed itself)");
        return b.toString();
    }

    private static final int SHOWN = 200;

    private static void appendActions(StringBuilder b, List<String> lines, Failure f) {
        int width = Integer.toString(lines.size()).length();
        int from = Math.max(0, lines.size() - SHOWN);
        if (from > 0) {
            b.append("  ... ").append(from).append(" earlier actions not shown\n");
        }
        for (int i = from; i < lines.size(); i++) {
            String num = Integer.toString(i + 1);
            b.append("  ").append(" ".repeat(width - num.length())).append(num).append(". ").append(lines.get(i));
            if (i == lines.size() - 1) {
                if (f.kind() == Kind.ACTION) {
                    b.append("    <-- failed");
                } else if (f.kind() == Kind.INVARIANT && f.step() == lines.size()) {
                    b.append("    <-- then invariant '").append(f.name()).append("' failed");
                }
            }
            b.append('\n');
        }
        if (f.kind() == Kind.CLOSE) {
            b.append("  (then close() failed)\n");
        } else if (f.kind() == Kind.INVARIANT && f.step() == 0) {
            b.append("  (invariant '").append(f.name()).append("' failed on the fresh instance)\n");
        } else if (f.kind() == Kind.GENERATOR) {
            b.append("  (then the generator of '").append(f.name()).append("' threw)\n");
        } else if (lines.isEmpty() && f.kind() == Kind.SETUP) {
            b.append("  (none: setup failed)\n");
        }
    }

    static String describe(Throwable t) {
        String msg = t.getMessage();
        String s = t.getClass().getName() + (msg == null ? "" : ": " + msg);
        return s.replace("\n", "\n    ");
    }

    private static <S, M> List<String> render(List<Step<S, M>> steps) {
        List<String> lines = new ArrayList<>(steps.size());
        Set<Class<?>> plain = new HashSet<>();
        for (Step<S, M> step : steps) {
            Action<S, M> a = step.action();
            String text;
            if (plain.contains(a.getClass()) || !overridesToString(a.getClass())) {
                plain.add(a.getClass());
                text = step.name() + " (no toString(): give the action one to see its parameters)";
            } else {
                text = String.valueOf(a).replace("\n", "\n      ");
            }
            lines.add(text);
        }
        return lines;
    }

    private static boolean overridesToString(Class<?> c) {
        try {
            return c.getMethod("toString").getDeclaringClass() != Object.class;
        } catch (NoSuchMethodException e) {
            return false;
        }
    }
}
