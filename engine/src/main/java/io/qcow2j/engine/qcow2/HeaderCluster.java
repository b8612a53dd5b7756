package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.FeatureName;
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
 * Rebuilds the first cluster of an image (QEMU's {@code qcow2_update_header}) from what is in the file and
 * the fields to change: the header (72 bytes for version 2; for version 3 the header as long as it was, or
 * 112 bytes when it was version 2), the backing format extension first (or none), the feature name table
 * (kept for version 3, QEMU's table added on an upgrade when clusters are larger than 4 KiB, dropped for
 * version 2, which has no feature bits), every other extension copied as it is, in file order, the end
 * marker, then the backing file name. The new header is written in one write that starts at offset 0, then
 * synced: the fields that must change together (a version and its feature bits, a refcount table and its
 * refcount order) sit in the first 512 bytes, which a crash does not tear.
 */
final class HeaderCluster {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** The version 3 header QEMU writes: 104 bytes, the compression type byte and 7 of padding. */
    static final int V3_HEADER_LENGTH = 112;
    private static final int FEATURE_TABLE_MIN_CLUSTER = 4096;

    /**
     * What the rebuilt header says where it differs from the file: the version, the three feature bitmaps
     * and the refcount order (ignored for version 2), the backing file name and format (null: none).
     */
    record Fields(int version, long incompatible, long compatible, long autoclear, int refcountOrder, String backing,
            String backingFormat) {
        /** The fields of {@code h} as they are. */
        static Fields of(Qcow2Header h) {
            return new Fields(h.version(), h.incompatibleFeatures(), h.compatibleFeatures(), h.autoclearFeatures(),
                    h.refcountOrder(), h.backingFileName().orElse(null), h.extensions().backingFormat().orElse(null));
        }

        Fields withBacking(String name, String format) {
            return new Fields(version, incompatible, compatible, autoclear, refcountOrder, name, format);
        }
    }

    private HeaderCluster() {}

    /**
     * Rewrites the first cluster of {@code file} with {@code f}, then syncs.
     *
     * @throws IllegalArgumentException if the name and extensions do not fit the first cluster (QEMU's
     *     message for a backing file name that does not fit)
     */
    static void write(PositionalFile file, Fields f) throws IOException {
        Qcow2Header h = Qcow2Header.read(file);
        int cs = h.clusterSize();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment old = arena.allocate(cs);
            file.readFully(0, old.asSlice(0, Math.min(cs, file.size())));
            MemorySegment out = arena.allocate(cs);
            int pos = fields(old, out, h, f);
            if (f.backingFormat() != null && f.backing() != null) {
                pos = extension(out, pos, HeaderExtensions.BACKING_FILE_FORMAT,
                        f.backingFormat().getBytes(StandardCharsets.UTF_8), f.backing());
            }
            if (f.version() >= 3 && h.version() < 3 && cs > FEATURE_TABLE_MIN_CLUSTER) {
                pos = extension(out, pos, HeaderExtensions.FEATURE_NAME_TABLE, FeatureName.encode(FeatureName.QEMU_TABLE),
                        f.backing());
            }
            int end = h.backingFileOffset() != 0 ? (int) Math.min(h.backingFileOffset(), cs) : cs;
            for (int at = h.headerLength(); at + 8 <= end; ) {
                int type = old.get(BE32, at);
                int len = old.get(BE32, at + 4);
                if (type == HeaderExtensions.END || len < 0 || at + 8L + len > end) {
                    break;
                }
                int padded = (len + 7) & ~7;
                boolean dropped = type == HeaderExtensions.BACKING_FILE_FORMAT
                        || (type == HeaderExtensions.FEATURE_NAME_TABLE && f.version() < 3);
                if (!dropped) {
                    if (pos + 8L + padded > cs) {
                        throw new IllegalArgumentException("header extensions do not fit the first cluster");
                    }
                    MemorySegment.copy(old, at, out, pos, 8 + len);
                    pos += 8 + padded;
                }
                at += 8 + padded;
            }
            pos += 8; // end marker: zeros
            byte[] name = f.backing() == null ? new byte[0] : f.backing().getBytes(StandardCharsets.UTF_8);
            if (pos + (long) name.length > cs || name.length > Qcow2Header.MAX_BACKING_FILE_NAME) {
                throw tooLong(f.backing());
            }
            MemorySegment.copy(MemorySegment.ofArray(name), 0, out, pos, name.length);
            out.set(BE64, 8, name.length == 0 ? 0 : pos);
            out.set(BE32, 16, name.length);
            int length = pos + name.length;
            file.write(0, out.asSlice(0, Math.min(cs, (length + 511) & ~511)));
            file.dataSync();
        }
    }

    /** Copies and changes the header fields; returns where the extensions start. */
    private static int fields(MemorySegment old, MemorySegment out, Qcow2Header h, Fields f) {
        MemorySegment.copy(old, 0, out, 0, Qcow2Header.V2_HEADER_LENGTH);
        out.set(BE32, 4, f.version());
        if (f.version() < 3) {
            return Qcow2Header.V2_HEADER_LENGTH;
        }
        int length = h.version() >= 3 ? h.headerLength() : V3_HEADER_LENGTH;
        if (h.version() >= 3) {
            MemorySegment.copy(old, Qcow2Header.V2_HEADER_LENGTH, out, Qcow2Header.V2_HEADER_LENGTH,
                    length - Qcow2Header.V2_HEADER_LENGTH); // unknown header fields past 104 are kept
        }
        out.set(BE64, 72, f.incompatible());
        out.set(BE64, 80, f.compatible());
        out.set(BE64, 88, f.autoclear());
        out.set(BE32, 96, f.refcountOrder());
        out.set(BE32, 100, length);
        return length;
    }

    private static int extension(MemorySegment out, int pos, int type, byte[] data, String backing) {
        if (pos + 8L + ((data.length + 7) & ~7) > out.byteSize()) {
            throw tooLong(backing);
        }
        out.set(BE32, pos, type);
        out.set(BE32, pos + 4, data.length);
        MemorySegment.copy(MemorySegment.ofArray(data), 0, out, pos + 8, data.length);
        return pos + 8 + ((data.length + 7) & ~7);
    }

    private static IllegalArgumentException tooLong(String backing) {
        return new IllegalArgumentException("Could not change the backing file to '" + backing
                + "': File name too long");
    }
}
