package io.qcow2j.proptest;

import java.io.PrintStream;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Random;
import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * A simple (stateless) property: {@code check} holds for every value {@code generator} makes from a seeded
 * random source. Same seeds, tries, system properties and report as {@link StatefulProperty}; a failing value
 * is shrunk greedily with the optional {@link #shrink shrinker} (first simpler candidate that still fails
 * with the same exception class, repeated).
 *
 * <pre>{@code
 * Property.forAll("offsets round-trip", rnd -> rnd.nextLong(0, 1L << 40),
 *                 off -> assertThat(decode(encode(off))).isEqualTo(off))
 *         .shrink(off -> List.of(off / 2, off - 1))   // simpler candidates, tried in order
 *         .tries(10_000)
 *         .check();
 * }</pre>
 *
 * <p>Configure, then call {@link #check()}; the setters return this object.
 *
 * @param <T> the generated values
 */
public final class Property<T> {

    /** A check of one value; fails by throwing (usually an {@link AssertionError}). */
    @FunctionalInterface
    public interface Check<T> {
        void check(T value) throws Exception;
    }

    private final String name;
    private final Function<Random, ? extends T> generator;
    private final Check<? super T> check;
    private Function<? super T, ? extends Iterable<? extends T>> shrinker = v -> List.of();
    private int tries = 1000;
    private int shrinkBudget = 1000;
    private Long seed;
    private Settings settings = Settings.system();
    private PrintStream out = System.out;

    private Property(String name, Function<Random, ? extends T> generator, Check<? super T> check) {
        Objects.requireNonNull(name, "name");
        if (name.isBlank()) {
            throw new IllegalArgumentException("a property needs a name");
        }
        this.name = name;
        this.generator = Objects.requireNonNull(generator, "generator");
        this.check = Objects.requireNonNull(check, "check");
    }

    /** A property named {@code name}: {@code check} holds for every value {@code generator} makes. */
    public static <T> Property<T> forAll(String name, Function<Random, ? extends T> generator, Check<? super T> check) {
        return new Property<>(name, generator, check);
    }

    /** Simpler candidates for a failing value, most promising first (default: none, no shrinking). */
    public Property<T> shrink(Function<? super T, ? extends Iterable<? extends T>> shrinker) {
        this.shrinker = Objects.requireNonNull(shrinker, "shrinker");
        return this;
    }

    /** How many values to check (default 1000); {@code -Dqcow2j.tries} overrides it. */
    public Property<T> tries(int tries) {
        if (tries < 1) {
            throw new IllegalArgumentException("tries must be >= 1, not " + tries);
        }
        this.tries = tries;
        return this;
    }

    /** The base seed (default random); the first value is made from it. {@code -Dqcow2j.seed} overrides it. */
    public Property<T> seed(long seed) {
        this.seed = seed;
        return this;
    }

    /** The most candidates shrinking may check (default 1000). */
    public Property<T> shrinkBudget(int checks) {
        if (checks < 0) {
            throw new IllegalArgumentException("shrinkBudget must be >= 0, not " + checks);
        }
        this.shrinkBudget = checks;
        return this;
    }

    Property<T> settings(UnaryOperator<String> properties) {
        this.settings = Settings.of(properties);
        return this;
    }

    Property<T> out(PrintStream out) {
        this.out = Objects.requireNonNull(out);
        return this;
    }

    /**
     * Checks the property: prints and returns the statistics if it held for every value, else shrinks the
     * failing value and throws.
     *
     * @throws PropertyFailure (an {@link AssertionError}) with the seed, the original and the shrunk value
     */
    public Result check() {
        Settings.Plan plan = settings.plan(name, tries, seed);
        long start = System.nanoTime();
        for (int i = 0; i < plan.tries(); i++) {
            long s = Settings.sequenceSeed(plan.baseSeed(), i);
            T value = generator.apply(new Random(Settings.generationSeed(s)));
            Throwable error = run(value);
            if (error != null) {
                Result result = result(plan, i + 1, start, false);
                out.println(result.report());
                throw failure(plan, i, s, value, error, result);
            }
        }
        Result result = result(plan, plan.tries(), start, true);
        out.println(result.report());
        return result;
    }

    private Throwable run(T value) {
        try {
            check.check(value);
            return null;
        } catch (Throwable t) {
            StatefulProperty.rethrowIfFatal(t);
            return t;
        }
    }

    private Result result(Settings.Plan plan, int sequences, long start, boolean passed) {
        return new Result(name, plan.baseSeed(), plan.tries(), plan.origin(), sequences, 0, 0, Map.of(), Map.of(),
                new int[0], Duration.ofNanos(System.nanoTime() - start), passed);
    }

    private PropertyFailure failure(Settings.Plan plan, int index, long s, T original, Throwable originalError, Result result) {
        T current = original;
        Throwable error = originalError;
        int steps = 0;
        int checks = 0;
        boolean exhausted = false;
        outer:
        while (true) {
            for (T candidate : shrinker.apply(current)) {
                if (checks >= shrinkBudget) {
                    exhausted = true;
                    break outer;
                }
                checks++;
                Throwable e = run(candidate);
                if (e != null && e.getClass() == originalError.getClass()) {
                    current = candidate;
                    error = e;
                    steps++;
                    continue outer;
                }
            }
            break;
        }
        StringBuilder b = new StringBuilder();
        b.append("Property '").append(name).append("' failed for value ").append(index + 1).append(" of ")
                .append(plan.tries()).append(", seed ").append(s).append(" (base seed ").append(plan.baseSeed())
                .append("; ").append(plan.origin()).append(")\n");
        b.append("Failure: ").append(StatefulProperty.describe(error)).append('\n');
        b.append("Shrunk in ").append(steps).append(" shrink steps (").append(checks).append(" checks")
                .append(exhausted ? ", budget of " + shrinkBudget + " spent: may not be minimal" : "").append(")\n\n");
        b.append("Shrunk value:   ").append(current).append('\n');
        b.append("Original value: ").append(original).append('\n');
        if (error != originalError) {
            b.append("Original failure: ").append(StatefulProperty.describe(originalError)).append('\n');
        }
        b.append("\nReplay this value with:\n  ").append(Settings.replayArguments(name, s)).append('\n');
        Optional<String> command = Settings.replayCommand(name, s);
        command.ifPresent(c -> b.append("  e.g. ").append(c).append('\n'));
        b.append("  or in code: .seed(").append(s).append("L) (a run's first value is made from the base seed itself)");
        return new PropertyFailure(b.toString(), name, s, "check", error, originalError,
                List.of(String.valueOf(original)), List.of(String.valueOf(current)), steps, checks, true, result);
    }
}
