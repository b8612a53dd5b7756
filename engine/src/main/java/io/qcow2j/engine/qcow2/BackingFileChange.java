package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.HeaderExtensions;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Points an image's header at another backing file (QEMU's {@code qcow2_change_backing_file}): the first
 * cluster is rebuilt — the header fields as they are, the backing format extension first (or none), every
 * other extension copied as it is, the end marker, then the backing file name — and written in one write,
 * then synced. The image must not be open.
 */
public final class BackingFileChange {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private BackingFileChange() {}

    /**
     * Rewrites the header of {@code file} (whose parsed header is {@code h}) to name {@code backing} (null: no
     * backing file) of format {@code format} (null: none recorded).
     *
     * @throws IllegalArgumentException if the name and extensions do not fit the first cluster
     */
    public static void change(PositionalFile file, Qcow2Header h, String backing, String format) throws IOException {
        int cs = h.clusterSize();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment old = arena.allocate(cs);
            file.readFully(0, old.asSlice(0, Math.min(cs, file.size())));
            MemorySegment out = arena.allocate(cs);
            int headerLength = h.headerLength();
            MemorySegment.copy(old, 0, out, 0, headerLength);
            int pos = headerLength;
            if (format != null && backing != null) {
                pos = extension(out, pos, HeaderExtensions.BACKING_FILE_FORMAT, format.getBytes(StandardCharsets.UTF_8));
            }
            // the other extensions, as they are
            int end = h.backingFileOffset() != 0 ? (int) h.backingFileOffset() : cs;
            for (int at = headerLength; at + 8 <= end; ) {
                int type = old.get(BE32, at);
                int len = old.get(BE32, at + 4);
                if (type == HeaderExtensions.END || len < 0 || at + 8L + len > end) {
                    break;
                }
                int padded = (len + 7) & ~7;
                if (type != HeaderExtensions.BACKING_FILE_FORMAT) {
                    if (pos + 8L + padded > cs) {
                        throw new IllegalArgumentException("header extensions do not fit the first cluster");
                    }
                    MemorySegment.copy(old, at, out, pos, 8 + len);
                    pos += 8 + padded;
                }
                at += 8 + padded;
            }
            pos += 8; // end marker: zeros
            byte[] name = backing == null ? new byte[0] : backing.getBytes(StandardCharsets.UTF_8);
            if (pos + (long) name.length > cs || name.length > 1023) {
                throw new IllegalArgumentException("Could not change the backing file to '" + backing
                        + "': File name too long");
            }
            MemorySegment.copy(MemorySegment.ofArray(name), 0, out, pos, name.length);
            out.set(BE64, 8, name.length == 0 ? 0 : pos);
            out.set(BE32, 16, name.length);
            int length = pos + name.length;
            file.write(0, out.asSlice(0, Math.min(cs, ((length + 511) & ~511))));
            file.dataSync();
        }
    }

    private static int extension(MemorySegment out, int pos, int type, byte[] data) {
        out.set(BE32, pos, type);
        out.set(BE32, pos + 4, data.length);
        MemorySegment.copy(MemorySegment.ofArray(data), 0, out, pos + 8, data.length);
        return pos + 8 + ((data.length + 7) & ~7);
    }
}
