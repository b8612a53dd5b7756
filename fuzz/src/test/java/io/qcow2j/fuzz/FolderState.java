package io.qcow2j.fuzz;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What a fuzz target's private folder holds: for every file (symlinks not followed) its size, modification time
 * and SHA-256. Taken before a phase and compared after it, it shows a write outside the file the phase may
 * write: a file changed, made or removed.
 */
record FolderState(Map<String, String> files) {
    /** The state of {@code dir}, leaving out {@code writable} (the file a phase opens read/write). */
    static FolderState of(Path dir, Path writable) throws IOException {
        Map<String, String> m = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path f : s.filter(f -> !f.equals(dir) && !f.equals(writable)).toList()) {
                BasicFileAttributes a = Files.readAttributes(f, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                String hash = a.isRegularFile() ? sha256(Files.readAllBytes(f)) : a.isDirectory() ? "dir" : "other";
                m.put(dir.relativize(f).toString(), a.size() + " bytes, mtime " + a.lastModifiedTime() + ", " + hash);
            }
        }
        return new FolderState(m);
    }

    /** Fails unless {@code dir} (less {@code writable}) is as it was: names what changed after {@code phase}. */
    void requireSame(Path dir, Path writable, String phase) throws IOException {
        Map<String, String> expected = new TreeMap<>(files);
        if (writable != null) {
            expected.remove(dir.relativize(writable).toString());
        }
        Map<String, String> now = of(dir, writable).files();
        Outcomes.require(now.equals(expected), phase + " wrote outside the image: before " + expected + ", after " + now);
    }

    /** Empties {@code dir} but for {@code keep}, and gives {@code keep} the content {@code bytes} if it differs. */
    static void reset(Path dir, Path keep, byte[] bytes) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            for (Path f : s.filter(f -> !f.equals(keep)).toList()) {
                if (Files.isDirectory(f, LinkOption.NOFOLLOW_LINKS)) {
                    try (Stream<Path> w = Files.walk(f)) {
                        for (Path x : w.sorted(java.util.Comparator.reverseOrder()).toList()) {
                            Files.delete(x);
                        }
                    }
                } else {
                    Files.delete(f);
                }
            }
        }
        if (!Files.isRegularFile(keep, LinkOption.NOFOLLOW_LINKS) || !java.util.Arrays.equals(Files.readAllBytes(keep), bytes)) {
            Files.deleteIfExists(keep);
            Files.write(keep, bytes);
        }
    }

    private static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
