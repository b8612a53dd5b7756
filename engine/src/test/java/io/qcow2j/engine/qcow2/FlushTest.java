package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A guest flush costs at most two fdatasync calls: refcount blocks, then L2 tables and data. */
class FlushTest {
    @TempDir
    Path dir;

    @Test
    void allocatingWriteThenFlushCostsAtMostTwoSyncs() throws IOException {
        Path img = Qemu.create(dir, "f.qcow2", "cluster_size=65536", "1G");
        try (Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.builder().readOnly(false).build())) {
            byte[] b = new byte[4096];
            // The first write allocates an L2 table (synced on its own, as QEMU does); flush that away.
            im.write(0, MemorySegment.ofArray(b));
            im.flush();
            for (int i = 1; i <= 20; i++) {
                long before = im.syncCount();
                im.write(i * 65536L, MemorySegment.ofArray(b)); // a new data cluster in the same L2 table
                im.flush();
                assertThat(im.syncCount() - before).as("syncs for flush %d", i).isEqualTo(2);
            }
            long before = im.syncCount();
            im.write(65536L, MemorySegment.ofArray(b)); // in place: no metadata changes
            im.flush();
            assertThat(im.syncCount() - before).isEqualTo(1);
            before = im.syncCount();
            im.flush(); // nothing to do but the sync the guest asked for
            assertThat(im.syncCount() - before).isEqualTo(1);
        }
        assertThat(Qemu.run(dir, "qemu-img", "check", "f.qcow2")).contains("No errors were found");
    }

    @Test
    void discardUnmapPunchesFreedClustersOutOfTheFile() throws IOException {
        Path img = Qemu.create(dir, "d.qcow2", "cluster_size=65536", "64M");
        Qemu.io(img, "write -P 0x42 0 32M");
        long before;
        try (Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.builder().readOnly(false).discardUnmap(true).build())) {
            before = im.allocatedBytes();
            im.discard(0, 16L << 20);
            im.flush();
            assertThat(im.allocatedBytes()).isLessThan(before - (15L << 20));
            byte[] b = new byte[4096];
            im.read(0, MemorySegment.ofArray(b));
            assertThat(b).containsOnly(0);
        }
        assertThat(Qemu.run(dir, "qemu-img", "check", "d.qcow2")).contains("No errors were found");
    }

    @Test
    void lazyRefcountsCostOneSyncPerFlushAndACleanCloseClearsTheDirtyBit() throws IOException {
        Path img = Qemu.create(dir, "l.qcow2", "cluster_size=65536,lazy_refcounts=on", "1G");
        try (Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.builder().readOnly(false).build())) {
            byte[] b = new byte[4096];
            im.write(0, MemorySegment.ofArray(b));
            im.flush();
            assertThat(Json.at(Qemu.info(img), "dirty-flag")).isEqualTo(Boolean.TRUE);
            for (int i = 1; i <= 10; i++) {
                long before = im.syncCount();
                im.write(i * 65536L, MemorySegment.ofArray(b));
                im.flush();
                assertThat(im.syncCount() - before).as("syncs for flush %d", i).isEqualTo(1);
            }
        }
        assertThat(Json.at(Qemu.info(img), "dirty-flag")).isEqualTo(Boolean.FALSE);
        assertThat(Qemu.run(dir, "qemu-img", "check", "l.qcow2")).contains("No errors were found");
    }

    @Test
    void aDirtyLazyImageIsRepairedOnTheNextWritableOpen() throws IOException {
        Path img = Qemu.create(dir, "crash.qcow2", "cluster_size=65536,lazy_refcounts=on", "1G");
        byte[] b = new byte[65536];
        java.util.Arrays.fill(b, (byte) 0x5c);
        Qcow2Image crashed = ChainOpener.openQcow2(img, ImageOptions.builder().readOnly(false).build());
        for (int i = 0; i < 8; i++) {
            crashed.write(i * 131072L, MemorySegment.ofArray(b));
        }
        crashed.flush(); // L2 tables durable, refcounts not: then the process "dies" (no close)
        assertThat(Json.at(Qemu.info(img), "dirty-flag")).isEqualTo(Boolean.TRUE);
        String before = Qemu.runExpectingFailure(dir, "qemu-img", "check", "crash.qcow2");
        assertThat(before).contains("ERROR");
        try (Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.builder().readOnly(false).build())) {
            assertThat(im.warnings()).anyMatch(w -> w.contains("not closed cleanly") && w.contains("refcounts repaired"));
            byte[] r = new byte[65536];
            im.read(7 * 131072L, MemorySegment.ofArray(r));
            assertThat(r).isEqualTo(b);
            im.write(3L << 20, MemorySegment.ofArray(b));
        }
        assertThat(Json.at(Qemu.info(img), "dirty-flag")).isEqualTo(Boolean.FALSE);
        assertThat(Qemu.run(dir, "qemu-img", "check", "crash.qcow2")).contains("No errors were found");
    }

    @Test
    void lazyRefcountsOffByOptionKeepTheDependency() throws IOException {
        Path img = Qemu.create(dir, "o.qcow2", "cluster_size=65536,lazy_refcounts=on", "1G");
        try (Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.parse("lazy-refcounts=off,read-only=off",
                ImageOptions.defaults()))) {
            im.write(0, MemorySegment.ofArray(new byte[4096]));
            im.flush();
            long before = im.syncCount();
            im.write(65536L, MemorySegment.ofArray(new byte[4096]));
            im.flush();
            assertThat(im.syncCount() - before).isEqualTo(2);
            assertThat(Json.at(Qemu.info(img), "dirty-flag")).isEqualTo(Boolean.FALSE);
        }
    }

    @Test
    void unsafeModeNeverSyncs() throws IOException {
        Path img = Qemu.create(dir, "u.qcow2", "cluster_size=65536", "1G");
        try (Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.builder().readOnly(false).cacheMode(CacheMode.UNSAFE).build())) {
            for (int i = 0; i < 10; i++) {
                im.write(i * 65536L, MemorySegment.ofArray(new byte[4096]));
                im.flush();
            }
            assertThat(im.syncCount()).isZero();
        }
        assertThat(Qemu.run(dir, "qemu-img", "check", "u.qcow2")).contains("No errors were found");
    }
}
