package io.qcow2j.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link Snapshots} side by side with {@code qemu-img snapshot} on twin images over several geometries: the
 * same operations on both, then {@code qemu-img check} clean, the snapshot tables' fields equal (dates
 * aside), the guest contents equal after every step, and each side's snapshots applied by the other.
 */
class SnapshotsTest {
    @TempDir
    Path dir;

    /** The geometries (create options); compressed clusters where qemu-io writes them and 4-bit refcounts can count them. */
    @ParameterizedTest
    @ValueSource(strings = {
        "cluster_size=65536",
        "cluster_size=512,refcount_bits=16",
        "cluster_size=4096,refcount_bits=4",
        "cluster_size=4096,refcount_bits=8",
        "cluster_size=65536,refcount_bits=64,lazy_refcounts=on",
        "cluster_size=65536,extended_l2=on",
        "compat=0.10,cluster_size=4096",
        "cluster_size=65536,backing",
        "cluster_size=2097152",
    })
    void twinsStayEqual(String geometry) throws IOException {
        boolean chain = geometry.endsWith(",backing");
        String opts = geometry.replace(",backing", "");
        String[] extra = {};
        if (chain) {
            Path base = Qemu.create(dir, "base.qcow2", opts, "8M");
            Qemu.io(base, "write -P 7 0 8M");
            opts = opts + ",backing_file=base.qcow2,backing_fmt=qcow2";
        }
        Path ours = Qemu.create(dir, "ours.qcow2", opts, "8M", extra);
        Qemu.io(ours, "write -P 1 0 1M", "write -P 2 3M 300k", "write -z 5M 64k");
        if (!opts.contains("extended_l2") && !opts.contains("cluster_size=512") && !opts.contains("refcount_bits=4")) {
            Qemu.io(ours, "write -c -P 3 6M " + (opts.contains("cluster_size=2097152") ? "2M" : "64k")); // whole clusters
        }
        Path theirs = dir.resolve("theirs.qcow2");
        Files.copy(ours, theirs);
        byte[] v1 = Qemu.guestContent(ours);

        Snapshots.create(ours, "s1");
        img("snapshot", "-c", "s1", "theirs.qcow2");
        both("write -P 4 512k 1M", "discard 3M 64k", "write -P 5 7M 4k");
        byte[] v2 = Qemu.guestContent(ours);
        Snapshots.create(ours, "s2");
        img("snapshot", "-c", "s2", "theirs.qcow2");
        both("write -P 6 0 2M");
        byte[] v3 = Qemu.guestContent(ours);
        assertSame(ours, theirs);

        // each side's snapshots read by the other: theirs applied by us, ours by qemu-img
        Snapshots.apply(theirs, "s1");
        img("snapshot", "-a", "s1", "ours.qcow2");
        assertSame(ours, theirs);
        assertThat(Qemu.guestContent(ours)).isEqualTo(v1);
        Snapshots.apply(ours, "2");
        img("snapshot", "-a", "2", "theirs.qcow2");
        assertSame(ours, theirs);
        assertThat(Qemu.guestContent(ours)).isEqualTo(v2);

        // writes after an apply copy clusters shared with the snapshots
        both("write -P 8 0 64k");
        Snapshots.delete(ours, "s1");
        img("snapshot", "-d", "s1", "theirs.qcow2");
        assertSame(ours, theirs);
        Snapshots.apply(ours, "s2");
        Snapshots.apply(theirs, "s2");
        assertThat(Qemu.guestContent(ours)).isEqualTo(v2).isNotEqualTo(v3);
        Snapshots.delete(ours, "s2");
        Snapshots.delete(theirs, "s2");
        assertSame(ours, theirs);
        assertThat(Snapshots.list(ours)).isEmpty();
        // no snapshot left: every cluster is owned alone again, and what the snapshots alone held is free
        assertThat(Qemu.img(dir, "check", "--output=json", "ours.qcow2"))
                .isEqualTo(Qemu.img(dir, "check", "--output=json", "theirs.qcow2").replace("theirs", "ours"));
    }

    @Test
    void tableFieldsAsQemuWritesThem() throws IOException {
        Path ours = Qemu.create(dir, "ours.qcow2", "", "16M");
        Qemu.io(ours, "write -P 1 0 64k");
        Snapshots.create(ours, "a");
        Snapshots.create(ours, "a"); // duplicate names are allowed, as in qemu-img
        img("snapshot", "-c", "b", "ours.qcow2");
        Snapshots.create(ours, "with a long name that is longer than the column");
        List<Qcow2Snapshot> list = Snapshots.list(ours);
        assertThat(list).extracting(Qcow2Snapshot::id).containsExactly("1", "2", "3", "4");
        assertThat(list).extracting(Qcow2Snapshot::name)
                .containsExactly("a", "a", "b", "with a long name that is longer than the column");
        for (Qcow2Snapshot sn : list) {
            assertThat(sn.extraDataSize()).isEqualTo(24);
            assertThat(sn.diskSize()).isEqualTo(16L << 20);
            assertThat(sn.icount()).isZero();
            assertThat(sn.vmStateSize()).isZero();
            assertThat(Math.abs(sn.dateSeconds() - System.currentTimeMillis() / 1000)).isLessThan(600);
        }
        Qemu.requireClean(ours, "after four snapshots");
        // deleting looks up names only, the first match, as qemu-img snapshot -d
        assertThatThrownBy(() -> Snapshots.delete(ours, "1")).isInstanceOf(SnapshotNotFoundException.class)
                .hasMessage("snapshot not found");
        Snapshots.delete(ours, "a");
        assertThat(Snapshots.list(ours)).extracting(Qcow2Snapshot::id).containsExactly("2", "3", "4");
        assertThatThrownBy(() -> Snapshots.apply(ours, "nope")).isInstanceOf(SnapshotNotFoundException.class);
        Qemu.requireClean(ours, "after the delete");
        assertThat(fields(ours)).hasSize(3);
    }

    private void both(String... commands) {
        Qemu.io(dir.resolve("ours.qcow2"), commands);
        Qemu.io(dir.resolve("theirs.qcow2"), commands);
    }

    private String img(String... args) {
        return Qemu.img(dir, args);
    }

    /** Both clean, same guest content, same snapshot table (dates and L1 offsets aside). */
    private void assertSame(Path ours, Path theirs) throws IOException {
        Qemu.requireClean(ours, "ours");
        Qemu.requireClean(theirs, "theirs");
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).isZero();
        assertThat(fields(ours)).isEqualTo(fields(theirs));
    }

    /** qemu-img info's snapshot fields but the dates. */
    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> fields(Path image) {
        Object snaps = Qemu.info(image).get("snapshots");
        List<Map<String, Object>> out = new ArrayList<>();
        if (snaps != null) {
            for (Object o : (List<Object>) snaps) {
                Map<String, Object> m = new java.util.TreeMap<>((Map<String, Object>) o);
                m.remove("date-sec");
                m.remove("date-nsec");
                out.add(m);
            }
        }
        return out;
    }
}
