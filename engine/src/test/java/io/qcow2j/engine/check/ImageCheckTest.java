package io.qcow2j.engine.check;

import io.qcow2j.engine.CheckResult;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.format.BitmapsExtension;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.SubclusterBitmap;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link ImageCheck} against {@code qemu-img check --output=json}: the same numbers, field by field, and
 * the same exit status, on clean images of every kind qemu-img makes and on images damaged byte by byte
 * (each damage must make qemu-img's check fail, so every comparison below is one that can fail). Every
 * image is checked under the default caches and under the smallest ones (L2 slices of 512 bytes, evicted
 * all the time).
 */
class ImageCheckTest {
    @TempDir
    Path dir;

    static final ImageOptions DEFAULT = ImageOptions.defaults();
    static final ImageOptions TINY = ImageOptions.builder().l2CacheSize(1024L).l2CacheEntrySize(512L)
            .refcountCacheSize(0L).cacheCleanInterval(0).build();

    // ---------------------------------------------------------------- clean images

    static Stream<Arguments> cleanImages() {
        List<Arguments> a = new ArrayList<>();
        for (int cluster : new int[] {512, 4096, 65536, 2 << 20}) {
            a.add(Arguments.of("cluster_size=" + cluster, cluster, 2));
        }
        for (int bits : new int[] {2, 4, 8, 16, 32, 64}) {
            a.add(Arguments.of("refcount_bits=" + bits + ",cluster_size=4096", 4096, 2));
        }
        // 1-bit refcounts cannot share clusters: qemu-img refuses snapshots there.
        a.add(Arguments.of("refcount_bits=1,cluster_size=4096", 4096, 0));
        a.add(Arguments.of("compat=0.10,cluster_size=65536", 65536, 1));
        a.add(Arguments.of("extended_l2=on,cluster_size=65536", 65536, 1));
        a.add(Arguments.of("extended_l2=on,cluster_size=2M", 2 << 20, 1));
        a.add(Arguments.of("compression_type=zstd,cluster_size=65536", 65536, 1));
        a.add(Arguments.of("preallocation=metadata,cluster_size=65536", 65536, 1));
        a.add(Arguments.of("preallocation=falloc,cluster_size=65536", 65536, 0));
        a.add(Arguments.of("lazy_refcounts=on", 65536, 1));
        a.add(Arguments.of("cluster_size=65536", 65536, 5));
        return a.stream();
    }

    /** Data, unaligned data, zeros, a discard and compressed clusters; then snapshots and more writes. */
    @ParameterizedTest(name = "{0}, {2} snapshots")
    @MethodSource("cleanImages")
    void cleanImagesMatchQemu(String options, int cluster, int snapshots) throws IOException {
        long big = Math.max(cluster, 65536);
        Path img = Qemu.create(dir, "c.qcow2", options, Long.toString(20 * big));
        List<String> work = new ArrayList<>(List.of(
                "write -P 0x11 0 " + big,
                "write -P 0x22 " + (big + 1536) + " 300k",
                "write -z " + (4 * big) + " " + (2 * big),
                "write -P 0x44 " + (8 * big) + " " + (2 * big),
                "discard " + (8 * big) + " " + big,
                "write -P 0x55 " + (16 * big - 512) + " 1k"));
        // qemu-io cannot compress over preallocated clusters; with 2- and 4-bit refcounts, clusters holding
        // several compressed clusters reach the refcount limit and qemu-img can no longer take snapshots.
        boolean narrow = snapshots > 0 && options.matches(".*refcount_bits=[24],.*");
        if (!options.contains("preallocation") && !narrow) {
            work.add("write -c -P 0x33 " + (12 * big) + " " + big);
            work.add("write -c -P 0x34 " + (13 * big) + " " + big);
        }
        Qemu.io(img, work.toArray(String[]::new));
        for (int s = 0; s < snapshots; s++) {
            Qemu.run(dir, "qemu-img", "snapshot", "-c", "snap" + s, "c.qcow2");
            Qemu.io(img, "write -P 0x6" + s + " " + (s * big) + " " + (big + 4096), "write -z " + (5 * big) + " 4k");
        }
        QemuCheck q = QemuCheck.assertSameAsQemu(img, DEFAULT, TINY);
        assertThat(q.exit()).isZero();
        assertThat(q.numbers().get("allocated-clusters")).isPositive();
        if (!options.contains("preallocation") && !narrow) {
            assertThat(q.numbers().get("compressed-clusters")).isPositive();
        }
    }

    @Test
    void emptyImage() throws IOException {
        Path img = Qemu.create(dir, "e.qcow2", null, "64M");
        QemuCheck q = QemuCheck.assertSameAsQemu(img, DEFAULT);
        assertThat(q.json()).doesNotContainKey("allocated-clusters");
    }

    @Test
    void sparseTerabyteImage() throws IOException {
        Path img = Qemu.create(dir, "t.qcow2", null, "1T");
        Qemu.io(img, "write -P 1 0 64k", "write -P 2 512G 128k", "write -c -P 3 700G 64k", "write -P 4 1023G 1M");
        QemuCheck.assertSameAsQemu(img, DEFAULT, TINY);
    }

    @Test
    void backingChain() throws IOException {
        Qemu.create(dir, "base.qcow2", "cluster_size=4096", "8M");
        Qemu.io(dir.resolve("base.qcow2"), "write -P 1 0 8M");
        Path top = Qemu.create(dir, "top.qcow2", "backing_file=base.qcow2,backing_fmt=qcow2,cluster_size=65536", null);
        Qemu.io(top, "write -P 2 100k 10k", "write -z 1M 64k", "write -c -P 3 2M 64k");
        QemuCheck.assertSameAsQemu(top, DEFAULT, TINY);
        QemuCheck.assertSameAsQemu(dir.resolve("base.qcow2"), DEFAULT);
    }

    @Test
    void persistentBitmapsAreCounted() throws IOException {
        Path img = Qemu.create(dir, "b.qcow2", "cluster_size=4096", "64M");
        Qemu.io(img, "write -P 1 0 1M");
        Qemu.run(dir, "qemu-img", "bitmap", "--add", "b.qcow2", "b0");
        Qemu.run(dir, "qemu-img", "bitmap", "--add", "-g", "65536", "b.qcow2", "b1");
        Qemu.io(img, "write -P 2 4M 3M", "write -P 3 40M 64k"); // dirties both bitmaps: data clusters
        assertThat(Qemu.info(img).toString()).contains("b0", "b1");
        QemuCheck q = QemuCheck.assertSameAsQemu(img, DEFAULT, TINY);
        assertThat(q.exit()).isZero();
    }

    // ---------------------------------------------------------------- damaged images

    /**
     * The image the damage is done to: 2 GiB (four L1 entries with 64 KiB clusters), data at guest
     * clusters 0-3, a compressed cluster at 16, zeros at 32, data at 640; then a snapshot, then guest
     * cluster 0 rewritten (its L2 table copied; cluster 0 now has refcount 1, the others 2). With 1-bit
     * refcounts (no sharing possible) there is no snapshot.
     */
    Path damagedBase(String options) {
        Path img = Qemu.create(dir, "d.qcow2", options, "2G");
        Qemu.io(img, "write -P 0x11 0 256k", "write -c -P 0x22 1M 64k", "write -z 2M 64k", "write -P 0x33 40M 64k");
        if (!options.contains("refcount_bits=1,")) {
            Qemu.run(dir, "qemu-img", "snapshot", "-c", "s1", "d.qcow2");
        }
        Qemu.io(img, "write -P 0x44 0 64k");
        return img;
    }

    record Damage(String name, String options, Consumer<ImagePatcher> patch) {
        @Override
        public String toString() {
            return name;
        }
    }

    static long dataCluster(ImagePatcher p, int guestCluster) {
        return L2Entry.hostClusterOffset(p.u64(p.l2EntryOffset(0, guestCluster))) >>> p.clusterBits;
    }

    static long snapshotEntry(ImagePatcher p) {
        return p.header.snapshotsOffset();
    }

    static Stream<Damage> damages() {
        String base = "cluster_size=65536";
        return Stream.of(
                new Damage("refcount one too high: a leak", base, p -> {
                    long l1 = p.header.l1TableOffset() >>> p.clusterBits;
                    p.setRefcount(l1, p.refcount(l1) + 1);
                }),
                new Damage("unreferenced cluster appended with refcount 1", base, p -> {
                    long at = p.append(new byte[p.clusterSize]);
                    p.setRefcount(at >>> p.clusterBits, 1);
                }),
                new Damage("data cluster with refcount 0", base, p -> p.setRefcount(dataCluster(p, 640), 0)),
                new Damage("shared cluster with refcount 1", base, p -> p.setRefcount(dataCluster(p, 1), 1)),
                new Damage("header cluster with refcount 0", base, p -> p.setRefcount(0, 0)),
                new Damage("COPIED cleared on a data cluster", base, p -> {
                    long e = p.l2EntryOffset(0, 0);
                    p.put64(e, p.u64(e) & ~L2Entry.COPIED);
                }),
                new Damage("COPIED set on a shared cluster", base, p -> {
                    long e = p.l2EntryOffset(0, 1);
                    p.put64(e, p.u64(e) | L2Entry.COPIED);
                }),
                new Damage("COPIED cleared in the L1 table", base, p -> p.setL1Entry(0, p.l1Entry(0) & ~L1Entry.COPIED)),
                new Damage("COPIED set on a compressed cluster", base, p -> {
                    long e = p.l2EntryOffset(0, 16);
                    p.put64(e, p.u64(e) | L2Entry.COPIED);
                }),
                new Damage("L2 entry pointing past the end of the file", base, p -> {
                    long past = (p.size() + 16L * p.clusterSize) & -p.clusterSize;
                    p.put64(p.l2EntryOffset(0, 100), L2Entry.COPIED | past);
                }),
                new Damage("L2 entry pointing far past the end of the file", base,
                        p -> p.put64(p.l2EntryOffset(0, 101), L2Entry.OFFSET_MASK)),
                new Damage("compressed data far past the end of the file", base,
                        p -> p.put64(p.l2EntryOffset(0, 102), CompressedCluster.entry(1L << 40, 1000, p.clusterBits))),
                new Damage("unaligned data cluster", base, p -> {
                    long e = p.l2EntryOffset(0, 640);
                    p.put64(e, p.u64(e) + 0x200);
                }),
                new Damage("unaligned preallocated zero cluster", base, p -> {
                    long e = p.l2EntryOffset(0, 640);
                    p.put64(e, p.u64(e) + 0x200 | L2Entry.ZERO);
                }),
                new Damage("L2 entry with reserved bits", base, p -> {
                    long e = p.l2EntryOffset(0, 2);
                    p.put64(e, p.u64(e) | 0x10);
                }),
                new Damage("two L2 entries for one data cluster", base, p -> {
                    p.put64(p.l2EntryOffset(0, 200), p.u64(p.l2EntryOffset(0, 640)));
                }),
                new Damage("unaligned L2 table offset in the L1 table", base, p -> p.setL1Entry(0, p.l1Entry(0) + 0x200)),
                new Damage("L1 entry with reserved bits", base, p -> p.setL1Entry(0, p.l1Entry(0) | 0x1)),
                new Damage("L1 entry with only COPIED", base, p -> p.setL1Entry(1, L1Entry.COPIED)),
                new Damage("L2 table on top of the refcount block", base,
                        p -> p.setL1Entry(1, L1Entry.COPIED | p.refcountTableEntry(0))),
                new Damage("L2 table past the end of the file", base,
                        p -> p.setL1Entry(1, L1Entry.COPIED | (p.size() + (64L << 20) & -p.clusterSize))),
                new Damage("refcount table entry unaligned", base, p -> p.setRefcountTableEntry(0, p.refcountTableEntry(0) + 0x200)),
                new Damage("refcount table entry with reserved bits", base,
                        p -> p.setRefcountTableEntry(0, p.refcountTableEntry(0) | 1)),
                new Damage("refcount table entry outside the image", base,
                        p -> p.setRefcountTableEntry(0, (p.size() + (8L << 20)) & -p.clusterSize)),
                new Damage("refcount table entry at 2^63", base, p -> p.setRefcountTableEntry(0, 1L << 63)),
                new Damage("refcount block lost", base, p -> p.setRefcountTableEntry(0, 0)),
                new Damage("second refcount block outside the image", base,
                        p -> p.setRefcountTableEntry(1, (p.size() + (8L << 20)) & -p.clusterSize)),
                new Damage("refcount block shared with the L1 table", base,
                        p -> p.setRefcountTableEntry(1, p.header.l1TableOffset())),
                new Damage("snapshot L1 table unaligned", base, p -> p.put64(snapshotEntry(p), p.u64(snapshotEntry(p)) + 0x200)),
                new Damage("snapshot L1 table too large", base, p -> p.put32(snapshotEntry(p) + 8, 0x0100_0000)),
                new Damage("snapshot L1 table past the end of the file", base,
                        p -> p.put64(snapshotEntry(p), (p.size() + (64L << 20)) & -p.clusterSize)),
                new Damage("snapshot L1 table at 2^63 - 64 KiB", base,
                        p -> p.put64(snapshotEntry(p), Long.MAX_VALUE & -p.clusterSize)),
                new Damage("snapshot L1 table at 2^63", base, p -> p.put64(snapshotEntry(p), 1L << 63)),
                new Damage("snapshot L1 table on the active one", base,
                        p -> p.put64(snapshotEntry(p), p.header.l1TableOffset())),
                new Damage("snapshot entry with incomplete extra data", base, p -> p.put32(snapshotEntry(p) + 36, 8)),
                new Damage("snapshot entry with too much extra data", base, p -> p.put32(snapshotEntry(p) + 36, 4096)),
                new Damage("refcount overflow with 1-bit refcounts", "refcount_bits=1,cluster_size=65536", p -> {
                    p.put64(p.l2EntryOffset(0, 200), p.u64(p.l2EntryOffset(0, 640)) & ~L2Entry.COPIED);
                }),
                new Damage("extended L2: allocated and zero", "extended_l2=on,cluster_size=65536", p -> {
                    long e = p.l2EntryOffset(0, 640) + 8;
                    p.put64(e, p.u64(e) | (1L << 32));
                }),
                new Damage("extended L2: allocated subclusters of an unallocated cluster", "extended_l2=on,cluster_size=65536",
                        p -> p.put64(p.l2EntryOffset(0, 300) + 8, 0xff)),
                new Damage("extended L2: compressed cluster with a bitmap", "extended_l2=on,cluster_size=65536",
                        p -> p.put64(p.l2EntryOffset(0, 16) + 8, 1)),
                new Damage("extended L2: unaligned cluster without data", "extended_l2=on,cluster_size=65536", p -> {
                    long e = p.l2EntryOffset(0, 640);
                    p.put64(e, p.u64(e) + 0x200);
                    p.put64(e + 8, SubclusterBitmap.ALL_ZERO);
                }));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("damages")
    void damagedImagesMatchQemu(Damage d) throws IOException {
        Path img = damagedBase(d.options());
        QemuCheck before = QemuCheck.run(img);
        assertThat(before.exit()).as("the image before the damage: %s", before.stderr()).isZero();
        d.patch().accept(ImagePatcher.of(img));
        QemuCheck q = QemuCheck.assertSameAsQemu(img, DEFAULT, TINY);
        assertThat(q.exit()).as("qemu-img check must find the damage").isNotZero();
    }

    @Test
    void damagedBitmapTableFailsTheCheckAsInQemu() throws IOException {
        ImagePatcher p = withBitmap(4096, List.of(), "write -P 2 4M 3M");
        Path img = p.path;
        long dirOffset = p.header.extensions().bitmaps().orElseThrow().directoryOffset();
        long table = p.u64(dirOffset);
        p.put64(table, p.u64(table) | 0x2); // a reserved bit in the first bitmap table entry
        QemuCheck q = QemuCheck.assertSameAsQemu(img, DEFAULT);
        assertThat(q.exit()).isEqualTo(1);
        assertThat(q.json()).isNull();
    }

    /**
     * A bitmap table one entry over the cap ({@link BitmapsExtension#maxTableEntries}: 512 MiB of bitmap data,
     * so 2^17 entries with 4 KiB clusters, 2^20 with 512-byte ones) fails the check in one line, as it fails
     * qemu-img's, before any of the table is read.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(ints = {512, 4096})
    void bitmapTableOverTheCapFailsTheCheckInOneLine(int clusterSize) throws IOException {
        ImagePatcher p = withBitmap(clusterSize, List.of(), "write -P 2 4M 1M");
        Path img = p.path;
        long dirOffset = p.header.extensions().bitmaps().orElseThrow().directoryOffset();
        long cap = BitmapsExtension.maxTableEntries(clusterSize);
        assertThat(cap).isEqualTo(BitmapsExtension.MAX_DATA_SIZE / clusterSize);
        p.write(dirOffset + 8, java.nio.ByteBuffer.allocate(4).putInt((int) (cap + 1)).array()); // table_size
        QemuCheck q = QemuCheck.assertSameAsQemu(img, DEFAULT);
        assertThat(q.exit()).isEqualTo(1);
        assertThat(q.stderr()).contains("doesn't satisfy the constraints");
        assertThatThrownBy(() -> QemuCheck.ours(img, DEFAULT, new ArrayList<>()))
                .isExactlyInstanceOf(Qcow2FormatException.class)
                .hasMessageContaining("b.qcow2: bitmap directory entry 0 doesn't satisfy the constraints")
                .message().doesNotContain("\n");
    }

    /** A 64 MiB image {@code b.qcow2} with one persistent bitmap b0 ({@code extra}: more options to add it), written by {@code io}. */
    private ImagePatcher withBitmap(int clusterSize, List<String> extra, String... io) {
        Path img = Qemu.create(dir, "b.qcow2", "cluster_size=" + clusterSize, "64M");
        List<String> add = new ArrayList<>(List.of("qemu-img", "bitmap", "--add"));
        add.addAll(extra);
        add.addAll(List.of("b.qcow2", "b0"));
        Qemu.run(dir, add.toArray(String[]::new));
        if (io.length > 0) {
            Qemu.io(img, io);
        }
        return ImagePatcher.of(img);
    }

    /** Offset of the bitmaps extension's data in the header cluster. */
    private static long bitmapsExtension(ImagePatcher p) {
        long pos = Integer.toUnsignedLong(p.u32(100)); // header_length
        while (true) {
            int type = p.u32(pos);
            int len = p.u32(pos + 4);
            if (type == io.qcow2j.engine.format.HeaderExtensions.BITMAPS) {
                return pos + 8;
            }
            assertThat(type).as("end of the extensions before the bitmaps extension").isNotZero();
            pos += 8 + ((len + 7L) & ~7L);
        }
    }

    /** Rewrites the bitmap directory as {@code copies} copies of its first entry (names b0, b1, ...) at {@code at}. */
    private static void repeatFirstBitmap(ImagePatcher p, int copies, long at) {
        long ext = bitmapsExtension(p);
        long dir = p.u64(ext + 16);
        byte[] entry = p.read(dir, 32); // 24 bytes, a 2-byte name "b0", padding
        assertThat(entry[18] * 256 + entry[19]).as("name size").isEqualTo(2);
        java.nio.ByteBuffer d = java.nio.ByteBuffer.allocate(32 * copies);
        for (int i = 0; i < copies; i++) {
            d.put(entry);
            d.put(i * 32 + 24, (byte) ('a' + i / 26 / 26 % 26)).put(i * 32 + 25, (byte) ('a' + i % 26)); // unique names
            d.put(i * 32 + 18, (byte) 0).put(i * 32 + 19, (byte) 2);
        }
        p.write(at, d.array());
        p.put32(ext, copies);
        p.put64(ext + 8, 32L * copies);
        p.put64(ext + 16, at);
    }

    /**
     * Bitmaps whose tables overlap count each table's data clusters once per table, as qemu-img counts them, and
     * check reads each part of the file they cover once: 3 copies of one bitmap, side by side with qemu-img.
     */
    @Test
    void bitmapsSharingATableCountAsQemu() throws IOException {
        ImagePatcher p = withBitmap(512, List.of("-g", "512"), "write -P 2 1M 300k", "write -P 3 40M 64k");
        Path img = p.path;
        long dirOffset = p.u64(bitmapsExtension(p) + 16);
        assertThat(p.u64(dirOffset)).as("the bitmap has a table").isNotZero();
        repeatFirstBitmap(p, 3, dirOffset); // the directory's cluster holds 96 bytes
        QemuCheck q = QemuCheck.assertSameAsQemu(img, DEFAULT, TINY);
        assertThat(q.exit()).as("the table is referenced 3 times: refcount errors").isNotZero();
    }

    /**
     * Time bounded by the file, not by the metadata: 30,000 bitmaps naming one table at its cap (2^20 entries,
     * 8 MiB of zeros at 512-byte clusters) used to make 30,000 reads of it (240 GiB); the sweep reads it once.
     */
    @Test
    void bitmapsNamingOneTableReadItOnce() throws IOException {
        ImagePatcher p = withBitmap(512, List.of());
        Path img = p.path;
        long dirOffset = p.u64(bitmapsExtension(p) + 16);
        long entries = BitmapsExtension.maxTableEntries(512);
        long table = (p.size() + 511) & ~511L;
        p.write(table + entries * 8 - 8, new byte[8]); // 8 MiB of zero entries (unallocated), a hole in the file
        p.put64(dirOffset, table);
        p.put32(dirOffset + 8, (int) entries);
        repeatFirstBitmap(p, 30_000, table + entries * 8);
        List<String> lines = new ArrayList<>();
        CheckResult r = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(30),
                () -> QemuCheck.ours(img, DEFAULT, lines));
        assertThat(r.corruptions()).as("the table's clusters: refcount 0, 30,000 references each").isPositive();
    }

    @Test
    void inconsistentBitmapsAreLeaksAsInQemu() throws IOException {
        Path img = Qemu.create(dir, "b.qcow2", "cluster_size=4096", "64M");
        Qemu.run(dir, "qemu-img", "bitmap", "--add", "b.qcow2", "b0");
        Qemu.io(img, "write -P 2 4M 3M");
        ImagePatcher p = ImagePatcher.of(img);
        p.put64(88, 0); // autoclear_features: the bitmaps are no longer consistent
        QemuCheck q = QemuCheck.assertSameAsQemu(img, DEFAULT);
        assertThat(q.exit()).isEqualTo(3);
    }

    @Test
    void problemLinesUseQemusWords() throws IOException {
        Path img = damagedBase("cluster_size=65536");
        ImagePatcher p = ImagePatcher.of(img);
        long l1 = p.header.l1TableOffset() >>> p.clusterBits;
        p.setRefcount(l1, 2);
        long data = dataCluster(p, 0);
        p.setRefcount(data, 0);
        List<String> lines = new ArrayList<>();
        CheckResult r = QemuCheck.ours(img, DEFAULT, lines);
        assertThat(lines).contains("Leaked cluster " + l1 + " refcount=2 reference=1",
                "ERROR cluster " + data + " refcount=0 reference=1",
                "ERROR OFLAG_COPIED data cluster: l2_entry=" + Long.toHexString(p.u64(p.l2EntryOffset(0, 0)))
                        + " refcount=0");
        assertThat(r.leaks()).isEqualTo(1);
        assertThat(r.corruptions()).isEqualTo(2);
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(QemuCheck.run(img).stderr().lines().toList()).containsAll(lines);
    }
}
