package io.qcow2j.engine;

import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Changes creation options of an existing qcow2 image, as {@code qemu-img amend -o} does, for the options
 * qcow2j can change: {@code lazy_refcounts} and {@code size} (a resize, shrinking allowed as in qemu-img).
 * {@code compat} and {@code refcount_bits} may only be given with the values the image has. The image must
 * not be open elsewhere.
 */
public final class Amend {
    private static final long COMPATIBLE_FEATURES = 80;

    private Amend() {}

    /**
     * Turns lazy refcounts on or off. Turning them off first opens the image read/write and closes it, so that
     * every refcount is written and the dirty bit is clear (a dirty image is repaired by the open).
     *
     * @throws IllegalArgumentException for a version 2 image (qemu-img's message)
     */
    public static void setLazyRefcounts(Path image, boolean on) throws IOException {
        Qcow2Header h;
        try (Qcow2Disk d = Images.openQcow2(image, ImageOptions.defaults())) {
            h = d.header();
            if (on && h.version() < 3) {
                throw new IllegalArgumentException("Lazy refcounts only supported with compatibility level 1.1 and"
                        + " above (use compat=1.1 or greater)");
            }
        }
        if (h.version() < 3) {
            return; // off already: version 2 has no such bit
        }
        try (AlignedFile f = AlignedFile.open(image, IoMode.BUFFERED, StandardOpenOption.READ, StandardOpenOption.WRITE);
                Arena arena = Arena.ofConfined()) {
            Qcow2Header now = Qcow2Header.read(f);
            long bits = now.compatibleFeatures();
            long next = on ? bits | Qcow2Header.COMPAT_LAZY_REFCOUNTS : bits & ~Qcow2Header.COMPAT_LAZY_REFCOUNTS;
            if (next != bits) {
                MemorySegment b = arena.allocate(8);
                b.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN), 0, next);
                f.write(COMPATIBLE_FEATURES, b);
                f.dataSync();
            }
        }
    }
}
