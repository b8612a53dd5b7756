package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.Errno;
import io.qcow2j.ffm.ErrnoException;
import io.qcow2j.ffm.ForwardingFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.ffm.PositionalFile;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link FileGrowth}: allocating writes that fill their clusters reserve the file ahead in growing steps
 * (fallocate, keep size) on the disk, and not on tmpfs; close gives back what lies past the end; partial
 * writes into new clusters reserve nothing; a reservation that fails with {@code ENOSPC} fails no request, a
 * request that does not fit fails alone and cleanly; a crash with space reserved past the end leaves an image
 * that {@code qemu-img check} finds clean and that opens and grows again. Every image is checked by qemu
 * ({@code qemu-img check}, and its guest bytes by {@code qemu-img convert}) against a model.
 */
class FileGrowthTest {
    private static final int CLUSTER = 64 << 10;

    /** On the repository's disk (a CI machine's /tmp may be tmpfs, where nothing is reserved). */
    private Path tmp;

    @BeforeEach
    void onTheDisk() throws IOException {
        Path target = Path.of("target");
        Files.createDirectories(target);
        tmp = Files.createTempDirectory(target.toAbsolutePath(), "growth-");
        disk.add(tmp);
    }

    private final List<Path> disk = new ArrayList<>();
    private final List<Path> shm = new ArrayList<>();

    @AfterEach
    void deleteFolders() throws IOException {
        shm.addAll(disk);
        for (Path d : shm) {
            try (Stream<Path> files = Files.list(d)) {
                for (Path f : files.toList()) {
                    Files.delete(f);
                }
            }
            Files.delete(d);
        }
    }

    static Stream<String> fileSystems() {
        return Files.isDirectory(Path.of("/dev/shm")) ? Stream.of("disk", "tmpfs") : Stream.of("disk");
    }

    private Path dir(String fs) throws IOException {
        if (!fs.equals("tmpfs")) {
            return tmp;
        }
        Path d = Files.createTempDirectory(Path.of("/dev/shm"), "qcow2j-growth-");
        shm.add(d);
        return d;
    }

    private static long allocated(Path p) throws IOException {
        try (AlignedFile f = AlignedFile.open(p, IoMode.BUFFERED, StandardOpenOption.READ)) {
            return f.allocatedBytes();
        }
    }

    private static void fill(MemorySegment seg, long guestOffset) {
        for (long i = 0; i < seg.byteSize(); i += 8) {
            seg.set(ValueLayout.JAVA_LONG_UNALIGNED, i, (guestOffset + i) * 0x9E37_79B9L + 1);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fileSystems")
    void fullClusterWritesAtDepthReserveAheadAndCloseGivesTheRestBack(String fs) throws Exception {
        Path d = dir(fs);
        Path p = Qemu.create(d, "g.qcow2", "", "32M");
        int requests = 321; // 20 MiB of 64 KiB writes at depth 16 (reservations of 1, 2, 4, 8, 16 MiB), then one
        byte[] model = new byte[requests * CLUSTER];
        long reservedEnd;
        long sizeInSession;
        long allocatedInSession;
        try (Qcow2Image img = ChainOpener.openQcow2(p, ImageOptions.defaults()); Arena arena = Arena.ofShared()) {
            FileGrowth growth = img.state().growth;
            long atOpen = growth.reservedEnd();
            assertThat(growth.isOn()).as("growth on the disk, not on tmpfs").isEqualTo(fs.equals("disk"));
            List<CompletableFuture<Void>> window = new ArrayList<>();
            for (int i = 0; i < requests; i++) {
                MemorySegment src = arena.allocate(CLUSTER, 4096);
                fill(src, (long) i * CLUSTER);
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, 0, model, i * CLUSTER, CLUSTER);
                if (i == requests - 1) {
                    // the requests may have outrun the last reservation: the last one, alone, starts the next
                    window.forEach(CompletableFuture::join);
                    growth.awaitIdle();
                }
                window.add(img.writeAsync((long) i * CLUSTER, src));
                if (window.size() == 16) { // depth 16
                    window.removeFirst().join();
                }
            }
            window.forEach(CompletableFuture::join);
            growth.awaitIdle();
            reservedEnd = growth.reservedEnd();
            sizeInSession = img.file().size();
            allocatedInSession = allocated(p);
            if (fs.equals("disk")) {
                assertThat(reservedEnd).as("reserved ahead").isGreaterThan(atOpen).isGreaterThan(sizeInSession);
            } else {
                assertThat(reservedEnd).as("nothing reserved on tmpfs").isEqualTo(atOpen);
            }
        }
        if (fs.equals("disk")) {
            assertThat(allocatedInSession).as("blocks reserved past the end while open").isGreaterThan(sizeInSession);
        } else {
            assertThat(allocatedInSession).as("tmpfs: no blocks past the end").isLessThanOrEqualTo(sizeInSession + 4096);
        }
        long size = Files.size(p);
        assertThat(size).as("the size is the data's, not the reservation's").isEqualTo(sizeInSession);
        assertThat(allocated(p)).as("closed: nothing past the end (qemu-img info's disk size)")
                .isLessThanOrEqualTo(size + 4096);
        Qemu.requireClean(p, "after writes that grew the file ahead");
        byte[] guest = Qemu.guestContent(p);
        assertThat(Arrays.mismatch(Arrays.copyOf(guest, model.length), model)).isEqualTo(-1);
        assertThat(Qemu.info(p).get("actual-size")).isInstanceOfSatisfying(Number.class,
                n -> assertThat(n.longValue()).isLessThanOrEqualTo(size + 4096));
    }

    @Test
    void partialWritesIntoNewClustersReserveNothing() throws IOException {
        Path p = Qemu.create(tmp, "p.qcow2", "", "16M");
        try (Qcow2Image img = ChainOpener.openQcow2(p, ImageOptions.defaults()); Arena arena = Arena.ofConfined()) {
            long atOpen = img.state().growth.reservedEnd();
            MemorySegment src = arena.allocate(4096);
            for (int i = 0; i < 200; i++) { // 200 of the 256 clusters
                fill(src, (long) i * CLUSTER);
                img.write((long) i * CLUSTER, src);
            }
            img.state().growth.awaitIdle();
            assertThat(img.state().growth.reservedEnd()).isEqualTo(atOpen);
        }
        assertThat(allocated(p)).as("the clusters' unwritten rest stays a hole").isLessThan(200L * CLUSTER / 4);
        Qemu.requireClean(p, "after partial writes into new clusters");
    }

    /** The image file with a disk that is full past {@code limit} bytes: writes there and reservations fail. */
    private static final class FullDisk extends ForwardingFile {
        final AtomicLong limit;
        final AtomicLong reservations = new AtomicLong();

        FullDisk(PositionalFile delegate, long limit) {
            super(delegate);
            this.limit = new AtomicLong(limit);
        }

        @Override
        public void write(long offset, MemorySegment src) throws IOException {
            if (offset + src.byteSize() > limit.get()) {
                throw new ErrnoException(path() + ": pwrite", Errno.ENOSPC);
            }
            super.write(offset, src);
        }

        @Override
        public boolean reserve(long offset, long length) throws IOException {
            reservations.incrementAndGet();
            throw new ErrnoException(path() + ": fallocate", Errno.ENOSPC);
        }
    }

    private static Qcow2Image open(Path p, PositionalFile[] file, long limit) throws IOException {
        return ChainOpener.openQcow2(p, ImageOptions.defaults(), (path, mode, writable) -> {
            file[0] = new FullDisk(ChainOpener.ALIGNED_FILES.open(path, mode, writable), limit);
            return file[0];
        });
    }

    @Test
    void enospcWhileGrowingAheadFailsNoRequestThatFits() throws IOException {
        Path p = Qemu.create(tmp, "e.qcow2", "", "4M");
        PositionalFile[] file = new PositionalFile[1];
        byte[] model = new byte[64 * CLUSTER];
        try (Qcow2Image img = open(p, file, Long.MAX_VALUE); Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(CLUSTER);
            for (int i = 0; i < 64; i++) {
                fill(src, (long) i * CLUSTER);
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, 0, model, i * CLUSTER, CLUSTER);
                img.write((long) i * CLUSTER, src);
                img.state().growth.awaitIdle();
            }
            assertThat(((FullDisk) file[0]).reservations.get()).as("one attempt, then growth is off").isEqualTo(1);
            assertThat(img.state().growth.isOn()).isFalse();
        }
        Qemu.requireClean(p, "after a reservation failed with ENOSPC");
        assertThat(Arrays.mismatch(Arrays.copyOf(Qemu.guestContent(p), model.length), model)).isEqualTo(-1);
    }

    @Test
    void aRequestThatDoesNotFitFailsAloneAndTheImageStaysClean() throws IOException {
        Path p = Qemu.create(tmp, "f.qcow2", "", "4M");
        long limit = Files.size(p) + 8L * CLUSTER; // room for a few new clusters only
        PositionalFile[] file = new PositionalFile[1];
        byte[] model = new byte[64 * CLUSTER];
        int failed = 0;
        try (Qcow2Image img = open(p, file, limit); Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(2L * CLUSTER);
            for (int i = 0; i < 32; i += 2) {
                fill(src, (long) i * CLUSTER);
                try {
                    img.write((long) i * CLUSTER, src);
                    MemorySegment.copy(src, ValueLayout.JAVA_BYTE, 0, model, i * CLUSTER, 2 * CLUSTER);
                } catch (IOException e) {
                    assertThat(e).hasMessageContaining("ENOSPC");
                    failed++;
                }
            }
            assertThat(failed).as("requests past the full disk failed").isGreaterThan(0);
            assertThat(img.isWritable()).as("an I/O error is not corruption").isTrue();
            ((FullDisk) file[0]).limit.set(Long.MAX_VALUE); // space was freed: the same requests go through
            for (int i = 32; i < 64; i += 2) {
                fill(src, (long) i * CLUSTER);
                img.write((long) i * CLUSTER, src);
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, 0, model, i * CLUSTER, 2 * CLUSTER);
            }
        }
        Qemu.requireClean(p, "after requests failed with ENOSPC"); // their clusters were freed: no leak
        assertThat(Arrays.mismatch(Arrays.copyOf(Qemu.guestContent(p), model.length), model)).isEqualTo(-1);
    }

    /** Power lost: from {@link #crash} on, nothing more reaches the file (writes, truncates, syncs dropped). */
    private static final class PowerLoss extends ForwardingFile {
        volatile boolean crashed;

        PowerLoss(PositionalFile delegate) {
            super(delegate);
        }

        void crash() {
            crashed = true;
        }

        @Override
        public void write(long offset, MemorySegment src) throws IOException {
            if (!crashed) {
                super.write(offset, src);
            }
        }

        @Override
        public void truncate(long length) throws IOException {
            if (!crashed) {
                super.truncate(length);
            }
        }

        @Override
        public void dataSync() throws IOException {
            if (!crashed) {
                super.dataSync();
            }
        }
    }

    @Test
    void aCrashWithSpaceReservedPastTheEndLeavesACleanImageThatGrowsAgain() throws Exception {
        Path d = tmp;
        Path p = Qemu.create(d, "c.qcow2", "", "8M");
        PowerLoss[] file = new PowerLoss[1];
        byte[] model = new byte[128 * CLUSTER];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(CLUSTER);
            Qcow2Image img = ChainOpener.openQcow2(p, ImageOptions.defaults(), (path, mode, writable) -> {
                file[0] = new PowerLoss(ChainOpener.ALIGNED_FILES.open(path, mode, writable));
                return file[0];
            });
            for (int i = 0; i < 64; i++) {
                fill(src, (long) i * CLUSTER);
                MemorySegment.copy(src, ValueLayout.JAVA_BYTE, 0, model, i * CLUSTER, CLUSTER);
                img.write((long) i * CLUSTER, src);
                img.state().growth.awaitIdle(); // each reservation done before the next write: one is ahead at the end
            }
            img.flush();
            img.state().growth.awaitIdle();
            file[0].crash();
            img.close(); // writes nothing more, gives nothing back
            assertThat(allocated(p)).as("reserved space past the end survived the crash").isGreaterThan(Files.size(p));
            Qemu.requireClean(p, "after a crash with space reserved past the end");
            try (Qcow2Image again = ChainOpener.openQcow2(p, ImageOptions.defaults())) {
                for (int i = 64; i < 128; i++) {
                    fill(src, (long) i * CLUSTER);
                    MemorySegment.copy(src, ValueLayout.JAVA_BYTE, 0, model, i * CLUSTER, CLUSTER);
                    again.write((long) i * CLUSTER, src);
                }
            }
        }
        assertThat(allocated(p)).as("the next clean close gave the space back").isLessThanOrEqualTo(Files.size(p) + 4096);
        Qemu.requireClean(p, "after the session that followed the crash");
        assertThat(Arrays.mismatch(Arrays.copyOf(Qemu.guestContent(p), model.length), model)).isEqualTo(-1);
    }
}
