package io.qcow2j.proptest;

import java.lang.StackWalker.StackFrame;
import java.lang.annotation.Annotation;
import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.UnaryOperator;

/**
 * Seeds and the system properties that steer every property: {@value #SEED}, {@value #PROPERTY},
 * {@value #TRIES}. Package-private: the public face is the builders and the README.
 */
final class Settings {
    static final String SEED = "qcow2j.seed";
    static final String PROPERTY = "qcow2j.property";
    static final String TRIES = "qcow2j.tries";

    private final UnaryOperator<String> properties;

    private Settings(UnaryOperator<String> properties) {
        this.properties = properties;
    }

    static Settings system() {
        return new Settings(System::getProperty);
    }

    /** Settings read from {@code properties} instead of the system properties (for the harness's own tests). */
    static Settings of(UnaryOperator<String> properties) {
        return new Settings(properties);
    }

    /**
     * How one run of a property goes.
     *
     * @param baseSeed the seed of the first sequence; the others are derived from it ({@link #sequenceSeed})
     * @param tries how many sequences to run
     * @param origin where {@code tries} and the seed come from, for the report
     * @param replay whether this run replays one seed given by {@value #SEED}
     */
    record Plan(long baseSeed, int tries, String origin, boolean replay) {}

    Plan plan(String name, int configuredTries, Long configuredSeed) {
        String seed = value(SEED);
        String scope = value(PROPERTY);
        if (seed != null && (scope == null || scope.equals(name))) {
            return new Plan(parseSeed(seed), 1, "replaying -D" + SEED + "=" + seed.strip(), true);
        }
        long base = configuredSeed != null ? configuredSeed : ThreadLocalRandom.current().nextLong();
        String seedOrigin = configuredSeed != null ? "seed set in code" : "random seed";
        String tries = value(TRIES);
        if (tries != null) {
            return new Plan(base, parseTries(tries), "tries from -D" + TRIES + ", " + seedOrigin, false);
        }
        return new Plan(base, configuredTries, "tries set in code or default, " + seedOrigin, false);
    }

    private String value(String key) {
        String v = properties.apply(key);
        return v == null || v.isBlank() ? null : v.strip();
    }

    private static long parseSeed(String s) {
        try {
            return Long.parseLong(s.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-D" + SEED + " must be a decimal long (as printed by a failure), not '" + s + "'", e);
        }
    }

    private static int parseTries(String s) {
        int n;
        try {
            n = Integer.parseInt(s.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-D" + TRIES + " must be a positive integer, not '" + s + "'", e);
        }
        if (n < 1) {
            throw new IllegalArgumentException("-D" + TRIES + " must be a positive integer, not " + n);
        }
        return n;
    }

    /**
     * The seed of sequence {@code index} of a run with base seed {@code base}. Sequence 0 uses the base seed
     * itself, so a printed failing seed, given back as the base seed, is the first sequence run.
     */
    static long sequenceSeed(long base, int index) {
        return index == 0 ? base : mix(base + index * 0x9E3779B97F4A7C15L);
    }

    /** An independent stream for the setup of a sequence (so setup randomness does not shift generation). */
    static long setupSeed(long sequenceSeed) {
        return mix(sequenceSeed ^ 0x5DEECE66DL);
    }

    /** The stream from which a sequence's actions are generated. */
    static long generationSeed(long sequenceSeed) {
        return mix(sequenceSeed + 0x2545F4914F6CDD1DL);
    }

    /** SplitMix64's finaliser: a bijection that spreads nearby seeds far apart. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The system-property arguments that replay {@code seed} of the property {@code name}. */
    static String replayArguments(String name, long seed) {
        return "-D" + SEED + "=" + seed + " -D" + PROPERTY + "=" + shellQuote(name);
    }

    /** A complete command line that reruns just the calling test with {@code seed}, when it can be told. */
    static Optional<String> replayCommand(String name, long seed) {
        return callingTest().map(test -> {
            StringBuilder b = new StringBuilder("./run-tests");
            String basedir = System.getProperty("basedir");
            if (basedir != null && !basedir.isBlank()) {
                String module = java.nio.file.Path.of(basedir).getFileName().toString();
                b.append(" -pl ").append(module).append(" -am");
            }
            b.append(" -Dtest=").append(shellQuote(test))
                    .append(" -Dsurefire.failIfNoSpecifiedTests=false ")
                    .append(replayArguments(name, seed));
            return b.toString();
        });
    }

    /** Single-quotes {@code s} for a POSIX shell when it needs it. */
    static String shellQuote(String s) {
        if (!s.isEmpty() && s.chars().allMatch(c -> Character.isLetterOrDigit(c) || "-_.,:/=@%+".indexOf(c) >= 0)) {
            return s;
        }
        return "'" + s.replace("'", "'\\''") + "'";
    }

    private static final StackWalker WALKER = StackWalker.getInstance(StackWalker.Option.RETAIN_CLASS_REFERENCE);

    /** {@code Class#method} of the nearest caller annotated as a JUnit test (matched by name: no JUnit here). */
    private static Optional<String> callingTest() {
        try {
            return WALKER.walk(frames -> frames.filter(Settings::isTestMethod).findFirst())
                    .map(f -> {
                        Class<?> c = f.getDeclaringClass();
                        String cls = c.getPackageName().isEmpty() ? c.getName() : c.getName().substring(c.getPackageName().length() + 1);
                        return cls + "#" + f.getMethodName();
                    });
        } catch (RuntimeException e) {
            return Optional.empty();
        }
    }

    private static boolean isTestMethod(StackFrame f) {
        Class<?> c = f.getDeclaringClass();
        if (c.getName().startsWith("java.") || c.getName().startsWith("jdk.")) {
            return false;
        }
        for (Method m : c.getDeclaredMethods()) {
            if (m.getName().equals(f.getMethodName())
                    && Arrays.equals(m.getParameterTypes(), f.getMethodType().parameterArray())) {
                for (Annotation a : m.getAnnotations()) {
                    String n = a.annotationType().getName();
                    if (n.startsWith("org.junit.") && (n.endsWith(".Test") || n.endsWith(".RepeatedTest")
                            || n.endsWith(".ParameterizedTest") || n.endsWith(".TestTemplate"))) {
                        return true;
                    }
                }
            }
        }
        return false;
    }
}
