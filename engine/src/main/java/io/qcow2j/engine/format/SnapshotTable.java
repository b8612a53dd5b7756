package io.qcow2j.engine.format;

import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Parses the snapshot table: {@code nb_snapshots} variable-length entries from {@code snapshots_offset},
 * each 8-byte aligned — a 40-byte fixed part, extra data, the ID string and the name.
 *
 * <p>Every length is checked before it is used: extra data at most 1 KiB per entry, each entry inside the
 * file, the whole table at most 64 MiB (QEMU's limits). The header has already bounded
 * {@code nb_snapshots} to 65536. Failures are one-line {@link Qcow2FormatException}s naming the entry and
 * the field.
 */
public final class SnapshotTable {
    /** The file is read in windows this large, which always hold at least one whole entry. */
    private static final int WINDOW = 256 * 1024;

    private SnapshotTable() {}

    /** Where the table's bytes come from: a slice of {@code len} bytes at table-relative {@code pos}. */
    private interface Source {
        MemorySegment slice(long pos, int len) throws IOException;
    }

    /** Reads the table of an open image whose header is {@code header}. */
    public static List<Qcow2Snapshot> read(PositionalFile file, Qcow2Header header) throws IOException {
        if (header.nbSnapshots() == 0) {
            return List.of();
        }
        long fileSize = file.size();
        long available = fileSize - header.snapshotsOffset();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment window = arena.allocate(WINDOW);
            long[] windowStart = {-1};
            long[] windowLen = {0};
            Source src = (pos, len) -> {
                if (windowStart[0] < 0 || pos < windowStart[0] || pos + len > windowStart[0] + windowLen[0]) {
                    long n = Math.min(WINDOW, available - pos);
                    file.readFully(header.snapshotsOffset() + pos, window.asSlice(0, n));
                    windowStart[0] = pos;
                    windowLen[0] = n;
                }
                return window.asSlice(pos - windowStart[0], len);
            };
            return parse(src, available, header, fileSize);
        }
    }

    /**
     * Parses the table from {@code table}: the file's bytes from {@code snapshots_offset} on, through the
     * end of the table (or of the file; the end of {@code table} is taken as the end of the file).
     */
    public static List<Qcow2Snapshot> parse(MemorySegment table, Qcow2Header header) throws Qcow2FormatException {
        try {
            return parse((pos, len) -> table.asSlice(pos, len), table.byteSize(), header,
                    header.snapshotsOffset() + table.byteSize());
        } catch (Qcow2FormatException e) {
            throw e;
        } catch (IOException e) {
            throw new AssertionError("a memory source does not do I/O", e);
        }
    }

    private static List<Qcow2Snapshot> parse(Source src, long available, Qcow2Header header, long fileSize)
            throws IOException {
        int count = (int) header.nbSnapshots();
        List<Qcow2Snapshot> out = new ArrayList<>(Math.min(count, 1024));
        long pos = 0;
        for (int i = 0; i < count; i++) {
            pos = (pos + 7) & ~7L;
            need(i, pos, Qcow2Snapshot.HEADER_SIZE, available, header, fileSize);
            MemorySegment h = src.slice(pos, Qcow2Snapshot.HEADER_SIZE);
            long l1Offset = Be.u64(h, 0);
            long l1Size = Be.u32(h, 8);
            int idSize = Be.u16(h, 12);
            int nameSize = Be.u16(h, 14);
            long dateSec = Be.u32(h, 16);
            long dateNsec = Be.u32(h, 20);
            long vmClock = Be.u64(h, 24);
            long vmState = Be.u32(h, 32);
            long extraSize = Be.u32(h, 36);
            if (extraSize > Qcow2Snapshot.MAX_EXTRA_DATA) {
                throw new Qcow2FormatException("qcow2 snapshot table: entry " + i + " extra_data_size " + extraSize
                        + " too large (max " + Qcow2Snapshot.MAX_EXTRA_DATA + ")");
            }
            int varSize = (int) extraSize + idSize + nameSize;
            long varPos = pos + Qcow2Snapshot.HEADER_SIZE;
            need(i, varPos, varSize, available, header, fileSize);
            MemorySegment v = src.slice(varPos, varSize);
            long diskSize = header.virtualSize();
            long icount = Qcow2Snapshot.NO_ICOUNT;
            if (extraSize >= 8) {
                vmState = Be.u64(v, 0);
            }
            if (extraSize >= 16) {
                diskSize = Be.u64(v, 8);
            }
            if (extraSize >= 24) {
                icount = Be.u64(v, 16);
            }
            String id = Be.string(v, extraSize, idSize);
            String name = Be.string(v, extraSize + idSize, nameSize);
            out.add(new Qcow2Snapshot(id, name, l1Offset, l1Size, vmState, dateSec, dateNsec, vmClock, diskSize,
                    icount, extraSize));
            pos = varPos + varSize;
            if (pos > Qcow2Snapshot.MAX_TABLE_SIZE) {
                throw new Qcow2FormatException("qcow2 snapshot table: size " + pos + " after entry " + i
                        + " too large (max " + Qcow2Snapshot.MAX_TABLE_SIZE + ")");
            }
        }
        return List.copyOf(out);
    }

    private static void need(int entry, long pos, int len, long available, Qcow2Header header, long fileSize)
            throws Qcow2FormatException {
        if (pos + len > available) {
            throw new Qcow2FormatException("qcow2 snapshot table: entry " + entry + " at offset "
                    + Be.hex(header.snapshotsOffset() + pos) + " (" + len + " bytes) runs past end of file (size "
                    + fileSize + ")");
        }
    }
}
