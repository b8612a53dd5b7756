package io.qcow2j.engine.qcow2;

import java.io.IOException;
import java.lang.foreign.Arena;

/**
 * Empties an open qcow2 image (QEMU's {@code bdrv_make_empty} after {@code qemu-img commit}): every guest
 * cluster becomes unallocated, so the image reads as its backing file. The active L1 table is zeroed on disk
 * (synced) first, then the L2 tables it named and everything they reference are released (freed clusters
 * discarded); a crash in between leaves leaked clusters only. Snapshots keep their clusters. As with
 * {@link InternalSnapshots}, the last operation before the image is closed.
 */
public final class MakeEmpty {

    private MakeEmpty() {}

    public static void makeEmpty(Qcow2Image image) throws IOException {
        ImageState s = image.state();
        TableSurgery.run(s, () -> {
            long[] old = s.l1.entries().clone();
            if (old.length > 0) {
                try (Arena arena = Arena.ofConfined()) {
                    s.file.write(s.header.l1TableOffset(), arena.allocate(8L * old.length));
                }
                s.tableFile.flush();
                java.util.Arrays.fill(s.l1.entries(), 0L);
                new SnapshotRefcounts(s).change(old, -1);
            }
            return null;
        });
    }
}
