package io.qcow2j.engine.check;

import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.RefcountBlock;
import io.qcow2j.engine.format.RefcountTableEntry;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Damages qcow2 images on purpose, byte by byte through a {@link FileChannel}: reads and writes big-endian
 * fields, follows the header to the L1/L2 tables and the refcount blocks, and sets refcounts of any width.
 */
final class ImagePatcher {
    final Path path;
    final Qcow2Header header;
    final int clusterBits;
    final int clusterSize;

    private ImagePatcher(Path path, Qcow2Header header) {
        this.path = path;
        this.header = header;
        this.clusterBits = header.clusterBits();
        this.clusterSize = header.clusterSize();
    }

    static ImagePatcher of(Path path) {
        try (AlignedFile f = AlignedFile.open(path, IoMode.BUFFERED, StandardOpenOption.READ)) {
            return new ImagePatcher(path, Qcow2Header.read(f));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    long size() {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return ch.size();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    byte[] read(long offset, int len) {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(len);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) > 0) {
                // loop until full or end of file
            }
            return b.array();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    void write(long offset, byte[] bytes) {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b, offset + b.position());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    long u64(long offset) {
        return ByteBuffer.wrap(read(offset, 8)).getLong();
    }

    void put64(long offset, long v) {
        write(offset, ByteBuffer.allocate(8).putLong(v).array());
    }

    int u32(long offset) {
        return ByteBuffer.wrap(read(offset, 4)).getInt();
    }

    void put32(long offset, int v) {
        write(offset, ByteBuffer.allocate(4).putInt(v).array());
    }

    void xorByte(long offset, int mask) {
        byte[] b = read(offset, 1);
        b[0] ^= (byte) mask;
        write(offset, b);
    }

    /** Appends {@code bytes} at the end of the file; returns where they went. */
    long append(byte[] bytes) {
        long at = size();
        write(at, bytes);
        return at;
    }

    long l1Entry(int index) {
        return u64(header.l1TableOffset() + 8L * index);
    }

    void setL1Entry(int index, long v) {
        put64(header.l1TableOffset() + 8L * index, v);
    }

    long l2TableOffset(int l1Index) {
        return L1Entry.l2Offset(l1Entry(l1Index));
    }

    /** File offset of the (first word of the) L2 entry mapping guest cluster {@code l2Index} of table {@code l1Index}. */
    long l2EntryOffset(int l1Index, int l2Index) {
        int entryBytes = header.hasExtendedL2() ? 16 : 8;
        return l2TableOffset(l1Index) + (long) entryBytes * l2Index;
    }

    long refcountTableEntry(int index) {
        return u64(header.refcountTableOffset() + 8L * index);
    }

    void setRefcountTableEntry(int index, long v) {
        put64(header.refcountTableOffset() + 8L * index, v);
    }

    private long refcountBlockOf(long cluster) {
        int blockBits = header.geometry().refcountBlockBits();
        long entry = refcountTableEntry((int) (cluster >>> blockBits));
        long block = RefcountTableEntry.blockOffset(entry);
        if (block == 0) {
            throw new IllegalStateException("no refcount block for cluster " + cluster);
        }
        return block;
    }

    long refcount(long cluster) {
        long block = refcountBlockOf(cluster);
        MemorySegment seg = MemorySegment.ofArray(read(block, clusterSize));
        return RefcountBlock.get(seg, cluster & (header.geometry().refcountBlockEntries() - 1), header.refcountOrder());
    }

    void setRefcount(long cluster, long value) {
        long block = refcountBlockOf(cluster);
        byte[] b = read(block, clusterSize);
        RefcountBlock.set(MemorySegment.ofArray(b), cluster & (header.geometry().refcountBlockEntries() - 1),
                header.refcountOrder(), value);
        write(block, b);
    }
}
