package io.qcow2j.ffm;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

@SuppressWarnings("restricted") // this module is the one granted native access: restricted calls are its job
class MappedArenaTest {
    private static final long MIB = 1 << 20;

    /** Anonymous resident memory of this process in bytes ({@code RssAnon} of /proc/self/status). */
    static long rssAnon() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("RssAnon:")) {
                String[] parts = line.trim().split("\\s+");
                assertThat(parts[2]).isEqualTo("kB");
                return Long.parseLong(parts[1]) * 1024;
            }
        }
        throw new AssertionError("no RssAnon in /proc/self/status");
    }

    /** A byte that depends on the position, never zero, so a dropped page cannot pass for kept data. */
    private static byte pattern(long i) {
        return (byte) ((i * 31 + (i >>> 12) * 7) % 251 + 1);
    }

    private static void fillPattern(MemorySegment seg, long from, long to) {
        for (long i = from; i < to; i++) {
            seg.set(JAVA_BYTE, i, pattern(i));
        }
    }

    private static void assertPattern(MemorySegment seg, long from, long to) {
        for (long i = from; i < to; i++) {
            if (seg.get(JAVA_BYTE, i) != pattern(i)) {
                throw new AssertionError("byte " + i + " lost its data: " + seg.get(JAVA_BYTE, i));
            }
        }
    }

    private static void assertZero(MemorySegment seg, long from, long to) {
        for (long i = from; i < to; i += 8) {
            long v = to - i >= 8 ? seg.get(JAVA_LONG.withByteAlignment(1), i) : seg.get(JAVA_BYTE, i);
            if (v != 0) {
                throw new AssertionError("released byte range at " + i + " is not zero");
            }
        }
    }

    @Test
    void releasingHalfDropsItsResidentMemoryAndItReadsBackZero() throws Exception {
        long size = 64 * MIB;
        try (MappedArena arena = MappedArena.map(size)) {
            MemorySegment seg = arena.segment();
            assertThat(seg.byteSize()).isEqualTo(size);
            assertThat(seg.address() % arena.pageSize()).isZero();
            long page = arena.pageSize();
            long before = rssAnon();
            seg.fill((byte) 0x5A); // every page touched
            for (long p = 0; p < size; p += page) {
                seg.set(JAVA_LONG, p, p + 1); // and one value per page that says where it came from
            }
            long touched = rssAnon();
            assertThat(touched - before).as("RssAnon growth after touching 64 MiB").isGreaterThanOrEqualTo(60 * MIB);

            assertThat(arena.release(size / 2, size / 2)).isEqualTo(size / 2);
            long released = rssAnon();
            assertThat(touched - released).as("RssAnon drop after releasing 32 MiB").isGreaterThanOrEqualTo(28 * MIB);
            assertThat(arena.releasedBytes()).isEqualTo(size / 2);

            for (long p = 0; p < size / 2; p += page) {
                assertThat(seg.get(JAVA_LONG, p)).isEqualTo(p + 1);
                assertThat(seg.get(JAVA_BYTE, p + page - 1)).isEqualTo((byte) 0x5A);
            }
            assertZero(seg, size / 2, size);
            // Released pages are ordinary memory again once written.
            seg.set(JAVA_LONG, size - 8, 42);
            assertThat(seg.get(JAVA_LONG, size - 8)).isEqualTo(42);
        }
    }

    @Test
    void partialPagesAtTheEndsOfARangeKeepTheirData() throws Exception {
        try (MappedArena arena = MappedArena.map(16 * LibC.pageSize())) {
            long page = arena.pageSize();
            MemorySegment seg = arena.segment();
            long size = seg.byteSize();
            fillPattern(seg, 0, size);

            assertThat(arena.release(100, 10)).isZero();
            assertThat(arena.release(0, page - 1)).isZero();
            assertThat(arena.release(1, page)).isZero();
            assertThat(arena.release(3 * page, 0)).isZero();
            assertThat(arena.release(page + 1, 2 * page - 2)).isZero(); // crosses a boundary, holds no whole page
            assertPattern(seg, 0, size);

            // [page/2, 2 page + page/2) holds exactly one whole page: [page, 2 page).
            assertThat(arena.release(page / 2, 2 * page)).isEqualTo(page);
            assertPattern(seg, 0, page);
            assertZero(seg, page, 2 * page);
            assertPattern(seg, 2 * page, size);

            // Unaligned on both ends, several pages inside.
            assertThat(arena.release(4 * page - 1, 3 * page + 2)).isEqualTo(3 * page);
            assertPattern(seg, 2 * page, 4 * page);
            assertZero(seg, 4 * page, 7 * page);
            assertPattern(seg, 7 * page, size);

            // Aligned on both ends, up to the end of the arena.
            assertThat(arena.release(12 * page, 4 * page)).isEqualTo(4 * page);
            assertPattern(seg, 7 * page, 12 * page);
            assertZero(seg, 12 * page, size);
            assertThat(arena.releasedBytes()).isEqualTo(8 * page);
        }
    }

    @Test
    void anArenaOfNoWholeNumberOfPagesReleasesOnlyWholePagesInsideIt() throws Exception {
        long page = LibC.pageSize();
        try (MappedArena arena = MappedArena.map(2 * page + 100)) {
            MemorySegment seg = arena.segment();
            assertThat(seg.byteSize()).isEqualTo(2 * page + 100);
            fillPattern(seg, 0, seg.byteSize());
            assertThat(arena.release(0, seg.byteSize())).isEqualTo(2 * page);
            assertZero(seg, 0, 2 * page);
            assertPattern(seg, 2 * page, seg.byteSize());
            assertThatThrownBy(() -> seg.get(JAVA_BYTE, 2 * page + 100)).isInstanceOf(IndexOutOfBoundsException.class);
        }
    }

    @Test
    void rejectsRangesOutsideTheArenaAndBadSizes() throws Exception {
        long page = LibC.pageSize();
        try (MappedArena arena = MappedArena.map(4 * page)) {
            assertThatThrownBy(() -> arena.release(-1, page)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> arena.release(0, -1)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> arena.release(page, 4 * page)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> arena.release(Long.MAX_VALUE, Long.MAX_VALUE))
                    .isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> arena.release(1, Long.MAX_VALUE)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThat(arena.release(4 * page, 0)).isZero();
        }
        assertThatThrownBy(() -> MappedArena.map(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> MappedArena.map(-4096)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> MappedArena.map(Long.MAX_VALUE)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aMappingTooLargeForTheAddressSpaceIsAnErrnoNotACrash() {
        // 2^62 bytes: more than a 47- or 48-bit user address space can hold, even with MAP_NORESERVE.
        assertThatThrownBy(() -> MappedArena.map(1L << 62))
                .isInstanceOfSatisfying(ErrnoException.class, e -> assertThat(e.errno()).isEqualTo(Errno.ENOMEM))
                .hasMessageContaining("mmap");
    }

    @Test
    void useAfterCloseThrowsAndCloseIsIdempotent() throws Exception {
        MappedArena arena = MappedArena.map(4 * LibC.pageSize());
        MemorySegment seg = arena.segment();
        MemorySegment slice = seg.asSlice(LibC.pageSize(), 16);
        seg.set(JAVA_LONG, 0, 7);
        arena.close();
        assertThat(arena.isClosed()).isTrue();
        assertThatThrownBy(() -> seg.get(JAVA_LONG, 0)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> seg.set(JAVA_BYTE, 100, (byte) 1)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> slice.get(JAVA_BYTE, 0)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> seg.fill((byte) 0)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> arena.release(0, LibC.pageSize())).isInstanceOf(IllegalStateException.class);
        arena.close();
        arena.close();
        assertThat(arena.isClosed()).isTrue();
    }

    /**
     * A shared arena cannot close while a downcall holds one of its segments: closing must then fail without
     * unmapping, and leave the arena open and consistent so that a later close succeeds.
     */
    @Test
    void closeWhileANativeCallUsesTheMemoryFailsAndLeavesTheArenaUsable() throws Exception {
        Linker linker = Linker.nativeLinker();
        MethodHandle nanosleep = linker.downcallHandle(linker.defaultLookup().find("nanosleep").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        MappedArena arena = MappedArena.map(LibC.pageSize());
        MemorySegment seg = arena.segment();
        seg.set(JAVA_LONG, 0, 0); // tv_sec
        seg.set(JAVA_LONG, 8, 800_000_000L); // tv_nsec: the call holds the segment for 0.8 s
        seg.set(JAVA_LONG, 64, 1234);
        CountDownLatch started = new CountDownLatch(1);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread sleeper = Thread.ofPlatform().start(() -> {
            started.countDown();
            try {
                int r = (int) nanosleep.invokeExact(seg, MemorySegment.NULL);
                assertThat(r).isZero();
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        started.await();
        Thread.sleep(200);
        try {
            assertThatThrownBy(arena::close).isInstanceOf(IllegalStateException.class);
            assertThat(arena.isClosed()).as("a failed close leaves the arena open").isFalse();
            assertThat(seg.get(JAVA_LONG, 64)).isEqualTo(1234);
            assertThat(arena.release(0, LibC.pageSize())).isEqualTo(LibC.pageSize());
        } finally {
            sleeper.join();
        }
        assertThat(failure.get()).isNull();
        arena.close();
        assertThat(arena.isClosed()).isTrue();
        assertThatThrownBy(() -> seg.get(JAVA_LONG, 64)).isInstanceOf(IllegalStateException.class);
    }
}
