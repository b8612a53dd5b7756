package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.OverlapCheckMode;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Corruption handling like QEMU's: a write that would land on metadata is refused by the overlap check, the
 * image is marked corrupt in its header and goes read-only; a corrupt image cannot be opened read/write.
 */
class CorruptionWriteTest {
    @TempDir
    Path dir;

    static final ImageOptions RW = ImageOptions.builder().readOnly(false).build();

    record Layout(long l1, long refcountTable, long l2) {}

    Layout layout(Path img) throws IOException {
        long l1;
        long rt;
        try (AlignedFile f = AlignedFile.open(img, IoMode.BUFFERED, StandardOpenOption.READ)) {
            Qcow2Header h = Qcow2Header.read(f);
            l1 = h.l1TableOffset();
            rt = h.refcountTableOffset();
        }
        return new Layout(l1, rt, CorruptImageReadTest.readLong(img, l1) & 0x00ff_ffff_ffff_fe00L);
    }

    @Test
    void writeOverlappingTheRefcountTableIsRefusedAndMarksTheImageCorrupt() throws IOException {
        Path img = Qemu.create(dir, "c.qcow2", "cluster_size=65536", "16M");
        Qemu.io(img, "write -P 0x11 0 64k");
        Layout l = layout(img);
        // The data cluster of guest cluster 0 now claims to be the refcount table, with COPIED: in place.
        CorruptImageReadTest.writeLong(img, l.l2(), (1L << 63) | l.refcountTable());
        try (Qcow2Image im = ChainOpener.openQcow2(img, RW)) {
            assertThatThrownBy(() -> im.write(0, MemorySegment.ofArray(new byte[512])))
                    .isInstanceOf(Qcow2FormatException.class)
                    .hasMessageContaining("Preventing invalid write on metadata (overlaps with refcount table)");
            assertThat(im.isWritable()).isFalse();
            assertThat(im.warnings()).anyMatch(w -> w.contains("marking image as corrupt"));
            assertThatThrownBy(() -> im.write(1 << 20, MemorySegment.ofArray(new byte[512])))
                    .hasMessageContaining("read-only");
        }
        Map<String, Object> info = Qemu.info(img);
        assertThat(Json.at(info, "format-specific", "data", "corrupt")).isEqualTo(Boolean.TRUE);
        assertThatThrownBy(() -> ChainOpener.openQcow2(img, RW)).isInstanceOf(Qcow2FormatException.class)
                .hasMessageContaining("marked corrupt");
        try (Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.builder().readOnly(true).build())) {
            assertThat(im.warnings()).anyMatch(w -> w.contains("marked corrupt"));
        }
    }

    @Test
    void freeingADataClusterThatIsTheRefcountTableIsRefused() throws IOException {
        // Found by fuzzing: the old cluster of a copy-on-write was also a cached table; freeing it discarded the
        // table with its updates, and the write that had succeeded did not read back (qemu-io loses it too).
        Path img = Qemu.create(dir, "f.qcow2", "cluster_size=65536", "16M");
        Qemu.io(img, "write -P 0x11 0 64k");
        Layout l = layout(img);
        CorruptImageReadTest.writeLong(img, l.l2() + 8, l.refcountTable() | 1); // guest cluster 1: zero, allocated
        try (Qcow2Image im = ChainOpener.openQcow2(img, RW)) {
            assertThatThrownBy(() -> im.write(65536, MemorySegment.ofArray(new byte[512])))
                    .isInstanceOf(Qcow2FormatException.class)
                    .hasMessageContaining("Preventing invalid write on metadata (overlaps with refcount table)");
            assertThat(im.isWritable()).isFalse();
        }
        assertThat(Json.at(Qemu.info(img), "format-specific", "data", "corrupt")).isEqualTo(Boolean.TRUE);
    }

    @Test
    void anInPlaceWriteIntoAClusterWithRefcountZeroIsRefused() throws IOException {
        // The allocator may already have handed such a cluster to another guest cluster (found by fuzzing).
        Path img = Qemu.create(dir, "z.qcow2", "cluster_size=512", "256K");
        Qemu.io(img, "write -P 0x11 0 4k");
        CorruptImageReadTest.writeLong(img, layout(img).refcountTable(), 0); // refcount block 0 gone
        try (Qcow2Image im = ChainOpener.openQcow2(img, RW)) {
            assertThatThrownBy(() -> im.write(1000, MemorySegment.ofArray(new byte[100])))
                    .isInstanceOf(Qcow2FormatException.class)
                    .hasMessageContaining("as in use (COPIED) but its refcount is 0");
            assertThat(im.isWritable()).isFalse();
        }
        assertThat(Json.at(Qemu.info(img), "format-specific", "data", "corrupt")).isEqualTo(Boolean.TRUE);
    }

    @Test
    void misalignedL2TableOnAWriteMarksTheImageCorrupt() throws IOException {
        Path img = Qemu.create(dir, "m.qcow2", "cluster_size=65536", "16M");
        Qemu.io(img, "write -P 0x11 0 64k");
        Layout l = layout(img);
        CorruptImageReadTest.writeLong(img, l.l1(), (1L << 63) | (l.l2() + 512));
        try (Qcow2Image im = ChainOpener.openQcow2(img, RW)) {
            assertThatThrownBy(() -> im.write(0, MemorySegment.ofArray(new byte[4096])))
                    .isInstanceOf(Qcow2FormatException.class).hasMessageContaining("not aligned");
            assertThat(im.isWritable()).isFalse();
        }
        assertThat(Json.at(Qemu.info(img), "format-specific", "data", "corrupt")).isEqualTo(Boolean.TRUE);
    }

    @Test
    void overlapCheckNoneLetsTheWriteThrough() throws IOException {
        Path img = Qemu.create(dir, "n.qcow2", "cluster_size=65536", "16M");
        Qemu.io(img, "write -P 0x11 0 64k");
        Layout l = layout(img);
        long data = CorruptImageReadTest.readLong(img, l.l2()) & 0x00ff_ffff_ffff_fe00L;
        CorruptImageReadTest.writeLong(img, l.l2(), (1L << 63) | l.l2()); // cluster 0 is its own L2 table
        try (Qcow2Image im = ChainOpener.openQcow2(img, RW.toBuilder().overlapCheck(OverlapCheckMode.NONE).build())) {
            im.write(4096, MemorySegment.ofArray(new byte[512]));
            assertThat(im.isWritable()).isTrue();
        }
        assertThat(data).isPositive();
    }

    /**
     * Found by fuzzing: no refcount block covers cluster 0, so the refcounts call every cluster there free,
     * the header and the data clusters of the guest included. The allocation used to restart past cluster 0
     * (creating a refcount block on the way, on a data cluster in use) and the write and flush succeeded with
     * the data then overwritten by refcounts. Now the free header is caught as QEMU catches it (qemu-io fails
     * the same write with EIO: "Preventing invalid allocation of refcount block at offset 0").
     */
    @Test
    void refcountsThatCallTheHeaderFreeRefuseTheAllocationAndMarkTheImageCorrupt() throws IOException {
        Path img = Qemu.create(dir, "r.qcow2", "cluster_size=512", "256K");
        Qemu.io(img, "write -P 0x11 0 4k");
        Layout l = layout(img);
        CorruptImageReadTest.writeLong(img, l.refcountTable(), 0); // refcount block 0 gone
        java.nio.file.Files.copy(img, dir.resolve("q.qcow2"));
        String qemu = Qemu.exec(dir, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1000 8000", "q.qcow2").output();
        assertThat(qemu).contains("write failed: Input/output error")
                .contains("Preventing invalid allocation of refcount block at offset 0");
        try (Qcow2Image im = ChainOpener.openQcow2(img, RW)) {
            // past the written 4k: only new clusters (an in-place write into [0, 4k) is refused earlier, as a
            // COPIED cluster with refcount 0: ImageState.refuseUnreferenced, tested below)
            assertThatThrownBy(() -> im.write(5000, MemorySegment.ofArray(new byte[8000])))
                    .isInstanceOf(Qcow2FormatException.class)
                    .hasMessageContaining("refcounts corrupt: cluster 0 (the header) is free");
            assertThat(im.isWritable()).isFalse();
            assertThat(im.warnings()).anyMatch(w -> w.contains("marking image as corrupt"));
        }
        assertThat(Json.at(Qemu.info(img), "format-specific", "data", "corrupt")).isEqualTo(Boolean.TRUE);
        assertThat(Json.at(Qemu.info(dir.resolve("q.qcow2")), "format-specific", "data", "corrupt"))
                .isEqualTo(Boolean.TRUE);
    }
}
