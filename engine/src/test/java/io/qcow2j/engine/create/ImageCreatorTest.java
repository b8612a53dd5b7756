package io.qcow2j.engine.create;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.CreateOptions;
import io.qcow2j.engine.CreatedImage;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Sizes;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.format.CompressionType;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.ffm.PositionalFile;
import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Images made by {@link ImageCreator} against the ones {@code qemu-img create} makes with the same options:
 * {@code qemu-img info} alike (every field but the file name and disk usage), {@code qemu-img check} clean
 * before and after qemu-io writes, readable by the engine, and byte for byte the same file wherever QEMU lays
 * the image out the same way (one refcount block and one refcount table cluster).
 */
class ImageCreatorTest {
    @TempDir
    Path dir;

    /** CreateOptions in qemu-img's syntax, size (null: from the backing file), whether QEMU's bytes are expected. */
    static Stream<Arguments> matrix() {
        List<Arguments> a = new ArrayList<>();
        a.add(Arguments.of("", "1G", true));
        a.add(Arguments.of("cluster_size=512", "4M", true));
        a.add(Arguments.of("cluster_size=512", "16M", true)); // an L1 table of 8 clusters
        a.add(Arguments.of("cluster_size=4096", "16M", true));
        a.add(Arguments.of("cluster_size=65536", "100M", true));
        a.add(Arguments.of("cluster_size=2M", "1G", true));
        a.add(Arguments.of("compat=0.10", "1G", true));
        a.add(Arguments.of("compat=0.10,cluster_size=512", "8M", true));
        a.add(Arguments.of("compat=v2,cluster_size=4k", "8M", true));
        for (int bits : new int[] {1, 2, 4, 8, 32, 64}) {
            a.add(Arguments.of("refcount_bits=" + bits + ",cluster_size=4096", "64M", true));
        }
        a.add(Arguments.of("refcount_bits=64,cluster_size=512", "64M", true));
        // L1 of 512 clusters, refcount blocks of 64 entries: QEMU grows its refcount structures in between.
        a.add(Arguments.of("refcount_bits=64,cluster_size=512", "1G", false));
        a.add(Arguments.of("extended_l2=on", "1G", true));
        a.add(Arguments.of("extended_l2=on,cluster_size=16k", "256M", true));
        a.add(Arguments.of("extended_l2=on,cluster_size=2M", "4G", true));
        a.add(Arguments.of("lazy_refcounts=on", "1G", true));
        a.add(Arguments.of("compression_type=zstd", "1G", true));
        a.add(Arguments.of("compression_type=zstd,lazy_refcounts=on,extended_l2=on,refcount_bits=8,cluster_size=32k",
                "3G", true));
        a.add(Arguments.of("", "0", true));
        a.add(Arguments.of("", "1000", true)); // rounded up to 1024
        a.add(Arguments.of("cluster_size=4096", "1048577", true));
        a.add(Arguments.of("", "1T", true));
        a.add(Arguments.of("cluster_size=2M", "1T", true));
        a.add(Arguments.of("preallocation=metadata", "64M", true));
        a.add(Arguments.of("preallocation=metadata,cluster_size=4k", "5M", true));
        a.add(Arguments.of("preallocation=metadata,cluster_size=4k", "20M", false)); // 3 refcount blocks
        a.add(Arguments.of("preallocation=metadata,cluster_size=512", "4M", false)); // 33 refcount blocks
        a.add(Arguments.of("preallocation=metadata,cluster_size=512,refcount_bits=1", "2M", false));
        a.add(Arguments.of("preallocation=metadata,cluster_size=4k,refcount_bits=64", "3M", false));
        a.add(Arguments.of("preallocation=metadata,compat=0.10,cluster_size=4k", "3M", true));
        a.add(Arguments.of("preallocation=metadata,extended_l2=on,cluster_size=32k", "10M", true));
        a.add(Arguments.of("preallocation=metadata", "0", true));
        a.add(Arguments.of("preallocation=metadata,cluster_size=2M", "1G", true));
        a.add(Arguments.of("backing_file=base.qcow2,backing_fmt=qcow2", null, true));
        a.add(Arguments.of("backing_file=base.qcow2,backing_fmt=qcow2", "2G", true));
        // 1 GiB from the backing file: an L1 table of 512 clusters of 512 bytes, beyond one refcount block
        a.add(Arguments.of("backing_file=base.qcow2,backing_fmt=qcow2,cluster_size=512", null, false));
        a.add(Arguments.of("backing_file=base.qcow2,backing_fmt=qcow2,cluster_size=512", "64M", true));
        a.add(Arguments.of("backing_file=base.qcow2,backing_fmt=qcow2,compat=0.10", null, true));
        a.add(Arguments.of("backing_file=base.raw,backing_fmt=raw", null, true));
        a.add(Arguments.of("backing_file=base.raw,backing_fmt=raw", "100M", true));
        a.add(Arguments.of("backing_file=base.qcow2,backing_fmt=qcow2,extended_l2=on,preallocation=metadata", null,
                true));
        return a.stream();
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("matrix")
    void makesTheImageQemuImgMakes(String options, String size, boolean sameBytes) throws IOException {
        makeBackingFiles();
        CreateOptions o = CreateOptions.parse(options, CreateOptions.defaults());
        if (size != null) {
            o = o.toBuilder().size(Sizes.parse("size", size)).build();
        }
        Path ours = dir.resolve("ours.qcow2");
        CreatedImage r = ImageCreator.create(ours, o);
        Path theirs = Qemu.create(dir, "qemu.qcow2", options, size);

        assertThat(info(ours)).isEqualTo(info(theirs));
        assertClean(ours);
        assertThat(r.refcountTableClusters() == 1 && r.refcountBlocks() == 1)
                .as("one refcount block and table cluster, as QEMU's layout").isEqualTo(sameBytes);
        if (sameBytes) {
            assertSameFile(ours, theirs);
        }
        assertThat(Files.size(ours)).isEqualTo(r.fileSize());

        long virtualSize = r.size();
        try (AlignedFile f = AlignedFile.open(ours, IoMode.BUFFERED, StandardOpenOption.READ)) {
            assertThat(Qcow2Header.read(f).size()).isEqualTo(virtualSize);
        }
        if (virtualSize == 0) {
            return;
        }
        int backingByte = options.contains("base.qcow2") ? 0x33 : options.contains("base.raw") ? 0x44 : 0;
        try (Qcow2Image img = ChainOpener.openQcow2(ours, ImageOptions.defaults()); Arena arena = Arena.ofConfined()) {
            assertThat(img.size()).isEqualTo(virtualSize);
            MemorySegment buf = arena.allocate(Math.min(virtualSize, 128 << 10));
            img.read(0, buf);
            assertFilled(buf.asSlice(0, Math.min(buf.byteSize(), 4096)), backingByte);
            img.read(virtualSize - buf.byteSize(), buf);
            long backingSize = backingByte == 0x33 ? 1L << 30 : backingByte == 0x44 ? 3L << 20 : 0;
            // the backing files hold data at their start and end only
            assertFilled(buf.asSlice(buf.byteSize() - 512), virtualSize == backingSize ? backingByte : 0);
        }

        long len = Math.min(virtualSize, 65536);
        long tail = Math.min(virtualSize, 4096);
        long last = virtualSize - tail;
        Qemu.io(ours, "write -P 0x5a 0 " + len, "read -P 0x5a 0 " + len, "write -P 0xa5 " + last + " " + tail,
                "read -P 0xa5 " + last + " " + tail);
        long cs = o.clusterSize();
        if (virtualSize >= 4 * cs && virtualSize > 3 * 65536 && !options.contains("preallocation")) {
            // compressed writes need whole clusters (and qemu-io cannot compress over preallocated ones)
            long c = Math.max(2 * cs, 131072);
            Qemu.io(ours, "write -z " + (virtualSize / 2) + " 65536", "write -c -P 0x66 " + c + " " + cs,
                    "read -P 0x66 " + c + " " + cs);
        }
        assertClean(ours);
        if (last >= len) {
            Qemu.io(ours, "read -P 0x5a 0 " + len);
        }
    }

    /**
     * 64 MiB of 512-byte clusters, all preallocated: 131072 data clusters, 2048 L2 tables, 523 refcount
     * blocks and a refcount table of 9 clusters. (qemu-img takes seconds to make this image, syncing as it
     * grows its refcounts; the matrix compares the same options at 4 MiB with its image. Here its info is
     * that of the image without preallocation, which qemu-img info does not show.)
     */
    @Test
    void preallocatesEveryClusterOfALargeImageWithSmallClusters() throws IOException {
        Path p = dir.resolve("pre.qcow2");
        CreateOptions o = CreateOptions.parse("preallocation=metadata,cluster_size=512", CreateOptions.defaults()).toBuilder()
                .size(64L << 20).build();
        CreatedImage r = ImageCreator.create(p, o);
        assertThat(r.refcountBlocks()).isEqualTo(523);
        assertThat(r.refcountTableClusters()).isEqualTo(9);
        assertThat(r.clusters()).isEqualTo(1 + 9 + 523 + 32 + 2048 + 131072);
        assertThat(r.fileSize()).isEqualTo(r.clusters() * 512).isEqualTo(Files.size(p));
        assertThat(info(p)).isEqualTo(info(Qemu.create(dir, "q.qcow2", "cluster_size=512", "64M")));
        Map<String, Object> check = assertClean(p);
        assertThat(((Number) check.get("allocated-clusters")).longValue()).isEqualTo(131072);
        assertThat(((Number) check.get("total-clusters")).longValue()).isEqualTo(131072);
        assertThat(((Number) check.get("image-end-offset")).longValue()).isEqualTo(r.fileSize());
        try (Qcow2Image img = ChainOpener.openQcow2(p, ImageOptions.defaults()); Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(1 << 20);
            for (long at = 0; at < 64L << 20; at += 5L << 20) { // a sample: 13 MiB, through 26624 L2 lookups
                img.read(at, buf);
                assertFilled(buf, 0);
            }
            for (long guest = 0; guest < 64L << 20; guest += 7L << 20) {
                BlockStatus st = img.blockStatus(guest, 512);
                assertThat(st.allocated()).isTrue();
            }
        }
        Qemu.io(p, "write -P 0x5a 0 64k", "read -P 0x5a 0 64k", "write -P 0x77 63M 1M", "read -P 0x77 63M 1M");
        assertClean(p);
        assertThat(Files.size(p)).as("the writes went to preallocated clusters").isEqualTo(r.fileSize());
    }

    @Test
    void refusesWhatQemuRefusesWithItsMessages() {
        CreateOptions d = CreateOptions.defaults().toBuilder().size(1L << 20).build();
        assertRefused(d.toBuilder().clusterSize(1000).build(),
                "Cluster size must be a power of two between 512 and 2048k");
        assertRefused(d.toBuilder().clusterSize(256).build(),
                "Cluster size must be a power of two between 512 and 2048k");
        assertRefused(d.toBuilder().clusterSize(4 << 20).build(),
                "Cluster size must be a power of two between 512 and 2048k");
        assertRefused(d.toBuilder().refcountBits(3).build(),
                "Refcount width must be a power of two and may not exceed 64 bits");
        assertRefused(d.toBuilder().refcountBits(128).build(),
                "Refcount width must be a power of two and may not exceed 64 bits");
        assertRefused(d.toBuilder().refcountBits(0).build(),
                "Refcount width must be a power of two and may not exceed 64 bits");
        assertRefused(d.toBuilder().version(2).refcountBits(8).build(), "Different refcount widths than 16 bits"
                + " require compatibility level 1.1 or above (use version=v3 or greater)");
        assertRefused(d.toBuilder().version(2).extendedL2(true).build(), "Extended L2 entries are only supported"
                + " with compatibility level 1.1 and above (use version=v3 or greater)");
        assertRefused(d.toBuilder().extendedL2(true).clusterSize(8192).build(),
                "Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
        assertRefused(d.toBuilder().version(2).lazyRefcounts(true).build(), "Lazy refcounts only supported with"
                + " compatibility level 1.1 and above (use version=v3 or greater)");
        assertRefused(d.toBuilder().version(2).compressionType(CompressionType.ZSTD).build(), "Non-zlib compression"
                + " type is only supported with compatibility level 1.1 and above (use version=v3 or greater)");
        assertRefused(d.toBuilder().backingFormat("qcow2").build(),
                "Backing format cannot be used without backing file");
        assertRefused(d.toBuilder().backingFile("b.qcow2").backingFormat("qcow2").unsafe(true)
                .preallocation(CreateOptions.Preallocation.METADATA).build(),
                "Backing file and preallocation can only be used at the same time if extended_l2 is on");
        assertRefused(d.toBuilder().size(null).build(), "Image creation needs a size parameter");
        assertRefused(d.toBuilder().backingFile("b.qcow2").unsafe(true).build(),
                "Backing file specified without backing format");
        assertRefused(d.toBuilder().backingFile("b.qcow2").backingFormat("qcow2").unsafe(true).size(null).build(),
                "Image creation needs a size parameter");
        assertRefused(d.toBuilder().backingFile("b.vmdk").backingFormat("vmdk").unsafe(true).build(),
                "Backing format 'vmdk' is not supported by qcow2j (qcow2 or raw)");
        assertRefused(d.toBuilder().backingFile("").backingFormat("raw").unsafe(true).build(),
                "Expected backing file name, got empty string");
        assertRefused(d.toBuilder().backingFile(dir.resolve("x.qcow2").toString()).backingFormat("qcow2").build(),
                "Error: Trying to create an image with the same filename as the backing file");
        String longName = "n".repeat(1024);
        assertRefused(d.toBuilder().backingFile(longName).backingFormat("raw").unsafe(true).build(),
                "Could not assign backing file '" + longName + "' with format 'raw': Invalid argument (the name is"
                        + " longer than 1023 bytes)");
        String name400 = "n".repeat(400);
        assertRefused(d.toBuilder().clusterSize(512).backingFile(name400).backingFormat("qcow2").unsafe(true).build(),
                "Could not assign backing file '" + name400 + "' with format 'qcow2': No space left on device (376"
                        + " bytes left in the first cluster)");
        assertRefused(d.toBuilder().size(-1L).build(),
                "Invalid image size specified. Must be between 0 and 9223372036854775807.");
        assertRefused(d.toBuilder().size((2L << 50) + 512).build(), ImageCreator.TOO_LARGE);
        assertRefused(d.toBuilder().size(Long.MAX_VALUE).build(), ImageCreator.TOO_LARGE);
        assertRefused(d.toBuilder().clusterSize(512).size((128L << 30) + 512).build(), ImageCreator.TOO_LARGE);
        assertRefused(d.toBuilder().clusterSize(512).size(128L << 30)
                .preallocation(CreateOptions.Preallocation.METADATA).build(),
                "The image size is too large for preallocation=metadata with 512-byte clusters: its refcount table"
                        + " would exceed 8 MiB (try using a larger cluster size)");
    }

    void assertRefused(CreateOptions o, String message) {
        Path p = dir.resolve("x.qcow2");
        assertThatThrownBy(() -> ImageCreator.create(p, o)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage(message);
        assertThat(p).as("a refused image leaves no file").doesNotExist();
    }

    @Test
    void parsesQemuOptionSyntaxAndRefusesBadValuesWithQemuMessages() {
        CreateOptions d = CreateOptions.defaults();
        CreateOptions o = CreateOptions.parse("cluster_size=4k,compat=0.10,refcount_bits=0x10,lazy_refcounts=off,"
                + "extended_l2=no,compression_type=zlib,backing_file=a,,b.qcow2,backing_fmt=qcow2,"
                + "preallocation=metadata,size=1.5M", d);
        assertThat(o).isEqualTo(new CreateOptions(1572864L, 4096, 2, 16, false, false, CompressionType.ZLIB, "a,b.qcow2",
                "qcow2", CreateOptions.Preallocation.METADATA, false));
        assertThat(CreateOptions.parse("compat=v3,refcount_bits=016,lazy_refcounts=true,extended_l2=on,"
                + "compression_type=zstd", d)).isEqualTo(new CreateOptions(null, 65536, 3, 14, true, true,
                CompressionType.ZSTD, null, null, CreateOptions.Preallocation.OFF, false));
        assertThat(CreateOptions.parse("cluster_size=4k,cluster_size=8k", d).clusterSize()).isEqualTo(8192);
        assertThatThrownBy(() -> CreateOptions.parse("foo=bar", d)).hasMessage("Invalid parameter 'foo'");
        assertThatThrownBy(() -> CreateOptions.parse("cluster_size=abc", d)).hasMessage("Parameter 'cluster_size'"
                + " expects a non-negative number below 2^64 (optional suffix k, M, G, T, P or E means kilo-, mega-,"
                + " giga-, tera-, peta- and exabytes, respectively)");
        assertThatThrownBy(() -> CreateOptions.parse("refcount_bits=abc", d))
                .hasMessage("Parameter 'refcount_bits' expects a number");
        assertThatThrownBy(() -> CreateOptions.parse("refcount_bits=-16", d))
                .hasMessage("Parameter 'refcount_bits' expects a number");
        assertThatThrownBy(() -> CreateOptions.parse("lazy_refcounts=maybe", d))
                .hasMessage("Parameter 'lazy_refcounts' expects 'on' or 'off'");
        assertThatThrownBy(() -> CreateOptions.parse("compat=2", d))
                .hasMessage("Parameter 'version' does not accept value '2'");
        assertThatThrownBy(() -> CreateOptions.parse("compression_type=lz4", d))
                .hasMessage("Parameter 'compression-type' does not accept value 'lz4'");
        assertThatThrownBy(() -> CreateOptions.parse("preallocation=bogus", d))
                .hasMessage("Parameter 'preallocation' does not accept value 'bogus'");
        assertThat(CreateOptions.parse("preallocation=full", d).preallocation()).isEqualTo(CreateOptions.Preallocation.FULL);
        assertThat(CreateOptions.parse("preallocation=falloc", d).preallocation())
                .isEqualTo(CreateOptions.Preallocation.FALLOC);
    }

    @Test
    void theLargestImageQemuAllowsAndNoLarger() throws IOException {
        Path p = dir.resolve("max.qcow2");
        CreatedImage r = ImageCreator.create(p, CreateOptions.defaults().toBuilder().size(2L << 50).build());
        assertThat(r.l1Size()).isEqualTo(Qcow2Header.MAX_L1_BYTES / 8);
        assertClean(p);
        assertThat(((Number) Qemu.info(p).get("virtual-size")).longValue()).isEqualTo(2L << 50);
        Path small = dir.resolve("max512.qcow2");
        ImageCreator.create(small, CreateOptions.defaults().toBuilder().clusterSize(512).size(128L << 30).build());
        assertClean(small);
    }

    @Test
    void overwritesAnExistingFileAndRemovesNothingOnRefusal() throws IOException {
        Path p = dir.resolve("x.qcow2");
        Files.write(p, new byte[5 << 20]);
        ImageCreator.create(p, CreateOptions.defaults().toBuilder().size(1L << 30).build());
        Path q = Qemu.create(dir, "q.qcow2", "", "1G");
        assertSameFile(p, q);
        assertThatThrownBy(() -> ImageCreator.create(p, CreateOptions.defaults().toBuilder().size(1L << 30)
                .refcountBits(3).build())).isInstanceOf(IllegalArgumentException.class);
        assertSameFile(p, q);
    }

    @Test
    void backingFilesThatCannotBeOpenedAreOneLineErrors() throws IOException {
        Path p = dir.resolve("top.qcow2");
        CreateOptions b = CreateOptions.defaults().toBuilder().backingFile("missing.qcow2").backingFormat("qcow2").build();
        assertThatThrownBy(() -> ImageCreator.create(p, b)).isInstanceOf(IOException.class)
                .hasMessage("Could not open backing image '" + dir.resolve("missing.qcow2")
                        + "': No such file or directory");
        Files.write(dir.resolve("plain.raw"), new byte[4096]);
        CreateOptions notQcow2 = b.toBuilder().backingFile("plain.raw").build();
        assertThatThrownBy(() -> ImageCreator.create(p, notQcow2)).isInstanceOf(IOException.class)
                .hasMessageStartingWith("Could not open backing image '" + dir.resolve("plain.raw") + "': ")
                .hasMessageContaining("not a qcow2 image");
        CreateOptions noFormat = b.toBuilder().backingFile("plain.raw").backingFormat(null).build();
        assertThatThrownBy(() -> ImageCreator.create(p, noFormat)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("Backing file specified without backing format (detected format of raw)");
        assertThat(p).doesNotExist();
        // -u: the backing file is not opened, and the image names it all the same
        ImageCreator.create(p, b.toBuilder().unsafe(true).size(1L << 20).build());
        Qemu.create(dir, "q.qcow2", "backing_file=missing.qcow2,backing_fmt=qcow2", "1M", "-u");
        assertThat(info(p)).isEqualTo(info(dir.resolve("q.qcow2"))).containsEntry("backing-filename", "missing.qcow2");
        assertSameFile(p, dir.resolve("q.qcow2"));
        // a raw backing file's size is rounded up to whole sectors, as QEMU reports it
        Files.write(dir.resolve("odd.raw"), new byte[1000]);
        CreatedImage r = ImageCreator.create(p,
                b.toBuilder().backingFile("odd.raw").backingFormat("raw").build());
        assertThat(r.size()).isEqualTo(1024);
        assertThatThrownBy(() -> ImageCreator.create(dir.resolve("no/such/dir.qcow2"),
                CreateOptions.defaults().toBuilder().size(1L << 20).build())).isInstanceOf(IOException.class)
                .hasMessage("Could not create '" + dir.resolve("no/such/dir.qcow2") + "': No such file or directory");
    }

    @Test
    void aFailedWriteRemovesTheHalfWrittenFile() throws IOException {
        Path p = dir.resolve("x.qcow2");
        Files.write(p, new byte[4096]);
        // 132 writes: refcount table, refcount blocks, L1 table, 128 L2 tables, header
        CreateOptions o = CreateOptions.defaults().toBuilder().size(4L << 20).clusterSize(512)
                .preallocation(CreateOptions.Preallocation.METADATA).build();
        int[] writes = {0};
        UnaryOperator<PositionalFile> failing = f -> (PositionalFile) Proxy.newProxyInstance(
                PositionalFile.class.getClassLoader(), new Class<?>[] {PositionalFile.class}, (proxy, m, args) -> {
                    if (m.getName().equals("write") && ++writes[0] == 100) {
                        throw new IOException("pwrite: ENOSPC (No space left on device)");
                    }
                    try {
                        return m.invoke(f, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        assertThatThrownBy(() -> ImageCreator.create(p, o, failing)).isInstanceOf(IOException.class)
                .hasMessage("pwrite: ENOSPC (No space left on device)");
        assertThat(p).doesNotExist();
        // the header is written last: every write before it succeeded, and the count shows it was not reached
        int[] total = {0};
        ImageCreator.create(p, o, f -> (PositionalFile) Proxy.newProxyInstance(PositionalFile.class.getClassLoader(),
                new Class<?>[] {PositionalFile.class}, (proxy, m, args) -> {
                    if (m.getName().equals("write")) {
                        total[0]++;
                        if (((Long) args[0]) == 0) {
                            assertThat(((MemorySegment) args[1]).get(ValueLayout.JAVA_INT_UNALIGNED
                                    .withOrder(java.nio.ByteOrder.BIG_ENDIAN), 0)).isEqualTo(Qcow2Header.MAGIC);
                            assertThat(total[0]).as("the header is the last write").isGreaterThan(100);
                        }
                    }
                    try {
                        return m.invoke(f, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                }));
        assertClean(p);
    }

    // ------------------------------------------------------------------ helpers

    /** A 1 GiB qcow2 (its first and last MiB written) and a 3 MiB raw backing file, written with qemu-io. */
    void makeBackingFiles() {
        if (!Files.exists(dir.resolve("base.qcow2"))) {
            Qemu.create(dir, "base.qcow2", "", "1G");
            Qemu.io(dir.resolve("base.qcow2"), "write -P 0x33 0 1M", "write -P 0x33 1023M 1M");
            Qemu.run(dir, "qemu-img", "create", "-q", "-f", "raw", "base.raw", "3M");
            Qemu.run(dir, "qemu-io", "-f", "raw", "-c", "write -P 0x44 0 3M", "base.raw");
        }
    }

    static Map<String, Object> info(Path image) {
        Map<String, Object> m = Qemu.info(image);
        m.remove("filename");
        m.remove("actual-size");
        return m;
    }

    /** {@code qemu-img check}: exit 0 and nothing found; returns its JSON report. */
    static Map<String, Object> assertClean(Path image) {
        Map<String, Object> c = Json.object(Qemu.run(image.getParent(), "qemu-img", "check", "--output=json",
                image.getFileName().toString()));
        assertThat(c.get("check-errors")).hasToString("0");
        for (String k : List.of("corruptions", "leaks", "corruptions-fixed", "leaks-fixed")) {
            assertThat(c.get(k)).as(k).satisfiesAnyOf(v -> assertThat(v).isNull(), v -> assertThat(v).hasToString("0"));
        }
        return c;
    }

    /**
     * The two files have the same size and read the same. Only the data extents of either are read: what is
     * a hole in both reads as zeros in both (a sparse preallocated image need not be read whole).
     */
    static void assertSameFile(Path a, Path b) throws IOException {
        assertThat(Files.size(a)).as("file size").isEqualTo(Files.size(b));
        try (AlignedFile x = AlignedFile.open(a, IoMode.BUFFERED, StandardOpenOption.READ);
                AlignedFile y = AlignedFile.open(b, IoMode.BUFFERED, StandardOpenOption.READ)) {
            long size = x.size();
            java.util.TreeMap<Long, Long> extents = new java.util.TreeMap<>();
            for (AlignedFile f : List.of(x, y)) {
                for (long at = f.seekData(0); at >= 0 && at < size; at = f.seekData(at)) {
                    long end = f.seekHole(at);
                    end = end < 0 ? size : end;
                    extents.merge(at, end, Math::max);
                    at = end;
                    if (at >= size) {
                        break;
                    }
                }
            }
            byte[] bx = new byte[1 << 20];
            byte[] by = new byte[1 << 20];
            long done = 0; // extents may overlap: never compare a byte twice
            for (Map.Entry<Long, Long> e : extents.entrySet()) {
                for (long at = Math.max(e.getKey(), done); at < e.getValue(); at += bx.length) {
                    int n = (int) Math.min(bx.length, e.getValue() - at);
                    x.readFully(at, MemorySegment.ofArray(bx).asSlice(0, n));
                    y.readFully(at, MemorySegment.ofArray(by).asSlice(0, n));
                    int diff = Arrays.mismatch(bx, 0, n, by, 0, n);
                    assertThat(diff).as("first differing byte at offset %d", at + diff).isEqualTo(-1);
                }
                done = Math.max(done, e.getValue());
            }
        }
    }

    static void assertFilled(MemorySegment s, int value) {
        for (long i = 0; i < s.byteSize(); i++) {
            if ((s.get(ValueLayout.JAVA_BYTE, i) & 0xff) != value) {
                throw new AssertionError("byte " + i + " is " + (s.get(ValueLayout.JAVA_BYTE, i) & 0xff)
                        + ", expected " + value);
            }
        }
    }
}
