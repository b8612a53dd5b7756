package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.AsyncFile;
import io.qcow2j.ffm.AsyncIo;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.ffm.IoRequest;
import io.qcow2j.testsupport.Qemu;
import io.qcow2j.testsupport.ScratchDirs;
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
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code readAsync}'s fast path ({@link FastReads}): which reads take it (cached mappings of COPIED data,
 * zero and unallocated clusters without a backing file) and which fall back to the virtual-thread path (a
 * cache miss, compressed clusters, a backing file, clusters shared with a snapshot on a writable image), on
 * both I/O backends, tmpfs and ext4, buffered and O_DIRECT. Every read is checked against what qemu-img reads.
 */
class FastReadsTest {
    private static final int MIB = 1 << 20;
    private static AsyncIo ioUring;
    private static AsyncIo threads;

    private final ScratchDirs scratch = new ScratchDirs();

    @BeforeAll
    static void openBackends() {
        ioUring = AsyncIo.open("io_uring", 64);
        threads = AsyncIo.open("threads", 64);
    }

    @AfterAll
    static void closeBackends() {
        ioUring.close();
        threads.close();
    }

    @AfterEach
    void removeScratch() throws IOException {
        scratch.deleteAll();
    }

    /** A scratch folder on tmpfs ({@code /dev/shm}) or on the disk's file system ({@code target/}, ext4 here). */
    Path dir(String fs) throws IOException {
        return scratch.create(fs, "fastreads-");
    }

    static Qcow2Image open(Path img, ImageOptions o, AsyncIo io) throws IOException {
        return ChainOpener.openQcow2(img, o, (path, mode, writable) -> new AsyncFile(writable
                ? AlignedFile.open(path, mode, StandardOpenOption.READ, StandardOpenOption.WRITE)
                : AlignedFile.open(path, mode, StandardOpenOption.READ), io));
    }

    static Stream<Arguments> backendsAndFileSystems() {
        List<Arguments> a = new ArrayList<>();
        for (String backend : new String[] {"io_uring", "threads"}) {
            for (String fs : new String[] {"tmpfs", "ext4"}) {
                for (CacheMode mode : new CacheMode[] {CacheMode.WRITEBACK, CacheMode.NONE}) {
                    a.add(Arguments.of(backend, fs, mode));
                }
            }
        }
        return a.stream();
    }

    static AsyncIo backend(String name) {
        return name.equals("io_uring") ? ioUring : threads;
    }

    /** Data, zero clusters (allocated and not), unallocated space, in one 8 MiB image of 64 KiB clusters. */
    static Path mixedImage(Path dir) {
        Path img = Qemu.create(dir, "m.qcow2", "cluster_size=65536", "8M");
        Qemu.io(img, "write -P 0x11 0 1M", "write -P 0x22 1M 64k", "write -z 2M 128k", "write -P 0x33 2176k 64k",
                "write -P 0x44 3M 2M", "write -z -u 3584k 64k", "write -P 0x55 5000k 100k");
        return img;
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("backendsAndFileSystems")
    void cachedMappingsTakeTheFastPathAndReadWhatQemuReads(String backend, String fs, CacheMode mode) throws Exception {
        Path img = mixedImage(dir(fs));
        byte[] expected = Qemu.guestContent(img);
        ImageOptions o = ImageOptions.builder().readOnly(false).cacheMode(mode).build();
        SplittableRandom rnd = new SplittableRandom(fs.hashCode() + backend.hashCode() + mode.ordinal());
        try (Qcow2Image im = open(img, o, backend(backend)); Arena arena = Arena.ofShared()) {
            im.read(0, arena.allocate(expected.length, 4096)); // the L2 slice is cached from here on
            long before = im.fastReads();
            int n = 300;
            List<CompletableFuture<Void>> fs2 = new ArrayList<>();
            MemorySegment[] dst = new MemorySegment[n];
            long[] off = new long[n];
            for (int i = 0; i < n; i++) {
                int len = 4096 * (1 + rnd.nextInt(64)); // aligned: O_DIRECT reads go straight too
                off[i] = 4096L * rnd.nextInt((expected.length - len) / 4096);
                dst[i] = arena.allocate(len, 4096);
                dst[i].fill((byte) 0x7f); // zero runs must really be filled
                fs2.add(im.readAsync(off[i], dst[i]));
            }
            // and scatter-gather: three buffers over data, zeros and unallocated space
            MemorySegment[] v = {arena.allocate(64 << 10, 4096), arena.allocate(1 << 20, 4096), arena.allocate(8192, 4096)};
            fs2.add(im.readvAsync(2 * MIB - 32768, v));
            CompletableFuture.allOf(fs2.toArray(CompletableFuture[]::new)).join();
            for (int i = 0; i < n; i++) {
                assertThat(dst[i].toArray(ValueLayout.JAVA_BYTE)).as("read %d at %d", i, off[i])
                        .isEqualTo(Arrays.copyOfRange(expected, (int) off[i], (int) (off[i] + dst[i].byteSize())));
            }
            long pos = 2 * MIB - 32768;
            for (MemorySegment b : v) {
                assertThat(b.toArray(ValueLayout.JAVA_BYTE))
                        .isEqualTo(Arrays.copyOfRange(expected, (int) pos, (int) (pos + b.byteSize())));
                pos += b.byteSize();
            }
            assertThat(im.fastReads() - before).as("reads on the fast path").isEqualTo(n + 1);
        }
        Qemu.requireClean(img, "after fast reads");
    }

    @Test
    void aCacheMissTakesTheGeneralPathThenTheSliceIsFast() throws Exception {
        // 4 KiB clusters, 512-byte slices (256 KiB of guest each), 16 slices cached: 0 and 4 MiB cannot both stay
        Path img = Qemu.create(dir("tmpfs"), "miss.qcow2", "cluster_size=4096", "16M");
        Qemu.io(img, "write -P 0x5a 0 16M");
        ImageOptions o = ImageOptions.builder().readOnly(false).l2CacheSize(8192L).l2CacheEntrySize(512L)
                .cacheCleanInterval(0).build();
        try (Qcow2Image im = open(img, o, ioUring); Arena arena = Arena.ofShared()) {
            MemorySegment b = arena.allocate(65536, 4096);
            long f0 = im.fastReads();
            im.readAsync(8 * MIB, b).join(); // the slice is not cached yet: loaded by the general path
            assertThat(im.fastReads()).as("a miss is not on the fast path").isEqualTo(f0);
            assertThat(b.toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0x5a);
            b.fill((byte) 0);
            im.readAsync(8 * MIB + 4096, b).join();
            assertThat(im.fastReads()).as("the slice is cached now").isEqualTo(f0 + 1);
            assertThat(b.toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0x5a);
        }
    }

    @Test
    void compressedClustersTakeTheGeneralPath() throws Exception {
        Path d = dir("ext4");
        Path src = mixedImage(d);
        Qemu.run(d, "qemu-img", "convert", "-c", "-O", "qcow2", "m.qcow2", "c.qcow2");
        Path img = d.resolve("c.qcow2");
        byte[] expected = Qemu.guestContent(src);
        try (Qcow2Image im = open(img, ImageOptions.builder().readOnly(true).build(), ioUring);
                Arena arena = Arena.ofShared()) {
            MemorySegment all = arena.allocate(expected.length, 4096);
            im.read(0, all);
            long f0 = im.fastReads();
            MemorySegment b = arena.allocate(MIB, 4096);
            im.readAsync(3 * MIB, b).join(); // compressed data
            assertThat(im.fastReads()).isEqualTo(f0);
            assertThat(b.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(Arrays.copyOfRange(expected, 3 * MIB, 4 * MIB));
            im.readAsync(6 * MIB, b).join(); // unallocated (nothing compressed there): the fast path fills zeros
            assertThat(im.fastReads()).isEqualTo(f0 + 1);
            assertThat(b.toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void aBackingFileIsReadByTheGeneralPath(String backend) throws Exception {
        Path d = dir("tmpfs");
        Path base = Qemu.create(d, "base.qcow2", null, "8M");
        Qemu.io(base, "write -P 0x61 0 8M");
        Qemu.run(d, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        Path top = d.resolve("top.qcow2");
        Qemu.io(top, "write -P 0x62 1M 1M");
        byte[] expected = Qemu.guestContent(top);
        try (Qcow2Image im = open(top, ImageOptions.builder().readOnly(false).build(), backend(backend));
                Arena arena = Arena.ofShared()) {
            im.read(0, arena.allocate(8 * MIB, 4096));
            long f0 = im.fastReads();
            MemorySegment b = arena.allocate(MIB, 4096);
            im.readAsync(MIB, b).join();
            assertThat(im.fastReads()).as("the overlay's own data").isEqualTo(f0 + 1);
            assertThat(b.toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0x62);
            im.readAsync(MIB + MIB / 2, b).join(); // half overlay, half backing
            assertThat(im.fastReads()).as("backing bytes: general path").isEqualTo(f0 + 1);
            assertThat(b.toArray(ValueLayout.JAVA_BYTE))
                    .isEqualTo(Arrays.copyOfRange(expected, MIB + MIB / 2, 2 * MIB + MIB / 2));
        }
    }

    @Test
    void clustersSharedWithASnapshotAreFastOnlyWhenReadOnly() throws Exception {
        Path img = mixedImage(dir("ext4"));
        Qemu.run(img.getParent(), "qemu-img", "snapshot", "-c", "s1", "m.qcow2");
        byte[] expected = Qemu.guestContent(img);
        for (boolean readOnly : new boolean[] {false, true}) {
            try (Qcow2Image im = open(img, ImageOptions.builder().readOnly(readOnly).build(), ioUring);
                    Arena arena = Arena.ofShared()) {
                im.read(0, arena.allocate(8 * MIB, 4096));
                long f0 = im.fastReads();
                MemorySegment b = arena.allocate(MIB, 4096);
                im.readAsync(0, b).join(); // refcount 2, no COPIED flag: a write may move it while we read
                assertThat(im.fastReads()).as("read-only " + readOnly).isEqualTo(readOnly ? f0 + 1 : f0);
                assertThat(b.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(Arrays.copyOfRange(expected, 0, MIB));
            }
        }
        Qemu.requireClean(img, "after reads of snapshot clusters");
    }

    @Test
    void aDataClusterPastTheEndOfTheFileReadsAsZeros() throws Exception {
        Path d = dir("tmpfs");
        Path img = Qemu.create(d, "t.qcow2", "cluster_size=65536", "8M");
        Qemu.io(img, "write -P 0x77 7M 64k");
        long size = Files.size(img); // the last cluster written is the data cluster
        try (var ch = java.nio.channels.FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.truncate(size - 65536 + 4096); // the first 4 KiB of it survive
        }
        try (Qcow2Image im = open(img, ImageOptions.builder().readOnly(true).build(), ioUring);
                Arena arena = Arena.ofShared()) {
            im.read(0, arena.allocate(4096, 4096));
            long f0 = im.fastReads();
            MemorySegment b = arena.allocate(65536, 4096);
            b.fill((byte) 0x7f);
            im.readAsync(7 * MIB, b).join();
            assertThat(im.fastReads()).isEqualTo(f0 + 1);
            byte[] got = b.toArray(ValueLayout.JAVA_BYTE);
            assertThat(Arrays.copyOfRange(got, 0, 4096)).containsOnly((byte) 0x77);
            assertThat(Arrays.copyOfRange(got, 4096, 65536)).as("past the end of the file").containsOnly((byte) 0);
        }
    }

    @Test
    void closeWaitsForFastReadsInFlight() throws Exception {
        Path img = mixedImage(dir("ext4"));
        byte[] expected = Qemu.guestContent(img);
        Arena arena = Arena.ofShared();
        List<CompletableFuture<Void>> fs = new ArrayList<>();
        List<MemorySegment> bufs = new ArrayList<>();
        Qcow2Image im = open(img, ImageOptions.builder().readOnly(false).cacheMode(CacheMode.NONE).build(), ioUring);
        im.read(0, arena.allocate(4096, 4096));
        for (int i = 0; i < 100; i++) {
            MemorySegment b = arena.allocate(65536, 4096);
            bufs.add(b);
            fs.add(im.readAsync((long) (i % 120) * 65536, b));
        }
        im.close();
        for (CompletableFuture<Void> f : fs) {
            f.join(); // none failed: close waited for their reads (their futures may complete just after)
        }
        for (int i = 0; i < 100; i++) {
            int off = (i % 120) * 65536;
            assertThat(bufs.get(i).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(Arrays.copyOfRange(expected, off, off + 65536));
        }
        arena.close();
        Qemu.requireClean(img, "after close");
    }

    /**
     * The invariant of {@link FastReads} made deterministic: the thread-pool backend's four workers are all
     * held in completion callbacks of other requests, so a fast read of cluster X waits in the backend's
     * queue; meanwhile a discard of X (which frees its host cluster) and a write of Y (which would reuse it)
     * are started. The discard must wait for the read (the request lock), so the read returns X's bytes.
     */
    @Test
    void aClusterIsNotFreedWhileAFastReadOfItIsInFlight() throws Exception {
        Path d = dir("ext4");
        Path img = Qemu.create(d, "f.qcow2", "cluster_size=65536", "4M");
        Qemu.io(img, "write -P 0x58 0 64k"); // X: guest cluster 0; Y: guest cluster 1 (unallocated)
        Path other = d.resolve("other");
        Files.write(other, new byte[4096]);
        CountDownLatch held = new CountDownLatch(4);
        CountDownLatch release = new CountDownLatch(1);
        try (AsyncIo io = AsyncIo.open("threads", 16); Arena arena = Arena.ofShared();
                AlignedFile o = AlignedFile.open(other, IoMode.BUFFERED, StandardOpenOption.READ);
                Qcow2Image im = open(img, ImageOptions.builder().readOnly(false).build(), io)) {
            MemorySegment x = arena.allocate(65536, 4096);
            im.read(0, x);
            for (int i = 0; i < 4; i++) { // a completion runs on its worker: these hold all four
                io.submit(new IoRequest().read(o.fd(), 0, arena.allocate(4096)).onCompletion(r -> {
                    held.countDown();
                    try {
                        release.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }));
            }
            held.await();
            try {
                readWhileAClusterIsFreed(im, arena, x, release);
            } finally {
                release.countDown(); // the backend's close waits for its workers
            }
        }
        Qemu.requireClean(img, "after the discard and the write");
    }

    private static void readWhileAClusterIsFreed(Qcow2Image im, Arena arena, MemorySegment x, CountDownLatch release)
            throws Exception {
        x.fill((byte) 0);
        long f0 = im.fastReads();
        CompletableFuture<Void> read = im.readAsync(0, x);
        assertThat(im.fastReads()).isEqualTo(f0 + 1);
        MemorySegment y = arena.allocate(65536, 4096);
        y.fill((byte) 0x59);
        CompletableFuture<Void> discardThenWrite = CompletableFuture.runAsync(() -> {
            try {
                im.discard(0, 65536); // frees X's host cluster ...
                im.write(65536, y);   // ... which Y's allocation would take
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        Thread.sleep(300);
        assertThat(read).as("queued behind the held workers").isNotDone();
        boolean discardedWhileReading = discardThenWrite.isDone();
        release.countDown();
        read.join();
        assertThat(x.toArray(ValueLayout.JAVA_BYTE)).as("X's bytes, not Y's").containsOnly((byte) 0x58);
        assertThat(discardedWhileReading).as("the discard waited for the read in flight").isFalse();
        discardThenWrite.join();
    }
}
