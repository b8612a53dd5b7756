package io.qcow2j.engine;

/** Checks of guest request ranges, with one-line messages: for {@link Disk} implementations. */
public final class Ranges {
    private Ranges() {}

    public static void check(long offset, long length, long size, String name) {
        if (offset < 0 || length < 0 || offset > size || length > size - offset) {
            throw new IllegalArgumentException(name + ": request of " + length + " bytes at offset " + offset
                    + " is outside the image (virtual size " + size + ")");
        }
    }
}
