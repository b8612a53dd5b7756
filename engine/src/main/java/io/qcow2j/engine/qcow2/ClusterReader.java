package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.Qcow2FormatException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Reads guest bytes by what their clusters are: data from the image file, zeros, the backing file (zeros past
 * its end), or a compressed cluster inflated. The data I/O, the backing read and the decompression all happen
 * outside the metadata lock, so readers overlap their I/O.
 */
final class ClusterReader {
    private final ImageState s;
    private final ClusterMap map;

    ClusterReader(ImageState s, ClusterMap map) {
        this.s = s;
        this.map = map;
    }

    /** Fills {@code dst} with the guest bytes at {@code offset}. The caller holds the request lock. */
    void read(long offset, MemorySegment dst) throws IOException {
        long len = dst.byteSize();
        ClusterMap.Extent ext = new ClusterMap.Extent();
        long pos = 0;
        while (pos < len) {
            long guest = offset + pos;
            map.map(guest, len - pos, ext);
            MemorySegment part = ext.bytes == len ? dst : dst.asSlice(pos, ext.bytes); // one extent: no view to allocate
            switch (ext.type) {
                case NORMAL -> readHost(ext.host, part);
                case ZERO_PLAIN, ZERO_ALLOC -> part.fill((byte) 0);
                case UNALLOCATED_PLAIN, UNALLOCATED_ALLOC -> readBacking(guest, part);
                case COMPRESSED -> readCompressed(ext.entry, guest, part);
            }
            pos += ext.bytes;
        }
    }

    private void readHost(long host, MemorySegment part) throws IOException {
        long n = s.file.read(host, part);
        if (n < part.byteSize()) {
            part.asSlice(n).fill((byte) 0); // past the end of the file reads as zeros, as in QEMU
        }
    }

    private void readBacking(long guest, MemorySegment part) throws IOException {
        long n = part.byteSize();
        long inBacking = s.backing == null ? 0 : Math.max(0, Math.min(n, s.backing.size() - guest));
        if (inBacking > 0) {
            s.backing.read(guest, part.asSlice(0, inBacking));
        }
        if (inBacking < n) {
            part.asSlice(inBacking).fill((byte) 0);
        }
    }

    private void readCompressed(long entry, long guest, MemorySegment part) throws IOException {
        int cb = s.g.clusterBits();
        int cs = s.clusterSize;
        long coffset = CompressedCluster.hostOffset(entry, cb);
        int csize = CompressedCluster.compressedSize(entry, cb);
        String where = s.filename + ": compressed cluster at 0x" + Long.toHexString(coffset) + " (guest offset 0x"
                + Long.toHexString(guest & -cs) + ")";
        if (coffset >= s.fileEnd()) {
            throw new Qcow2FormatException(where + " starts past the end of the file");
        }
        byte[] in = new byte[csize];
        long n = s.file.read(coffset, MemorySegment.ofArray(in)); // a tail past the end of the file reads as zeros
        byte[] out = new byte[cs];
        ClusterDecompressor.decompress(s.header.compressionType(), in, (int) n, out, where);
        MemorySegment.copy(MemorySegment.ofArray(out), guest & (cs - 1), part, 0, part.byteSize());
    }
}
