package io.qcow2j.cli;

import io.qcow2j.testsupport.Qemu;
import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs the qcow2j command in this JVM, capturing what it prints. */
final class Cli {
    private Cli() {}

    static Qemu.Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit;
        try (PrintWriter o = new PrintWriter(out); PrintWriter e = new PrintWriter(err)) {
            exit = Main.run(o, e, args);
        }
        return new Qemu.Result(exit, out.toString(), err.toString());
    }

    /** Runs and expects success: returns stdout, failing with stderr otherwise. */
    static String ok(String... args) {
        Qemu.Result r = run(args);
        if (r.exit() != 0) {
            throw new AssertionError("qcow2j " + String.join(" ", args) + " exited " + r.exit() + ": " + r.err());
        }
        return r.out();
    }
}
