package io.qcow2j.ffm;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class LibCTest {
    private TestDirs disk;

    @BeforeEach
    void setUp() throws IOException {
        disk = TestDirs.disk();
    }

    @AfterEach
    void tearDown() throws IOException {
        disk.close();
    }

    /** The open flags the kernel holds for a descriptor, from {@code /proc/self/fdinfo}. */
    static int kernelFlags(int fd) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
            if (line.startsWith("flags:")) {
                return Integer.parseInt(line.substring(6).trim(), 8);
            }
        }
        throw new AssertionError("no flags in fdinfo of " + fd);
    }

    private static String run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertThat(p.waitFor()).as("%s exit status", Arrays.toString(command)).isZero();
        return out;
    }

    @Test
    void pageSizeIsWhatGetconfSays() throws Exception {
        assertThat(LibC.pageSize()).isEqualTo(Long.parseLong(run("getconf", "PAGESIZE")));
        assertThat(LibC.sysconf(Platform.SC_PAGESIZE)).isEqualTo(LibC.pageSize());
    }

    /** _SC_TZNAME_MAX has no limit in glibc: sysconf answers -1 and leaves errno as it was. */
    @Test
    void sysconfIndeterminateLimitIsNotMistakenForAStaleErrno() throws Exception {
        int scTznameMax = 6;
        assertThatThrownBy(() -> LibC.open("/proc/self/no-such-entry", Platform.O_RDONLY, 0))
                .isInstanceOf(ErrnoException.class); // leaves ENOENT in this thread's errno
        assertThat(LibC.sysconf(scTznameMax)).isEqualTo(-1);
        assertThatThrownBy(() -> LibC.sysconf(-5))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL))
                .hasMessage("sysconf(-5): EINVAL (Invalid argument)");
    }

    @Test
    void oDirectHasThisArchitecturesValue() {
        int expected = switch (Platform.ARCH) {
            case "amd64", "x86_64" -> 0x4000;
            case "aarch64", "arm64" -> 0x10000;
            default -> throw new AssertionError("untested architecture " + Platform.ARCH);
        };
        assertThat(Platform.O_DIRECT).isEqualTo(expected);
    }

    /**
     * The kernel's own record of the open flags shows O_DIRECT, and a misaligned buffer is refused with
     * EINVAL, which only happens when the flag took effect. Without it the same read succeeds.
     */
    @Test
    void oDirectTakesEffect() throws Exception {
        Path file = disk.file("direct");
        Files.write(file, new byte[2 << 20]);
        int direct = LibC.open(file.toString(), Platform.O_RDWR | Platform.O_DIRECT | Platform.O_CLOEXEC, 0);
        int buffered = LibC.open(file.toString(), Platform.O_RDWR | Platform.O_CLOEXEC, 0);
        try (Arena arena = Arena.ofConfined()) {
            assertThat(kernelFlags(direct) & Platform.O_DIRECT).isEqualTo(Platform.O_DIRECT);
            assertThat(kernelFlags(buffered) & Platform.O_DIRECT).isZero();

            MemorySegment aligned = arena.allocate(8192, 4096);
            assertThat(LibC.pread(direct, aligned.asSlice(0, 4096), 1 << 20)).isEqualTo(4096);
            MemorySegment odd = aligned.asSlice(1, 4096);
            assertThat(odd.address() & 1).isEqualTo(1);
            assertThatThrownBy(() -> LibC.pread(direct, odd, 1 << 20))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> {
                        assertThat(e.errno()).isEqualTo(Errno.EINVAL);
                        assertThat(e.errnoName()).isEqualTo("EINVAL");
                        assertThat(e.call()).isEqualTo("pread(fd=" + direct + ", 4096 bytes at 1048576)");
                    })
                    .hasMessage("pread(fd=" + direct + ", 4096 bytes at 1048576): EINVAL (Invalid argument)");
            assertThat(LibC.pread(buffered, odd, 1 << 20)).isEqualTo(4096);
        } finally {
            LibC.close(direct);
            LibC.close(buffered);
        }
    }

    @Test
    void missingFileIsEnoentWithCallPathAndLibcText() {
        String missing = disk.file("no-such-file").toString();
        assertThatThrownBy(() -> LibC.open(missing, Platform.O_RDONLY, 0))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENOENT))
                .hasMessageContaining("open(")
                .hasMessageContaining(missing)
                .hasMessageContaining("ENOENT")
                .hasMessageContaining("No such file or directory");
    }

    @Test
    void aPathWithANulIsRefusedNotTruncated() throws Exception {
        Path file = disk.file("prefix");
        Files.write(file, new byte[1]);
        assertThatThrownBy(() -> LibC.open(file + "\0suffix", Platform.O_RDONLY, 0))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void closedDescriptorIsEbadf() throws Exception {
        Path file = disk.file("f");
        Files.write(file, new byte[8192]);
        int fd = LibC.open(file.toString(), Platform.O_RDONLY | Platform.O_CLOEXEC, 0);
        LibC.close(fd);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(4096);
            assertThatThrownBy(() -> LibC.pread(fd, buf, 1 << 20))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EBADF))
                    .hasMessage("pread(fd=" + fd + ", 4096 bytes at 1048576): EBADF (Bad file descriptor)");
            assertThatThrownBy(() -> LibC.pwrite(-1, buf, 0))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EBADF));
            // The heap path (critical downcall) captures errno too.
            MemorySegment heap = MemorySegment.ofArray(new byte[100]);
            assertThatThrownBy(() -> LibC.pread(-1, heap, 0))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EBADF))
                    .hasMessage("pread(fd=-1, 100 bytes at 0): EBADF (Bad file descriptor)");
            assertThatThrownBy(() -> LibC.pwrite(-1, heap, 0))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EBADF));
            assertThatThrownBy(() -> LibC.close(fd))
                    .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.EBADF))
                    .hasMessage("close(fd=" + fd + "): EBADF (Bad file descriptor)");
            assertThatThrownBy(() -> LibC.fstat(-1)).isInstanceOf(ErrnoException.class);
            assertThatThrownBy(() -> LibC.fsync(-1)).isInstanceOf(ErrnoException.class);
            assertThatThrownBy(() -> LibC.fdatasync(-1)).isInstanceOf(ErrnoException.class);
            assertThatThrownBy(() -> LibC.ftruncate(-1, 0)).isInstanceOf(ErrnoException.class);
            assertThatThrownBy(() -> LibC.lseek(-1, 0, Platform.SEEK_SET)).isInstanceOf(ErrnoException.class);
        }
    }

    @Test
    void errnoNamesAndTexts() {
        assertThat(Errno.name(Errno.EINVAL)).isEqualTo("EINVAL");
        assertThat(Errno.name(Errno.ENXIO)).isEqualTo("ENXIO");
        assertThat(Errno.name(Errno.EOPNOTSUPP)).isEqualTo("EOPNOTSUPP");
        assertThat(Errno.name(0)).isEqualTo("errno 0");
        assertThat(Errno.name(-3)).isEqualTo("errno -3");
        assertThat(Errno.name(200)).isEqualTo("errno 200");
        assertThat(LibC.strerror(Errno.ENOSPC)).isEqualTo("No space left on device");
        assertThat(new ErrnoException("fsync(fd=3)", Errno.EIO))
                .hasMessage("fsync(fd=3): EIO (Input/output error)");
    }

    @Test
    void heapSegmentsReadAndWriteThroughCriticalDowncalls() throws Exception {
        Path file = disk.file("heap");
        int fd = LibC.open(file.toString(), Platform.O_RDWR | Platform.O_CREAT | Platform.O_CLOEXEC, 0644);
        try {
            // Larger than one critical transfer, and of an odd length, so the chunking is exercised.
            byte[] data = new byte[3 * (1 << 20) + 12345];
            new Random(7).nextBytes(data);
            LibC.pwrite(fd, MemorySegment.ofArray(data), 100);
            assertThat(LibC.fstat(fd).size()).isEqualTo(100 + data.length);
            byte[] onDisk = Files.readAllBytes(file);
            assertThat(Arrays.equals(onDisk, 100, onDisk.length, data, 0, data.length)).isTrue();

            byte[] back = new byte[data.length + 500];
            long n = LibC.pread(fd, MemorySegment.ofArray(back), 100);
            assertThat(n).isEqualTo(data.length);
            assertThat(Arrays.equals(back, 0, data.length, data, 0, data.length)).isTrue();

            // Other primitive arrays and slices at an offset inside the array.
            long[] longs = new long[1000];
            assertThat(LibC.pread(fd, MemorySegment.ofArray(longs).asSlice(8, 800), 100)).isEqualTo(800);
            MemorySegment expected = MemorySegment.ofArray(data).asSlice(0, 800);
            assertThat(MemorySegment.ofArray(longs).asSlice(8, 800).mismatch(expected)).isEqualTo(-1);
            assertThat(longs[0]).isZero();
        } finally {
            LibC.close(fd);
        }
    }

    @Test
    void readOnlySegmentsAreNotReadInto() throws Exception {
        Path file = disk.file("ro");
        Files.write(file, new byte[] {1, 2, 3, 4});
        int fd = LibC.open(file.toString(), Platform.O_RDONLY | Platform.O_CLOEXEC, 0);
        try (Arena arena = Arena.ofConfined()) {
            byte[] array = new byte[4];
            assertThatThrownBy(() -> LibC.pread(fd, MemorySegment.ofArray(array).asReadOnly(), 0))
                    .isInstanceOf(IllegalArgumentException.class);
            assertThat(array).containsOnly(0);
            MemorySegment nativeRo = arena.allocate(4).asReadOnly();
            assertThatThrownBy(() -> LibC.pread(fd, nativeRo, 0)).isInstanceOf(IllegalArgumentException.class);
            assertThat(nativeRo.get(JAVA_BYTE, 0)).isZero();
        } finally {
            LibC.close(fd);
        }
    }

    @Test
    void fstatReportsSizeBlocksAndType() throws Exception {
        Path file = disk.file("stat");
        Files.write(file, new byte[100_000]);
        int fd = LibC.open(file.toString(), Platform.O_RDONLY | Platform.O_CLOEXEC, 0);
        try {
            LibC.FileStat st = LibC.fstat(fd);
            assertThat(st.size()).isEqualTo(100_000);
            assertThat(st.isRegularFile()).isTrue();
            assertThat(st.isBlockDevice()).isFalse();
            assertThat(st.blockSize()).isBetween(512L, 1L << 20);
            assertThat(Long.bitCount(st.blockSize())).isEqualTo(1);
            assertThat(st.allocatedBytes() % 512).isZero();
            assertThat(st.mode() & 0777).isEqualTo(Integer.parseInt(run("stat", "-c", "%a", file.toString()), 8));
            assertThat(st.blockSize()).isEqualTo(Long.parseLong(run("stat", "-c", "%o", file.toString())));
        } finally {
            LibC.close(fd);
        }
        int dev = LibC.open("/dev/null", Platform.O_RDONLY | Platform.O_CLOEXEC, 0);
        try {
            assertThat(LibC.fstat(dev).isRegularFile()).isFalse();
            assertThat(LibC.fstat(dev).size()).isZero();
        } finally {
            LibC.close(dev);
        }
    }

    @Test
    void directIoAlignmentIsSaneOrAbsent() throws Exception {
        Path file = disk.file("dio");
        Files.write(file, new byte[4096]);
        int fd = LibC.open(file.toString(), Platform.O_RDONLY | Platform.O_CLOEXEC, 0);
        try {
            int[] align = LibC.directIoAlignment(fd);
            if (align != null) {
                assertThat(align).hasSize(2);
                for (int a : align) {
                    assertThat(a).isBetween(1, 65536);
                    assertThat(Integer.bitCount(a)).isEqualTo(1);
                }
                assertThat(align[1]).as("offset alignment").isGreaterThanOrEqualTo(512);
            }
        } finally {
            LibC.close(fd);
        }
        assertThat(LibC.directIoAlignment(-1)).isNull();
    }

    @Test
    void statxDirectIoAlignmentOnExt4IsReported() throws Exception {
        // ext4 reports STATX_DIOALIGN since Linux 6.1; this machine's kernel is newer.
        org.junit.jupiter.api.Assumptions.assumeTrue(disk.storeType().equals("ext4"), "not ext4");
        Path file = disk.file("dio");
        Files.write(file, new byte[4096]);
        int fd = LibC.open(file.toString(), Platform.O_RDONLY | Platform.O_CLOEXEC, 0);
        try {
            int[] align = LibC.directIoAlignment(fd);
            assertThat(align).isNotNull();
            String blockSize = run("sh", "-c", "cat /sys/block/$(basename $(findmnt -n -o SOURCE --target "
                    + file.getParent() + "))/queue/logical_block_size 2>/dev/null || echo none");
            if (!blockSize.equals("none")) {
                assertThat(align[1]).isEqualTo(Integer.parseInt(blockSize));
            }
        } finally {
            LibC.close(fd);
        }
    }
}
