package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.format.SnapshotTable;
import java.io.IOException;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Changes the version of an open image between 3 ({@code compat=1.1}) and 2 ({@code compat=0.10}), as
 * QEMU's {@code qcow2_downgrade} and {@code qcow2_upgrade} do.
 *
 * <p>Downgrade: refused (with QEMU's messages, before anything changes) for refcounts other than 16 bits,
 * an external data file, a snapshot whose disk size differs from the image's or whose VM state does not
 * fit 32 bits, any incompatible feature but the compression type (extended L2 entries, corrupt), and zstd
 * compression with compressed clusters (checked in every L1 table, where QEMU looks at the active one
 * only). A dirty image was repaired when it was opened read/write. Then the zero clusters are expanded
 * ({@link ZeroClusterExpansion}: version 2 has no zero flag) and the first cluster is rewritten as a 72-byte
 * header without feature bits, without the feature name table, with the other extensions kept (as QEMU
 * keeps a bitmaps extension, whose bitmaps version 2 readers then consider inconsistent). A crash before
 * the header write leaves a version 3 image with some zero clusters expanded, which reads the same.
 *
 * <p>Upgrade: a snapshot table with entries lacking the virtual disk size is rewritten with 24 bytes of
 * extra data each ({@link SnapshotTableWriter}), then the header becomes a 112-byte version 3 header with
 * 16-bit refcounts and no feature bits (and QEMU's feature name table with clusters above 4 KiB).
 */
public final class VersionChange {
    private VersionChange() {}

    /** Makes {@code image} a version {@code version} image (2 or 3); nothing happens if it is one already. */
    public static void change(Qcow2Image image, int version) throws IOException {
        ImageState s = image.state();
        if (version != 2 && version != 3) {
            throw new IllegalArgumentException("no qcow2 version " + version);
        }
        if (version == s.header.version()) {
            return;
        }
        TableSurgery.run(s, () -> {
            if (version < s.header.version()) {
                downgrade(s);
            } else {
                upgrade(s);
            }
            return null;
        });
    }

    /**
     * Refuses a downgrade of {@code image} as QEMU would once its size is {@code size} and its refcount
     * order {@code refcountOrder} (the values other amended options give it before the downgrade, which
     * comes last); reads only.
     *
     * @throws IllegalArgumentException with QEMU's message
     */
    public static void checkDowngrade(Qcow2Image image, long size, int refcountOrder) throws IOException {
        ImageState s = image.state();
        s.lock.lock();
        try {
            check(s, Qcow2Header.read(s.file), size, refcountOrder);
        } finally {
            s.lock.unlock();
        }
    }

    private static void check(ImageState s, Qcow2Header h, long size, int refcountOrder) throws IOException {
        if (refcountOrder != 4) {
            throw new IllegalArgumentException("compat=0.10 requires refcount_bits=16");
        }
        if (h.hasExternalDataFile()) {
            throw new IllegalArgumentException("Cannot downgrade an image with a data file");
        }
        for (Qcow2Snapshot sn : SnapshotTable.read(s.file, h)) {
            if (sn.vmStateSize() > 0xffff_ffffL || sn.vmStateSize() < 0 || sn.diskSize() != size) {
                throw new IllegalArgumentException("Internal snapshots prevent downgrade of image");
            }
        }
        long incompatible = h.incompatibleFeatures() & ~Qcow2Header.INCOMPAT_DIRTY;
        if ((incompatible & ~Qcow2Header.INCOMPAT_COMPRESSION) != 0) {
            throw new IllegalArgumentException("Cannot downgrade an image with incompatible features 0x"
                    + Long.toHexString(incompatible & ~Qcow2Header.INCOMPAT_COMPRESSION) + " set");
        }
        if ((incompatible & Qcow2Header.INCOMPAT_COMPRESSION) != 0 && hasCompressedClusters(s)) {
            throw new IllegalArgumentException("Cannot downgrade an image with zstd compression type and existing"
                    + " compressed clusters");
        }
    }

    private static void downgrade(ImageState s) throws IOException {
        Qcow2Header h = Qcow2Header.read(s.file);
        check(s, h, h.size(), h.refcountOrder());
        ZeroClusterExpansion.run(s);
        HeaderCluster.Fields now = HeaderCluster.Fields.of(Qcow2Header.read(s.file));
        HeaderCluster.write(s.file, new HeaderCluster.Fields(2, 0, 0, 0, 4, now.backing(), now.backingFormat()));
    }

    private static void upgrade(ImageState s) throws IOException {
        List<Qcow2Snapshot> snapshots = SnapshotTable.read(s.file, s.header);
        boolean sizes = snapshots.stream().allMatch(sn -> sn.extraDataSize() >= 16);
        if (!sizes) {
            SnapshotTableWriter.replace(s, snapshots, s.header.snapshotsOffset(), SnapshotTableWriter.storedSize(snapshots));
        }
        HeaderCluster.Fields now = HeaderCluster.Fields.of(Qcow2Header.read(s.file));
        HeaderCluster.write(s.file, new HeaderCluster.Fields(3, 0, 0, 0, 4, now.backing(), now.backingFormat()));
    }

    /** Whether any L2 table of any L1 table has a compressed cluster. */
    private static boolean hasCompressedClusters(ImageState s) throws IOException {
        Set<Long> seen = new HashSet<>();
        for (long[] l1 : ZeroClusterExpansion.l1Tables(s)) {
            for (int i = 0; i < l1.length; i++) {
                long l2 = L1Entry.checkedL2Offset(l1[i], i, s.g);
                if (l2 == 0 || !seen.add(l2)) {
                    continue;
                }
                for (long e : ZeroClusterExpansion.readTable(s, l2, s.clusterSize / 8)) {
                    if (L2Entry.clusterType(e, s.g) == ClusterType.COMPRESSED) {
                        return true;
                    }
                }
            }
        }
        return false;
    }
}
