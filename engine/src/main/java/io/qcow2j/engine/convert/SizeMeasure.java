package io.qcow2j.engine.convert;

import io.qcow2j.engine.ChainStatus;
import io.qcow2j.engine.CreateOptions;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.Measurement;
import java.io.IOException;

/**
 * {@code qemu-img measure -O qcow2} (QEMU's {@code qcow2_measure} and {@code qcow2_calc_prealloc_size}): the
 * fully allocated size is header, L2 tables, L1 table and refcount metadata (a fixed point: the refcount
 * blocks count themselves) plus every data cluster; the required size drops the data clusters the source
 * does not allocate (all of them are counted with a backing file, or with full/falloc preallocation).
 */
public final class SizeMeasure {
    private SizeMeasure() {}

    /** Raw output: the size, or the source's size, in both numbers. */
    public static Measurement raw(long size) {
        return new Measurement(size, size, -1);
    }

    /**
     * Measures a qcow2 image of {@code o}'s geometry holding {@code source} (or, without one, empty with the
     * size {@code size}); {@code fullPrealloc}: falloc or full preallocation.
     */
    public static Measurement qcow2(CreateOptions o, boolean fullPrealloc, Disk source, long size) throws IOException {
        long cs = o.clusterSize();
        int l2e = o.extendedL2() ? 16 : 8;
        long virtual = roundUp(size, cs);
        long l2Tables = ceilDiv(virtual / cs, cs / l2e);
        if (l2Tables * 8 > (32L << 20)) {
            throw new IllegalArgumentException("The image size is too large (try using a larger cluster size)");
        }
        long required = 0;
        if (source != null) {
            long ssize = source.size();
            virtual = roundUp(ssize, cs);
            if (o.backingFile() != null) {
                required = virtual;
            } else {
                ChainStatus chain = ChainStatus.of(source);
                long pnum;
                for (long offset = 0; offset < ssize; offset += pnum) {
                    ChainStatus.Extent e = chain.status(offset, Math.min(ChainStatus.PROBE, ssize - offset));
                    pnum = e.length();
                    if (!e.zero() && e.present()) {
                        pnum = roundUp(offset + pnum, cs) - offset;
                        required += offset % cs + pnum;
                    }
                }
            }
        }
        if (fullPrealloc) {
            required = virtual;
        }
        long full = preallocSize(virtual, cs, Long.numberOfTrailingZeros(o.refcountBits()), l2e);
        long bitmaps = o.version() >= 3 && source != null && source.format().equals("qcow2") ? 0 : -1;
        return new Measurement(full - virtual + required, full, bitmaps);
    }

    static long preallocSize(long total, long cs, int refcountOrder, int l2e) {
        long aligned = roundUp(total, cs);
        long meta = cs;
        long nl2e = roundUp(aligned / cs, cs / l2e);
        meta += nl2e * l2e;
        long nl1e = roundUp(nl2e * l2e / cs, cs / 8);
        meta += nl1e * 8;
        meta += refcountMetadataSize((meta + aligned) / cs, cs, refcountOrder);
        return meta + aligned;
    }

    /** QEMU's {@code qcow2_refcount_metadata_size} without the generous increase. */
    static long refcountMetadataSize(long clusters, long cs, int refcountOrder) {
        long perTableCluster = cs / 8;
        long perBlock = cs * 8 / (1L << refcountOrder);
        long table = 0;
        long blocks = 0;
        long last;
        long n = 0;
        do {
            last = n;
            blocks = ceilDiv(clusters + table + blocks, perBlock);
            table = ceilDiv(blocks, perTableCluster);
            n = clusters + blocks + table;
        } while (n != last);
        return (blocks + table) * cs;
    }

    private static long roundUp(long v, long to) {
        return ceilDiv(v, to) * to;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
