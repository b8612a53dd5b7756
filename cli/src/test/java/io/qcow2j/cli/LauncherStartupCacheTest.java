package io.qcow2j.cli;

import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code ./qcow2j} launcher's start-up cache (scripts/startup-cache.sh), run as a user runs it: the real
 * launcher script in a copy of the checkout whose {@code cli/target} holds jars made from this build's
 * modules, a cache folder of its own ({@code XDG_CACHE_HOME}). Whether the JVM really took its classes from
 * the cache is read from its class-loading log ({@code JDK_JAVA_OPTIONS=-Xlog:class+load}: "source: shared
 * objects file"). Checked: the cache is made on first use and reused after, stdout is byte for byte what it
 * is without the cache, a damaged or stale file is never fatal and is made again, {@code QCOW2J_AOT=off}
 * runs without it, and the training run leaves the user's folder and image alone.
 */
@Timeout(value = 300, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class LauncherStartupCacheTest {
    @TempDir
    static Path tmp;
    static Path root;
    static Path cache;
    static Path work;
    static Path image;
    static String infoWithoutCache;

    @BeforeAll
    static void checkout() throws IOException {
        root = LauncherCheckout.make(tmp.resolve("checkout"));
        cache = tmp.resolve("cache");
        work = Files.createDirectories(tmp.resolve("work"));
        image = Qemu.create(work, "disk.qcow2", "", "4M");
        Qemu.io(image, "write -P 0x3c 0 1M");
        Qemu.Result off = launch("off", null, "info", image.toString());
        assertThat(off.exit()).as(off.err()).isZero();
        assertThat(off.err()).isEmpty();
        infoWithoutCache = off.out();
        assertThat(infoWithoutCache).contains("file format: qcow2");
        assertThat(cache).doesNotExist();
    }

    /** Runs the launcher with QCOW2J_AOT=mode (null: unset) and, with classLog, the JVM's class-loading log. */
    private static Qemu.Result launch(String mode, Path classLog, String... args) {
        List<String> cmd = new ArrayList<>(List.of("env", "-u", "QCOW2J_AOT", "-u", "JDK_JAVA_OPTIONS",
                "-u", "JAVA_TOOL_OPTIONS", "XDG_CACHE_HOME=" + cache));
        if (mode != null) {
            cmd.add("QCOW2J_AOT=" + mode);
        }
        if (classLog != null) {
            cmd.add("JDK_JAVA_OPTIONS=-Xlog:class+load=info:file=" + classLog);
        }
        cmd.add(root.resolve("qcow2j").toString());
        cmd.addAll(Arrays.asList(args));
        return Qemu.exec(work, cmd.toArray(String[]::new));
    }

    /** The cache files (not the .ok stamps, locks or .failed markers) in the cache folder. */
    private static List<Path> cacheFiles() throws IOException {
        Path d = cache.resolve("qcow2j");
        if (!Files.isDirectory(d)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(d)) {
            return s.filter(p -> p.toString().endsWith(".aot") || p.toString().endsWith(".jsa")).sorted().toList();
        }
    }

    /** Runs info with the class log and says whether the CLI's main class came from the cache. */
    private static boolean mainFromCache(String mode) throws IOException {
        Path log = tmp.resolve("classes-" + System.nanoTime() + ".log");
        Qemu.Result r = launch(mode, log, "info", image.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).isEqualTo(infoWithoutCache);
        String main = Files.readAllLines(log).stream().filter(l -> l.contains(" io.qcow2j.cli.Main source:"))
                .findFirst().orElseThrow(() -> new AssertionError("io.qcow2j.cli.Main not in the class log " + log));
        return main.endsWith("source: shared objects file");
    }

    private static Set<Path> listing(Path d) throws IOException {
        try (Stream<Path> s = Files.walk(d)) {
            return new HashSet<>(s.toList());
        }
    }

    @Test
    void madeOnFirstUseReusedAfterDamagedOrStaleMadeAgainAndOffMeansOff() throws IOException {
        byte[] imageBefore = Files.readAllBytes(image);
        Set<Path> workBefore = listing(work);

        // first run: the training run makes the cache; the command's output is unchanged and nothing else
        Qemu.Result first = launch(null, null, "info", image.toString());
        assertThat(first.exit()).as(first.err()).isZero();
        assertThat(first.out()).isEqualTo(infoWithoutCache);
        assertThat(first.err()).isEmpty();
        List<Path> files = cacheFiles();
        assertThat(files).hasSize(1);
        Path file = files.get(0);
        assertThat(Path.of(file + ".ok")).isRegularFile();
        // the training worked on images of its own, never on the user's folder or image
        assertThat(listing(work)).isEqualTo(workBefore);
        assertThat(Files.readAllBytes(image)).isEqualTo(imageBefore);
        try (Stream<Path> s = Files.list(cache.resolve("qcow2j"))) {
            assertThat(s.filter(p -> p.getFileName().toString().startsWith("train."))).isEmpty();
        }

        // reused: the JVM maps it (classes from the "shared objects file") and it is not made again
        FileTime made = Files.getLastModifiedTime(file);
        Object inode = Files.getAttribute(file, "unix:ino");
        assertThat(mainFromCache(null)).isTrue();
        assertThat(cacheFiles()).containsExactly(file);
        assertThat(Files.getAttribute(file, "unix:ino")).isEqualTo(inode);
        assertThat(Files.getLastModifiedTime(file)).isEqualTo(made);
        Qemu.Result verbose = launch("verbose", null, "info", image.toString());
        assertThat(verbose.out()).isEqualTo(infoWithoutCache);
        assertThat(verbose.err()).isEqualTo("qcow2j: start-up cache: using " + file + "\n");

        // damaged in place (a partial overwrite: its stamp no longer matches): ignored and made again
        damage(file);
        assertThat(mainFromCache(null)).isTrue();
        assertThat(cacheFiles()).containsExactly(file);
        assertThat(Files.getAttribute(file, "unix:ino")).isNotEqualTo(inode);

        // damaged again, its mtime set back as `touch -r` would: the ctime still tells, it is made again (used
        // as it was, the JVM would crash on it: it checks a cache's header, not its body)
        inode = Files.getAttribute(file, "unix:ino");
        FileTime mtime = Files.getLastModifiedTime(file);
        damage(file);
        Files.setLastModifiedTime(file, mtime);
        assertThat(mainFromCache(null)).isTrue();
        assertThat(Files.getAttribute(file, "unix:ino")).isNotEqualTo(inode);
        Qemu.Result again = launch(null, null, "info", image.toString());
        assertThat(again.exit()).as(again.err()).isZero();
        assertThat(again.out()).isEqualTo(infoWithoutCache);
        assertThat(again.err()).isEmpty();

        // a file the JVM refuses (here: one made for other jars) is skipped, the command runs as without it
        Path other = tmp.resolve("other.aot");
        Files.copy(file, other);
        Files.setLastModifiedTime(root.resolve("cli/target/lib/io.qcow2j.engine.jar"),
                FileTime.from(Instant.now().plusSeconds(3)));
        assertThat(mainFromCache(null)).isTrue(); // a new key: made for the new jars
        Path current = cacheFiles().get(0);
        Files.copy(other, current, StandardCopyOption.REPLACE_EXISTING);
        // its stamp made to match, as the launcher would write it for this file
        Files.writeString(Path.of(current + ".ok"), Qemu.run(work, "stat", "-c", "%s %i %y %z", current.toString()));
        assertThat(mainFromCache(null)).isFalse();
        Qemu.Result refused = launch(null, null, "info", image.toString());
        assertThat(refused.exit()).as(refused.err()).isZero();
        assertThat(refused.out()).isEqualTo(infoWithoutCache);
        assertThat(refused.err()).isEmpty();
        file = current;

        // stale: a new build of the jar gives a new key; the new cache replaces the old one
        Files.setLastModifiedTime(root.resolve("cli/target/qcow2j-cli.jar"), FileTime.from(Instant.now().plusSeconds(5)));
        assertThat(mainFromCache(null)).isTrue();
        List<Path> after = cacheFiles();
        assertThat(after).hasSize(1).doesNotContain(file);
        assertThat(Path.of(file + ".ok")).doesNotExist();

        // off: not used, and not made when missing
        assertThat(mainFromCache("off")).isFalse();
        Files.delete(after.get(0));
        assertThat(mainFromCache("off")).isFalse();
        assertThat(cacheFiles()).isEmpty();

        assertThat(Files.readAllBytes(image)).isEqualTo(imageBefore);
    }

    /** Overwrites 64 KiB in the middle of the file with garbage in place, keeping its size. */
    private static void damage(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        byte[] junk = new byte[64 * 1024];
        new java.util.Random(7).nextBytes(junk);
        System.arraycopy(junk, 0, all, all.length / 2, junk.length);
        Files.write(file, all);
    }
}
