package io.qcow2j.proptest.crash;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.qcow2.ClusterPreallocation;
import io.qcow2j.engine.qcow2.CompatibleFeatures;
import io.qcow2j.engine.qcow2.ImageResize;
import io.qcow2j.engine.qcow2.InternalSnapshots;
import io.qcow2j.engine.qcow2.MakeEmpty;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.engine.qcow2.RefcountOrderChange;
import io.qcow2j.engine.qcow2.VersionChange;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Crash points of the table-rewriting operations (snapshot create, delete, apply, apply of a snapshot smaller
 * than the image (the size restored), create with extra data to keep; resize grow with the L1 table moved, and shrink, and grow with the new clusters preallocated (metadata:
 * holes, falloc: reserved, full: zeros written); emptying an image after commit; amend's compat
 * downgrade with zero clusters over a backing file and upgrade, refcount width widened and narrowed, lazy
 * refcounts turned on and off): every crash state of the operation's write log (each point, each way of
 * treating the unsynced writes, torn writes) is checked by {@code qemu-img check} and must be consistent:
 * clean, leaked clusters, or at worst clusters whose refcount dropped to 1 before their COPIED flag was set
 * (harmless: they are copied on the next write; {@code check -r all} sets the flag). The guest content must
 * be the one before or the one after the operation.
 */
class SurgeryCrashTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"snapshot-create", "snapshot-delete", "snapshot-apply", "resize-grow", "resize-shrink",
        "make-empty", "compat-downgrade", "compat-upgrade", "refcount-bits-64", "refcount-bits-4", "lazy-refcounts-on",
        "snapshot-create-extra-data", "resize-prealloc-metadata", "resize-prealloc-full", "resize-prealloc-falloc",
        "lazy-refcounts-off", "snapshot-apply-resized"})
    void everyCrashPointIsConsistent(String op) throws IOException {
        TestImage image = setUp(op);
        Path top = image.top();
        Path before = Files.copy(top, dir.resolve("before.qcow2"));
        byte[] bytes = Files.readAllBytes(top);
        RecordingFile rec = RecordingFile.inMemory(image.top(), bytes);
        ImageOptions options = ImageOptions.builder().readOnly(false).cacheCleanInterval(0).build();
        if (op.startsWith("lazy-refcounts")) { // on the closed image
            CompatibleFeatures.set(rec, Qcow2Header.COMPAT_LAZY_REFCOUNTS, op.endsWith("on"));
        } else {
            try (Qcow2Image img = image.open(rec, options)) {
                switch (op) {
                    case "snapshot-create" -> InternalSnapshots.create(img, "new", 1, 0);
                    case "snapshot-create-extra-data" -> InternalSnapshots.create(img, "new", 1, 0);
                    case "snapshot-delete" -> InternalSnapshots.delete(img, "old");
                    case "snapshot-apply", "snapshot-apply-resized" -> InternalSnapshots.apply(img, "old");
                    case "resize-grow" -> ImageResize.resize(img, 64L << 20); // 4 KiB clusters: the L1 table moves
                    case "resize-shrink" -> ImageResize.resize(img, 300 << 10);
                    case "resize-prealloc-metadata", "resize-prealloc-full", "resize-prealloc-falloc" -> {
                        ImageResize.resize(img, 2 << 20); // one L1 entry (2 MiB) still: the table stays
                        ClusterPreallocation.preallocate(img, 256, 2 << 20, switch (op) {
                            case "resize-prealloc-full" -> ClusterPreallocation.Mode.FULL;
                            case "resize-prealloc-falloc" -> ClusterPreallocation.Mode.FALLOC;
                            default -> ClusterPreallocation.Mode.METADATA;
                        }, false);
                    }
                    case "make-empty" -> MakeEmpty.makeEmpty(img); // commit's last step
                    case "compat-downgrade" -> VersionChange.change(img, 2);
                    case "compat-upgrade" -> VersionChange.change(img, 3);
                    case "refcount-bits-64" -> RefcountOrderChange.change(img, 64);
                    case "refcount-bits-4" -> RefcountOrderChange.change(img, 4);
                    default -> throw new AssertionError(op);
                }
            }
        }
        Path after = dir.resolve("after.qcow2");
        Files.write(after, rec.content());
        Qemu.requireClean(after, op + " completed");
        if (op.equals("snapshot-apply-resized")) {
            assertThat(((Number) Qemu.info(after).get("virtual-size")).longValue()).isEqualTo(1L << 20);
        }
        if (op.equals("snapshot-create-extra-data")) {
            assertThat(SnapshotExtraData.of(after, 0)).as("the old snapshot's extra data, kept")
                    .isEqualTo(SnapshotExtraData.of(before, 0));
        }

        CrashSimulator sim = rec.crashSimulator();
        Random rnd = new Random(14);
        Path crash = dir.resolve("crash.qcow2");
        int states = 0;
        List<String> problems = new ArrayList<>();
        for (int point = 0; point < sim.points(); point++) {
            for (CrashState st : sim.states(point, rnd)) {
                sim.image(st, image.top()).writeTo(crash);
                states++;
                Qemu.Check c = Qemu.check(crash);
                if (!c.consistent() && !onlyMissingCopiedFlags(c.output())) {
                    problems.add(st + ": " + c.verdict() + "\n" + c.output());
                    continue;
                }
                boolean same = equalContent(crash, before) || equalContent(crash, after);
                if (!same) {
                    problems.add(st + ": guest content is neither the one before nor the one after");
                }
            }
        }
        assertThat(problems).as("%s: %d crash states", op, states).isEmpty();
        assertThat(states).isGreaterThan(op.startsWith("lazy-refcounts") ? 1 : 5); // those are a single write
    }

    /**
     * The image of {@code op}: 4 KiB clusters, data, snapshot "old", more data; for the version changes zero
     * clusters and a backing file too (a downgrade allocates zero clusters over one), version 2 for the
     * upgrade; for the extra data a snapshot entry with 8 bytes of extra data past QEMU's fields.
     */
    private TestImage setUp(String op) throws IOException {
        String options = op.equals("compat-upgrade") ? "cluster_size=4096,compat=0.10"
                : op.equals("lazy-refcounts-off") ? "cluster_size=4096,lazy_refcounts=on" : "cluster_size=4096";
        String[] before = {"write -P 1 0 256k", "write -P 2 512k 64k"};
        String[] after = {"write -P 3 64k 64k", "write -P 4 768k 8k"};
        if (op.startsWith("compat")) {
            TestImage image = TestImage.create(dir, options, 1 << 20, "cluster_size=65536", 14, before);
            Qemu.img(dir, "snapshot", "-c", "old", "top.qcow2");
            Qemu.io(image.top(), after);
            if (op.equals("compat-downgrade")) {
                Qemu.io(image.top(), "write -z 64k 4k", "write -z 8k 8k", "write -z -u 900k 8k", "write -z 520k 4k");
            }
            return image;
        }
        Path top = Qemu.create(dir, "top.qcow2", options, "1M");
        Qemu.io(top, before);
        Qemu.img(dir, "snapshot", "-c", "old", "top.qcow2");
        Qemu.io(top, after);
        if (op.equals("snapshot-create-extra-data")) {
            SnapshotExtraData.extend(top, 0, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        }
        if (op.equals("snapshot-apply-resized")) { // grown past the snapshot's size: the apply restores 1 MiB
            Qemu.img(dir, "resize", "-q", "top.qcow2", "8M");
            Qemu.io(top, "write -P 5 6M 64k");
        }
        return new TestImage(top.toRealPath(), Files.readAllBytes(top), null, null, new byte[1 << 20], 4096, 3, 1 << 20);
    }

    /** Errors only of the kind "refcount 1 without COPIED" (what a crash between the two updates leaves). */
    private static boolean onlyMissingCopiedFlags(String output) {
        List<String> errors = output.lines().filter(l -> l.startsWith("ERROR")).toList();
        return !errors.isEmpty() && errors.stream().allMatch(l -> l.startsWith("ERROR OFLAG_COPIED")
                && l.endsWith("refcount=1"));
    }

    private boolean equalContent(Path a, Path b) {
        return Qemu.exec(dir, "qemu-img", "compare", "-q", a.getFileName().toString(), b.getFileName().toString())
                .exit() == 0;
    }
}
