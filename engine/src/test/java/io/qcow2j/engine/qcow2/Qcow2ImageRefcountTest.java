package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Refcount lookups through the refcount cache, QEMU's metadata-preallocation detection and the image file's
 * block status, on images qemu made (host offsets from {@code qemu-img map}).
 */
class Qcow2ImageRefcountTest {
    @TempDir
    Path dir;

    /** The host offset qemu-img map gives for the guest offset {@code guest} (which must be data). */
    private long hostOffset(Path image, long guest) {
        String map = Qemu.run(dir, "qemu-img", "map", "--output=json", image.getFileName().toString());
        Matcher m = Pattern.compile("\"start\": (\\d+), \"length\": (\\d+),[^}]*\"data\": true, \"offset\": (\\d+)")
                .matcher(map);
        while (m.find()) {
            long start = Long.parseLong(m.group(1));
            if (guest >= start && guest < start + Long.parseLong(m.group(2))) {
                return Long.parseLong(m.group(3)) + guest - start;
            }
        }
        throw new AssertionError("no data at " + guest + " in " + map);
    }

    @ParameterizedTest(name = "refcount_bits={0}")
    @ValueSource(ints = {2, 4, 16, 64}) // 1-bit refcounts cannot count a snapshot's share
    void refcountsOfSharedAndCopiedClusters(int bits) throws IOException {
        Path p = Qemu.create(dir, "r.qcow2", "refcount_bits=" + bits, "4M");
        Qemu.io(p, "write -P 1 0 128k");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "s", "r.qcow2");
        Qemu.io(p, "write -P 2 64k 64k");
        long shared = hostOffset(p, 0);
        long copied = hostOffset(p, 65536);
        try (Qcow2Image img = ChainOpener.openQcow2(p, ImageOptions.defaults())) {
            int cb = img.header().clusterBits();
            assertThat(img.refcount(0)).as("header").isEqualTo(1);
            assertThat(img.refcount(shared >>> cb)).as("shared with the snapshot").isEqualTo(2);
            assertThat(img.refcount(copied >>> cb)).as("copied after the snapshot").isEqualTo(1);
            assertThat(img.refcount((img.fileSize() >>> cb) + 10)).as("past the file").isZero();
            assertThat(img.refcount(1L << 40)).as("past the refcount table").isZero();
            assertThat(img.refcountCacheStatistics().loads()).isPositive();
        }
    }

    @Test
    void detectsMetadataPreallocationAndHolesInTheFile() throws IOException {
        Path p = Qemu.create(dir, "pre.qcow2", "preallocation=metadata", "8M");
        Qemu.io(p, "write -P 1 1M 64k");
        long written = hostOffset(p, 1 << 20);
        long hole = hostOffset(p, 4 << 20);
        try (Qcow2Image img = ChainOpener.openQcow2(p, ImageOptions.defaults())) {
            assertThat(img.metadataPreallocated()).isTrue();
            BlockStatus data = img.fileStatus(written, 65536);
            assertThat(data.data()).isTrue();
            assertThat(data.zero()).isFalse();
            assertThat(data.length()).isEqualTo(65536);
            BlockStatus zero = img.fileStatus(hole, 65536);
            assertThat(zero.zero()).isTrue();
            assertThat(zero.data()).isFalse();
            assertThat(zero.length()).isEqualTo(65536);
            BlockStatus eof = img.fileStatus(img.fileSize(), 4096);
            assertThat(eof.length()).isZero();
            assertThat(eof.zero()).isTrue();
        }
        // 37 clusters in use, 36 allocated in the file (metadata clusters are partly holes): under QEMU's
        // threshold of max(36 * 10 / 9, 36 + 2) = 40.
        Path plain = Qemu.create(dir, "plain.qcow2", null, "8M");
        Qemu.io(plain, "write -P 1 0 2M");
        try (Qcow2Image img = ChainOpener.openQcow2(plain, ImageOptions.defaults())) {
            assertThat(img.metadataPreallocated()).isFalse();
        }
    }
}
