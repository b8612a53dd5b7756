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
    /** Size of the extension data. */
    public static final int LENGTH = 24;
}
