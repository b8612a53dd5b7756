package io.qcow2j.engine.convert;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.Qcow2Disk;
import java.io.IOException;
import java.util.Optional;

/**
 * The block status QEMU's block layer gives {@code qemu-img compare} ({@code bdrv_block_status_above} over the
 * whole chain): its flags and, as much as its result, the length of each extent, since {@code compare -s}
 * reports the first extent whose flags differ and extents end where QEMU's lookups end.
 *
 * <p>The rules, as QEMU 7.2 has them:
 * <ul>
 *   <li>qcow2 ({@code qcow2_get_host_offset}): one lookup covers at most the rest of the L2 table holding the
 *       offset (the L2 cache's slice, by default the whole table) and at most {@code INT_MAX} bytes; it is a
 *       run of (sub)clusters of one type, contiguous in the file for types with a host cluster; a compressed
 *       cluster is one run by itself. Normal clusters are DATA and OFFSET_VALID, compressed DATA, zero
 *       clusters ZERO (with OFFSET_VALID if they keep a host cluster), allocated-but-unwritten subclusters
 *       OFFSET_VALID only.</li>
 *   <li>each layer ({@code bdrv_co_block_status}): DATA or ZERO means ALLOCATED; otherwise, without a backing
 *       file or at an offset past its end, ZERO; an extent that reaches the layer's size gets EOF.</li>
 *   <li>the chain ({@code bdrv_co_common_block_status_above}): what the top leaves unallocated is looked up in
 *       the backing files over the same (shrinking) length; an allocated answer loses its EOF; a backing
 *       file too short to answer makes the range ZERO and ALLOCATED; EOF is set again where the top's own
 *       EOF extent ends.</li>
 * </ul>
 * Not modelled: the protocol layer's holes under allocated clusters (QEMU adds ZERO where an allocated
 * cluster's bytes are a hole in the image file), so images preallocated with holes may differ.
 */
final class QemuBlockStatus {
    static final int DATA = 0x01;
    static final int ZERO = 0x02;
    static final int OFFSET_VALID = 0x04;
    static final int ALLOCATED = 0x10;
    static final int EOF = 0x20;
    private static final long INT_MAX = Integer.MAX_VALUE;

    /** One extent: {@code length} bytes from the offset asked for, with QEMU's {@code flags}. */
    record Extent(long length, int flags) {
        boolean is(int flag) {
            return (flags & flag) != 0;
        }
    }

    private QemuBlockStatus() {}

    /** {@code bdrv_block_status_above(top, NULL, offset, bytes)}. */
    static Extent above(Disk top, long offset, long bytes) throws IOException {
        Extent e = layer(top, offset, bytes);
        if (e.length() == 0 || e.is(ALLOCATED)) {
            return e;
        }
        long eof = e.is(EOF) ? offset + e.length() : 0;
        long n = e.length();
        for (Optional<Disk> p = top.backing(); p.isPresent(); p = p.get().backing()) {
            Extent b = layer(p.get(), offset, n);
            if (b.length() == 0) { // a short backing file: zeros, allocated at that layer
                e = new Extent(n, ZERO | ALLOCATED);
                break;
            }
            if (b.is(ALLOCATED)) {
                e = new Extent(b.length(), b.flags() & ~EOF);
                break;
            }
            e = b;
            n = b.length();
        }
        return offset + e.length() == eof ? new Extent(e.length(), e.flags() | EOF) : e;
    }

    /** {@code bdrv_co_block_status} of one layer. */
    static Extent layer(Disk d, long offset, long bytes) throws IOException {
        long size = d.size();
        if (offset >= size) {
            return new Extent(0, EOF);
        }
        long n = Math.min(bytes, size - offset);
        Extent e = d instanceof Qcow2Disk q ? qcow2(q, offset, n) : raw(d, offset, n);
        int flags = e.flags();
        if ((flags & (DATA | ZERO)) != 0) {
            flags |= ALLOCATED;
        } else if (d.backing().isEmpty() || offset >= d.backing().get().size()) {
            flags |= ZERO;
        }
        if (offset + e.length() == size) {
            flags |= EOF;
        }
        return new Extent(e.length(), flags);
    }

    /** The raw driver over a file: data or hole, with an offset. */
    private static Extent raw(Disk d, long offset, long bytes) throws IOException {
        BlockStatus b = d.blockStatus(offset, bytes);
        return new Extent(b.length(), (b.data() ? DATA : ZERO) | OFFSET_VALID);
    }

    /** {@code qcow2_co_block_status}: one lookup, as long as QEMU's. */
    private static Extent qcow2(Qcow2Disk q, long offset, long bytes) throws IOException {
        int clusterBits = q.header().geometry().clusterBits();
        long clusterSize = 1L << clusterBits;
        long sliceEntries = clusterSize / q.header().geometry().l2EntrySize(); // QEMU's default slice: the table
        long inCluster = offset & (clusterSize - 1);
        long index = (offset >>> clusterBits) & (sliceEntries - 1);
        long limit = Math.min(Math.min(bytes, INT_MAX) + inCluster, (sliceEntries - index) << clusterBits) - inCluster;
        BlockStatus first = q.blockStatus(offset, limit);
        int flags = flags(first);
        if (first.compressed()) {
            return new Extent(Math.min(limit, clusterSize - inCluster), flags);
        }
        long len = first.length();
        BlockStatus last = first;
        while (len < limit) {
            BlockStatus next = q.blockStatus(offset + len, limit - len);
            if (next.compressed() || flags(next) != flags
                    || (last.hostOffset() >= 0) != (next.hostOffset() >= 0)
                    || (last.hostOffset() >= 0 && last.hostOffset() + last.length() != next.hostOffset())) {
                break;
            }
            len += next.length();
            last = next;
        }
        return new Extent(len, flags);
    }

    private static int flags(BlockStatus b) {
        if (b.data()) {
            return b.compressed() ? DATA : DATA | OFFSET_VALID;
        }
        int host = b.hostOffset() >= 0 ? OFFSET_VALID : 0;
        return b.zero() ? ZERO | host : host;
    }
}
