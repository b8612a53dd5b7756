package io.qcow2j.proptest;

/**
 * For tests in other packages of this module that check the harness's verdict on a known answer (e.g. that a
 * property catches a deliberately broken system): runs a property without the {@code -Dqcow2j.*} system
 * properties, so that a seed or tries given for the real properties cannot change the outcome.
 */
public final class HarnessAccess {
    private HarnessAccess() {}

    public static <S, M> StatefulProperty.Builder<S, M> ignoreSystemProperties(StatefulProperty.Builder<S, M> b) {
        return b.settings(k -> null).out(QUIET);
    }

    public static <T> Property<T> ignoreSystemProperties(Property<T> p) {
        return p.settings(k -> null).out(QUIET);
    }

    private static final java.io.PrintStream QUIET = new java.io.PrintStream(java.io.OutputStream.nullOutputStream());
}
