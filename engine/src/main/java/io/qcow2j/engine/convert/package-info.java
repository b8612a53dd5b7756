/**
 * Whole-image tools on top of the API ({@code qemu-img convert}, {@code compare}, {@code measure}):
 * {@link io.qcow2j.engine.convert.ImageConverter} copies sources into a new qcow2 image with parallel workers,
 * {@link io.qcow2j.engine.convert.SourceMap} says what each range of the concatenated sources is (data, zeros,
 * or left to a backing file) from block status, so unallocated ranges are never read;
 * {@link io.qcow2j.engine.convert.ImageComparison} and {@link io.qcow2j.engine.convert.SizeMeasure} are
 * qemu-img's compare and measure.
 *
 * <p>Owns: nothing beyond one call (the target image while it is being written). May use: the API only
 * ({@code io.qcow2j.engine}: Disk, ChainStatus, Images, options).
 */
package io.qcow2j.engine.convert;
