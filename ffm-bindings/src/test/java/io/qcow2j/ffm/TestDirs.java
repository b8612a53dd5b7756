package io.qcow2j.ffm;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Scratch folders on the two kinds of filesystem the bindings must work on: a disk filesystem (ext4 on the
 * development machine; {@code /tmp} may be tmpfs, so never there) and tmpfs ({@code /dev/shm}).
 */
final class TestDirs implements AutoCloseable {
    private final Path dir;

    private TestDirs(Path dir) {
        this.dir = dir;
    }

    Path dir() {
        return dir;
    }

    Path file(String name) {
        return dir.resolve(name);
    }

    /** A folder under {@code target/} (or {@code /var/tmp}) on a disk filesystem, never tmpfs. */
    static TestDirs disk() throws IOException {
        for (Path base : new Path[] {Path.of("target").toAbsolutePath(), Path.of("/var/tmp")}) {
            if (!Files.isDirectory(base)) {
                continue;
            }
            String type = storeType(base);
            if (!type.equals("tmpfs") && !type.equals("ramfs") && !type.equals("overlay")) {
                return new TestDirs(Files.createTempDirectory(base, "qcow2j-test-"));
            }
        }
        assumeTrue(false, "no disk filesystem for scratch files (target/ and /var/tmp are on tmpfs or overlay)");
        throw new AssertionError();
    }

    /** A folder {@code /dev/shm/qcow2j-test-*} on tmpfs. */
    static TestDirs shm() throws IOException {
        Path base = Path.of("/dev/shm");
        assumeTrue(Files.isDirectory(base) && storeType(base).equals("tmpfs"), "/dev/shm is not a tmpfs here");
        return new TestDirs(Files.createTempDirectory(base, "qcow2j-test-"));
    }

    static TestDirs of(String kind) throws IOException {
        return switch (kind) {
            case "disk" -> disk();
            case "shm" -> shm();
            default -> throw new IllegalArgumentException(kind);
        };
    }

    String storeType() throws IOException {
        return storeType(dir);
    }

    static String storeType(Path p) throws IOException {
        FileStore store = Files.getFileStore(p);
        return store.type();
    }

    @Override
    public void close() throws IOException {
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        }
    }
}
