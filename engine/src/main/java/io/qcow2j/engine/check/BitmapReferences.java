package io.qcow2j.engine.check;

import io.qcow2j.engine.format.BitmapsExtension;
import io.qcow2j.engine.format.Qcow2FormatException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * The persistent bitmaps' share of the references ({@code qcow2_check_bitmaps_refcounts}): the bitmap
 * directory, each bitmap's table and its data clusters, counted when the bitmaps extension is consistent
 * (autoclear bit 0). QEMU's limits on directory entries ({@code block/qcow2-bitmap.c}) are kept; a directory
 * that breaks them fails the check in one line.
 */
final class BitmapReferences {
    private final CheckState st;

    BitmapReferences(CheckState st) {
        this.st = st;
    }

    /**
     * QEMU's limits on bitmap directory entries ({@code block/qcow2-bitmap.c}); those on a table's size are
     * {@link BitmapsExtension#MAX_TABLE_ENTRIES} and {@link BitmapsExtension#MAX_DATA_SIZE}.
     */
    private static final int BME_MAX_GRANULARITY_BITS = 31;
    private static final int BME_MIN_GRANULARITY_BITS = 9;
    private static final int BME_MAX_NAME_SIZE = 1023;
    private static final long BME_RESERVED_FLAGS = 0xfffffffcL;
    private static final long BME_TABLE_ENTRY_RESERVED_MASK = 0xff00_0000_0000_01feL;
    private static final long BME_TABLE_ENTRY_OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    private static final int BME_DIR_ENTRY_SIZE = 24;

    // ---------------------------------------------------------------- bitmaps

    /** One bitmap of the directory: where its table is and how many entries it has. */
    private record Bitmap(long tableOffset, long tableSize) {}

    /**
     * QEMU's {@code qcow2_check_bitmaps_refcounts}: the directory, each bitmap's table and each data cluster
     * the tables point at. An inconsistent extension (autoclear bit clear) is ignored, as QEMU ignores it.
     * A directory or table that breaks the spec's constraints makes the check fail, as in QEMU.
     */
    void count() throws IOException {
        BitmapsExtension ext = st.header.extensions().bitmaps().orElse(null);
        if (ext == null || !ext.consistent() || ext.count() == 0) {
            return;
        }
        st.inc(ext.directoryOffset(), ext.directorySize());
        List<Bitmap> list = loadBitmapDirectory(ext);
        // Each table is a reference of its own; its entries are read in one sweep over the file below.
        List<long[]> edges = new ArrayList<>(); // {file offset, +1 where a table's part inside the file starts, -1 where it ends}
        for (Bitmap bm : list) {
            long bytes = bm.tableSize() * 8;
            st.inc(bm.tableOffset(), bytes);
            if (!CheckState.readable(bm.tableOffset(), bytes)) {
                st.corruptions++;
                throw bitmapFailure("cannot read the bitmap table at 0x" + CheckState.hex(bm.tableOffset()));
            }
            // The part past the end of the file reads as zeros (unallocated entries, nothing to count).
            long inFile = Math.min(bytes, (Math.max(0, st.fileSize - bm.tableOffset()) + 7) & ~7L);
            if (inFile > 0) {
                edges.add(new long[] {bm.tableOffset(), 1});
                edges.add(new long[] {bm.tableOffset() + inFile, -1});
            }
        }
        sweep(edges);
    }

    /**
     * Reads every part of the file that bitmap tables cover once, however many tables cover it (a hostile
     * directory's 65535 bitmaps may all name one table of 8 MiB), and counts each entry's data cluster once per
     * table that covers it, as QEMU counts it (table by table). Time: the file's size, not the directory's claims.
     */
    private void sweep(List<long[]> edges) throws IOException {
        edges.sort((a, b) -> Long.compare(a[0], b[0]));
        long covering = 0;
        int i = 0;
        while (i < edges.size()) {
            long pos = edges.get(i)[0];
            for (; i < edges.size() && edges.get(i)[0] == pos; i++) {
                covering += edges.get(i)[1];
            }
            if (i == edges.size()) {
                break;
            }
            long next = edges.get(i)[0];
            if (covering > 0) {
                countEntries(pos, next - pos, covering);
            }
        }
    }

    /** The entries in {@code [from, from + len)} of the file, each data cluster counted {@code tables} times. */
    private void countEntries(long from, long len, long tables) throws IOException {
        long done = 0;
        while (done < len) {
            int n = (int) Math.min(CheckState.PIECE, len - done);
            MemorySegment piece = st.pieceBuf.asSlice(0, n);
            st.readZeroPadded(from + done, piece);
            for (int i = 0; i < n / 8; i++) {
                long e = piece.getAtIndex(CheckState.BE64, i);
                long off = e & BME_TABLE_ENTRY_OFFSET_MASK;
                if ((e & BME_TABLE_ENTRY_RESERVED_MASK) != 0
                        || (off != 0 && ((e & 1) != 0 || (off & (st.cs - 1)) != 0))) {
                    st.corruptions++;
                    throw bitmapFailure("bitmap table entry at 0x" + CheckState.hex(from + done + 8L * i)
                            + ": invalid entry 0x" + CheckState.hex(e));
                }
            }
            long was = st.times;
            st.times = was * tables;
            try {
                for (int i = 0; i < n / 8; i++) {
                    long off = piece.getAtIndex(CheckState.BE64, i) & BME_TABLE_ENTRY_OFFSET_MASK;
                    if (off != 0) {
                        st.inc(off, st.cs);
                    }
                }
            } finally {
                st.times = was;
            }
            done += n;
        }
    }

    private Qcow2FormatException bitmapFailure(String what) {
        return new Qcow2FormatException(st.image.filename() + ": " + what + " (Invalid argument)");
    }

    /** QEMU's {@code bitmap_list_load} with {@code check_dir_entry}. */
    private List<Bitmap> loadBitmapDirectory(BitmapsExtension ext) throws IOException {
        long size = ext.directorySize(); // ≤ 64 MiB by the header's validation
        long offset = ext.directoryOffset();
        if (size == 0 || !CheckState.readable(offset, size)) {
            st.corruptions++;
            throw bitmapFailure("bitmap directory at 0x" + CheckState.hex(offset) + " (" + CheckState.udec(size) + " bytes) cannot be read");
        }
        // Only the part inside the file is read; the rest reads as zeros.
        long inFile = Math.max(0, Math.min(size, st.fileSize - offset));
        byte[] dir = new byte[(int) inFile];
        if (inFile > 0) {
            st.readZeroPadded(offset, MemorySegment.ofArray(dir));
        }
        MemorySegment d = MemorySegment.ofArray(dir);
        List<Bitmap> out = new ArrayList<>();
        long pos = 0;
        long n = 0;
        while (pos < size) {
            if (pos + BME_DIR_ENTRY_SIZE > size) {
                throw brokenDirectory();
            }
            if (++n > ext.count()) {
                st.corruptions++;
                throw bitmapFailure("More bitmaps found than specified in header extension");
            }
            long tableOffset = u64(d, pos);
            long tableSize = u32(d, pos + 8);
            long flags = u32(d, pos + 12);
            int type = u8(d, pos + 16);
            int granularity = u8(d, pos + 17);
            int nameSize = (int) (u32(d, pos + 16) & 0xffff); // the u16 at pos + 18
            long extra = u32(d, pos + 20);
            long entrySize = (BME_DIR_ENTRY_SIZE + nameSize + extra + 7) & ~7L;
            if (pos + entrySize > size) {
                throw brokenDirectory();
            }
            if (extra != 0) {
                st.corruptions++;
                throw bitmapFailure("Bitmap extra data is not supported");
            }
            if (!validDirEntry(tableOffset, tableSize, flags, type, granularity, nameSize)) {
                st.corruptions++;
                throw bitmapFailure("bitmap directory entry " + (n - 1) + " doesn't satisfy the constraints");
            }
            out.add(new Bitmap(tableOffset, tableSize));
            pos += entrySize;
        }
        if (n != ext.count()) {
            st.corruptions++;
            throw bitmapFailure("Less bitmaps found than specified in header extension");
        }
        return out;
    }

    private Qcow2FormatException brokenDirectory() {
        st.corruptions++;
        return bitmapFailure("Broken bitmap directory");
    }

    private boolean validDirEntry(long tableOffset, long tableSize, long flags, int type, int granularity,
            int nameSize) {
        if (tableSize == 0 || tableOffset == 0 || (tableOffset & (st.cs - 1)) != 0
                || tableSize > BitmapsExtension.maxTableEntries(st.cs)
                || granularity > BME_MAX_GRANULARITY_BITS || granularity < BME_MIN_GRANULARITY_BITS
                || (flags & BME_RESERVED_FLAGS) != 0 || nameSize > BME_MAX_NAME_SIZE || type != 1) {
            return false;
        }
        long phys = tableSize * st.cs; // ≤ BitmapsExtension.MAX_DATA_SIZE
        long covered = (phys * 8) << granularity; // ≤ 2^32 << 31: fits unsigned
        return Long.compareUnsigned(st.header.virtualSize(), covered) <= 0;
    }

    /** Reads of the in-memory directory: bytes past what was read from the file are zeros. */
    private static long u64(MemorySegment d, long pos) {
        return pos + 8 <= d.byteSize() ? d.get(CheckState.BE64, pos) : pos >= d.byteSize() ? 0 : partial(d, pos, 8);
    }

    private static long u32(MemorySegment d, long pos) {
        return pos + 4 <= d.byteSize() ? d.get(CheckState.BE32, pos) & 0xffff_ffffL : pos >= d.byteSize() ? 0 : partial(d, pos, 4);
    }

    private static int u8(MemorySegment d, long pos) {
        return pos < d.byteSize() ? d.get(ValueLayout.JAVA_BYTE, pos) & 0xff : 0;
    }

    private static long partial(MemorySegment d, long pos, int len) {
        long v = 0;
        for (int i = 0; i < len; i++) {
            v = (v << 8) | u8(d, pos + i);
        }
        return v;
    }
}
