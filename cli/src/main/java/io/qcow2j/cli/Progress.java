package io.qcow2j.cli;

import java.io.PrintWriter;
import java.util.Locale;

/**
 * qemu-img's simple progress indicator ({@code -p}): {@code "    (42.00/100%)\r"} rewritten in place when
 * the percentage moved by more than one point, at 0 and at 100, then a newline at the end.
 */
final class Progress {
    private static final float MIN_SKIP = 1.0f;
    private final PrintWriter out;
    private final boolean enabled;
    private float current;
    private float lastPrint;

    Progress(PrintWriter out, boolean enabled) {
        this.out = out;
        this.enabled = enabled;
    }

    /** Whether {@code -p} should draw: only when the terminal would show it. */
    static boolean onTerminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }

    /** {@code qemu_progress_print(delta, 0)}-style update: set the percentage done (0..100). */
    void set(float percent) {
        if (!enabled) {
            return;
        }
        float p = Math.min(100f, Math.max(0f, percent));
        current = p;
        if (p > lastPrint + MIN_SKIP || p < lastPrint - MIN_SKIP || p == 0 || p == 100) {
            lastPrint = p;
            out.print(String.format(Locale.ROOT, "    (%3.2f/100%%)\r", p));
            out.flush();
        }
    }

    void end() {
        if (enabled) {
            out.print("\n");
            out.flush();
        }
    }

    float current() {
        return current;
    }
}
