package io.qcow2j.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ImageOptions#snapshot()}: an image opened as of an internal snapshot (taken by qemu-img, over a
 * backing file) reads what {@code qemu-img convert -l} reads, is read-only, keeps the current virtual size;
 * the snapshot is found by QEMU's rules; writable snapshot views and raw images are refused.
 */
class SnapshotViewTest {
    @TempDir
    static Path dir;
    static Path image;

    @BeforeAll
    static void makeImage() {
        Path base = Qemu.create(dir, "base.qcow2", null, "2M");
        Qemu.io(base, "write -P 8 0 2M");
        image = Qemu.create(dir, "view.qcow2", "backing_file=base.qcow2,backing_fmt=qcow2", "2M");
        Qemu.io(image, "write -P 1 0 64k");
        Qemu.img(dir, "snapshot", "-c", "2", image.toString()); // a name that is another snapshot's ID
        Qemu.io(image, "write -P 2 64k 64k", "write -z 0 4k");
        Qemu.img(dir, "snapshot", "-c", "b", image.toString());
        Qemu.img(dir, "resize", image.toString(), "3M");
        Qemu.io(image, "write -P 3 0 128k", "write -P 4 2M 64k");
    }

    private static byte[] qemuReads(String l) throws IOException {
        Path raw = dir.resolve("q-" + l.hashCode() + ".raw");
        Qemu.img(dir, "convert", "-O", "raw", "-l", l, image.toString(), raw.toString());
        return Files.readAllBytes(raw);
    }

    private static byte[] weRead(SnapshotRef ref) throws IOException {
        try (Disk d = Images.open(image, ImageOptions.builder().snapshot(ref).build()); Arena a = Arena.ofConfined()) {
            assertThat(d.isReadOnly()).isTrue();
            assertThat(d.size()).isEqualTo(3L << 20);
            MemorySegment buf = a.allocate(d.size());
            d.read(0, buf);
            return buf.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    @Test
    void readsWhatQemuImgReads() throws IOException {
        byte[] first = qemuReads("snapshot.id=1");
        byte[] second = qemuReads("snapshot.id=2");
        assertThat(first).isNotEqualTo(second);
        assertThat(weRead(SnapshotRef.byId("1"))).isEqualTo(first);
        assertThat(weRead(SnapshotRef.byName("b"))).isEqualTo(second);
        assertThat(weRead(SnapshotRef.of("2", "b"))).isEqualTo(second);
        // "2" is snapshot 2's ID and snapshot 1's name: the ID wins, as in qemu-img -l 2
        assertThat(weRead(SnapshotRef.idOrName("2"))).isEqualTo(qemuReads("2")).isEqualTo(second);
        assertThat(weRead(SnapshotRef.byName("2"))).isEqualTo(first);
        assertThat(weRead(SnapshotRef.idOrName("b"))).isEqualTo(second);
    }

    @Test
    void viewIsReadOnlyAndUnknownSnapshotsAreRefused() throws IOException {
        SnapshotRef one = SnapshotRef.byId("1");
        assertThatThrownBy(() -> ImageOptions.builder().snapshot(one).readOnly(false).build())
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("read-only");
        try (Qcow2Disk d = Images.openQcow2(image, ImageOptions.builder().snapshot(one).build());
                Arena a = Arena.ofConfined()) {
            assertThatThrownBy(() -> d.write(0, a.allocate(512))).isInstanceOf(IOException.class)
                    .hasMessageContaining("read-only");
            assertThatThrownBy(() -> d.check(line -> { })).isInstanceOf(IOException.class)
                    .hasMessageContaining("snapshot view");
        }
        assertThatThrownBy(() -> Images.open(image, ImageOptions.builder().snapshot(SnapshotRef.of("1", "b")).build()))
                .isInstanceOf(SnapshotNotFoundException.class).hasMessageContaining("Can't find snapshot");
        assertThatThrownBy(() -> Images.open(image, ImageOptions.builder().snapshot(SnapshotRef.idOrName("x")).build()))
                .isInstanceOf(SnapshotNotFoundException.class);
        Path raw = Files.write(dir.resolve("plain.raw"), new byte[4096]);
        assertThatThrownBy(() -> Images.open(raw, ImageOptions.builder().snapshot(one).build()))
                .hasMessageContaining("raw image has no internal snapshots");
        assertThatThrownBy(() -> SnapshotRef.of(null, null)).isInstanceOf(IllegalArgumentException.class);
        Qemu.requireClean(image, "after the views");
    }
}
