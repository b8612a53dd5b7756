package io.qcow2j.engine;

/**
 * What {@link Images#compare} found, as {@code qemu-img compare} says it.
 *
 * @param identical  the images read the same (with a size difference, the larger one's tail is zeros)
 * @param mismatch   the first differing offset found, or -1
 * @param sizeDiffer the virtual sizes differ
 * @param message    qemu-img's lines: {@code Images are identical.}, {@code Content mismatch at offset N!}, ...
 */
public record CompareResult(boolean identical, long mismatch, boolean sizeDiffer, java.util.List<String> message) {}
