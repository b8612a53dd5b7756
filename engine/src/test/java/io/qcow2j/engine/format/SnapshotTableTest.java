package io.qcow2j.engine.format;

import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Snapshot tables written by qemu-img, compared with qemu-img info, and hostile ones. */
class SnapshotTableTest {
    @TempDir
    Path dir;

    @Test
    void matchesQemuImgInfo() throws IOException {
        Path path = Qemu.create(dir, "img.qcow2", null, "1G");
        Qemu.io(path, "write -P 0xab 0 64k");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "snap1", "img.qcow2");
        Qemu.io(path, "write -P 0xcd 0 64k");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "snäp two, with spaces", "img.qcow2");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "three", "img.qcow2");
        Qemu.run(dir, "qemu-img", "snapshot", "-d", "snap1", "img.qcow2");
        // Growing the image leaves the snapshots at their old size.
        Qemu.run(dir, "qemu-img", "resize", "-q", "img.qcow2", "+1G");

        List<Qcow2Snapshot> snapshots = readBothWays(path);
        Map<String, Object> info = Qemu.info(path);
        List<?> expected = (List<?>) info.get("snapshots");
        assertThat(snapshots).hasSize(expected.size()).hasSize(2);
        for (int i = 0; i < expected.size(); i++) {
            Map<?, ?> e = (Map<?, ?>) expected.get(i);
            Qcow2Snapshot s = snapshots.get(i);
            assertThat(s.id()).isEqualTo(e.get("id"));
            assertThat(s.name()).isEqualTo(e.get("name"));
            assertThat(s.dateSeconds()).isEqualTo(e.get("date-sec"));
            assertThat(s.dateNanos()).isEqualTo(e.get("date-nsec"));
            assertThat(s.vmClockNanos()).isEqualTo((Long) e.get("vm-clock-sec") * 1_000_000_000L
                    + (Long) e.get("vm-clock-nsec"));
            assertThat(s.vmStateSize()).isEqualTo(e.get("vm-state-size"));
            assertThat(s.hasIcount()).isEqualTo(e.containsKey("icount"));
            if (s.hasIcount()) {
                assertThat(s.icount()).isEqualTo(e.get("icount"));
            }
            assertThat(s.diskSize()).isEqualTo(1L << 30);
            assertThat(s.extraDataSize()).isGreaterThanOrEqualTo(16);
        }
        assertThat(snapshots).extracting(Qcow2Snapshot::name).containsExactly("snäp two, with spaces", "three");
        Qcow2Header h = header(path);
        assertThat(h.virtualSize()).isEqualTo(2L << 30);
        for (Qcow2Snapshot s : snapshots) {
            s.checkL1Table(h, Files.size(path));
            assertThat(s.l1Size()).isEqualTo(2);
        }
    }

    @Test
    void noSnapshots() throws IOException {
        Path path = Qemu.create(dir, "img.qcow2", null, "1G");
        assertThat(readBothWays(path)).isEmpty();
    }

    @Test
    void hostileEntries() throws IOException {
        Path path = Qemu.create(dir, "img.qcow2", null, "1G");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "snap1", "img.qcow2");
        byte[] file = Files.readAllBytes(path);
        Qcow2Header h = Qcow2Header.parse(file, file.length);
        int t = (int) h.snapshotsOffset();

        byte[] bad = file.clone();
        ByteBuffer.wrap(bad).putInt(t + 36, 2000);
        assertThatThrownBy(() -> parse(bad, h))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessage("qcow2 snapshot table: entry 0 extra_data_size 2000 too large (max 1024)");

        byte[] longName = file.clone();
        ByteBuffer.wrap(longName).putShort(t + 14, (short) 0xffff);
        byte[] cut = Arrays.copyOf(longName, t + 40 + 24 + 1 + 5);
        assertThatThrownBy(() -> parse(cut, h))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessageContaining("entry 0 at offset " + Be.hex(t + 40) + " (65560 bytes) runs past end of file");

        byte[] header = Arrays.copyOf(file, t + 20);
        assertThatThrownBy(() -> parse(header, h)).hasMessageContaining("entry 0 at offset " + Be.hex(t)
                + " (40 bytes) runs past end of file");

        // The header claims a second snapshot the table does not hold.
        ByteBuffer.wrap(file).putInt(60, 2);
        Qcow2Header two = Qcow2Header.parse(file, file.length + 4096L);
        byte[] table = Arrays.copyOf(file, t + 40 + 24 + 1 + 5 + 4);
        assertThatThrownBy(() -> parse(table, two)).hasMessageContaining("entry 1 at offset");

        // Snapshot L1 tables are checked when asked, as QEMU checks them when it uses them.
        Qcow2Snapshot s = SnapshotTable.parse(MemorySegment.ofArray(file).asSlice(t), h).getFirst();
        Qcow2Snapshot unaligned = new Qcow2Snapshot(s.id(), s.name(), s.l1TableOffset() + 8, s.l1Size(),
                0, 0, 0, 0, 0, -1, 0);
        assertThatThrownBy(() -> unaligned.checkL1Table(h, file.length))
                .hasMessageStartingWith("qcow2 snapshot \"1\": l1_table_offset 0x").hasMessageContaining("not aligned");
        Qcow2Snapshot huge = new Qcow2Snapshot("1", "x", s.l1TableOffset(), 1 << 23, 0, 0, 0, 0, 0, -1, 0);
        assertThatThrownBy(() -> huge.checkL1Table(h, file.length)).hasMessageContaining("l1_size 8388608 too large");
        Qcow2Snapshot pastEnd = new Qcow2Snapshot("1", "x", 1L << 40, 1, 0, 0, 0, 0, 0, -1, 0);
        assertThatThrownBy(() -> pastEnd.checkL1Table(h, file.length)).hasMessageContaining("past end of file");
    }

    /** Entries of maximal size until the table passes QEMU's 64 MiB limit. */
    @Test
    void tableLargerThan64MiBIsRefused() throws IOException {
        Path path = Qemu.create(dir, "img.qcow2", null, "1G");
        byte[] file = Files.readAllBytes(path);
        int entry = 40 + 1024 + 2 * 65535; // 132134, padded to 132136
        int count = (int) (Qcow2Snapshot.MAX_TABLE_SIZE / 132136) + 1;
        ByteBuffer.wrap(file).putInt(60, count).putLong(64, 0x100000L);
        Qcow2Header h = Qcow2Header.parse(file, 1L << 30);
        ByteBuffer table = ByteBuffer.allocate(count * 132136);
        for (int i = 0; i < count; i++) {
            table.putShort(i * 132136 + 12, (short) 0xffff).putShort(i * 132136 + 14, (short) 0xffff)
                    .putInt(i * 132136 + 36, 1024);
        }
        assertThat(entry).isLessThan(132136);
        assertThatThrownBy(() -> SnapshotTable.parse(MemorySegment.ofArray(table.array()), h))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessage("qcow2 snapshot table: size " + ((count - 1) * 132136L + entry) + " after entry "
                        + (count - 1) + " too large (max 67108864)");
    }

    private static List<Qcow2Snapshot> parse(byte[] file, Qcow2Header h) throws Qcow2FormatException {
        MemorySegment all = MemorySegment.ofArray(file);
        return SnapshotTable.parse(all.asSlice(Math.min(h.snapshotsOffset(), file.length)), h);
    }

    private static Qcow2Header header(Path path) throws IOException {
        try (AlignedFile f = AlignedFile.open(path, IoMode.BUFFERED)) {
            return Qcow2Header.read(f);
        }
    }

    private static List<Qcow2Snapshot> readBothWays(Path path) throws IOException {
        List<Qcow2Snapshot> fromFile;
        Qcow2Header h;
        try (AlignedFile f = AlignedFile.open(path, IoMode.BUFFERED)) {
            h = Qcow2Header.read(f);
            fromFile = SnapshotTable.read(f, h);
        }
        byte[] bytes = Files.readAllBytes(path);
        List<Qcow2Snapshot> parsed = h.nbSnapshots() == 0 ? List.of() : parse(bytes, h);
        assertThat(parsed).isEqualTo(fromFile);
        return fromFile;
    }
}
