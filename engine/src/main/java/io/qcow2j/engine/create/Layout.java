package io.qcow2j.engine.create;

import io.qcow2j.engine.CreateOptions;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2Header;







/**
 * Where everything goes. Clusters in order: header, refcount table ({@code rtClusters}), refcount blocks
 * ({@code rbCount}), L1 table, then with preallocation per L2 table the table and its data clusters. All
 * of them, and nothing else, have refcount 1.
 */
final class Layout {
    final Geometry g;
    final int cs;
    final long size;
    final long l1Entries;
    final long l1Clusters;
    final boolean prealloc;
    final long dataClusters;
    final long rtClusters;
    final long rbCount;
    final long rtOffset;
    final long rbOffset;
    final long l1Offset;
    final long firstL2;
    final long clusters;
    final long fileSize;

    private Layout(CreateOptions o) {
        int bits = Long.numberOfTrailingZeros(o.clusterSize());
        int order = Long.numberOfTrailingZeros(o.refcountBits());
        g = new Geometry(o.version(), bits, order, o.extendedL2(), false);
        cs = g.clusterSize();
        if (o.size() > Long.MAX_VALUE - 511) {
            throw new IllegalArgumentException(ImageCreator.TOO_LARGE);
        }
        size = roundUp(o.size(), 512);
        l1Entries = g.l1EntriesFor(size);
        if (l1Entries > Qcow2Header.MAX_L1_BYTES / 8) {
            throw new IllegalArgumentException(ImageCreator.TOO_LARGE);
        }
        l1Clusters = g.clustersFor(l1Entries * 8);
        prealloc = o.preallocation() == CreateOptions.Preallocation.METADATA;
        dataClusters = prealloc ? g.clustersFor(size) : 0;
        long l2Tables = prealloc ? l1Entries : 0;
        long fixed = 1 + l1Clusters + l2Tables + dataClusters;
        long perBlock = g.refcountBlockEntries();
        long perTableCluster = g.tableEntriesPerCluster();
        long rt = 1;
        long rb = 1;
        while (true) {
            long needRb = ceilDiv(fixed + rt + rb, perBlock);
            long needRt = ceilDiv(needRb, perTableCluster);
            if (needRb <= rb && needRt <= rt) {
                break;
            }
            rb = Math.max(rb, needRb);
            rt = Math.max(rt, needRt);
        }
        rtClusters = rt;
        rbCount = rb;
        if (rt * cs > Qcow2Header.MAX_REFCOUNT_TABLE_BYTES) {
            throw new IllegalArgumentException("The image size is too large for preallocation=metadata with "
                    + cs + "-byte clusters: its refcount table would exceed "
                    + (Qcow2Header.MAX_REFCOUNT_TABLE_BYTES >> 20) + " MiB (try using a larger cluster size)");
        }
        clusters = fixed + rt + rb;
        if (clusters > L2Entry.OFFSET_MASK >>> bits) {
            throw new IllegalArgumentException("The image size is too large for preallocation=metadata: its"
                    + " clusters would lie beyond the 2^56-byte limit of a qcow2 file");
        }
        rtOffset = cs;
        rbOffset = (1 + rt) * (long) cs;
        l1Offset = l1Entries == 0 ? 0 : rbOffset + rb * cs;
        firstL2 = rbOffset + (rb + l1Clusters) * cs;
        if (prealloc && l1Entries > 0) {
            fileSize = clusters * cs;
        } else if (l1Entries > 0) {
            fileSize = l1Offset + l1Entries * 8; // QEMU writes exactly the L1 table's bytes
        } else {
            fileSize = rbOffset + rb * cs;
        }
    }

    static Layout of(CreateOptions o) {
        return new Layout(o);
    }

    /** Host offset of L2 table {@code k} (preallocation): each table is followed by the clusters it maps. */
    long l2Offset(long k) {
        return firstL2 + k * (1L + g.l2Entries()) * cs;
    }

    /** Data clusters mapped by L2 table {@code k}. */
    long dataClustersOf(long k) {
        return Math.min(g.l2Entries(), dataClusters - k * g.l2Entries());
    }

    private static long roundUp(long v, long to) {
        return (v + to - 1) / to * to;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
