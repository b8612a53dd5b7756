package io.qcow2j.engine;

/**
 * {@code qemu-img measure}'s numbers for a new qcow2 image.
 *
 * @param required       bytes the image needs for the source's data (or for an empty image of the size)
 * @param fullyAllocated bytes it needs with every cluster allocated
 * @param bitmaps        bytes of persistent bitmaps to copy, or -1 when qemu-img would not print them
 */
public record Measurement(long required, long fullyAllocated, long bitmaps) {}
