package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The overlap check walks only the used part of the refcount table ({@link Refcounts#usedTableEntries}): a
 * write onto any refcount block is still refused, the last one qemu-io made and the ones qcow2j's own writes
 * create later (the table entry written in place, then by a table growth that moves the table).
 */
class OverlapRefcountBlockTest {
    @TempDir
    Path dir;

    private static long lastBlock(Qcow2Image img) {
        long[] t = img.refcounts().table();
        long last = 0;
        for (long e : t) {
            if (e != 0) {
                last = e & ~511L;
            }
        }
        return last;
    }

    @Test
    void writesOntoTheLastRefcountBlockAreRefusedAsTheTableGrows() throws IOException {
        // 512-byte clusters with 16-bit refcounts: one block covers 128 KiB of the file
        Path p = Qemu.create(dir, "o.qcow2", "cluster_size=512", "64M");
        Qemu.io(p, "write -P 0x11 0 1M");
        long before;
        long after;
        try (Qcow2Image img = ChainOpener.openQcow2(p, ImageOptions.defaults()); Arena arena = Arena.ofConfined()) {
            img.metadataLock().lock();
            try {
                before = lastBlock(img);
                assertThat(img.refcounts().usedTableEntries()).isGreaterThan(1);
            } finally {
                img.metadataLock().unlock();
            }
            MemorySegment src = arena.allocate(1 << 20);
            for (int i = 1; i <= 8; i++) { // 8 MiB more: new refcount blocks, and a table of more clusters
                img.write((long) i << 20, src);
            }
            img.metadataLock().lock();
            try {
                after = lastBlock(img);
            } finally {
                img.metadataLock().unlock();
            }
            assertThat(after).as("qcow2j created refcount blocks").isGreaterThan(before);
            img.flush();
        }
        for (long block : new long[] {before, after}) { // read-only: a refusal does not mark the image corrupt
            try (Qcow2Image img = ChainOpener.openQcow2(p, ImageOptions.builder().readOnly(true).build())) {
                assertThatThrownBy(() -> img.refuseOverlap(block, 512, 0)).isInstanceOf(Qcow2FormatException.class)
                        .hasMessageContaining("refcount block");
            }
        }
        try (Qcow2Image img = ChainOpener.openQcow2(p, ImageOptions.defaults())) {
            long block = after;
            // the same session that created the blocks guards them too (no reopen between)
            img.refuseOverlap(block + 512 * 4096L, 512, 0); // far past: nothing there
            MemorySegment src = Arena.ofAuto().allocate(1 << 20);
            img.write(20L << 20, src);
            long newest;
            img.metadataLock().lock();
            try {
                newest = lastBlock(img);
            } finally {
                img.metadataLock().unlock();
            }
            assertThat(newest).isGreaterThan(after);
            assertThatThrownBy(() -> img.refuseOverlap(newest, 512, 0)).hasMessageContaining("refcount block");
        }
    }
}
