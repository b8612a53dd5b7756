package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Sets or clears compatible feature bits of a closed version 3 image ({@code amend -o lazy_refcounts}): one
 * 8-byte write of the header field, synced, so a crash leaves the old value or the new one. The image must
 * be clean first (turning lazy refcounts off on a dirty image would leave refcounts no one repairs): the
 * caller opens and closes it read/write before.
 */
public final class CompatibleFeatures {
    /** Byte offset of compatible_features (qcow2 spec, "Header"). */
    private static final long OFFSET = 80;

    private CompatibleFeatures() {}

    /** Sets ({@code on}) or clears {@code bits}; nothing is written when the field has that value already. */
    public static void set(PositionalFile file, long bits, boolean on) throws IOException {
        Qcow2Header h = Qcow2Header.read(file);
        if (h.version() < 3) {
            throw new IllegalArgumentException("version 2 images have no compatible feature bits");
        }
        long now = h.compatibleFeatures();
        long next = on ? now | bits : now & ~bits;
        if (next == now) {
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment b = arena.allocate(8);
            b.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN), 0, next);
            file.write(OFFSET, b);
        }
        file.dataSync();
    }
}
