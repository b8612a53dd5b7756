package io.qcow2j.engine;

/**
 * The status of an extent of a disk, as QEMU's block status reports it and {@code qemu-img map} prints it.
 *
 * @param start      guest offset of the extent
 * @param length     bytes in the extent
 * @param allocated  the extent is described by this disk's own metadata (qemu-img map's "present" at this
 *                   depth); false means "ask the backing disk"
 * @param zero       reads as zeros
 * @param data       holds data in this disk's file (not zeros by metadata, not from the backing disk)
 * @param compressed the data is stored compressed
 * @param hostOffset where the extent's bytes start in the image file, or -1 when there is no such place
 *                   (zero without preallocation, unallocated, compressed)
 */
public record BlockStatus(long start, long length, boolean allocated, boolean zero, boolean data,
        boolean compressed, long hostOffset) {

    /** True when the two extents can be printed as one: same flags and, where there are host offsets, contiguous. */
    public boolean continuedBy(BlockStatus next) {
        if (start + length != next.start || allocated != next.allocated || zero != next.zero || data != next.data
                || compressed != next.compressed) {
            return false;
        }
        if (hostOffset < 0 || next.hostOffset < 0) {
            return hostOffset < 0 && next.hostOffset < 0;
        }
        return hostOffset + length == next.hostOffset;
    }
}
