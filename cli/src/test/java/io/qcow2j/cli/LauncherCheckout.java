package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;

/**
 * A copy of the checkout that the real {@code ./qcow2j} launcher runs in as a user runs it: the launcher and
 * its scripts, and a {@code cli/target} holding jars made from this build's modules, newer than any source
 * there (there are none), so the launcher does not build.
 */
final class LauncherCheckout {
    private static final Path REPO = Path.of("").toAbsolutePath().getParent();

    private LauncherCheckout() {}

    /** Makes the copy in {@code root} (created) and returns it. */
    static Path make(Path root) throws IOException {
        Files.createDirectories(root.resolve("scripts"));
        Files.createDirectories(root.resolve("cli/target/lib"));
        for (String f : List.of("qcow2j", "scripts/jdk.sh", "scripts/startup-cache.sh")) {
            Files.copy(REPO.resolve(f), root.resolve(f), StandardCopyOption.COPY_ATTRIBUTES);
        }
        // cli/target as `mvn package` leaves it: the cli jar and its runtime modules in lib/
        Map<String, Path> byModule = new HashMap<>();
        Map<String, ModuleDescriptor> descriptors = new HashMap<>();
        for (String entry : System.getProperty("jdk.module.path").split(java.io.File.pathSeparator)) {
            Path p = Path.of(entry);
            for (ModuleReference m : ModuleFinder.of(p).findAll()) {
                byModule.putIfAbsent(m.descriptor().name(), p);
                descriptors.putIfAbsent(m.descriptor().name(), m.descriptor());
            }
        }
        Set<String> needed = new HashSet<>();
        Deque<String> todo = new ArrayDeque<>(List.of("io.qcow2j.cli"));
        while (!todo.isEmpty()) {
            String name = todo.pop();
            if (!byModule.containsKey(name) || !needed.add(name)) {
                continue; // a JDK module, or seen
            }
            for (ModuleDescriptor.Requires r : descriptors.get(name).requires()) {
                if (!r.modifiers().contains(ModuleDescriptor.Requires.Modifier.STATIC)) {
                    todo.push(r.name());
                }
            }
        }
        assertThat(needed).contains("io.qcow2j.cli", "io.qcow2j.engine", "io.qcow2j.ffm");
        for (String name : needed) {
            Path from = byModule.get(name);
            Path to = name.equals("io.qcow2j.cli") ? root.resolve("cli/target/qcow2j-cli.jar")
                    : root.resolve("cli/target/lib/" + name + ".jar");
            if (Files.isDirectory(from)) {
                jar(from, to);
            } else {
                Files.copy(from, to);
            }
        }
        return root;
    }

    private static void jar(Path classes, Path jar) throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.walk(classes)) {
            files = s.filter(Files::isRegularFile).sorted().toList();
        }
        try (OutputStream o = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(o)) {
            for (Path f : files) {
                j.putNextEntry(new JarEntry(classes.relativize(f).toString().replace('\\', '/')));
                Files.copy(f, j);
                j.closeEntry();
            }
        }
    }

}
