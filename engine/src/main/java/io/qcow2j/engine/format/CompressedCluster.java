package io.qcow2j.engine.format;

/**
 * The compressed cluster descriptor: bits 0..61 of an L2 entry whose bit 62 is set.
 *
 * <p>With {@code x = 62 - (cluster_bits - 8)}, bits {@code 0..x-1} are the host byte offset of the
 * compressed data (not aligned to anything) and bits {@code x..61} the number of additional 512-byte
 * sectors it spans beyond the one holding that offset. The compressed length is derived the way QEMU's
 * {@code qcow2_parse_compressed_l2_entry} does: {@code (sectors + 1) * 512 - (offset mod 512)}, i.e. from
 * the offset to the end of the last sector; decompression stops once it has produced a cluster, so any
 * trailing bytes are harmless.
 */
public final class CompressedCluster {
    /** Sector unit of the size field. */
    public static final int SECTOR_SIZE = 512;
    /** Host offsets must stay below 2^56, like every other host offset in qcow2. */
    public static final long MAX_HOST_OFFSET = (1L << 56) - 1;

    private CompressedCluster() {}

    /** {@code x}: the bit where the sector count starts; the host offset uses bits {@code 0..x-1}. */
    public static int offsetBits(int clusterBits) {
        return 62 - (clusterBits - 8);
    }

    /** Host offset of the compressed data. */
    public static long hostOffset(long entry, int clusterBits) {
        return entry & ((1L << offsetBits(clusterBits)) - 1);
    }

    /** Additional 512-byte sectors beyond the first (the raw bits {@code x..61}). */
    public static int additionalSectors(long entry, int clusterBits) {
        return (int) ((entry >>> offsetBits(clusterBits)) & ((1L << (clusterBits - 8)) - 1));
    }

    /**
     * The cap on a compressed cluster's input: the sector count field has {@code cluster_bits - 8} bits, so a
     * descriptor spans at most {@code 2^(cluster_bits - 8)} sectors of 512 bytes, twice the cluster size (4 MiB
     * with 2 MiB clusters). {@link #compressedSize} never exceeds it; the output is exactly one cluster.
     */
    public static int maxCompressedSize(int clusterBits) {
        return 2 << clusterBits;
    }

    /** Bytes to read at {@link #hostOffset}: from the offset to the end of the last sector. */
    public static int compressedSize(long entry, int clusterBits) {
        long offset = hostOffset(entry, clusterBits);
        return (additionalSectors(entry, clusterBits) + 1) * SECTOR_SIZE - (int) (offset & (SECTOR_SIZE - 1));
    }

    /**
     * Builds an L2 entry (with bit 62 set) for {@code compressedSize} bytes at {@code hostOffset}, the way
     * QEMU's allocator counts sectors.
     *
     * @throws IllegalArgumentException if the offset does not fit or the data would span more sectors
     *     than the field can count (more than a cluster's worth plus one sector)
     */
    public static long entry(long hostOffset, int compressedSize, int clusterBits) {
        int x = offsetBits(clusterBits);
        if (hostOffset < 0 || hostOffset > MAX_HOST_OFFSET || (hostOffset >>> x) != 0) {
            throw new IllegalArgumentException("compressed host offset " + Be.hex(hostOffset));
        }
        if (compressedSize <= 0) {
            throw new IllegalArgumentException("compressed size " + compressedSize);
        }
        long sectors = ((hostOffset + compressedSize - 1) >>> 9) - (hostOffset >>> 9);
        if (sectors > (1L << (clusterBits - 8)) - 1) {
            throw new IllegalArgumentException("compressed size " + compressedSize + " too large for cluster_bits "
                    + clusterBits);
        }
        return L2Entry.COMPRESSED | (sectors << x) | hostOffset;
    }
}
