package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.Qcow2Snapshot;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a whole snapshot table to newly allocated clusters and then points the header at it (QEMU's
 * {@code qcow2_write_snapshots}): the new table and its refcounts are durable before the header's
 * {@code nb_snapshots} and {@code snapshots_offset} change, in one 12-byte write, so a crash leaves either
 * the old table or the new one (and at worst leaked clusters). The old table is freed afterwards.
 *
 * <p>Every entry is written with at least 24 bytes of extra data (64-bit VM state size, virtual disk size,
 * icount), as QEMU 7.2 writes them; extra data past those fields in an existing entry (a newer writer's
 * fields) is kept as it was, as QEMU keeps it.
 */
final class SnapshotTableWriter {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** Header fields nb_snapshots (u32) and snapshots_offset (u64), adjacent (qcow2 spec, "Header"). */
    private static final long NB_SNAPSHOTS = 60;
    static final int EXTRA_DATA = 24;

    private SnapshotTableWriter() {}

    /** Bytes of one entry in the table, padded to 8, with {@code extra} bytes of extra data. */
    private static long entrySize(Qcow2Snapshot sn, long extra) {
        long n = Qcow2Snapshot.HEADER_SIZE + extra + sn.id().getBytes(StandardCharsets.UTF_8).length
                + sn.name().getBytes(StandardCharsets.UTF_8).length;
        return (n + 7) & ~7L;
    }

    /** Bytes the table of {@code snapshots} occupies in the file now (entries as they were read). */
    static long storedSize(List<Qcow2Snapshot> snapshots) {
        long n = 0;
        for (Qcow2Snapshot sn : snapshots) {
            n = (n + 7) & ~7L; // as QEMU counts snapshots_size: the last entry unpadded
            n += Qcow2Snapshot.HEADER_SIZE + sn.extraDataSize() + sn.id().getBytes(StandardCharsets.UTF_8).length
                    + sn.name().getBytes(StandardCharsets.UTF_8).length;
        }
        return n;
    }

    /** The extra data of each entry of the table at {@code offset} with more than we write, by {@link #key}. */
    private static Map<String, byte[]> longExtraData(ImageState s, long offset, long size) throws IOException {
        Map<String, byte[]> out = new HashMap<>();
        if (offset == 0 || size <= 0 || size > Qcow2Snapshot.MAX_TABLE_SIZE) {
            return out;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment t = arena.allocate(size);
            s.file.readFully(offset, t);
            for (long pos = 0; pos + Qcow2Snapshot.HEADER_SIZE <= size; ) {
                long l1 = t.get(BE64, pos);
                int idLen = Short.toUnsignedInt(t.get(BE16, pos + 12));
                int nameLen = Short.toUnsignedInt(t.get(BE16, pos + 14));
                int extra = t.get(BE32, pos + 36);
                long end = pos + Qcow2Snapshot.HEADER_SIZE + (long) extra + idLen + nameLen;
                if (extra < 0 || end > size) {
                    break; // the reader checked the table; a short one has nothing more to keep
                }
                long x = pos + Qcow2Snapshot.HEADER_SIZE;
                if (extra > EXTRA_DATA) {
                    byte[] id = t.asSlice(x + extra, idLen).toArray(ValueLayout.JAVA_BYTE);
                    out.put(key(new String(id, StandardCharsets.UTF_8), l1), t.asSlice(x, extra).toArray(ValueLayout.JAVA_BYTE));
                }
                pos = (end + 7) & ~7L;
            }
        }
        return out;
    }

    private static String key(String id, long l1TableOffset) {
        return id + "@" + l1TableOffset;
    }

    /**
     * Replaces the table at {@code oldOffset} ({@code oldSize} bytes, 0: none) by one holding
     * {@code snapshots}. Holds the metadata lock.
     */
    static void replace(ImageState s, List<Qcow2Snapshot> snapshots, long oldOffset, long oldSize) throws IOException {
        Map<String, byte[]> kept = longExtraData(s, oldOffset, oldSize);
        long size = 0;
        for (Qcow2Snapshot sn : snapshots) {
            byte[] x = kept.get(key(sn.id(), sn.l1TableOffset()));
            size += entrySize(sn, x == null ? EXTRA_DATA : x.length);
        }
        if (size > Qcow2Snapshot.MAX_TABLE_SIZE) {
            throw new IOException(s.filename + ": snapshot table too large");
        }
        long offset = 0;
        if (!snapshots.isEmpty()) {
            int clusters = (int) ((size + s.clusterSize - 1) / s.clusterSize);
            offset = s.allocate(clusters);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment buf = arena.allocate((long) clusters * s.clusterSize);
                long pos = 0;
                for (Qcow2Snapshot sn : snapshots) {
                    pos = encode(buf, pos, sn, kept.get(key(sn.id(), sn.l1TableOffset())));
                }
                s.file.write(offset, buf);
            }
        }
        s.refcountCache.flush(); // the new table's clusters are counted before the header names them
        s.tableFile.flush();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment h = arena.allocate(12);
            h.set(BE32, 0, snapshots.size());
            h.set(BE64, 4, offset);
            s.file.write(NB_SNAPSHOTS, h);
        }
        s.tableFile.flush();
        if (oldSize > 0 && oldOffset != 0) {
            s.refcounts.free(oldOffset, oldSize);
        }
    }

    /** Encodes {@code sn} at {@code pos} with the extra data past our fields taken from {@code stored} (or none). */
    private static long encode(MemorySegment b, long pos, Qcow2Snapshot sn, byte[] stored) {
        int extra = stored == null ? EXTRA_DATA : stored.length;
        byte[] id = sn.id().getBytes(StandardCharsets.UTF_8);
        byte[] name = sn.name().getBytes(StandardCharsets.UTF_8);
        b.set(BE64, pos, sn.l1TableOffset());
        b.set(BE32, pos + 8, (int) sn.l1Size());
        b.set(BE16, pos + 12, (short) id.length);
        b.set(BE16, pos + 14, (short) name.length);
        b.set(BE32, pos + 16, (int) sn.dateSeconds());
        b.set(BE32, pos + 20, (int) sn.dateNanos());
        b.set(BE64, pos + 24, sn.vmClockNanos());
        // a VM state that does not fit 32 bits is 0 here, so that old readers see a disk-only snapshot
        b.set(BE32, pos + 32, sn.vmStateSize() <= 0xffff_ffffL ? (int) sn.vmStateSize() : 0);
        b.set(BE32, pos + 36, extra);
        long x = pos + Qcow2Snapshot.HEADER_SIZE;
        if (stored != null) {
            MemorySegment.copy(MemorySegment.ofArray(stored), 0, b, x, stored.length);
        }
        b.set(BE64, x, sn.vmStateSize());
        b.set(BE64, x + 8, sn.diskSize());
        b.set(BE64, x + 16, sn.icount());
        x += extra;
        MemorySegment.copy(MemorySegment.ofArray(id), 0, b, x, id.length);
        x += id.length;
        MemorySegment.copy(MemorySegment.ofArray(name), 0, b, x, name.length);
        x += name.length;
        return (x + 7) & ~7L;
    }
}
