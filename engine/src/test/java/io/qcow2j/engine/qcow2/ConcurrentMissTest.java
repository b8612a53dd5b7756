package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.TableStoreKind;
import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.check.QemuCheck;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Reads that miss the L2 cache load slices with the metadata lock released, while writers allocate clusters
 * (and new L2 tables) and a third kind of request zeroes and discards: every read must still return what
 * qemu-img wrote, every write must be readable, and the image must stay consistent for qemu-img.
 */
class ConcurrentMissTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(TableStoreKind.class)
    void readsMissingTheCacheRaceWritesZeroesAndDiscards(TableStoreKind store) throws Exception {
        // 4 KiB clusters: one 512-byte slice maps 256 KiB, one L2 table 2 MiB. The cache holds 16 slices, so
        // up to 4 loads at a time run without the lock, and almost every read of the first 24 MiB misses.
        Path img = Qemu.create(dir, "m.qcow2", "cluster_size=4096", "64M");
        Qemu.io(img, "write -P 0x5a 0 16M", "write -P 0x6b 16M 8M");
        byte[] expected = new byte[24 << 20];
        Arrays.fill(expected, 0, 16 << 20, (byte) 0x5a);
        Arrays.fill(expected, 16 << 20, 24 << 20, (byte) 0x6b);
        ImageOptions o = ImageOptions.builder().readOnly(false).l2CacheSize(8192L).l2CacheEntrySize(512L)
                .cacheCleanInterval(0).tableStore(store).build();
        long writeBase = 32L << 20; // writers own 32..48 MiB (4 MiB each); zeroes and discards take 48..64 MiB
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try (Qcow2Image im = ChainOpener.openQcow2(img, o)) {
            List<Future<?>> fs = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int seed = t;
                fs.add(pool.submit(() -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    for (int i = 0; i < 1500; i++) {
                        int len = 1 + rnd.nextInt(20_000);
                        long off = rnd.nextLong(expected.length - len);
                        byte[] got = new byte[len];
                        im.read(off, MemorySegment.ofArray(got));
                        assertThat(got).isEqualTo(Arrays.copyOfRange(expected, (int) off, (int) off + len));
                    }
                    return null;
                }));
            }
            for (int w = 0; w < 3; w++) {
                int id = w;
                fs.add(pool.submit(() -> {
                    byte[] data = new byte[6000];
                    for (int i = 0; i < 600; i++) {
                        long off = writeBase + ((long) id << 22) + (long) i * 6991;
                        Arrays.fill(data, (byte) (id + 1));
                        im.write(off, MemorySegment.ofArray(data));
                        byte[] back = new byte[data.length];
                        im.read(off, MemorySegment.ofArray(back));
                        assertThat(back).isEqualTo(data);
                    }
                    return null;
                }));
            }
            fs.add(pool.submit(() -> {
                SplittableRandom rnd = new SplittableRandom(99);
                byte[] data = new byte[65536];
                Arrays.fill(data, (byte) 0x77);
                for (int i = 0; i < 60; i++) {
                    long off = (48L << 20) + rnd.nextLong(16L << 20) & -4096L;
                    long len = Math.min(65536, (64L << 20) - off);
                    im.write(off, MemorySegment.ofArray(data).asSlice(0, len));
                    if (rnd.nextBoolean()) {
                        im.writeZeroes(off, len, ZeroFlag.unmapIf(rnd.nextBoolean()));
                    } else {
                        im.discard(off, len);
                    }
                }
                return null;
            }));
            for (Future<?> f : fs) {
                f.get(120, TimeUnit.SECONDS);
            }
            assertThat(im.l2CacheStatistics().loads()).isGreaterThan(1000);
        } finally {
            pool.shutdownNow();
        }
        QemuCheck check = QemuCheck.run(img);
        assertThat(check.numbers()).containsEntry("check-errors", 0L).containsEntry("corruptions", 0L)
                .containsEntry("leaks", 0L);
        for (int id = 0; id < 3; id++) {
            long off = writeBase + ((long) id << 22) + 599L * 6991;
            Qemu.io(img, "read -P " + (id + 1) + " " + off + " 6000");
        }
        Qemu.io(img, "read -P 0x5a 0 16M", "read -P 0x6b 16M 8M");
    }
}
