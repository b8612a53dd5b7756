package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;

/**
 * Points an image's header at another backing file (QEMU's {@code qcow2_change_backing_file}): the first
 * cluster is rebuilt by {@link HeaderCluster} with the new name and format and everything else as it is,
 * written in one write, then synced. The image must not be open.
 */
public final class BackingFileChange {
    private BackingFileChange() {}

    /**
     * Rewrites the header of {@code file} (whose parsed header is {@code h}) to name {@code backing} (null: no
     * backing file) of format {@code format} (null: none recorded).
     *
     * @throws IllegalArgumentException if the name and extensions do not fit the first cluster
     */
    public static void change(PositionalFile file, Qcow2Header h, String backing, String format) throws IOException {
        HeaderCluster.write(file, HeaderCluster.Fields.of(h).withBacking(backing, format));
    }
}
