package io.qcow2j.engine.format;

import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Parses images made by qemu-img and compares every field with what {@code qemu-img info} reports. */
class HeaderTest {
    @TempDir
    Path dir;

    static Stream<Arguments> images() {
        return Stream.of(
                Arguments.of("cluster_size=512", "1G"),
                Arguments.of("cluster_size=4096", "1G"),
                Arguments.of("cluster_size=65536", "1G"),
                Arguments.of("cluster_size=2M", "1G"),
                Arguments.of("compat=0.10", "100M"),
                Arguments.of("compat=0.10,cluster_size=4096", "10G"),
                Arguments.of("compat=1.1", "100M"),
                Arguments.of("refcount_bits=1", "1G"),
                Arguments.of("refcount_bits=2", "1G"),
                Arguments.of("refcount_bits=4", "1G"),
                Arguments.of("refcount_bits=8", "1G"),
                Arguments.of("refcount_bits=16", "1G"),
                Arguments.of("refcount_bits=32", "1G"),
                Arguments.of("refcount_bits=64", "1G"),
                Arguments.of("refcount_bits=64,cluster_size=512", "1G"),
                Arguments.of("extended_l2=on", "1G"),
                Arguments.of("extended_l2=on,cluster_size=16k", "1G"),
                Arguments.of("extended_l2=on,cluster_size=2M", "100G"),
                Arguments.of("compression_type=zstd", "1G"),
                Arguments.of("lazy_refcounts=on", "1G"),
                Arguments.of("cluster_size=65536", "0"),
                Arguments.of("cluster_size=65536", "1000000512"),
                Arguments.of("cluster_size=2M", "16T"),
                Arguments.of("preallocation=metadata,cluster_size=4096", "16M"));
    }

    @ParameterizedTest(name = "{0} size {1}")
    @MethodSource("images")
    void matchesQemuImgInfo(String options, String size) throws IOException {
        Path image = Qemu.create(dir, "img.qcow2", options, size);
        Qcow2Header h = readBothWays(image);
        assertMatchesInfo(h, Qemu.info(image));
    }

    @Test
    void writtenImageWithData() throws IOException {
        Path image = Qemu.create(dir, "img.qcow2", "cluster_size=4096", "64M");
        Qemu.io(image, "write -P 0xab 0 64k", "write -P 0xcd 32M 1M");
        Qcow2Header h = readBothWays(image);
        assertMatchesInfo(h, Qemu.info(image));
        assertThat(h.isDirty()).isFalse();
    }

    @Test
    void backingFileWithFormat() throws IOException {
        Qemu.create(dir, "base.qcow2", "cluster_size=65536", "1G");
        Path image = Qemu.create(dir, "over.qcow2", null, null, "-b", "base.qcow2", "-F", "qcow2");
        Qcow2Header h = readBothWays(image);
        Map<String, Object> info = Qemu.info(image);
        assertMatchesInfo(h, info);
        assertThat(h.backingFileName()).contains("base.qcow2");
        assertThat(h.extensions().backingFormat()).contains("qcow2");
        assertThat(h.backingFileOffset()).isGreaterThanOrEqualTo(h.headerLength());
        // qemu-img writes a feature name table naming every feature it knows.
        assertThat(h.extensions().featureName(FeatureName.Type.INCOMPATIBLE, 1)).contains("corrupt bit");
        assertThat(h.extensions().featureName(FeatureName.Type.COMPATIBLE, 0)).contains("lazy refcounts");
        assertThat(h.extensions().featureName(FeatureName.Type.AUTOCLEAR, 0)).contains("bitmaps");
    }

    @Test
    void rawBackingFileVersion2() throws IOException {
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "raw", "base.raw", "10M");
        Path image = Qemu.create(dir, "over.qcow2", "compat=0.10", null, "-b", "base.raw", "-F", "raw");
        Qcow2Header h = readBothWays(image);
        assertMatchesInfo(h, Qemu.info(image));
        assertThat(h.version()).isEqualTo(2);
        assertThat(h.backingFileName()).contains("base.raw");
        assertThat(h.extensions().backingFormat()).contains("raw");
    }

    @Test
    void externalDataFile() throws IOException {
        Path image = Qemu.create(dir, "img.qcow2", "data_file=img.raw,data_file_raw=on", "1G");
        Qcow2Header h = readBothWays(image);
        Map<String, Object> info = Qemu.info(image);
        assertMatchesInfo(h, info);
        assertThat(h.hasExternalDataFile()).isTrue();
        assertThat(h.dataFileRaw()).isTrue();
        assertThat(h.geometry().externalDataFile()).isTrue();
        assertThat(h.extensions().externalDataFile()).contains(
                (String) Json.at(info, "format-specific", "data", "data-file"));
    }

    @Test
    void persistentBitmap() throws IOException {
        Path image = Qemu.create(dir, "img.qcow2", null, "1G");
        Qemu.run(dir, "qemu-img", "bitmap", "--add", "img.qcow2", "b0");
        Qemu.run(dir, "qemu-img", "bitmap", "--add", "img.qcow2", "b1");
        Qcow2Header h = readBothWays(image);
        Map<String, Object> info = Qemu.info(image);
        assertMatchesInfo(h, info);
        List<?> bitmaps = (List<?>) Json.at(info, "format-specific", "data", "bitmaps");
        assertThat(h.bitmapsConsistent()).isTrue();
        assertThat(h.extensions().bitmaps()).hasValueSatisfying(b -> {
            assertThat(b.consistent()).isTrue();
            assertThat(b.count()).isEqualTo(bitmaps.size());
            assertThat(b.directoryOffset() % h.clusterSize()).isZero();
            assertThat(b.directorySize()).isPositive();
        });
    }

    @Test
    void internalSnapshotCountsInHeader() throws IOException {
        Path image = Qemu.create(dir, "img.qcow2", null, "1G");
        Qemu.io(image, "write -P 0xab 0 64k");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "snap1", "img.qcow2");
        Qcow2Header h = readBothWays(image);
        assertMatchesInfo(h, Qemu.info(image));
        assertThat(h.nbSnapshots()).isEqualTo(1);
        assertThat(h.snapshotsOffset()).isPositive();
    }

    /** Reads through {@link AlignedFile} (buffered and direct) and parses the bytes directly; all must agree. */
    private static Qcow2Header readBothWays(Path image) throws IOException {
        Qcow2Header fromFile;
        try (AlignedFile f = AlignedFile.open(image, IoMode.BUFFERED)) {
            fromFile = Qcow2Header.read(f);
        }
        try (AlignedFile f = AlignedFile.open(image, IoMode.DIRECT_OR_BUFFERED)) {
            assertThat(Qcow2Header.read(f)).hasToString(fromFile.toString());
        }
        byte[] bytes = Files.readAllBytes(image);
        Qcow2Header parsed = Qcow2Header.parse(bytes, bytes.length);
        assertThat(parsed).hasToString(fromFile.toString());
        assertThat(parsed.extensions()).hasToString(fromFile.extensions().toString());
        return fromFile;
    }

    static void assertMatchesInfo(Qcow2Header h, Map<String, Object> info) {
        @SuppressWarnings("unchecked")
        Map<String, Object> data = (Map<String, Object>) Json.at(info, "format-specific", "data");
        assertThat(info.get("format")).isEqualTo("qcow2");
        assertThat(h.clusterSize()).isEqualTo(((Long) info.get("cluster-size")).intValue());
        assertThat(h.virtualSize()).isEqualTo(info.get("virtual-size"));
        assertThat(h.version()).isEqualTo(data.get("compat").equals("0.10") ? 2 : 3);
        assertThat((long) h.refcountBits()).isEqualTo(data.get("refcount-bits"));
        assertThat(h.compressionType().qemuName()).isEqualTo(data.get("compression-type"));
        assertThat(h.hasExtendedL2()).isEqualTo(data.getOrDefault("extended-l2", false));
        assertThat(h.lazyRefcounts()).isEqualTo(data.getOrDefault("lazy-refcounts", false));
        assertThat(h.isCorrupt()).isEqualTo(data.getOrDefault("corrupt", false));
        assertThat(h.isDirty()).isEqualTo(info.getOrDefault("dirty-flag", false));
        assertThat(h.dataFileRaw()).isEqualTo(data.getOrDefault("data-file-raw", false));
        assertThat(h.extensions().externalDataFile().orElse(null)).isEqualTo(data.get("data-file"));
        assertThat(h.backingFileName().orElse(null)).isEqualTo(info.get("backing-filename"));
        assertThat(h.extensions().backingFormat().orElse(null)).isEqualTo(info.get("backing-filename-format"));
        List<?> snapshots = (List<?>) info.get("snapshots");
        assertThat(h.nbSnapshots()).isEqualTo(snapshots == null ? 0 : snapshots.size());

        Geometry g = h.geometry();
        assertThat(g.clusterSize()).isEqualTo(h.clusterSize());
        assertThat(g.l2Entries()).isEqualTo(h.clusterSize() / (h.hasExtendedL2() ? 16 : 8));
        assertThat(g.subclustersPerCluster()).isEqualTo(h.hasExtendedL2() ? 32 : 1);
        assertThat(g.refcountBlockEntries()).isEqualTo(h.clusterSize() * 8 / h.refcountBits());
        assertThat(h.l1Size()).isGreaterThanOrEqualTo(g.l1EntriesFor(h.size()));
        assertThat(h.headerLength()).isEqualTo(h.version() == 2 ? 72 : 112);
        assertThat(h.cryptMethod()).isZero();
    }
}
