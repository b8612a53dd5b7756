package io.qcow2j.cli;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The images the CLI tests compare against qemu-img, made with qemu-img and qemu-io: each exercises one
 * thing (a geometry, a version, zstd, extended L2, a chain, snapshots, zeros and discards, preallocation).
 */
final class TestImages {
    private TestImages() {}

    /** 512-byte clusters: unaligned writes, a zero write, a discard. */
    static Path cluster512(Path dir) {
        Path p = Qemu.create(dir, "c512.qcow2", "cluster_size=512", "4M");
        Qemu.io(p, "write -P 0x11 0 3k", "write -P 0x22 1000 700", "write -z 8k 2k", "discard 1k 512",
                "write -P 0x33 3M 64k", "write -P 0x34 4095k 1k");
        return p;
    }

    /** The default 64 KiB clusters: data, partial-cluster zero writes, a zero range, a discard. */
    static Path cluster64k(Path dir) {
        Path p = Qemu.create(dir, "c64k.qcow2", null, "64M");
        Qemu.io(p, "write -P 1 0 128k", "write -P 2 1M 64k", "write -z 1056k 32k", "write -z 4M 1M",
                "discard 64k 64k", "write -P 3 60M 4M");
        return p;
    }

    /** 2 MiB clusters: a partial first cluster, a long write, zeros, a discard. */
    static Path cluster2m(Path dir) {
        Path p = Qemu.create(dir, "c2m.qcow2", "cluster_size=2M", "64M");
        Qemu.io(p, "write -P 4 0 4k", "write -P 5 5M 3M", "write -z 16M 2M", "write -P 6 20M 4M",
                "discard 22M 2M");
        return p;
    }

    /** compat=0.10 (version 2): no zero clusters, so zero writes and discards behave differently. */
    static Path compat010(Path dir) {
        Path p = Qemu.create(dir, "v2.qcow2", "compat=0.10", "16M");
        Qemu.io(p, "write -P 7 0 1M", "write -z 1M 64k", "discard 64k 64k", "write -z 128k 64k",
                "write -P 8 8M 128k");
        return p;
    }

    /** zstd compression, compressed and plain clusters. */
    static Path zstd(Path dir) {
        Path p = Qemu.create(dir, "zstd.qcow2", "compression_type=zstd", "8M");
        Qemu.io(p, "write -c -P 9 0 64k", "write -c -P 10 1M 128k", "write -P 11 4M 64k");
        return p;
    }

    /** Extended L2 (64 KiB clusters, 2 KiB subclusters) with subcluster writes, zeros and a discard. */
    static Path extendedL2(Path dir) {
        Path p = Qemu.create(dir, "extl2.qcow2", "extended_l2=on", "8M");
        Qemu.io(p, "write -P 1 2k 2k", "write -z 6k 2k", "write -P 2 70k 10k", "write -z 128k 4k",
                "write -P 3 256k 64k", "write -z 258k 2k", "discard 264k 4k", "write -P 4 1M 6k");
        return p;
    }

    /**
     * A 3-deep chain, each layer overriding parts of the one below and bigger than it: base.raw (8 MiB raw,
     * data at 0..2M and 5M..5.5M), mid.qcow2 (12 MiB) and top.qcow2 (16 MiB). Returns top.qcow2.
     */
    static Path chain(Path dir) {
        Path base = dir.resolve("base.raw");
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "raw", "base.raw", "8M");
        Qemu.ioFormat(base, "raw", "write -P 0x41 0 2M", "write -P 0x42 5M 512k");
        Path mid = Qemu.create(dir, "mid.qcow2", null, "12M", "-b", "base.raw", "-F", "raw");
        Qemu.io(mid, "write -P 0x51 1M 1M", "write -z 3M 64k", "write -P 0x52 9M 64k", "write -z 5M 64k");
        Path top = Qemu.create(dir, "top.qcow2", null, "16M", "-b", "mid.qcow2", "-F", "qcow2");
        Qemu.io(top, "write -P 0x61 1536k 64k", "write -z 5M 128k", "write -P 0x62 13M 64k", "write -z 9M 32k");
        return top;
    }

    /** Internal snapshots, one of them deleted, with writes between them. */
    static Path snapshots(Path dir) {
        Path p = Qemu.create(dir, "snap.qcow2", null, "8M");
        Qemu.io(p, "write -P 1 0 1M");
        Qemu.img(dir, "snapshot", "-c", "first", p.getFileName().toString());
        Qemu.io(p, "write -P 2 512k 1M");
        Qemu.img(dir, "snapshot", "-c", "second snapshot", p.getFileName().toString());
        Qemu.io(p, "write -z 0 64k");
        Qemu.img(dir, "snapshot", "-c", "a rather long snapshot name", p.getFileName().toString());
        Qemu.img(dir, "snapshot", "-d", "first", p.getFileName().toString());
        return p;
    }

    /** Zero clusters (plain and allocated) and discarded ranges, whole and partial clusters. */
    static Path zerosAndDiscards(Path dir) {
        Path p = Qemu.create(dir, "zeros.qcow2", null, "8M");
        Qemu.io(p, "write -P 1 0 4M", "write -z 64k 64k", "write -z -u 192k 128k", "discard 1M 512k",
                "discard 3076k 8k", "write -z 2M 4k");
        return p;
    }

    /** preallocation=metadata: data clusters everywhere, mostly holes in the file. */
    static Path preallocMetadata(Path dir) {
        Path p = Qemu.create(dir, "prealloc.qcow2", "preallocation=metadata", "16M");
        Qemu.io(p, "write -P 1 64k 4k", "write -P 2 2M 1M", "write -z 4M 64k", "write -P 3 15M 1M");
        return p;
    }

    /** A sparse 1 TiB image with a little data at the start, the middle and the end. */
    static Path sparse1T(Path dir) {
        Path p = Qemu.create(dir, "big.qcow2", null, "1T");
        Qemu.io(p, "write -P 1 0 64k", "write -P 2 512G 1M", "write -z 700G 64k", "write -P 3 1023G 64k",
                "write -P 4 1048575M 1M");
        return p;
    }

    /** Two persistent dirty bitmaps (one disabled), shown by info. */
    static Path bitmaps(Path dir) {
        Path p = Qemu.create(dir, "bitmaps.qcow2", null, "4M");
        Qemu.img(dir, "bitmap", "--add", p.getFileName().toString(), "b0");
        Qemu.img(dir, "bitmap", "--add", "-g", "128k", "--disable", p.getFileName().toString(), "second bitmap");
        return p;
    }

    /** Lazy refcounts, refcount_bits=64 and the dirty bit set in the header (as after a crash). */
    static Path dirty(Path dir) throws IOException {
        Path p = Qemu.create(dir, "dirty.qcow2", "lazy_refcounts=on,refcount_bits=64", "4M");
        Qemu.io(p, "write -P 1 0 64k");
        setIncompatibleBits(p, 1);
        return p;
    }

    /** The corrupt bit set in the header. */
    static Path corrupt(Path dir) throws IOException {
        Path p = Qemu.create(dir, "corrupt.qcow2", "refcount_bits=1", "4M");
        Qemu.io(p, "write -P 1 0 64k");
        setIncompatibleBits(p, 2);
        return p;
    }

    private static void setIncompatibleBits(Path p, long bits) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(8);
            ch.read(b, 72);
            b.flip();
            long v = b.getLong() | bits;
            b.clear();
            b.putLong(v).flip();
            ch.write(b, 72);
        }
    }

    /** Every image that map and convert compare on (not the 1 TiB one), by name. */
    static Map<String, Path> all(Path dir) throws IOException {
        Map<String, Path> m = new LinkedHashMap<>();
        m.put("cluster 512", cluster512(dir));
        m.put("cluster 64k", cluster64k(dir));
        m.put("cluster 2M", cluster2m(dir));
        m.put("compat 0.10", compat010(dir));
        m.put("zstd", zstd(dir));
        m.put("extended L2", extendedL2(dir));
        m.put("chain", chain(dir));
        m.put("snapshots", snapshots(dir));
        m.put("zeros and discards", zerosAndDiscards(dir));
        m.put("preallocation=metadata", preallocMetadata(dir));
        return m;
    }
}
