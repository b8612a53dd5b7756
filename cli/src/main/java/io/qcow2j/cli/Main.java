package io.qcow2j.cli;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Qcow2j;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of the {@code qcow2j} command. Subcommands follow {@code qemu-img} / {@code qemu-io}: their
 * names, options, output and exit codes. Errors are one line on stderr ({@code qcow2j: …}) and exit status 1;
 * {@code --debug} (or {@code QCOW2J_DEBUG=1}) adds the stack trace.
 */
@Command(
        name = "qcow2j",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "qcow2 disk images on the JVM: inspect, convert, check, read and write them.",
        subcommands = CommandLine.HelpCommand.class) // the others: SUBCOMMANDS, added in commandLine
public final class Main implements Runnable {
    /**
     * The subcommands, in the order help lists them, by the name of their {@code @Command}. Building a
     * command's picocli model (reflection over its annotated fields, an annotation proxy per option) is most
     * of a one-shot command's start-up after the JVM's own, so a command line naming one gets that one
     * alone; help, no subcommand or an unknown one get them all (MainTest checks the names).
     */
    static final Map<String, Supplier<Object>> SUBCOMMANDS = subcommands();

    private static Map<String, Supplier<Object>> subcommands() {
        Map<String, Supplier<Object>> m = new LinkedHashMap<>();
        m.put("demo", DemoCommand::new);
        m.put("create", CreateCommand::new);
        m.put("check", CheckCommand::new);
        m.put("info", InfoCommand::new);
        m.put("map", MapCommand::new);
        m.put("convert", ConvertCommand::new);
        m.put("compare", CompareCommand::new);
        m.put("measure", MeasureCommand::new);
        m.put("snapshot", SnapshotCommand::new);
        m.put("resize", ResizeCommand::new);
        m.put("commit", CommitCommand::new);
        m.put("rebase", RebaseCommand::new);
        m.put("amend", AmendCommand::new);
        m.put("io", IoCommand::new);
        m.put("bench", BenchCommand::new);
        m.put("serve", ServeCommand::new);
        return Collections.unmodifiableMap(m);
    }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @CommandLine.Option(names = "--debug", scope = CommandLine.ScopeType.INHERIT, hidden = true,
            description = "Print stack traces of errors.")
    static boolean debug = "1".equals(System.getenv("QCOW2J_DEBUG"));

    @CommandLine.Option(names = "--untrusted", scope = CommandLine.ScopeType.INHERIT,
            description = "The images come from someone else: backing files must be named relative to and stay"
                    + " inside the image's folder, with their format given in the image (see the README).")
    static boolean untrusted;

    @CommandLine.Option(names = "--allow-raw-backing", scope = CommandLine.ScopeType.INHERIT,
            description = "With --untrusted: accept raw backing files (still inside the image's folder).")
    static boolean allowRawBacking;

    public static void main(String[] args) {
        int status = run(args);
        // every image is closed now; a JVM exiting with the io_uring reaper inside its native wait would
        // wait up to 300 ms for it (measured: 1 MiB convert 0.62 s with it open, about 0.3 s less without)
        Qcow2j.releaseSharedIo();
        System.exit(status);
    }

    /** Runs the command line and returns the exit status; used by tests without starting a JVM. */
    public static int run(String... args) {
        return run(null, null, args);
    }

    /**
     * As {@link #run(String...)}, printing to {@code out} and {@code err} instead of System.out/err (null:
     * those); for tests.
     */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        untrusted = false; // static, as --debug: a run in the same JVM must not inherit the previous run's flags
        allowRawBacking = false;
        CommandLine cmd = commandLine(args);
        if (out != null) {
            cmd.setOut(out);
        }
        if (err != null) {
            cmd.setErr(err);
        }
        return cmd.execute(args);
    }

    /**
     * The image options every command starts from: QEMU's defaults, with the global {@code --untrusted} and
     * {@code --allow-raw-backing} flags.
     */
    static ImageOptions.Builder imageOptions() {
        return ImageOptions.builder().untrusted(untrusted).allowRawBacking(allowRawBacking);
    }

    /** The configured command line with every subcommand (tests set its out and err writers). */
    static CommandLine commandLine() {
        return commandLine(new String[0]);
    }

    /**
     * The configured command line for {@code args}: with only the subcommand they name when the first
     * argument that is not an option (Main's own options are flags) is one, else with all of them.
     */
    static CommandLine commandLine(String[] args) {
        CommandLine cmd = new CommandLine(new Main());
        String named = null;
        for (String a : args) {
            if (!a.startsWith("-")) {
                named = a;
                break;
            }
        }
        if (named != null && SUBCOMMANDS.containsKey(named)) {
            cmd.addSubcommand(named, SUBCOMMANDS.get(named).get());
        } else {
            SUBCOMMANDS.forEach((name, command) -> cmd.addSubcommand(name, command.get()));
        }
        cmd.setExecutionExceptionHandler(Main::onError);
        cmd.setParameterExceptionHandler(Main::onBadArguments);
        return cmd;
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** A failing command: one line naming the problem, exit 1 (as qemu-img). */
    private static int onError(Exception e, CommandLine cmd, CommandLine.ParseResult parsed) {
        PrintWriter err = cmd.getErr();
        err.println("qcow2j: " + describe(e, cmd.getCommand()));
        if (debug) {
            e.printStackTrace(err);
        }
        err.flush();
        return 1;
    }

    private static int onBadArguments(CommandLine.ParameterException e, String[] args) {
        PrintWriter err = e.getCommandLine().getErr();
        err.println("qcow2j: " + e.getMessage());
        err.println("Try 'qcow2j " + (e.getCommandLine().getCommandName().equals("qcow2j") ? ""
                : e.getCommandLine().getCommandName() + " ") + "--help' for more information.");
        if (debug) {
            e.printStackTrace(err);
        }
        err.flush();
        return 1;
    }

    /**
     * {@link #describe(Throwable)}, except that a backing file missing under the IMAGE of a command that opens
     * a chain is qemu-img's "Could not open 'IMAGE': Could not open backing file: …" (one for each level).
     */
    static String describe(Throwable e, Object command) {
        if (e instanceof NoSuchFileException n && command instanceof OpensChain c && c.imageName() != null
                && n.getFile() != null && !n.getFile().equals(c.imageName())) {
            String reason = ImageSource.missingBackingReason(c.imageName());
            if (reason != null) {
                return "Could not open '" + c.imageName() + "': " + reason;
            }
        }
        return describe(e);
    }

    /** The message a user should see for an exception: no class names unless there is nothing else. */
    static String describe(Throwable e) {
        if (e instanceof NoSuchFileException n) {
            return "Could not open '" + n.getFile() + "': " + (n.getReason() != null ? n.getReason()
                    : "No such file or directory");
        }
        if (e instanceof AccessDeniedException a) {
            return "Could not open '" + a.getFile() + "': Permission denied";
        }
        String m = e.getMessage();
        if (m == null || m.isBlank()) {
            return e.getClass().getSimpleName();
        }
        return m.replace('\n', ' ');
    }

    /** Prints the version the way {@code qemu-img --version} does: name and version first. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {
                "qcow2j version " + projectVersion(),
                "Java " + Runtime.version() + " (" + System.getProperty("java.vendor") + "), "
                        + System.getProperty("os.name") + " " + System.getProperty("os.arch")
            };
        }
    }

    static String projectVersion() {
        try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
            if (in == null) {
                return "unknown";
            }
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version", "unknown");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
