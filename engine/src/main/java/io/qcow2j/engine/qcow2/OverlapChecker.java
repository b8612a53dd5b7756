package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.OverlapCheckMode;
import io.qcow2j.engine.format.Qcow2Snapshot;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.IntSupplier;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * QEMU's pre-write overlap check ({@code qcow2_check_metadata_overlap}): before any write to the image
 * file, the range is compared with the metadata the {@code overlap-check} mode guards. A hit means the
 * image's metadata is inconsistent (a cluster in use twice): the write is refused and the image marked
 * corrupt, so that the damage does not spread.
 *
 * <p>Like QEMU it walks the in-memory L1 and refcount tables (cheap: one entry per L2 table or refcount
 * block), and does not read inactive L2 tables except in mode {@code all}, where they are not read here
 * either (qcow2j checks snapshot L1 tables, not their L2 tables: documented gap).
 */
public final class OverlapChecker {
    public static final int MAIN_HEADER = 1;
    public static final int ACTIVE_L1 = 1 << 1;
    public static final int ACTIVE_L2 = 1 << 2;
    public static final int REFCOUNT_TABLE = 1 << 3;
    public static final int REFCOUNT_BLOCK = 1 << 4;
    public static final int SNAPSHOT_TABLE = 1 << 5;
    public static final int INACTIVE_L1 = 1 << 6;

    private static final int CONSTANT = MAIN_HEADER | ACTIVE_L1 | REFCOUNT_TABLE | SNAPSHOT_TABLE;
    private static final int CACHED = CONSTANT | ACTIVE_L2 | REFCOUNT_BLOCK | INACTIVE_L1;

    private final int checks;
    private final int clusterSize;
    private final long l1Offset;
    private final long l1Bytes;
    private final long snapshotsOffset;
    private final long snapshotsBytes;
    private final List<Qcow2Snapshot> snapshots;
    private final long[] l1;
    private final Supplier<long[]> refcountTable;
    /** Entries of the refcount table up to its last non-zero one: the rest names no block to check. */
    private final IntSupplier refcountTableUsed;
    /** Primitive suppliers: a boxed Long per check was the write path's last allocation per request. */
    private final LongSupplier refcountTableOffset;
    private final IntSupplier refcountTableClusters;

    OverlapChecker(OverlapCheckMode mode, int clusterSize, long l1Offset, long[] l1, List<Qcow2Snapshot> snapshots,
            long snapshotsOffset, Supplier<long[]> refcountTable, IntSupplier refcountTableUsed,
            LongSupplier refcountTableOffset, IntSupplier refcountTableClusters) {
        this.checks = switch (mode) {
            case NONE -> 0;
            case CONSTANT -> CONSTANT;
            case CACHED, ALL -> CACHED;
        };
        this.clusterSize = clusterSize;
        this.l1Offset = l1Offset;
        this.l1 = l1;
        this.l1Bytes = 8L * l1.length;
        this.snapshots = snapshots;
        this.snapshotsOffset = snapshotsOffset;
        long bytes = 0;
        for (Qcow2Snapshot s : snapshots) {
            long entry = Qcow2Snapshot.HEADER_SIZE + s.extraDataSize() + s.id().getBytes(StandardCharsets.UTF_8).length
                    + s.name().getBytes(StandardCharsets.UTF_8).length;
            bytes += (entry + 7) & -8L;
        }
        this.snapshotsBytes = bytes;
        this.refcountTable = refcountTable;
        this.refcountTableUsed = refcountTableUsed;
        this.refcountTableOffset = refcountTableOffset;
        this.refcountTableClusters = refcountTableClusters;
    }

    /**
     * The metadata structure {@code [offset, offset + length)} overlaps, ignoring the kinds in {@code ignore}
     * (a table's own kind when it is the one being written), or null.
     */
    String check(long offset, long length, int ignore) {
        int c = checks & ~ignore;
        if (c == 0 || length <= 0) {
            return null;
        }
        long end = offset + length;
        if ((c & MAIN_HEADER) != 0 && offset < clusterSize) {
            return "qcow2 header";
        }
        if ((c & ACTIVE_L1) != 0 && overlaps(offset, end, l1Offset, l1Bytes)) {
            return "active L1 table";
        }
        if ((c & REFCOUNT_TABLE) != 0
                && overlaps(offset, end, refcountTableOffset.getAsLong(), (long) refcountTableClusters.getAsInt() * clusterSize)) {
            return "refcount table";
        }
        if ((c & SNAPSHOT_TABLE) != 0 && overlaps(offset, end, snapshotsOffset, snapshotsBytes)) {
            return "snapshot table";
        }
        if ((c & INACTIVE_L1) != 0) {
            for (Qcow2Snapshot s : snapshots) {
                if (overlaps(offset, end, s.l1TableOffset(), 8L * s.l1Size())) {
                    return "inactive L1 table of snapshot '" + s.name() + "'";
                }
            }
        }
        if ((c & ACTIVE_L2) != 0) {
            for (long e : l1) {
                long t = e & 0x00ff_ffff_ffff_fe00L;
                if (t != 0 && overlaps(offset, end, t, clusterSize)) {
                    return "active L2 table";
                }
            }
        }
        if ((c & REFCOUNT_BLOCK) != 0) {
            // QEMU walks the whole table; only its used part can name a block (a 64 KiB table has 8,192
            // entries, most of them 0: walking them was the hottest method of an allocating write)
            long[] table = refcountTable.get();
            for (int i = 0, n = Math.min(table.length, refcountTableUsed.getAsInt()); i < n; i++) {
                long b = table[i] & ~511L;
                if (b != 0 && overlaps(offset, end, b, clusterSize)) {
                    return "refcount block";
                }
            }
        }
        return null;
    }

    private static boolean overlaps(long start, long end, long otherStart, long otherLength) {
        return otherLength > 0 && start < otherStart + otherLength && otherStart < end;
    }
}
