package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.format.SnapshotTable;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Turns every zero cluster of an image into something a version 2 reader understands (QEMU's
 * {@code qcow2_expand_zero_clusters}, before a downgrade to compat=0.10): without a backing file a zero
 * cluster without a host cluster becomes unallocated (it reads as zeros anyway); with one it gets a new host
 * cluster filled with zeros. A zero cluster with a host cluster gets zeros written into it and becomes a
 * data cluster. Every L2 table reachable from the active L1 table or a snapshot's is visited once; a new
 * cluster's refcount is that of the L2 table (a table shared by snapshots shares the cluster as often).
 *
 * <p>Unlike QEMU, a zero cluster whose host cluster is also referenced from another L2 table (its refcount
 * exceeds its L2 table's) is not written in place, which would change what the other table reads: it gets
 * a new cluster too, and the old one loses this table's references afterwards.
 *
 * <p>Write order, per L2 table: the new clusters' refcounts and the zeros in the data clusters are durable
 * before the L2 table is rewritten (one write, synced); references dropped from old clusters are counted
 * after that. A crash leaves the old table (leaked new clusters at worst) or the new one (an old cluster's
 * refcount too high at worst: a leak). Runs inside {@link TableSurgery} (caches flushed, L2 cache emptied
 * afterwards); the image must not have extended L2 entries (their zeroes are per subcluster).
 */
final class ZeroClusterExpansion {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final ImageState s;
    private final boolean backed;
    private final Set<Long> visited = new HashSet<>();

    private ZeroClusterExpansion(ImageState s) {
        this.s = s;
        this.backed = s.backing != null || s.header.backingFileName().isPresent();
    }

    /** Expands the zero clusters of every L1 table of the image. Under the locks {@link TableSurgery} takes. */
    static void run(ImageState s) throws IOException {
        new ZeroClusterExpansion(s).all();
    }

    /** The L1 tables of the image: the active one, then each snapshot's. */
    static List<long[]> l1Tables(ImageState s) throws IOException {
        List<long[]> out = new ArrayList<>();
        out.add(s.l1.entries().clone());
        for (Qcow2Snapshot sn : SnapshotTable.read(s.file, s.header)) {
            sn.checkL1Table(s.header, s.file.size());
            out.add(readTable(s, sn.l1TableOffset(), (int) sn.l1Size()));
        }
        return out;
    }

    static long[] readTable(ImageState s, long offset, int entries) throws IOException {
        long[] t = new long[entries];
        if (entries == 0) {
            return t;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(8L * entries);
            s.file.readFully(offset, buf);
            for (int i = 0; i < entries; i++) {
                t[i] = buf.getAtIndex(BE64, i);
            }
        }
        return t;
    }

    private void all() throws IOException {
        for (long[] l1 : l1Tables(s)) {
            for (int i = 0; i < l1.length; i++) {
                long l2 = L1Entry.checkedL2Offset(l1[i], i, s.g);
                if (l2 != 0 && visited.add(l2)) {
                    table(l2);
                }
            }
        }
    }

    private void table(long l2Offset) throws IOException {
        int entries = s.clusterSize / 8;
        long[] l2 = readTable(s, l2Offset, entries);
        long l2Refcount = s.refcounts.get(l2Offset >>> s.g.clusterBits());
        List<Long> zeroed = new ArrayList<>();
        List<Long> released = new ArrayList<>();
        boolean changed = false;
        for (int j = 0; j < entries; j++) {
            ClusterType type = L2Entry.clusterType(l2[j], s.g);
            if (type != ClusterType.ZERO_PLAIN && type != ClusterType.ZERO_ALLOC) {
                continue;
            }
            changed = true;
            long host = type == ClusterType.ZERO_ALLOC ? L2Entry.hostClusterOffset(l2[j]) : 0;
            if (host != 0 && s.refcounts.get(host >>> s.g.clusterBits()) > l2Refcount) {
                released.add(host); // shared with another table: not written in place
                host = 0;
            }
            if (host == 0) {
                if (type == ClusterType.ZERO_PLAIN && !backed) {
                    l2[j] = 0; // reads as zeros without a backing file: unallocated
                    continue;
                }
                host = s.allocate(1);
                if (l2Refcount > 1) {
                    s.refcounts.change(host, s.clusterSize, l2Refcount - 1);
                }
            } else {
                s.refuseOverlap(host, s.clusterSize, 0);
            }
            zeroed.add(host);
            boolean alone = l2Refcount == 1 && s.refcounts.get(host >>> s.g.clusterBits()) == 1;
            l2[j] = L2Entry.of(host, alone, false);
        }
        if (!changed) {
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment zeros = arena.allocate(s.clusterSize);
            for (long host : zeroed) {
                s.file.write(host, zeros);
            }
            s.refcountCache.flush(); // the new clusters are counted, and their zeros durable, before the table names them
            s.tableFile.flush();
            MemorySegment buf = arena.allocate(s.clusterSize);
            for (int j = 0; j < entries; j++) {
                buf.setAtIndex(BE64, j, l2[j]);
            }
            s.file.write(l2Offset, buf);
            s.tableFile.flush();
        }
        for (long host : released) {
            s.refcounts.change(host, s.clusterSize, -l2Refcount);
        }
        s.refcountCache.flush();
    }
}
