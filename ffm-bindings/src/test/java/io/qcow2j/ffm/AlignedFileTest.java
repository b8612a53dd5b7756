package io.qcow2j.ffm;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.nio.file.StandardOpenOption.CREATE;
import static java.nio.file.StandardOpenOption.CREATE_NEW;
import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.TRUNCATE_EXISTING;
import static java.nio.file.StandardOpenOption.WRITE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

class AlignedFileTest {
    private static final int KIB = 1024;
    private static final int MIB = 1024 * 1024;

    private final List<TestDirs> dirs = new ArrayList<>();

    private TestDirs dirs(String kind) throws IOException {
        TestDirs d = TestDirs.of(kind);
        dirs.add(d);
        return d;
    }

    @AfterEach
    void tearDown() throws IOException {
        for (TestDirs d : dirs) {
            d.close();
        }
    }

    private static byte[] random(long seed, int n) {
        byte[] b = new byte[n];
        new SplittableRandom(seed).nextBytes(b);
        return b;
    }

    /** Refuses O_DIRECT the way a filesystem without direct I/O does; opens normally otherwise. */
    static final class RefusingOpener implements AlignedFile.Opener {
        final List<Integer> flagsSeen = new ArrayList<>();
        final boolean createBeforeRefusing;

        RefusingOpener(boolean createBeforeRefusing) {
            this.createBeforeRefusing = createBeforeRefusing;
        }

        @Override
        public int open(String path, int flags, int mode) throws ErrnoException {
            flagsSeen.add(flags);
            if ((flags & Platform.O_DIRECT) != 0) {
                if (createBeforeRefusing && (flags & Platform.O_CREAT) != 0) {
                    // As Linux does on such a filesystem: the file is created, then the open fails.
                    LibC.close(LibC.open(path, flags & ~Platform.O_DIRECT, mode));
                }
                throw new ErrnoException("open(" + path + ", O_DIRECT)", Errno.EINVAL);
            }
            return LibC.open(path, flags, mode);
        }
    }

    // ---------------------------------------------------------------------------------------------- O_DIRECT

    @ParameterizedTest
    @ValueSource(strings = {"disk", "shm"})
    void alignedRoundTripThroughADirectFileReadsBackBuffered(String kind) throws Exception {
        Path file = dirs(kind).file("image");
        byte[] first = random(1, MIB);
        byte[] second = random(2, 256 * KIB);
        try (AlignedFile direct = AlignedFile.open(file, IoMode.DIRECT, CREATE_NEW, READ, WRITE);
                Arena arena = Arena.ofConfined()) {
            assertThat(direct.isDirect()).isTrue();
            assertThat(direct.fallbackReason()).isNull();
            assertThat(LibCTest.kernelFlags(direct.fd()) & Platform.O_DIRECT).isEqualTo(Platform.O_DIRECT);
            assertThat(Integer.bitCount(direct.alignment())).isEqualTo(1);
            assertThat(direct.alignment()).isBetween(512, 4096);
            assertThat(Integer.bitCount(direct.memoryAlignment())).isEqualTo(1);

            MemorySegment buf = arena.allocate(MIB, 4096);
            buf.copyFrom(MemorySegment.ofArray(first));
            direct.write(0, buf);
            buf.asSlice(0, second.length).copyFrom(MemorySegment.ofArray(second));
            direct.write(2 * MIB, buf.asSlice(0, second.length));
            direct.dataSync();
            assertThat(direct.size()).isEqualTo(2 * MIB + second.length);

            MemorySegment back = arena.allocate(MIB, 4096);
            direct.readFully(0, back);
            assertThat(back.toArray(JAVA_BYTE)).isEqualTo(first);
            back.fill((byte) 1);
            direct.readFully(MIB, back); // the gap between the writes is a hole
            assertThat(back.toArray(JAVA_BYTE)).containsOnly(0);
        }
        try (AlignedFile buffered = AlignedFile.open(file, IoMode.BUFFERED, READ)) {
            assertThat(buffered.isDirect()).isFalse();
            assertThat(buffered.alignment()).isEqualTo(1);
            assertThat(LibCTest.kernelFlags(buffered.fd()) & Platform.O_DIRECT).isZero();
            byte[] all = new byte[(int) buffered.size()];
            buffered.readFully(0, MemorySegment.ofArray(all));
            assertThat(Arrays.copyOfRange(all, 0, MIB)).isEqualTo(first);
            assertThat(Arrays.copyOfRange(all, MIB, 2 * MIB)).containsOnly(0);
            assertThat(Arrays.copyOfRange(all, 2 * MIB, all.length)).isEqualTo(second);
        }
        assertThat(Files.size(file)).isEqualTo(2 * MIB + second.length);
    }

    /** A source or destination segment of one of the shapes callers pass. */
    private static MemorySegment segment(SplittableRandom rnd, Arena arena, int length) {
        return switch (rnd.nextInt(4)) {
            case 0 -> arena.allocate(Math.max(length, 1), 4096).asSlice(0, length); // aligned native
            case 1 -> arena.allocate(length + 64, 8).asSlice(1 + rnd.nextInt(63), length); // misaligned native
            case 2 -> MemorySegment.ofArray(new byte[length]); // heap
            default -> MemorySegment.ofArray(new byte[length + 16]).asSlice(rnd.nextInt(16), length); // heap slice
        };
    }

    private static long offset(SplittableRandom rnd, long size, int align) {
        return switch (rnd.nextInt(6)) {
            case 0 -> size; // append
            case 1 -> Math.max(0, size - rnd.nextInt(1, 3 * align)); // at or across end of file
            case 2 -> rnd.nextLong(0, Math.max(size, 1) + 3L * align); // past the end too
            case 3 -> (long) rnd.nextInt(0, 40) * align; // aligned
            case 4 -> Math.max(0, (long) rnd.nextInt(1, 40) * align + rnd.nextInt(-3, 4)); // near a boundary
            default -> rnd.nextLong(0, Math.max(size, 1));
        };
    }

    private static int length(SplittableRandom rnd, int align) {
        return switch (rnd.nextInt(6)) {
            case 0 -> rnd.nextInt(0, 4);
            case 1 -> align * rnd.nextInt(1, 5); // aligned
            case 2 -> align * rnd.nextInt(1, 5) + rnd.nextInt(-3, 4);
            case 3 -> rnd.nextInt(1, align);
            default -> rnd.nextInt(0, 5 * align);
        };
    }

    /**
     * Unaligned reads and writes through a direct file (bounce buffers, read-modify-write, cut back to the
     * true end) give the same results, file content and size as the same calls on a buffered file.
     */
    @ParameterizedTest
    @ValueSource(strings = {"disk", "shm"})
    void unalignedDirectIoBehavesExactlyLikeBufferedIo(String kind) throws Exception {
        TestDirs d = dirs(kind);
        for (int initial : new int[] {0, 1, 4096, 10_000, 70_001}) {
            Path dPath = d.file("direct-" + initial);
            Path bPath = d.file("buffered-" + initial);
            byte[] content = random(initial, initial);
            Files.write(dPath, content);
            Files.write(bPath, content);
            SplittableRandom rnd = new SplittableRandom(0xD1EC7L + initial);
            try (AlignedFile direct = AlignedFile.open(dPath, IoMode.DIRECT, READ, WRITE);
                    AlignedFile buffered = AlignedFile.open(bPath, IoMode.BUFFERED, READ, WRITE);
                    Arena arena = Arena.ofConfined()) {
                assertThat(direct.isDirect()).isTrue();
                int align = direct.alignment();
                for (int op = 0; op < 300; op++) {
                    long size = buffered.size();
                    long offset = offset(rnd, size, align);
                    int length = length(rnd, align);
                    String what = kind + " initial=" + initial + " op " + op + ": " + length + " bytes at " + offset
                            + " (size " + size + ")";
                    int choice = rnd.nextInt(10);
                    if (choice < 5) {
                        MemorySegment src = segment(rnd, arena, length);
                        src.copyFrom(MemorySegment.ofArray(random(rnd.nextLong(), length)));
                        direct.write(offset, src);
                        buffered.write(offset, src);
                        assertThat(direct.size()).as("size after write of " + what).isEqualTo(buffered.size());
                    } else if (choice < 9) {
                        MemorySegment dd = segment(rnd, arena, length);
                        MemorySegment bd = MemorySegment.ofArray(new byte[length]);
                        dd.fill((byte) 0xEE);
                        bd.fill((byte) 0xEE);
                        long dn = direct.read(offset, dd);
                        long bn = buffered.read(offset, bd);
                        assertThat(dn).as("count of read of " + what).isEqualTo(bn);
                        assertThat(dd.mismatch(bd)).as("bytes of read of " + what).isEqualTo(-1);
                    } else {
                        long newSize = Math.max(0, size + rnd.nextInt(-5000, 5000));
                        direct.truncate(newSize);
                        buffered.truncate(newSize);
                    }
                }
                assertThat(direct.size()).isEqualTo(buffered.size());
            }
            assertThat(Files.size(dPath)).isEqualTo(Files.size(bPath));
            assertThat(Files.mismatch(dPath, bPath)).as("first differing byte, initial size " + initial)
                    .isEqualTo(-1);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"disk", "shm"})
    void emptyWritesAndReadsPastTheEndChangeNothing(String kind) throws Exception {
        Path file = dirs(kind).file("f");
        Files.write(file, random(3, 5000));
        for (IoMode mode : IoMode.values()) {
            try (AlignedFile f = AlignedFile.open(file, mode, READ, WRITE)) {
                f.write(10_001, MemorySegment.ofArray(new byte[0]));
                f.write(4097, MemorySegment.ofArray(new byte[0]));
                assertThat(f.read(20_003, MemorySegment.ofArray(new byte[100]))).isZero();
                assertThat(f.read(5000, MemorySegment.ofArray(new byte[0]))).isZero();
                assertThat(f.size()).as(mode.toString()).isEqualTo(5000);
            }
        }
        assertThat(Files.readAllBytes(file)).isEqualTo(random(3, 5000));
    }

    @ParameterizedTest
    @ValueSource(strings = {"disk", "shm"})
    void heapSegmentsWorkForBufferedAndDirectFiles(String kind) throws Exception {
        TestDirs d = dirs(kind);
        for (IoMode mode : new IoMode[] {IoMode.BUFFERED, IoMode.DIRECT}) {
            Path file = d.file("heap-" + mode);
            byte[] data = random(4, 3 * MIB + 777);
            try (AlignedFile f = AlignedFile.open(file, mode, CREATE_NEW, READ, WRITE)) {
                assertThat(f.isDirect()).isEqualTo(mode == IoMode.DIRECT);
                f.write(0, MemorySegment.ofArray(data)); // aligned offset, unaligned length
                f.write(5, MemorySegment.ofArray(new long[] {-1L})); // unaligned, inside the first block
                byte[] back = new byte[data.length];
                f.readFully(0, MemorySegment.ofArray(back));
                byte[] expected = data.clone();
                Arrays.fill(expected, 5, 13, (byte) -1);
                assertThat(back).isEqualTo(expected);
                long[] longs = new long[2];
                f.readFully(4096, MemorySegment.ofArray(longs)); // aligned offset, heap destination
                assertThat(MemorySegment.ofArray(longs).toArray(JAVA_BYTE))
                        .isEqualTo(Arrays.copyOfRange(data, 4096, 4112));
            }
            assertThat(Files.readAllBytes(file)).hasSize(data.length);
        }
    }

    // ---------------------------------------------------------------------------------- refusal and fallback

    @Test
    void directModeRefusedByTheFilesystemIsAClearError() throws Exception {
        Path file = dirs("disk").file("refused");
        Files.write(file, new byte[4096]);
        RefusingOpener opener = new RefusingOpener(false);
        assertThatThrownBy(() -> AlignedFile.open(file, IoMode.DIRECT, opener, READ, WRITE))
                .isInstanceOf(IOException.class)
                .hasMessageContaining(file.toString())
                .hasMessageContaining("direct I/O")
                .hasMessageContaining("EINVAL");
        assertThat(opener.flagsSeen).hasSize(1);
    }

    @Test
    void directOrBufferedFallsBackAndSaysWhy() throws Exception {
        Path file = dirs("disk").file("fallback");
        RefusingOpener opener = new RefusingOpener(false);
        try (AlignedFile f = AlignedFile.open(file, IoMode.DIRECT_OR_BUFFERED, opener, CREATE_NEW, READ, WRITE)) {
            assertThat(f.isDirect()).isFalse();
            assertThat(f.alignment()).isEqualTo(1);
            assertThat(f.fallbackReason()).isNotNull().contains("O_DIRECT").contains("EINVAL")
                    .contains(file.toString());
            assertThat(LibCTest.kernelFlags(f.fd()) & Platform.O_DIRECT).isZero();
            f.write(3, MemorySegment.ofArray(new byte[] {1, 2, 3}));
            byte[] back = new byte[6];
            f.readFully(0, MemorySegment.ofArray(back));
            assertThat(back).containsExactly(0, 0, 0, 1, 2, 3);
        }
        assertThat(opener.flagsSeen).hasSize(2);
        assertThat(opener.flagsSeen.get(0) & Platform.O_DIRECT).isNotZero();
        assertThat(opener.flagsSeen.get(1) & Platform.O_DIRECT).isZero();
    }

    /** On a filesystem that creates the file before refusing O_DIRECT, the fallback must not hit EEXIST. */
    @Test
    void fallbackAfterARefusalThatCreatedTheFileStillOpensIt() throws Exception {
        Path file = dirs("disk").file("created-then-refused");
        RefusingOpener opener = new RefusingOpener(true);
        try (AlignedFile f = AlignedFile.open(file, IoMode.DIRECT_OR_BUFFERED, opener, CREATE_NEW, READ, WRITE)) {
            assertThat(f.isDirect()).isFalse();
            assertThat(f.fallbackReason()).isNotNull();
        }
        // CREATE_NEW keeps its meaning for a file that existed before.
        assertThatThrownBy(() -> AlignedFile.open(file, IoMode.DIRECT_OR_BUFFERED, opener, CREATE_NEW, READ, WRITE))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EEXIST));
    }

    @Test
    void otherOpenErrorsAreNotMistakenForARefusal() throws Exception {
        Path missing = dirs("disk").file("missing");
        for (IoMode mode : IoMode.values()) {
            assertThatThrownBy(() -> AlignedFile.open(missing, mode, READ))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENOENT))
                    .hasMessageContaining("open(")
                    .hasMessageContaining(missing.toString())
                    .hasMessageContaining("ENOENT")
                    .hasMessageContaining("No such file or directory");
        }
    }

    @Test
    void bufferedModeNeverAsksForDirectIo() throws Exception {
        Path file = dirs("disk").file("buffered");
        RefusingOpener opener = new RefusingOpener(false);
        try (AlignedFile f = AlignedFile.open(file, IoMode.BUFFERED, opener, CREATE, READ, WRITE)) {
            assertThat(f.isDirect()).isFalse();
            assertThat(f.fallbackReason()).isNull();
        }
        assertThat(opener.flagsSeen).hasSize(1).allMatch(flags -> (flags & Platform.O_DIRECT) == 0);
    }

    @Test
    void procfsRefusesDirectIoForReal() throws Exception {
        Path status = Path.of("/proc/self/status");
        assertThatThrownBy(() -> LibC.open(status.toString(), Platform.O_RDONLY | Platform.O_DIRECT, 0))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
        assertThatThrownBy(() -> AlignedFile.open(status, IoMode.DIRECT, READ))
                .isInstanceOf(IOException.class)
                .hasMessageContaining(status.toString())
                .hasMessageContaining("direct I/O");
        try (AlignedFile f = AlignedFile.open(status, IoMode.DIRECT_OR_BUFFERED, READ)) {
            assertThat(f.isDirect()).isFalse();
            assertThat(f.fallbackReason()).contains("O_DIRECT");
            byte[] head = new byte[5];
            assertThat(f.read(0, MemorySegment.ofArray(head))).isEqualTo(5);
            assertThat(new String(head)).isEqualTo("Name:");
        }
    }

    // ------------------------------------------------------------------------------------- short reads, state

    @ParameterizedTest
    @EnumSource(value = IoMode.class, names = {"BUFFERED", "DIRECT"})
    void readsAtTheEndOfFileAreShortAndReadFullySaysSo(IoMode mode) throws Exception {
        Path file = dirs("disk").file("short");
        byte[] data = random(5, 10_000);
        Files.write(file, data);
        try (AlignedFile f = AlignedFile.open(file, mode, READ); Arena arena = Arena.ofConfined()) {
            MemorySegment aligned = arena.allocate(8192, 4096);
            assertThat(f.read(8192, aligned.asSlice(0, 4096))).isEqualTo(10_000 - 8192);
            assertThat(aligned.asSlice(0, 10_000 - 8192).toArray(JAVA_BYTE))
                    .isEqualTo(Arrays.copyOfRange(data, 8192, 10_000));
            assertThat(f.read(0, aligned)).isEqualTo(8192);
            assertThat(f.read(4096, aligned)).isEqualTo(10_000 - 4096);
            assertThat(f.read(9000, aligned.asSlice(0, 4096))).isEqualTo(1000);
            assertThat(f.read(10_000, aligned.asSlice(0, 4096))).isZero();
            assertThat(f.read(12_288, aligned.asSlice(0, 4096))).isZero();
            assertThat(f.read(1 << 30, aligned.asSlice(0, 4096))).isZero();
            assertThatThrownBy(() -> f.readFully(8192, aligned.asSlice(0, 4096)))
                    .isInstanceOf(EOFException.class)
                    .hasMessageContaining(file.toString())
                    .hasMessageContaining("4096 bytes at 8192")
                    .hasMessageContaining("after 1808 bytes");
            assertThatThrownBy(() -> f.readFully(20_000, MemorySegment.ofArray(new byte[3])))
                    .isInstanceOf(EOFException.class);
            f.readFully(9997, MemorySegment.ofArray(new byte[3]));
        }
    }

    @Test
    void closedAndReadOnlyFilesRefuseWithIoExceptions() throws Exception {
        Path file = dirs("disk").file("state");
        Files.write(file, new byte[100]);
        AlignedFile f = AlignedFile.open(file, IoMode.BUFFERED, READ);
        assertThat(f.isWritable()).isFalse();
        assertThatThrownBy(() -> f.write(0, MemorySegment.ofArray(new byte[1])))
                .isInstanceOf(IOException.class).hasMessageContaining("read-only");
        assertThatThrownBy(() -> f.punchHole(0, 4096)).isInstanceOf(IOException.class);
        f.close();
        assertThat(f.isClosed()).isTrue();
        f.close();
        assertThatThrownBy(() -> f.read(0, MemorySegment.ofArray(new byte[1])))
                .isInstanceOf(IOException.class).hasMessageContaining("closed");
        assertThatThrownBy(f::size).isInstanceOf(IOException.class).hasMessageContaining("closed");
        assertThatThrownBy(() -> f.read(-1, MemorySegment.ofArray(new byte[1])))
                .isInstanceOf(IOException.class);
    }

    @Test
    void optionsMayRepeatAndTruncateWorks() throws Exception {
        Path file = dirs("disk").file("opts");
        Files.write(file, new byte[100]);
        try (AlignedFile f = AlignedFile.open(file, IoMode.BUFFERED, READ, WRITE, WRITE, TRUNCATE_EXISTING)) {
            assertThat(f.size()).isZero();
            assertThatThrownBy(() -> f.read(-1, MemorySegment.ofArray(new byte[1])))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }

    // ---------------------------------------------------------------------------- holes, zeroing, seeking

    @ParameterizedTest
    @ValueSource(strings = {"disk", "shm"})
    void punchedHoleReadsZeroAndFreesBlocks(String kind) throws Exception {
        Path file = dirs(kind).file("punch");
        byte[] data = random(6, MIB);
        for (int i = 0; i < data.length; i++) {
            data[i] |= 1; // never zero, so a zero proves the hole
        }
        try (AlignedFile f = AlignedFile.open(file, IoMode.BUFFERED, CREATE_NEW, READ, WRITE)) {
            f.write(0, MemorySegment.ofArray(data));
            f.sync();
            long before = f.stat().allocatedBytes();
            assertThat(before).isGreaterThanOrEqualTo(MIB);
            f.punchHole(256 * KIB, 512 * KIB);
            long after = f.stat().allocatedBytes();
            assertThat(before - after).as("bytes freed by the hole").isGreaterThanOrEqualTo(512 * KIB - 8 * KIB);
            assertThat(f.size()).isEqualTo(MIB);
            byte[] back = new byte[MIB];
            f.readFully(0, MemorySegment.ofArray(back));
            assertThat(Arrays.copyOfRange(back, 0, 256 * KIB)).isEqualTo(Arrays.copyOfRange(data, 0, 256 * KIB));
            assertThat(Arrays.copyOfRange(back, 256 * KIB, 768 * KIB)).containsOnly(0);
            assertThat(Arrays.copyOfRange(back, 768 * KIB, MIB)).isEqualTo(Arrays.copyOfRange(data, 768 * KIB, MIB));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"disk", "shm"})
    void zeroRangeReadsBackZeros(String kind) throws Exception {
        TestDirs d = dirs(kind);
        for (IoMode mode : new IoMode[] {IoMode.BUFFERED, IoMode.DIRECT}) {
            Path file = d.file("zero-" + mode);
            byte[] data = random(7, 300_000);
            for (int i = 0; i < data.length; i++) {
                data[i] |= 1;
            }
            Files.write(file, data);
            try (AlignedFile f = AlignedFile.open(file, mode, READ, WRITE)) {
                f.zeroRange(100_001, 150_000); // unaligned both ends
                byte[] expected = data.clone();
                Arrays.fill(expected, 100_001, 250_001, (byte) 0);
                assertThat(f.size()).isEqualTo(300_000);
                f.zeroRange(299_000, 5_000); // past the end: the file grows like with fallocate
                expected = Arrays.copyOf(expected, 304_000);
                Arrays.fill(expected, 299_000, 304_000, (byte) 0);
                assertThat(f.size()).isEqualTo(304_000);
                f.zeroRange(0, 0);
                byte[] back = new byte[304_000];
                f.readFully(0, MemorySegment.ofArray(back));
                assertThat(Arrays.mismatch(back, expected)).as("first wrong byte, " + mode).isEqualTo(-1);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"disk", "shm"})
    void seekDataAndSeekHoleFindTheDataInASparseFile(String kind) throws Exception {
        Path file = dirs(kind).file("sparse");
        try (AlignedFile f = AlignedFile.open(file, IoMode.BUFFERED, CREATE_NEW, READ, WRITE)) {
            f.truncate(3 * MIB); // hole, data, hole
            f.write(MIB, MemorySegment.ofArray(random(8, 64 * KIB)));
            f.sync();
            assertThat(f.seekData(0)).isEqualTo(MIB);
            assertThat(f.seekData(MIB + 100)).isEqualTo(MIB + 100);
            assertThat(f.seekHole(0)).isZero();
            assertThat(f.seekHole(MIB)).isEqualTo(MIB + 64 * KIB);
            assertThat(f.seekHole(MIB + 64 * KIB)).isEqualTo(MIB + 64 * KIB);
            assertThat(f.seekData(MIB + 64 * KIB)).isEqualTo(-1);
            assertThat(f.seekData(3 * MIB - 1)).isEqualTo(-1);
            assertThat(f.seekHole(3 * MIB - 1)).isEqualTo(3 * MIB - 1);
            assertThat(f.seekHole(3 * MIB)).isEqualTo(-1);
            assertThat(f.seekData(5 * MIB)).isEqualTo(-1);
            assertThat(f.seekHole(5 * MIB)).isEqualTo(-1);
            assertThatThrownBy(() -> f.seekData(-1)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> f.seekHole(-1)).isInstanceOf(IllegalArgumentException.class);
        }
    }
}
