package io.qcow2j.engine.format;

/**
 * The bitmaps header extension: where the persistent dirty bitmaps' directory is.
 *
 * <p>{@code consistent} is the autoclear bitmaps bit: when a program that does not know bitmaps has
 * written the image, the bit is cleared and the bitmaps must be considered stale. QEMU then ignores the
 * extension's contents, and so do we: the numbers of an inconsistent extension are reported as stored but
 * not validated.
 *
 * @param count nb_bitmaps (1..65535 when consistent)
 * @param directorySize bitmap_directory_size in bytes (at most 1024 * 65535 when consistent)
 * @param directoryOffset bitmap_directory_offset (cluster-aligned when consistent)
 * @param consistent whether autoclear feature bit 0 is set
 */
public record BitmapsExtension(long count, long directorySize, long directoryOffset, boolean consistent) {
    /** QEMU's limit on bitmaps per image. */
    public static final int MAX_BITMAPS = 65535;
    /** QEMU's limit on the directory: 1 KiB per bitmap on average. */
    public static final long MAX_DIRECTORY_SIZE = 1024L * MAX_BITMAPS;
    /**
     * QEMU's limit on one bitmap's table, in entries (8 bytes each): 2^27. The data limit below is always the
     * tighter one, since clusters have at least 512 bytes.
     */
    public static final long MAX_TABLE_ENTRIES = 1L << 27;
    /**
     * QEMU's limit on one bitmap's data: table entries times the cluster size at most 512 MiB. So a table holds
     * at most {@code MAX_DATA_SIZE / cluster size} entries: 2^20 (8 MiB of table) with 512-byte clusters, 8192
     * (64 KiB) with 64 KiB clusters.
     */
    public static final long MAX_DATA_SIZE = 1L << 29;

    /** The most entries a bitmap table of an image with {@code clusterSize}-byte clusters may have. */
    public static long maxTableEntries(int clusterSize) {
        return Math.min(MAX_TABLE_ENTRIES, MAX_DATA_SIZE / clusterSize);
    }

    /** Size of the extension data. */
    public static final int LENGTH = 24;
}
