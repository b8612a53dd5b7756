package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class MainTest {

    /** Runs the command with System.out and System.err captured; returns {exit status, out, err}. */
    private static Object[] run(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
        ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(outBytes, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(errBytes, true, StandardCharsets.UTF_8));
            int status = Main.run(args);
            return new Object[] {status, outBytes.toString(StandardCharsets.UTF_8),
                    errBytes.toString(StandardCharsets.UTF_8)};
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    /** The version in the project's pom, read independently of the filtered resource under test. */
    private static String pomVersion() throws IOException {
        String pom = Files.readString(Path.of("pom.xml"));
        Matcher m = Pattern.compile("<parent>.*?<version>([^<]+)</version>", Pattern.DOTALL).matcher(pom);
        assertThat(m.find()).as("parent version in cli/pom.xml").isTrue();
        return m.group(1).trim();
    }

    @Test
    void versionPrintsTheProjectVersion() throws IOException {
        Object[] r = run("--version");
        assertThat(r[0]).isEqualTo(0);
        String version = pomVersion();
        assertThat(version).doesNotContain("${");
        assertThat((String) r[1]).startsWith("qcow2j version " + version + System.lineSeparator());
        assertThat((String) r[1]).doesNotContain("unknown");
    }

    @Test
    void everyCommandSummaryInTheHelpIsAWholeSentence() {
        Object[] r = run("--help");
        assertThat(r[0]).isEqualTo(0);
        String help = (String) r[1];
        String commands = help.substring(help.indexOf("Commands:") + "Commands:".length());
        // one entry per command: "  name  summary", continued on lines indented further
        java.util.Map<String, String> summaries = new java.util.LinkedHashMap<>();
        String current = null;
        for (String line : commands.split("\\R")) {
            Matcher m = Pattern.compile("^  (\\w+)\\s+(.*)$").matcher(line);
            if (m.matches()) {
                current = m.group(1);
                summaries.put(current, m.group(2).strip());
            } else if (current != null && !line.isBlank()) {
                summaries.put(current, summaries.get(current) + " " + line.strip());
            }
        }
        assertThat(summaries.keySet()).contains("demo", "create", "check", "info", "map", "convert", "io", "bench");
        summaries.forEach((name, summary) -> {
            assertThat(summary).as("summary of %s", name).endsWith(".").doesNotEndWith("e.g.").doesNotEndWith(",.");
            assertThat(summary.split(" ").length).as("summary of %s", name).isGreaterThan(4);
        });
    }

    @Test
    void unknownOptionIsAUsageError() {
        Object[] r = run("--bogus");
        assertThat(r[0]).isEqualTo(1);
        assertThat((String) r[2]).contains("--bogus");
    }

    @Test
    void versionResourceIsFiltered() throws IOException {
        try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
            assertThat(in).isNotNull();
            assertThat(new String(in.readAllBytes(), StandardCharsets.UTF_8)).doesNotContain("${");
        }
    }

    /** Main builds only the named subcommand: its table must name each by its own @Command name. */
    @Test
    void subcommandTableMatchesTheCommandsNames() {
        Main.SUBCOMMANDS.forEach((name, command) -> {
            Object c = command.get();
            assertThat(c.getClass().getAnnotation(picocli.CommandLine.Command.class).name()).as(c.getClass().getName())
                    .isEqualTo(name);
            CommandLine one = Main.commandLine(new String[] {"--debug", name, "x"});
            assertThat(one.getSubcommands().keySet()).containsExactly("help", name);
        });
        assertThat(Main.commandLine(new String[] {"help", "convert"}).getSubcommands().keySet())
                .containsAll(Main.SUBCOMMANDS.keySet()).contains("help");
        assertThat(Main.commandLine(new String[] {"nosuch"}).getSubcommands()).hasSize(Main.SUBCOMMANDS.size() + 1);
        // the top-level help still lists every subcommand, in the table's order
        Object[] r = run("--help");
        String help = (String) r[1];
        int last = -1;
        for (String name : Main.SUBCOMMANDS.keySet()) {
            int at = help.indexOf("\n  " + name + " ");
            assertThat(at).as(name + " in the top-level help").isGreaterThan(last);
            last = at;
        }
        // a subcommand's own errors and help are unchanged by being built alone
        Object[] bad = run("convert", "--nosuch", "a", "b");
        assertThat(bad[0]).isEqualTo(1);
        assertThat((String) bad[2]).contains("Unknown option: '--nosuch'").contains("Try 'qcow2j convert --help'");
    }
}
