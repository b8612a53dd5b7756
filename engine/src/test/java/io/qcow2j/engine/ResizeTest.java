package io.qcow2j.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link Resize} side by side with {@code qemu-img resize} on twins: grow (in place and with the L1 table
 * moved), shrink into the middle of an L2 table, with snapshots (and applying one restores its size), raw
 * files; over cluster sizes 512 B to 2 MiB, refcount widths 1, 16 and 64, extended L2, version 2, a backing
 * file and compressed clusters; after each step {@code qemu-img check} clean, {@code compare} equal, the same
 * virtual size and format-specific info.
 */
class ResizeTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=512", "cluster_size=65536", "cluster_size=65536,extended_l2=on",
        "compat=0.10,cluster_size=4096", "cluster_size=4096,refcount_bits=1", "cluster_size=512,backing",
        "cluster_size=2097152", "cluster_size=65536,refcount_bits=64,compressed"})
    void twinsStayEqual(String geometry) throws IOException {
        String opts = geometry.replace(",backing", "").replace(",compressed", "");
        if (geometry.endsWith(",backing")) {
            Path base = Qemu.create(dir, "base.qcow2", opts, "4M");
            Qemu.io(base, "write -P 9 0 4M");
            opts += ",backing_file=base.qcow2,backing_fmt=qcow2";
        }
        Path ours = Qemu.create(dir, "ours.qcow2", opts, "8M");
        Qemu.io(ours, "write -P 1 0 1M", "write -P 2 5M 1M", "write -P 3 8384512 4k");
        if (geometry.endsWith(",compressed")) {
            // compressed clusters on both sides of each new end: kept, and freed by the shrinks
            Qemu.io(ours, "write -c -P 6 2M 128k", "write -c -P 7 7M 64k");
        }
        Path theirs = Files.copy(ours, dir.resolve("theirs.qcow2"));

        step(ours, 9L << 20, "9M"); // the L1 table grows within its cluster, or moves
        step(ours, 64L << 20, "64M");
        both("write -P 4 40M 1M", "write -P 5 67108352 512");
        if (geometry.endsWith(",compressed")) {
            both("write -c -P 8 48M 64k");
        }
        step(ours, (3L << 20) + 512, "3146240"); // mid-table, mid-cluster
        step(ours, 3L << 20, "3M");
        step(ours, 16L << 20, "16M"); // what was cut off reads as zeros (or the backing file)
        assertThat(Files.size(ours)).isLessThanOrEqualTo(Files.size(theirs) + 4 * 65536);
    }

    private void step(Path ours, long size, String qemuSize) throws IOException {
        Resize.resize(ours, Resize.Format.PROBE, size, true);
        Qemu.img(dir, "resize", "-q", "--shrink", "theirs.qcow2", qemuSize);
        Qemu.requireClean(ours, "ours at " + size);
        Qemu.requireClean(dir.resolve("theirs.qcow2"), "theirs at " + size);
        assertThat(Qemu.info(ours).get("virtual-size")).isEqualTo(Qemu.info(dir.resolve("theirs.qcow2")).get("virtual-size"));
        assertThat(((Number) Qemu.info(ours).get("virtual-size")).longValue()).isEqualTo(size);
        assertThat(String.valueOf(Qemu.info(ours).get("format-specific")))
                .isEqualTo(String.valueOf(Qemu.info(dir.resolve("theirs.qcow2")).get("format-specific")));
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).as("compare at " + size)
                .isZero();
    }

    private void both(String... commands) {
        Qemu.io(dir.resolve("ours.qcow2"), commands);
        Qemu.io(dir.resolve("theirs.qcow2"), commands);
    }

    @Test
    void withSnapshotsApplyRestoresTheSize() throws IOException {
        Path ours = Qemu.create(dir, "ours.qcow2", "cluster_size=512", "1M");
        Qemu.io(ours, "write -P 1 0 1M");
        Path theirs = Files.copy(ours, dir.resolve("theirs.qcow2"));
        byte[] v1 = Qemu.guestContent(ours);
        Snapshots.create(ours, "small");
        Qemu.img(dir, "snapshot", "-c", "small", "theirs.qcow2");
        step(ours, 32L << 20, "32M"); // L1 moved past the snapshot's
        both("write -P 2 0 32M");
        Snapshots.create(ours, "big");
        Qemu.img(dir, "snapshot", "-c", "big", "theirs.qcow2");
        step(ours, 512L << 10, "512K"); // shrinking with snapshots: 7.2 allows it for version 3
        Snapshots.apply(ours, "big"); // larger L1 than the active one: grown first
        Qemu.img(dir, "snapshot", "-a", "big", "theirs.qcow2");
        Qemu.requireClean(ours, "apply big");
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).isZero();
        assertThat(((Number) Qemu.info(ours).get("virtual-size")).longValue()).isEqualTo(32L << 20);
        Snapshots.apply(ours, "small");
        Qemu.img(dir, "snapshot", "-a", "small", "theirs.qcow2");
        Qemu.requireClean(ours, "apply small");
        assertThat(((Number) Qemu.info(ours).get("virtual-size")).longValue()).isEqualTo(1L << 20);
        assertThat(Qemu.guestContent(ours)).isEqualTo(v1);
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).isZero();
    }

    @Test
    void refusalsChangeNothing() throws IOException {
        Path img = Qemu.create(dir, "a.qcow2", "", "1M");
        byte[] before = Files.readAllBytes(img);
        assertThatThrownBy(() -> Resize.resize(img, Resize.Format.PROBE, 512 << 10, false))
                .isInstanceOf(Resize.ShrinkRefusedException.class)
                .hasMessage("Use the --shrink option to perform a shrink operation.");
        assertThatThrownBy(() -> Resize.resize(img, Resize.Format.PROBE, 2_000_000, false))
                .hasMessage("The new size must be a multiple of 512");
        assertThatThrownBy(() -> Resize.resize(img, Resize.Format.PROBE, 0, true))
                .hasMessage("New image size must be positive");
        Path v2 = Qemu.create(dir, "v2.qcow2", "compat=0.10", "1M");
        Qemu.img(dir, "snapshot", "-c", "s", "v2.qcow2");
        assertThatThrownBy(() -> Resize.resize(v2, Resize.Format.PROBE, 2 << 20, false))
                .hasMessage("Can't resize a v2 image which has snapshots");
        assertThat(Files.readAllBytes(img)).isEqualTo(before);
    }

    @Test
    void rawFiles() throws IOException {
        Path raw = dir.resolve("r.raw");
        Files.write(raw, new byte[4096]);
        Resize.resize(raw, Resize.Format.RAW, 2_000_001, false);
        assertThat(Files.size(raw)).isEqualTo(2_000_001);
        assertThatThrownBy(() -> Resize.resize(raw, Resize.Format.PROBE, 1000, false))
                .isInstanceOf(Resize.ShrinkRefusedException.class);
        Resize.resize(raw, Resize.Format.PROBE, 1000, true);
        assertThat(Files.size(raw)).isEqualTo(1000);
    }
}
