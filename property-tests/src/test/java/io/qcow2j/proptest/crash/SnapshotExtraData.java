package io.qcow2j.proptest.crash;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Reads and extends the extra data of a snapshot table entry in an image file, for tests of a writer that
 * must keep extra data it does not know (a newer writer's fields past QEMU 7.2's 24 bytes). Works on the
 * raw bytes (qcow2 spec, "Snapshot table"); the extended table must still fit the clusters it is in.
 */
final class SnapshotExtraData {
    private static final int ENTRY_HEADER = 40;

    private SnapshotExtraData() {}

    /** The extra data of entry {@code index}. */
    static byte[] of(Path image, int index) throws IOException {
        Table t = Table.read(image);
        int at = t.entry(index);
        return Arrays.copyOfRange(t.bytes, at + ENTRY_HEADER, at + ENTRY_HEADER + t.buf.getInt(at + 36));
    }

    /** Appends {@code more} to the extra data of entry {@code index}, rewriting the table in place. */
    static void extend(Path image, int index, byte[] more) throws IOException {
        Table t = Table.read(image);
        int at = t.entry(index);
        int extra = t.buf.getInt(at + 36);
        int split = at + ENTRY_HEADER + extra;
        byte[] out = new byte[t.bytes.length + more.length + 8];
        System.arraycopy(t.bytes, 0, out, 0, split);
        System.arraycopy(more, 0, out, split, more.length);
        System.arraycopy(t.bytes, split, out, split + more.length, t.size - split);
        ByteBuffer.wrap(out).putInt(at + 36, extra + more.length);
        int size = t.size + more.length;
        if ((int) (t.offset % 4096) + size > 4096) {
            throw new IllegalStateException("the extended snapshot table does not fit its cluster");
        }
        // later entries start 8-aligned: with 8 more bytes the padding stays as it was
        if (more.length % 8 != 0) {
            throw new IllegalArgumentException("extend by a multiple of 8 bytes");
        }
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.seek(t.offset);
            f.write(out, 0, size);
        }
    }

    private record Table(long offset, int count, int size, byte[] bytes, ByteBuffer buf) {
        static Table read(Path image) throws IOException {
            try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "r")) {
                byte[] h = new byte[72];
                f.readFully(h);
                ByteBuffer hb = ByteBuffer.wrap(h);
                int count = hb.getInt(60);
                long offset = hb.getLong(64);
                byte[] bytes = new byte[65536];
                f.seek(offset);
                int n = f.read(bytes);
                ByteBuffer b = ByteBuffer.wrap(bytes);
                int pos = 0;
                for (int i = 0; i < count; i++) {
                    pos = (pos + 7) & ~7;
                    pos += ENTRY_HEADER + b.getInt(pos + 36) + Short.toUnsignedInt(b.getShort(pos + 12))
                            + Short.toUnsignedInt(b.getShort(pos + 14));
                }
                if (pos > n) {
                    throw new IOException("snapshot table past the end of the file");
                }
                return new Table(offset, count, pos, bytes, b);
            }
        }

        int entry(int index) {
            int pos = 0;
            for (int i = 0; i < index; i++) {
                pos = (pos + 7) & ~7;
                pos += ENTRY_HEADER + buf.getInt(pos + 36) + Short.toUnsignedInt(buf.getShort(pos + 12))
                        + Short.toUnsignedInt(buf.getShort(pos + 14));
            }
            return (pos + 7) & ~7;
        }
    }
}
