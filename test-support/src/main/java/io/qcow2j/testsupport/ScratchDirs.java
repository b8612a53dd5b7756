package io.qcow2j.testsupport;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Scratch folders on a chosen file system, for tests whose behaviour depends on it: {@code tmpfs} gives a folder
 * under {@code /dev/shm}, anything else one under {@code target/} (the disk's file system, ext4 here). JUnit's
 * {@code @TempDir} cannot pick the file system. A test keeps one instance and calls {@link #deleteAll} after
 * each test: files left in {@code /dev/shm} would use the machine's memory.
 */
public final class ScratchDirs {
    private final List<Path> made = new ArrayList<>();

    /** A new empty folder on {@code fs} ({@code "tmpfs"} or the disk's), its name starting with {@code prefix}. */
    public Path create(String fs, String prefix) throws IOException {
        Path base = fs.equals("tmpfs") ? Path.of("/dev/shm") : Path.of("target").toAbsolutePath();
        Files.createDirectories(base);
        Path d = Files.createTempDirectory(base, prefix);
        made.add(d);
        return d;
    }

    /** Deletes every folder made so far, with what is in it. */
    public void deleteAll() throws IOException {
        for (Path d : made) {
            try (Stream<Path> s = Files.walk(d)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
        made.clear();
    }
}
