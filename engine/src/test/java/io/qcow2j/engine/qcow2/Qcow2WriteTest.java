package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Side by side with QEMU: the same writes applied by qemu-io to one copy of an image and by qcow2j to
 * another; qemu-img compare finds them equal and qemu-img check finds ours clean.
 */
class Qcow2WriteTest {
    @TempDir
    Path dir;

    /** One request: a write (pattern 1..250), write zeroes (kind 1, 2 with unmap) or discard (kind 3). */
    record W(long offset, int length, int pattern, int kind) {
        String qemu() {
            return switch (kind) {
                case 1 -> "write -z " + offset + " " + length;
                case 2 -> "write -z -u " + offset + " " + length;
                case 3 -> "discard " + offset + " " + length;
                default -> "write -P 0x" + Integer.toHexString(pattern) + " " + offset + " " + length;
            };
        }

        void apply(Qcow2Image im) throws IOException {
            switch (kind) {
                case 1 -> im.writeZeroes(offset, length);
                case 2 -> im.writeZeroes(offset, length, ZeroFlag.unmapIf(true));
                case 3 -> im.discard(offset, length);
                default -> {
                    byte[] b = new byte[length];
                    Arrays.fill(b, (byte) pattern);
                    im.write(offset, MemorySegment.ofArray(b));
                }
            }
        }
    }

    static Stream<Arguments> images() {
        List<Arguments> a = new ArrayList<>();
        for (String o : List.of("cluster_size=65536", "cluster_size=512", "cluster_size=4096,refcount_bits=1",
                "cluster_size=4096,refcount_bits=64", "cluster_size=2M", "compat=0.10", "extended_l2=on",
                "cluster_size=4096,refcount_bits=2", "compression_type=zstd")) {
            a.add(Arguments.of(o));
        }
        return a.stream();
    }

    static List<W> randomWrites(long seed, long size, int cluster) {
        SplittableRandom rnd = new SplittableRandom(seed);
        List<W> ws = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            int len = 1 + rnd.nextInt(rnd.nextBoolean() ? 3 * cluster : 200_000);
            long off = rnd.nextLong(size - len);
            if (rnd.nextInt(3) == 0) {
                off &= -512L;
                len = Math.max(512, len & -512);
            }
            int kind = rnd.nextInt(10) < 6 ? 0 : 1 + rnd.nextInt(3);
            ws.add(new W(off, len, 1 + rnd.nextInt(250), kind));
        }
        return ws;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void randomWritesMatchQemu(String options) throws IOException {
        long size = 24L << 20;
        Path base = Qemu.create(dir, "base.qcow2", options, Long.toString(size));
        int cluster = ((Number) Qemu.info(base).get("cluster-size")).intValue();
        // pre-existing content of every kind: data, zeros, compressed
        String[] pre = {"write -P 0x11 0 1M", "write -z 2M 1M", "write -c -P 0x22 " + (8L << 20) + " " + Math.max(cluster, 65536) * 4L};
        Qemu.io(base, pre);
        List<W> ws = randomWrites(options.hashCode(), size, cluster);
        Path theirs = Files.copy(base, dir.resolve("theirs.qcow2"));
        Path ours = Files.copy(base, dir.resolve("ours.qcow2"));
        Qemu.io(theirs, ws.stream().map(W::qemu).toArray(String[]::new));
        try (Qcow2Image im = ChainOpener.openQcow2(ours, ImageOptions.builder().readOnly(false).build())) {
            for (W w : ws) {
                w.apply(im);
            }
            im.flush();
        }
        Qemu.run(dir, "qemu-img", "compare", "theirs.qcow2", "ours.qcow2");
        String check = Qemu.run(dir, "qemu-img", "check", "ours.qcow2");
        assertThat(check).contains("No errors were found on the image.");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void writesOverInternalSnapshotsCopyOnWrite(String options) throws IOException {
        // qemu-img cannot take snapshots when 1- or 2-bit refcounts cannot count the sharing
        org.junit.jupiter.api.Assumptions.assumeFalse(options.contains("refcount_bits=1")
                || options.contains("refcount_bits=2"), "refcounts too narrow for snapshots");
        long size = 8L << 20;
        Path base = Qemu.create(dir, "snap.qcow2", options, Long.toString(size));
        int cluster = ((Number) Qemu.info(base).get("cluster-size")).intValue();
        Qemu.io(base, "write -P 0x31 0 4M", "write -c -P 0x32 4M " + Math.max(cluster, 65536) * 2L);
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "one", "snap.qcow2");
        Qemu.io(base, "write -P 0x33 1M 1M");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "two", "snap.qcow2");
        List<W> ws = randomWrites(options.hashCode() * 7L, size, cluster);
        Path theirs = Files.copy(base, dir.resolve("theirs.qcow2"));
        Path ours = Files.copy(base, dir.resolve("ours.qcow2"));
        Qemu.io(theirs, ws.stream().map(W::qemu).toArray(String[]::new));
        try (Qcow2Image im = ChainOpener.openQcow2(ours, ImageOptions.builder().readOnly(false).build())) {
            for (W w : ws) {
                w.apply(im);
            }
        }
        Qemu.run(dir, "qemu-img", "compare", "theirs.qcow2", "ours.qcow2");
        assertThat(Qemu.run(dir, "qemu-img", "check", "ours.qcow2")).contains("No errors were found on the image.");
        // The snapshots still hold what they held.
        for (String snap : List.of("one", "two")) {
            Qemu.run(dir, "qemu-img", "convert", "-l", "snapshot.name=" + snap, "-O", "raw", "theirs.qcow2", "t-" + snap);
            Qemu.run(dir, "qemu-img", "convert", "-l", "snapshot.name=" + snap, "-O", "raw", "ours.qcow2", "o-" + snap);
            assertThat(Files.mismatch(dir.resolve("t-" + snap), dir.resolve("o-" + snap))).isEqualTo(-1);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void tinyCacheWritesOverABackingFile(String options) throws IOException {
        Qemu.create(dir, "back.qcow2", options, "8M");
        Qemu.io(dir.resolve("back.qcow2"), "write -P 0x5a 0 8M");
        Path base = Qemu.create(dir, "top.qcow2", options + ",backing_file=back.qcow2,backing_fmt=qcow2", null);
        int cluster = ((Number) Qemu.info(base).get("cluster-size")).intValue();
        List<W> ws = randomWrites(options.hashCode() * 31L, 8L << 20, cluster);
        Path theirs = Files.copy(base, dir.resolve("theirs.qcow2"));
        Path ours = Files.copy(base, dir.resolve("ours.qcow2"));
        Qemu.io(theirs, ws.stream().map(W::qemu).toArray(String[]::new));
        try (Qcow2Image im = ChainOpener.openQcow2(ours, ImageOptions.builder().readOnly(false).l2CacheSize(1024L)
                .l2CacheEntrySize(512L).cacheCleanInterval(0).build())) {
            for (W w : ws) {
                w.apply(im);
            }
        }
        Qemu.run(dir, "qemu-img", "compare", "theirs.qcow2", "ours.qcow2");
        assertThat(Qemu.run(dir, "qemu-img", "check", "ours.qcow2")).contains("No errors were found on the image.");
    }
}
