package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The metadata cache around the operations that rewrite an open image's tables (QEMU empties its L2 cache
 * with {@code qcow2_cache_empty} around a snapshot switch): with the L2 cache full of the tables the guest
 * reads went through, each operation (snapshot create, apply, delete, resize grow and shrink, commit's
 * emptying) leaves no L2 table cached, so that nothing describing the tree as it was can be used or written
 * back; the image is clean for {@code qemu-img check} afterwards, and after an apply the same open image
 * reads the snapshot's content.
 */
class SurgeryCacheTest {
    private static final ImageOptions RW = ImageOptions.builder().readOnly(false).cacheCleanInterval(0).build();

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"snapshot-create", "snapshot-apply", "snapshot-delete", "resize-grow", "resize-shrink",
        "make-empty"})
    void l2CacheIsEmptiedByTheOperation(String op) throws IOException {
        Path img = Qemu.create(dir, "a.qcow2", "cluster_size=4096", "4M");
        Qemu.io(img, "write -P 1 0 4M");
        Qemu.img(dir, "snapshot", "-c", "old", "a.qcow2");
        Qemu.io(img, "write -P 2 0 1M", "write -P 3 3M 64k"); // the active tables differ from the snapshot's
        if (op.equals("make-empty")) {
            // the active L2 tables shared with a snapshot too: the emptying keeps them (refcount 1), not freed
            Qemu.img(dir, "snapshot", "-c", "later", "a.qcow2");
        }
        byte[] snapshot = new byte[4 << 20];
        java.util.Arrays.fill(snapshot, (byte) 1);
        try (Qcow2Image im = ChainOpener.openQcow2(img, RW)) {
            byte[] guest = new byte[4 << 20];
            im.read(0, MemorySegment.ofArray(guest)); // every L2 table of the active tree cached
            ImageState s = im.state();
            assertThat(s.l2Cache.occupied()).as("L2 tables cached before %s", op).isGreaterThan(1);
            switch (op) {
                case "snapshot-create" -> InternalSnapshots.create(im, "new", 1, 0);
                case "snapshot-apply" -> InternalSnapshots.apply(im, "old");
                case "snapshot-delete" -> InternalSnapshots.delete(im, "old");
                case "resize-grow" -> ImageResize.resize(im, 64L << 20);
                case "resize-shrink" -> ImageResize.resize(im, 1L << 20);
                case "make-empty" -> MakeEmpty.makeEmpty(im);
                default -> throw new AssertionError(op);
            }
            assertThat(s.l2Cache.occupied()).as("L2 tables cached after %s", op).isZero();
            if (op.equals("snapshot-apply")) {
                im.read(0, MemorySegment.ofArray(guest));
                assertThat(guest).as("read through the same image after the apply").isEqualTo(snapshot);
            }
        }
        Qemu.requireClean(img, op);
        if (op.equals("snapshot-apply")) {
            assertThat(Qemu.guestContent(img)).isEqualTo(snapshot);
        }
    }
}
