package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Damaged images: each targeted corruption of the L1/L2 metadata must end in a one-line
 * {@link Qcow2FormatException} naming the problem (or, where QEMU reads on, in the data QEMU reads), and
 * random byte flips in the metadata must end in correct-shaped data or such an error: never another
 * exception, a hang or a crash.
 */
class CorruptImageReadTest {
    @TempDir
    Path dir;
    Path pristine;
    long l1Offset;
    long l2Offset;
    long fileSize;
    static final int CLUSTER = 65536;

    @BeforeEach
    void makeImage() throws IOException {
        pristine = Qemu.create(dir, "p.qcow2", "cluster_size=65536", "64M");
        Qemu.io(pristine, "write -P 0x11 0 256k", "write -c -P 0x22 1M 64k", "write -z 2M 64k",
                "write -P 0x33 40M 64k");
        try (AlignedFile f = AlignedFile.open(pristine, IoMode.BUFFERED, StandardOpenOption.READ)) {
            Qcow2Header h = Qcow2Header.read(f);
            l1Offset = h.l1TableOffset();
            fileSize = f.size();
        }
        l2Offset = readLong(pristine, l1Offset) & 0x00ff_ffff_ffff_fe00L;
        assertThat(l2Offset).isPositive();
    }

    Path copy(String name) throws IOException {
        return Files.copy(pristine, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
    }

    static long readLong(Path p, long off) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(8);
            ch.read(b, off);
            return b.flip().getLong();
        }
    }

    static void writeLong(Path p, long off, long v) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).putLong(v).flip(), off);
        }
    }

    /** Reads the whole image; returns the error message, or null if every read succeeded. */
    static String readAll(Path img) {
        try (Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.defaults())) {
            byte[] buf = new byte[1 << 20];
            for (long off = 0; off < im.size(); off += buf.length) {
                im.read(off, MemorySegment.ofArray(buf).asSlice(0, Math.min(buf.length, im.size() - off)));
            }
            return null;
        } catch (Qcow2FormatException e) {
            assertThat(e.getMessage()).doesNotContain("\n");
            return e.getMessage();
        } catch (IOException e) {
            throw new AssertionError("expected a format error, got " + e, e);
        }
    }

    @Test
    void l1EntryPastTheEndOfTheFile() throws IOException {
        Path p = copy("a.qcow2");
        writeLong(p, l1Offset, (1L << 63) | (fileSize + 10L * CLUSTER));
        assertThat(readAll(p)).contains("L2 table offset").contains("past the end of the file");
    }

    @Test
    void l1EntryUnaligned() throws IOException {
        Path p = copy("a.qcow2");
        writeLong(p, l1Offset, (1L << 63) | (l2Offset + 512));
        assertThat(readAll(p)).contains("not aligned").contains("L1 entry");
    }

    @Test
    void l1EntryReservedBits() throws IOException {
        Path p = copy("a.qcow2");
        writeLong(p, l1Offset, readLong(p, l1Offset) | 0x2L);
        assertThat(readAll(p)).isNotNull();
    }

    @Test
    void l2EntryUnalignedDataCluster() throws IOException {
        Path p = copy("a.qcow2");
        writeLong(p, l2Offset, readLong(p, l2Offset) + 512);
        assertThat(readAll(p)).contains("L2 entry").contains("not aligned");
    }

    @Test
    void l2EntryReservedBits() throws IOException {
        Path p = copy("a.qcow2");
        writeLong(p, l2Offset, readLong(p, l2Offset) | (1L << 57));
        assertThat(readAll(p)).isNotNull();
    }

    @Test
    void compressedDescriptorPastTheEndOfTheFile() throws IOException {
        Path p = copy("a.qcow2");
        long idx = (1 << 20) / CLUSTER;
        long entry = readLong(p, l2Offset + idx * 8);
        assertThat(entry & (1L << 62)).as("compressed entry").isNotZero();
        // host offset field: bits 0..(62 - (16 - 8)) - 1 = 0..53
        long mask = (1L << 54) - 1;
        writeLong(p, l2Offset + idx * 8, (entry & ~mask) | ((fileSize + (1 << 24)) & mask));
        assertThat(readAll(p)).contains("compressed cluster").contains("past the end of the file");
    }

    @Test
    void compressedDataGarbage() throws IOException {
        Path p = copy("a.qcow2");
        long idx = (1 << 20) / CLUSTER;
        long entry = readLong(p, l2Offset + idx * 8);
        long host = entry & ((1L << 54) - 1);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff}), host);
        }
        assertThat(readAll(p)).contains("compressed cluster").containsAnyOf("bad deflate data", "decompresses to");
    }

    @Test
    void dataClusterPastTheEndOfTheFileReadsZerosAsInQemu() throws IOException {
        Path p = copy("a.qcow2");
        writeLong(p, l2Offset, (1L << 63) | (fileSize + 100L * CLUSTER));
        assertThat(readAll(p)).isNull();
        try (Qcow2Image im = ChainOpener.openQcow2(p, ImageOptions.defaults())) {
            byte[] b = new byte[CLUSTER];
            im.read(0, MemorySegment.ofArray(b));
            assertThat(b).containsOnly(0);
        }
    }

    @Test
    void truncatedFile() throws IOException {
        Path p = copy("a.qcow2");
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.truncate(l2Offset);
        }
        assertThat(readAll(p)).contains("past the end of the file");
    }

    @Test
    void randomByteFlipsInMetadataEndInDataOrOneLineErrors() throws Exception {
        SplittableRandom rnd = new SplittableRandom(20261124);
        int errors = 0;
        for (int i = 0; i < 300; i++) {
            Path p = copy("f.qcow2");
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                int flips = 1 + rnd.nextInt(8);
                for (int k = 0; k < flips; k++) {
                    // header, L1 table or the first L2 table
                    long[] regions = {0, l1Offset, l2Offset};
                    long base = regions[rnd.nextInt(3)];
                    long off = base + rnd.nextInt(base == l2Offset ? CLUSTER : 512);
                    ByteBuffer b = ByteBuffer.allocate(1);
                    ch.read(b, off);
                    b.put(0, (byte) (b.get(0) ^ (1 << rnd.nextInt(8))));
                    ch.write(b.flip(), off);
                }
            }
            String[] outcome = new String[1];
            Thread t = Thread.ofPlatform().start(() -> {
                try {
                    outcome[0] = readAllLenient(p);
                } catch (Throwable e) {
                    outcome[0] = "UNEXPECTED " + e;
                }
            });
            t.join(Duration.ofSeconds(20));
            assertThat(t.isAlive()).as("iteration %d hangs", i).isFalse();
            assertThat(outcome[0]).as("iteration %d", i).doesNotStartWith("UNEXPECTED");
            if (!outcome[0].equals("ok")) {
                errors++;
            }
        }
        assertThat(errors).as("some flips must be caught").isPositive();
    }

    /** "ok", or the one-line message of a format error or an I/O error; throws on anything else. */
    static String readAllLenient(Path img) throws IOException {
        try (Qcow2Image im = ChainOpener.openQcow2(img, ImageOptions.builder().cacheCleanInterval(0).build())) {
            byte[] buf = new byte[1 << 20];
            long size = Math.min(im.size(), 1L << 30);
            for (long off = 0; off < size; off += buf.length) {
                im.read(off, MemorySegment.ofArray(buf).asSlice(0, Math.min(buf.length, size - off)));
            }
            return "ok";
        } catch (Qcow2FormatException e) {
            if (e.getMessage().contains("\n")) {
                throw new AssertionError("multi-line message: " + e.getMessage());
            }
            return e.getMessage();
        } catch (java.nio.file.NoSuchFileException e) {
            return "missing backing file " + e.getMessage(); // a flipped byte in the backing name
        }
    }

    @Test
    void misalignedSliceIsACorruptionEventAndAnError() throws IOException {
        Path p = copy("a.qcow2");
        writeLong(p, l1Offset, (1L << 63) | (l2Offset + 4096));
        assertThatThrownBy(() -> {
            try (Qcow2Image im = ChainOpener.openQcow2(p, ImageOptions.defaults())) {
                im.read(0, MemorySegment.ofArray(new byte[512]));
            }
        }).isInstanceOf(Qcow2FormatException.class);
    }
}
