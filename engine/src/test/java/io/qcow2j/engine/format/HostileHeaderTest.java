package io.qcow2j.engine.format;

import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.BiFunction;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile headers: targeted corruptions of a real image, each of which must be refused with a one-line
 * {@link Qcow2FormatException} naming the field, and a seeded random fuzz of the first cluster that must
 * only ever parse or be refused that way.
 */
class HostileHeaderTest {
    @TempDir
    static Path dir;

    /**
     * A 64 KiB-cluster image with a backing file (so: backing format, feature name table, backing name) and
     * two snapshots. (With smaller clusters qemu-img leaves the feature name table out.)
     */
    static byte[] image;
    /** The same with 512-byte clusters and no extensions but the feature table. */
    static byte[] small;

    @BeforeAll
    static void makeImages() throws IOException {
        Qemu.create(dir, "base.qcow2", null, "1G");
        Path over = Qemu.create(dir, "over.qcow2", null, null, "-b", "base.qcow2", "-F", "qcow2");
        Qemu.io(over, "write -P 0xab 0 64k");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "snap1", "over.qcow2");
        Qemu.io(over, "write -P 0xcd 32k 64k");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "second snapshot", "over.qcow2");
        image = Files.readAllBytes(over);
        small = Files.readAllBytes(Qemu.create(dir, "small.qcow2", "cluster_size=512", "1G"));
        // Sanity: both parse as they are, and the layout the cases below poke at is as expected.
        Qcow2Header h = Qcow2Header.parse(image, image.length);
        assertThat(h.backingFileOffset()).isEqualTo(0x210);
        assertThat(be32(image, 0x70)).isEqualTo(HeaderExtensions.BACKING_FILE_FORMAT);
        assertThat(be32(image, 0x80)).isEqualTo(HeaderExtensions.FEATURE_NAME_TABLE);
        Qcow2Header.parse(small, small.length);
    }

    record Case(String name, byte[] base, BiFunction<ByteBuffer, Long, Long> mutate, String expected) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static Case c(String name, BiFunction<ByteBuffer, Long, Long> mutate, String expected) {
        return new Case(name, null, mutate, expected);
    }

    private static Case onSmall(String name, BiFunction<ByteBuffer, Long, Long> mutate, String expected) {
        return new Case(name, new byte[0], mutate, expected);
    }

    static Stream<Case> cases() {
        return Stream.of(
                c("bad magic", (b, n) -> { b.putInt(0, 0x514649fc); return n; }, "magic 0x514649fc"),
                c("text file", (b, n) -> { b.put(0, "hello wo".getBytes(StandardCharsets.US_ASCII)); return n; },
                        "magic 0x68656c6c"),
                c("version 4", (b, n) -> { b.putInt(4, 4); return n; }, "version 4 unsupported"),
                c("version 1", (b, n) -> { b.putInt(4, 1); return n; }, "version 1 unsupported"),
                c("cluster_bits 8", (b, n) -> { b.putInt(20, 8); return n; }, "cluster_bits 8 out of range (9..21)"),
                c("cluster_bits 22", (b, n) -> { b.putInt(20, 22); return n; }, "cluster_bits 22 out of range"),
                c("cluster_bits -1", (b, n) -> { b.putInt(20, -1); return n; }, "cluster_bits 4294967295 out of range"),
                c("header_length 96", (b, n) -> { b.putInt(100, 96); return n; }, "header_length 96 too small"),
                c("header_length 108", (b, n) -> { b.putInt(100, 108); return n; },
                        "header_length 108 not a multiple of 8"),
                c("header_length 131072", (b, n) -> { b.putInt(100, 131072); return n; },
                        "header_length 131072 exceeds the cluster size 65536"),
                c("l1_table_offset unaligned", (b, n) -> { b.putLong(40, b.getLong(40) + 512); return n; },
                        "l1_table_offset 0x"),
                c("l1_table_offset past EOF", (b, n) -> { b.putLong(40, 1L << 40); return n; },
                        "l1_table_offset 0x10000000000: the L1 table"),
                c("l1_table_offset negative", (b, n) -> { b.putLong(40, -4096); return n; },
                        "l1_table_offset 0xfffffffffffff000 invalid"),
                c("l1_table_offset 0", (b, n) -> { b.putLong(40, 0); return n; }, "l1_table_offset 0 puts"),
                c("huge l1_size", (b, n) -> { b.putInt(36, 0x0100_0000); return n; }, "l1_size 16777216 too large"),
                c("l1_size too small", (b, n) -> { b.putInt(36, 1); return n; }, "l1_size 1 too small for size"),
                c("refcount table past EOF", (b, n) -> { b.putLong(48, 0x4000_0000L); return n; },
                        "refcount_table_offset 0x40000000"),
                c("refcount table unaligned", (b, n) -> { b.putLong(48, 0x10008); return n; },
                        "refcount_table_offset 0x10008 not aligned"),
                c("refcount_table_clusters 0", (b, n) -> { b.putInt(56, 0); return n; }, "refcount_table_clusters 0"),
                c("refcount_table_clusters huge", (b, n) -> { b.putInt(56, 4096); return n; },
                        "refcount_table_clusters 4096 too large"),
                c("nb_snapshots 70000", (b, n) -> { b.putInt(60, 70000); return n; }, "nb_snapshots 70000 too large"),
                c("snapshots_offset unaligned", (b, n) -> { b.putLong(64, b.getLong(64) + 8); return n; },
                        "snapshots_offset 0x"),
                c("snapshot table past EOF", (b, n) -> { b.putInt(60, 60000); return n; },
                        "snapshots_offset 0x"),
                c("refcount_order 7", (b, n) -> { b.putInt(96, 7); return n; }, "refcount_order 7 out of range (0..6)"),
                c("unknown incompatible bit 10", (b, n) -> { b.putLong(72, 1L << 10); return n; },
                        "incompatible_features 0x400 has unknown bit 10:"),
                c("unknown bits named by the table", (b, n) -> {
                    b.put(0x89, (byte) 10); // first feature table entry ("dirty bit") now names bit 10
                    b.putLong(72, (1L << 10) | (1L << 63));
                    return n;
                }, "has unknown bits 10 (\"dirty bit\"), 63:"),
                c("crypt_method AES", (b, n) -> { b.putInt(32, 1); return n; },
                        "crypt_method 1 (AES): encrypted images are not supported"),
                c("crypt_method LUKS", (b, n) -> { b.putInt(32, 2); return n; },
                        "crypt_method 2 (LUKS): encrypted images are not supported"),
                c("compression_type 2", (b, n) -> { b.put(104, (byte) 2); return n; }, "compression_type 2 unknown"),
                c("zstd without its bit", (b, n) -> { b.put(104, (byte) 1); return n; },
                        "compression_type 1 (zstd) without incompatible_features bit 3"),
                c("compression bit with zlib", (b, n) -> { b.putLong(72, 8); return n; },
                        "incompatible_features bit 3 (compression type) set with compression_type 0"),
                onSmall("extended L2 with 512-byte clusters", (b, n) -> { b.putLong(72, 16); return n; },
                        "cluster_bits 9 too small for extended L2"),
                c("size negative", (b, n) -> { b.putLong(24, -512); return n; }, "size 18446744073709551104 too large"),
                c("size beyond the L1 table", (b, n) -> { b.putLong(24, 1L << 50); return n; }, "l1_size 2 too small"),
                c("raw data file without data file", (b, n) -> { b.putLong(88, 2); return n; },
                        "autoclear_features 0x2 has bit 1 (raw external data)"),
                c("extension length overflows the cluster", (b, n) -> { b.putInt(0x74, 0x10000); return n; },
                        "length 65536 runs past the end of the extension area"),
                c("extension length 2^32-1", (b, n) -> { b.putInt(0x84, -1); return n; },
                        "length 4294967295 runs past"),
                c("extension length past the backing name", (b, n) -> { b.putInt(0x84, 0x190); return n; },
                        "length 400 runs past the end of the extension area at 0x210"),
                c("backing format too long", (b, n) -> { b.putInt(0x74, 16); return n; },
                        "backing file format extension: length 16 too long"),
                c("full disk encryption extension", (b, n) -> { b.putInt(0x70, HeaderExtensions.FULL_DISK_ENCRYPTION); return n; },
                        "0x0537be77 (full disk encryption header) at offset 0x70: encrypted images are not supported"),
                c("bitmaps extension of wrong length", (b, n) -> {
                    b.putInt(0x70, HeaderExtensions.BITMAPS);
                    b.putLong(88, 1);
                    return n;
                }, "bitmaps extension: length 5 invalid"),
                c("70000 bitmaps", (b, n) -> bitmapsExtension(b, n, 70000, 1024, 0x30000),
                        "nb_bitmaps 70000 too large (max 65535)"),
                c("bitmap directory of 1 GiB", (b, n) -> bitmapsExtension(b, n, 1, 1L << 30, 0x30000),
                        "bitmap_directory_size 1073741824 too large (max 67107840)"),
                c("1100 empty unknown extensions", (b, n) -> {
                    b.putLong(8, 0);
                    b.putInt(16, 0);
                    for (int i = 0; i < 1100; i++) {
                        b.putInt(0x70 + 8 * i, 0x12345678);
                        b.putInt(0x74 + 8 * i, 0);
                    }
                    return n;
                }, "more than 1024 header extensions (at offset 0x2070)"),
                c("backing name length 2000", (b, n) -> { b.putInt(16, 2000); return n; },
                        "backing_file_size 2000 too long"),
                c("backing name past the cluster", (b, n) -> { b.putLong(8, 65500); b.putInt(16, 200); return n; },
                        "backing_file_size 200 too long (max 36"),
                c("backing_file_offset beyond the cluster", (b, n) -> { b.putLong(8, 0x20000); return n; },
                        "backing_file_offset 0x20000 beyond the first cluster"),
                c("backing_file_offset inside the header", (b, n) -> { b.putLong(8, 64); return n; },
                        "backing_file_offset 0x40 overlaps the header"),
                c("truncated to 50 bytes", (b, n) -> 50L, "file size 50 shorter than the 104-byte version 3 header"),
                c("truncated to 4 bytes", (b, n) -> 4L, "file size 4 too small"),
                c("empty file", (b, n) -> 0L, "file size 0 too small"),
                c("truncated to 1000 bytes", (b, n) -> 1000L, "extends past end of file (size 1000)"),
                c("version 2 truncated", (b, n) -> { b.putInt(4, 2); return 60L; },
                        "file size 60 shorter than the 72-byte version 2 header"),
                onSmall("header_length beyond a 512-byte cluster", (b, n) -> { b.putInt(100, 1024); return n; },
                        "header_length 1024 exceeds the cluster size 512"),
                c("extension header cut by the backing name", (b, n) -> {
                    // The feature table ends at 0x208, where the end record starts: cut it in half.
                    b.putLong(8, 0x20c);
                    return n;
                }, "at offset 0x208: its 8-byte type and length run past the end of the extension area at 0x20c"),
                onSmall("unknown extension running past a 512-byte cluster", (b, n) -> {
                    b.putInt(0x70, 0x12345678);
                    b.putInt(0x74, 512 - 0x78 + 1);
                    return n;
                }, "extension 0x12345678 at offset 0x70: length 393 runs past the end of the extension area at 0x200"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void refusedWithOneLineNamingTheField(Case c) {
        byte[] base = c.base() == null ? image : small;
        byte[] bytes = base.clone();
        long size = c.mutate().apply(ByteBuffer.wrap(bytes), (long) bytes.length);
        byte[] head = Arrays.copyOf(bytes, (int) Math.min(size, bytes.length));
        assertThatThrownBy(() -> Qcow2Header.parse(head, size))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessageContaining(c.expected())
                .hasMessageStartingWith("qcow2 ")
                .message().doesNotContain("\n", "\r");
    }

    @Test
    void featureNamesWithControlCharactersStayOnOneLine() {
        byte[] bytes = image.clone();
        ByteBuffer b = ByteBuffer.wrap(bytes);
        b.put(0x89, (byte) 9);
        b.put(0x8a, "evil\nname\r\"x\"\u2028".getBytes(StandardCharsets.UTF_8));
        b.putLong(72, 1L << 9);
        assertThatThrownBy(() -> Qcow2Header.parse(bytes, bytes.length))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessageContaining("bit 9 (\"evil\\x0aname\\x0d\\\"x\\\"\\u2028\")")
                .message().doesNotContain("\n", "\r");
    }

    @Test
    void headIsNeededUpToTheClusterSize() {
        assertThatThrownBy(() -> Qcow2Header.parse(Arrays.copyOf(image, 512), image.length))
                .isInstanceOf(IllegalArgumentException.class);
    }

    /**
     * Random byte flips and field overwrites in the first cluster (and sometimes a wrong file size): the
     * parser must either accept the image or throw a one-line {@link Qcow2FormatException}. Whatever it
     * accepts, the snapshot table and L1 table are parsed too, so their bounds checks are fuzzed along.
     */
    @Test
    void fuzzFirstCluster() {
        int[] outcome = new int[2];
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Random rnd = new Random(0x9c0f2L);
            int clusterSize = 65536;
            int[] fields = {0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 68, 72, 76, 80, 84,
                88, 92, 96, 100, 104, 0x70, 0x74, 0x80, 0x84, 0x208, 0x20c};
            long[] interesting = {0, 1, 2, 3, 7, 8, 9, 16, 21, 22, 64, 72, 104, 112, 511, 512, 4096, 65536,
                0x7fff_ffffL, 0x8000_0000L, 0xffff_ffffL};
            for (int iter = 0; iter < 2000; iter++) {
                byte[] file = image.clone();
                long fileSize = file.length;
                int ops = 1 + rnd.nextInt(6);
                for (int op = 0; op < ops; op++) {
                    int kind = rnd.nextInt(100);
                    if (kind < 45) {
                        file[rnd.nextInt(0x300)] ^= (byte) (1 << rnd.nextInt(8));
                    } else if (kind < 75) {
                        int at = fields[rnd.nextInt(fields.length)];
                        long v = rnd.nextBoolean() ? interesting[rnd.nextInt(interesting.length)] : rnd.nextLong();
                        ByteBuffer.wrap(file).putInt(at, (int) v);
                    } else if (kind < 92) {
                        file[rnd.nextInt(clusterSize)] = (byte) rnd.nextInt(256);
                    } else {
                        fileSize = rnd.nextInt(file.length * 2 + 1);
                    }
                }
                // The head is what a reader would get: the file's first bytes, up to 2 MiB (zeros past the
                // real bytes stand for a file that is longer than the image we started from).
                byte[] head = Arrays.copyOf(file, (int) Math.min(fileSize, 1 << 21));
                try {
                    Qcow2Header h = Qcow2Header.parse(head, fileSize);
                    exercise(h, file, fileSize);
                    outcome[0]++;
                } catch (Qcow2FormatException e) {
                    assertThat(e.getMessage()).as("iteration %d", iter).startsWith("qcow2 ").doesNotContain("\n", "\r");
                    outcome[1]++;
                } catch (Throwable t) {
                    throw new AssertionError("iteration " + iter + ": " + t, t);
                }
            }
        });
        // Both outcomes must be common, or the fuzz is not exploring much.
        assertThat(outcome[0]).as("accepted").isGreaterThan(100);
        assertThat(outcome[1]).as("refused").isGreaterThan(500);
    }

    /** Random damage to the snapshot table of an otherwise valid image. */
    @Test
    void fuzzSnapshotTable() throws Qcow2FormatException {
        Qcow2Header h = Qcow2Header.parse(image, image.length);
        int start = (int) h.snapshotsOffset();
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            Random rnd = new Random(0x5a17L);
            for (int iter = 0; iter < 2000; iter++) {
                byte[] file = image.clone();
                for (int op = 1 + rnd.nextInt(4); op > 0; op--) {
                    int at = start + rnd.nextInt(Math.min(200, file.length - start));
                    file[at] = (byte) (rnd.nextInt(4) == 0 ? 0xff : rnd.nextInt(256));
                }
                int end = rnd.nextInt(4) == 0 ? start + rnd.nextInt(file.length - start + 1) : file.length;
                try {
                    List<Qcow2Snapshot> list = SnapshotTable.parse(
                            MemorySegment.ofArray(file).asSlice(start, end - start), h);
                    assertThat(list).hasSize(2);
                } catch (Qcow2FormatException e) {
                    assertThat(e.getMessage()).startsWith("qcow2 snapshot table: ").doesNotContain("\n", "\r");
                } catch (Throwable t) {
                    throw new AssertionError("iteration " + iter + ": " + t, t);
                }
            }
        });
    }

    /** The header's first extension made a consistent bitmaps extension with these fields, then the end. */
    private static long bitmapsExtension(ByteBuffer b, long n, int count, long dirSize, long dirOffset) {
        b.putLong(8, 0); // no backing name in the way
        b.putInt(16, 0);
        b.putLong(88, 1); // autoclear: bitmaps consistent
        b.putInt(0x70, HeaderExtensions.BITMAPS).putInt(0x74, 24);
        b.putInt(0x78, count).putInt(0x7c, 0).putLong(0x80, dirSize).putLong(0x88, dirOffset);
        b.putLong(0x90, 0); // end of the extensions
        return n;
    }

    private static void exercise(Qcow2Header h, byte[] file, long fileSize) throws Qcow2FormatException {
        Geometry g = h.geometry();
        assertThat(h.l1Size()).isGreaterThanOrEqualTo(g.l1EntriesFor(h.size()));
        assertThat(h.l1TableOffset() + h.l1Size() * 8).isLessThanOrEqualTo(fileSize);
        long available = Math.min(fileSize, file.length);
        MemorySegment all = MemorySegment.ofArray(file).asSlice(0, available);
        if (h.nbSnapshots() > 0 && h.snapshotsOffset() < available) {
            try {
                for (Qcow2Snapshot s : SnapshotTable.parse(all.asSlice(h.snapshotsOffset()), h)) {
                    s.checkL1Table(h, fileSize);
                }
            } catch (Qcow2FormatException expected) {
                assertThat(expected.getMessage()).doesNotContain("\n");
            }
        }
        long l1End = Math.min(h.l1TableOffset() + h.l1Size() * 8, available);
        for (long off = h.l1TableOffset(), i = 0; off + 8 <= l1End; off += 8, i++) {
            try {
                L1Entry.checkedL2Offset(all.get(Be.U64, off), i, g);
            } catch (Qcow2FormatException expected) {
                assertThat(expected.getMessage()).doesNotContain("\n");
            }
        }
    }

    private static int be32(byte[] b, int off) {
        return ByteBuffer.wrap(b).getInt(off);
    }
}
