package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.ChainStatus;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.TableStoreKind;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Reads images that qemu-img and qemu-io made and compares every byte with {@code qemu-img convert -O raw},
 * under default caches, the smallest legal L2 cache (2 slices of 512 bytes: constant eviction), and the
 * heap store.
 */
class Qcow2ReadTest {
    @TempDir
    Path dir;

    static final ImageOptions DEFAULT = ImageOptions.defaults();
    static final ImageOptions TINY = ImageOptions.builder().l2CacheSize(1024L).l2CacheEntrySize(512L)
            .refcountCacheSize(0L).cacheCleanInterval(0).build();
    static final ImageOptions HEAP = ImageOptions.builder().tableStore(TableStoreKind.HEAP).build();

    /** qemu-io writes that give every cluster type: data, unaligned data, zeros, discarded, compressed. */
    static String[] workload(int cluster) {
        long big = Math.max(cluster, 65536);
        return new String[] {
            "write -P 0x11 0 " + big,
            "write -P 0x22 " + (big + 1536) + " 300k",
            "write -z " + (4 * big) + " " + (2 * big),
            "write -P 0x44 " + (8 * big) + " " + (2 * big),
            "discard " + (8 * big) + " " + big,
            "write -c -P 0x33 " + (12 * big) + " " + big,
            "write -P 0x55 " + (16 * big - 512) + " 1k",
        };
    }

    static Stream<Arguments> geometries() {
        List<Arguments> a = new ArrayList<>();
        for (int cluster : new int[] {512, 4096, 65536, 2 << 20}) {
            a.add(Arguments.of("cluster_size=" + cluster, cluster));
        }
        a.add(Arguments.of("compat=0.10,cluster_size=65536", 65536));
        for (int bits : new int[] {1, 2, 4, 8, 16, 32, 64}) {
            a.add(Arguments.of("refcount_bits=" + bits + ",cluster_size=4096", 4096));
        }
        a.add(Arguments.of("compression_type=zstd,cluster_size=65536", 65536));
        a.add(Arguments.of("compression_type=zstd,cluster_size=4096", 4096));
        a.add(Arguments.of("extended_l2=on,cluster_size=65536", 65536));
        a.add(Arguments.of("extended_l2=on,cluster_size=2M", 2 << 20));
        a.add(Arguments.of("preallocation=metadata,cluster_size=65536", 65536));
        a.add(Arguments.of("lazy_refcounts=on", 65536));
        return a.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("geometries")
    void readsEveryByteAsQemuDoes(String options, int cluster) throws IOException {
        long size = 20L * Math.max(cluster, 65536);
        Path img = Qemu.create(dir, "a.qcow2", options, Long.toString(size));
        String[] work = workload(cluster);
        if (options.contains("preallocation")) {
            // qemu-io cannot write compressed clusters over preallocated ones (EIO)
            work = java.util.Arrays.stream(work).filter(c -> !c.startsWith("write -c")).toArray(String[]::new);
        }
        Qemu.io(img, work);
        for (ImageOptions o : List.of(DEFAULT, TINY, HEAP)) {
            assertSameAsQemu(img, o);
        }
    }

    @Test
    void threeDeepBackingChainWithPartialOverrides() throws IOException {
        Path base = dir.resolve("base.raw");
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "raw", "base.raw", "6M");
        Qemu.run(dir, "qemu-io", "-f", "raw", "-c", "write -P 0xa1 0 6M", "base.raw");
        Qemu.create(dir, "mid.qcow2", "backing_file=base.raw,backing_fmt=raw,cluster_size=4096", null);
        Qemu.io(dir.resolve("mid.qcow2"), "write -P 0xb2 1M 1M", "write -z 2M 4k", "write -P 0xb3 5M 100k");
        // The top is larger than its backing file: the tail reads as zeros.
        Qemu.create(dir, "top.qcow2", "backing_file=mid.qcow2,backing_fmt=qcow2,cluster_size=65536", "8M");
        Qemu.io(dir.resolve("top.qcow2"), "write -P 0xc3 1536k 64k", "write -P 0xc4 7M 4k", "discard 0 64k",
                "write -z 3M 64k");
        assertThat(base).exists();
        try (Qcow2Image top = ChainOpener.openQcow2(dir.resolve("top.qcow2"), DEFAULT)) {
            ChainStatus chain = ChainStatus.of(top);
            ChainStatus.Extent e = chain.status(1536 << 10, 64 << 10); // written in the top image
            assertThat(e.depth()).isZero();
            assertThat(e.data()).isTrue();
            e = chain.status(1L << 20, 4096); // written in mid
            assertThat(e.depth()).isEqualTo(1);
            e = chain.status(4L << 20, 4096); // only in the raw base
            assertThat(e.depth()).isEqualTo(2);
            assertThat(e.filename()).isEqualTo("base.raw");
            e = chain.status(3L << 20, 4096); // zeroed in the top
            assertThat(e.depth()).isZero();
            assertThat(e.zero()).isTrue();
            e = chain.status((6L << 20) + 65536, 4096); // past the end of mid and base: zeros, not present
            assertThat(e.zero()).isTrue();
            assertThat(e.present()).isFalse();
        }
        for (ImageOptions o : List.of(DEFAULT, TINY)) {
            try (Qcow2Image top = ChainOpener.openQcow2(dir.resolve("top.qcow2"), o)) {
                assertThat(top.backing().orElseThrow().format()).isEqualTo("qcow2");
                assertThat(top.backing().orElseThrow().backing().orElseThrow().format()).isEqualTo("raw");
            }
            assertSameAsQemu(dir.resolve("top.qcow2"), o);
        }
    }

    @Test
    void extendedL2SubclustersOverABackingFile() throws IOException {
        Qemu.create(dir, "base.qcow2", "cluster_size=65536", "4M");
        Qemu.io(dir.resolve("base.qcow2"), "write -P 0x61 0 4M");
        Qemu.create(dir, "top.qcow2",
                "extended_l2=on,cluster_size=65536,backing_file=base.qcow2,backing_fmt=qcow2", null);
        Qemu.io(dir.resolve("top.qcow2"), "write -P 0x62 2k 2k", "write -P 0x63 8k 6k", "write -z 66k 4k",
                "write -P 0x64 130k 1k", "discard 200k 64k", "write -z 1M 64k");
        assertSameAsQemu(dir.resolve("top.qcow2"), DEFAULT);
        assertSameAsQemu(dir.resolve("top.qcow2"), TINY);
    }

    @Test
    void internalSnapshotsDoNotChangeTheActiveState() throws IOException {
        Path img = Qemu.create(dir, "s.qcow2", "cluster_size=65536", "8M");
        Qemu.io(img, "write -P 0x71 0 1M");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "one", "s.qcow2");
        Qemu.io(img, "write -P 0x72 512k 1M", "discard 0 64k");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "two", "s.qcow2");
        Qemu.io(img, "write -z 0 128k");
        assertSameAsQemu(img, DEFAULT);
        assertSameAsQemu(img, TINY);
    }

    @Test
    void sparseTerabyteImage() throws IOException {
        long tib = 1L << 40;
        Path img = Qemu.create(dir, "big.qcow2", "cluster_size=65536", "1T");
        Qemu.io(img, "write -P 0x81 0 64k", "write -P 0x82 512G 128k", "write -P 0x83 " + (tib - 4096) + " 4k");
        try (Qcow2Image im = ChainOpener.openQcow2(img, TINY); Arena arena = Arena.ofConfined()) {
            assertThat(im.size()).isEqualTo(tib);
            MemorySegment buf = arena.allocate(256 << 10);
            im.read(0, buf);
            assertFilled(buf.asSlice(0, 65536), 0x81);
            assertFilled(buf.asSlice(65536), 0);
            im.read((512L << 30) - 65536, buf);
            assertFilled(buf.asSlice(0, 65536), 0);
            assertFilled(buf.asSlice(65536, 131072), 0x82);
            assertFilled(buf.asSlice(196608), 0);
            MemorySegment tail = buf.asSlice(0, 8192);
            im.read(tib - 8192, tail);
            assertFilled(tail.asSlice(0, 4096), 0);
            assertFilled(tail.asSlice(4096), 0x83);
            assertThatThrownBy(() -> im.read(tib - 4096, buf.asSlice(0, 8192)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("outside the image");
            assertThat(im.l2CacheStatistics().misses()).isGreaterThan(0);
        }
    }

    @Test
    void concurrentReadersSeeTheSameBytes() throws Exception {
        Path img = Qemu.create(dir, "c.qcow2", "cluster_size=4096", "32M");
        Qemu.io(img, "write -P 0x91 0 8M", "write -c -P 0x92 8M 1M", "write -z 9M 1M", "write -P 0x93 20M 5M");
        byte[] expected = convert(img);
        try (Qcow2Image im = ChainOpener.openQcow2(img, TINY)) {
            ExecutorService pool = Executors.newFixedThreadPool(4);
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int seed = t;
                fs.add(pool.submit(() -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    for (int i = 0; i < 400; i++) {
                        int len = 1 + rnd.nextInt(200_000);
                        long off = rnd.nextLong(expected.length - len);
                        byte[] got = new byte[len];
                        im.read(off, MemorySegment.ofArray(got));
                        assertThat(got).isEqualTo(java.util.Arrays.copyOfRange(expected, (int) off, (int) off + len));
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get();
            }
            pool.shutdown();
        }
    }

    @Test
    void refusesWhatItCannotOpenWithOneLine() throws IOException {
        Path raw = dir.resolve("plain.raw");
        Files.write(raw, new byte[4096]);
        assertThatThrownBy(() -> ChainOpener.openQcow2(raw, DEFAULT)).isInstanceOf(Qcow2FormatException.class)
                .hasMessage(raw + ": not a qcow2 image (no qcow2 magic)");
        assertThatThrownBy(() -> ChainOpener.openQcow2(dir.resolve("missing.qcow2"), DEFAULT))
                .isInstanceOf(java.nio.file.NoSuchFileException.class);
        Qemu.create(dir, "orphan.qcow2", "backing_file=gone.qcow2,backing_fmt=qcow2", "1M", "-u");
        assertThatThrownBy(() -> ChainOpener.openQcow2(dir.resolve("orphan.qcow2"), DEFAULT))
                .hasMessageContaining("gone.qcow2");
        // a loop: a -> b -> a
        Qemu.create(dir, "la.qcow2", null, "1M");
        Qemu.create(dir, "lb.qcow2", "backing_file=la.qcow2,backing_fmt=qcow2", null);
        Qemu.run(dir, "qemu-img", "rebase", "-u", "-b", "lb.qcow2", "-F", "qcow2", "la.qcow2");
        assertThatThrownBy(() -> ChainOpener.openQcow2(dir.resolve("la.qcow2"), DEFAULT)).isInstanceOf(Qcow2FormatException.class)
                .hasMessageContaining("loops back");
    }

    // ------------------------------------------------------------------ helpers

    byte[] convert(Path img) throws IOException {
        Path raw = dir.resolve(img.getFileName() + ".raw");
        Files.deleteIfExists(raw);
        Qemu.run(dir, "qemu-img", "convert", "-O", "raw", img.getFileName().toString(), raw.getFileName().toString());
        return Files.readAllBytes(raw);
    }

    void assertSameAsQemu(Path img, ImageOptions o) throws IOException {
        byte[] expected = convert(img);
        try (Qcow2Image im = ChainOpener.openQcow2(img, o)) {
            assertThat(im.size()).isEqualTo(expected.length);
            // Whole image in odd-sized chunks into a native segment, then random reads into heap arrays.
            try (Arena arena = Arena.ofConfined()) {
                int chunk = 3 * 65536 + 1234;
                MemorySegment buf = arena.allocate(chunk);
                for (long off = 0; off < expected.length; off += chunk) {
                    int n = (int) Math.min(chunk, expected.length - off);
                    MemorySegment part = buf.asSlice(0, n);
                    im.read(off, part);
                    byte[] got = part.toArray(ValueLayout.JAVA_BYTE);
                    if (!java.util.Arrays.equals(got, 0, n, expected, (int) off, (int) off + n)) {
                        int i = java.util.Arrays.mismatch(got, 0, n, expected, (int) off, (int) off + n);
                        throw new AssertionError(img.getFileName() + " " + o + ": byte " + (off + i) + " is "
                                + got[i] + ", qemu-img says " + expected[(int) off + i]);
                    }
                }
            }
            SplittableRandom rnd = new SplittableRandom(img.hashCode());
            for (int i = 0; i < 200; i++) {
                int len = 1 + rnd.nextInt(Math.min(expected.length, 300_000));
                long off = rnd.nextLong(expected.length - len + 1);
                byte[] got = new byte[len];
                im.read(off, MemorySegment.ofArray(got));
                assertThat(java.util.Arrays.equals(got, 0, len, expected, (int) off, (int) off + len))
                        .as("%s at %d+%d with %s", img.getFileName(), off, len, o).isTrue();
            }
            assertThat(im.warnings()).isEmpty();
        }
    }

    static void assertFilled(MemorySegment s, int value) {
        for (long i = 0; i < s.byteSize(); i++) {
            if ((s.get(ValueLayout.JAVA_BYTE, i) & 0xff) != value) {
                throw new AssertionError("byte " + i + " is " + (s.get(ValueLayout.JAVA_BYTE, i) & 0xff)
                        + ", expected " + value);
            }
        }
    }
}
