package io.qcow2j.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.module.ModuleDescriptor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The layering docs/ARCHITECTURE.md describes, checked on the module descriptor and on the sources: what the
 * module exports, which package may use which, and how large a class may grow.
 */
class ArchitectureTest {
    private static final Path SOURCES = Path.of("src/main/java/io/qcow2j/engine");
    private static final String ROOT = "io.qcow2j.engine";
    /** "No class of the engine over ~600 lines": the limit, with the slack the ~ allows. */
    private static final int MAX_LINES = 700;
    private static final Pattern IMPORT = Pattern.compile("^import (?:static )?(io\\.qcow2j\\.engine(?:\\.[a-z]\\w*)*)\\.[A-Z][\\w.]*;",
            Pattern.MULTILINE);

    @Test
    void theModuleExportsOnlyTheApiAndTheFormatToEveryone() {
        ModuleDescriptor m = Disk.class.getModule().getDescriptor();
        Map<String, Set<String>> exports = new TreeMap<>();
        for (ModuleDescriptor.Exports e : m.exports()) {
            exports.put(e.source(), e.targets());
        }
        assertThat(exports).containsOnlyKeys(ROOT, ROOT + ".format", ROOT + ".cache", ROOT + ".qcow2", ROOT + ".chain");
        assertThat(exports.get(ROOT)).as("the API: to all").isEmpty();
        assertThat(exports.get(ROOT + ".format")).as("the format records: to all").isEmpty();
        assertThat(exports.get(ROOT + ".cache")).containsExactlyInAnyOrder("io.qcow2j.bench", "io.qcow2j.proptest");
        assertThat(exports.get(ROOT + ".qcow2")).containsExactly("io.qcow2j.proptest");
        assertThat(exports.get(ROOT + ".chain")).containsExactly("io.qcow2j.proptest");
    }

    @Test
    void packagesUseOnlyWhatTheirLayerAllows() throws IOException {
        Map<String, Set<String>> allowed = Map.of(
                ROOT + ".format", Set.of(),
                ROOT + ".cache", Set.of(ROOT + ".format"),
                ROOT + ".raw", Set.of(ROOT),
                ROOT + ".convert", Set.of(ROOT),
                ROOT + ".qcow2", Set.of(ROOT, ROOT + ".format", ROOT + ".cache", ROOT + ".check"),
                ROOT + ".check", Set.of(ROOT, ROOT + ".format", ROOT + ".cache", ROOT + ".qcow2"),
                ROOT + ".create", Set.of(ROOT, ROOT + ".format", ROOT + ".chain", ROOT + ".qcow2", ROOT + ".raw"),
                ROOT + ".chain", Set.of(ROOT, ROOT + ".format", ROOT + ".qcow2", ROOT + ".raw", ROOT + ".check"));
        // In the API package only the entry points and the option checks reach inside the engine.
        Set<String> apiReachingIn = Set.of("Images", "ChainStatus", "CreateOptions", "ImageOptions", "Snapshots",
                "Resize", "Commit", "Rebase", "Amend");
        List<String> violations = new ArrayList<>();
        for (Path f : sources()) {
            String pkg = packageOf(f);
            String cls = f.getFileName().toString().replace(".java", "");
            Matcher m = IMPORT.matcher(Files.readString(f));
            while (m.find()) {
                String used = m.group(1);
                if (used.equals(pkg)) {
                    continue;
                }
                boolean ok = pkg.equals(ROOT)
                        ? used.equals(ROOT + ".format") || apiReachingIn.contains(cls)
                        : allowed.get(pkg).contains(used);
                if (!ok) {
                    violations.add(pkg + "." + cls + " uses " + used);
                }
            }
        }
        assertThat(violations).isEmpty();
    }

    @Test
    void noClassOfTheEngineGrowsPastTheLimit() throws IOException {
        Map<String, Long> big = new TreeMap<>();
        for (Path f : sources()) {
            long lines;
            try (Stream<String> s = Files.lines(f)) {
                lines = s.count();
            }
            if (lines > MAX_LINES) {
                big.put(f.toString(), lines);
            }
        }
        assertThat(big).as("classes over " + MAX_LINES + " lines").isEmpty();
    }

    @Test
    void everyPackageSaysWhatItOwnsAndMayUse() throws IOException {
        try (Stream<Path> dirs = Files.walk(SOURCES)) {
            List<Path> packages = dirs.filter(Files::isDirectory).collect(Collectors.toList());
            assertThat(packages).hasSizeGreaterThanOrEqualTo(8);
            for (Path d : packages) {
                Path info = d.resolve("package-info.java");
                assertThat(info).as("package-info of %s", d).exists();
                String text = Files.readString(info).toLowerCase(java.util.Locale.ROOT);
                assertThat(text).as("%s says what it owns and what it may use", info).contains("owns", "may use");
            }
        }
    }

    /**
     * The NBD server (module nbd) is a client of the engine's API like any embedder: nothing internal. The one
     * exception is the bindings' Unix-domain sockets (the JDK's cannot say what has arrived, which the
     * server's arrival spin asks), read through the engine's transitive dependency: no other class of them.
     */
    @Test
    void theNbdServerUsesOnlyTheEnginesApiAndStaysSmall() throws IOException {
        Path nbd = Path.of("../nbd/src/main/java");
        assertThat(Files.readString(nbd.resolve("module-info.java")))
                .contains("requires io.qcow2j.engine;", "exports io.qcow2j.nbd;").doesNotContain("requires io.qcow2j.ffm");
        Pattern anyImport = Pattern.compile("^import (?:static )?((io\\.qcow2j\\.[\\w.]*?)\\.[A-Z][\\w.]*);", Pattern.MULTILINE);
        List<String> sockets = List.of("io.qcow2j.ffm.UnixServerSocket", "io.qcow2j.ffm.UnixStreamSocket");
        List<String> violations = new ArrayList<>();
        try (Stream<Path> s = Files.walk(nbd.resolve("io/qcow2j/nbd"))) {
            for (Path f : s.filter(p -> p.toString().endsWith(".java")).toList()) {
                String text = Files.readString(f);
                Matcher m = anyImport.matcher(text);
                while (m.find()) {
                    if (!m.group(2).equals(ROOT) && !m.group(2).equals("io.qcow2j.nbd") && !sockets.contains(m.group(1))) {
                        violations.add(f.getFileName() + " uses " + m.group(1));
                    }
                }
                if (text.lines().count() > MAX_LINES) {
                    violations.add(f.getFileName() + " has more than " + MAX_LINES + " lines");
                }
            }
        }
        assertThat(violations).isEmpty();
        assertThat(Files.readString(nbd.resolve("io/qcow2j/nbd/package-info.java")).toLowerCase(java.util.Locale.ROOT))
                .contains("owns", "may use");
    }

    private static List<Path> sources() throws IOException {
        try (Stream<Path> s = Files.walk(SOURCES)) {
            return s.filter(p -> p.toString().endsWith(".java") && !p.endsWith("package-info.java")).sorted().toList();
        }
    }

    private static String packageOf(Path f) {
        Path rel = SOURCES.relativize(f.getParent());
        return rel.toString().isEmpty() ? ROOT : ROOT + "." + rel.toString().replace('/', '.');
    }
}
