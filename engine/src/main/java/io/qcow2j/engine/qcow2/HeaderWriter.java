package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.cache.TableFile;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Updates fields of an image's header in place, each update written and synced before it returns: the
 * header is the root of every other structure, so a later write must never reach the disk before it.
 */
public final class HeaderWriter {
    /** Byte offsets of the fields qcow2j rewrites (qcow2 spec, "Header"). */
    private static final long REFCOUNT_TABLE_OFFSET = 48;
    private static final long INCOMPATIBLE_FEATURES = 72;
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final PositionalFile file;
    private final TableFile sync;
    private final int version;
    private long incompatible;

    HeaderWriter(PositionalFile file, TableFile sync, Qcow2Header header) {
        this.file = file;
        this.sync = sync;
        this.version = header.version();
        this.incompatible = header.incompatibleFeatures();
    }

    /** Points the header at a new refcount table (one write of offset and size together). */
    public void writeRefcountTable(long offset, int clusters) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment b = arena.allocate(12);
            b.set(BE64, 0, offset);
            b.set(BE32, 8, clusters);
            file.write(REFCOUNT_TABLE_OFFSET, b);
        }
        sync.flush();
    }

    /** Sets or clears incompatible feature bits (dirty, corrupt); version 2 images have no such field. */
    public void setIncompatible(long bits, boolean on) throws IOException {
        if (version < 3) {
            return;
        }
        long now = on ? incompatible | bits : incompatible & ~bits;
        if (now == incompatible) {
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment b = arena.allocate(8);
            b.set(BE64, 0, now);
            file.write(INCOMPATIBLE_FEATURES, b);
        }
        sync.flush();
        incompatible = now;
    }

    public boolean isSet(long bits) {
        return (incompatible & bits) == bits;
    }
}
