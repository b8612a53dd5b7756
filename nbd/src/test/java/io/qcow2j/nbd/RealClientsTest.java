package io.qcow2j.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The export used by real NBD clients: qemu-io, qemu-img (convert, map), libnbd's nbdinfo and nbdcopy, and
 * fio's nbd engine. Every test checks the image with qemu-img afterwards.
 */
@Timeout(120)
class RealClientsTest {
    @TempDir
    Path dir;

    private String[] qemuIo(String uri, String... commands) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
        for (String c : commands) {
            cmd.add("-c");
            cmd.add(c);
        }
        cmd.add(uri);
        return cmd.toArray(String[]::new);
    }

    private static void assertNoFailure(String output) {
        assertThat(output).doesNotContainIgnoringCase("fail").doesNotContainIgnoringCase("error");
    }

    @Test
    void qemuIoWritesAndVerifiesPatternsThroughTheExport() throws Exception {
        Path img = Qemu.create(dir, "a.qcow2", null, "64M");
        try (Served s = Served.start(img, 1)) {
            String out = Qemu.run(dir, qemuIo(s.uri(), "write -P 0xab 0 1M", "write -P 0xcd 10M 64k",
                    "aio_write -P 0x11 20M 64k", "aio_write -P 0x22 21M 64k", "aio_flush",
                    "write -z 30M 1M", "write -P 0x33 -f 40M 4k", "discard 40M 64k",
                    "read -P 0xab 0 1M", "read -P 0 1M 1M", "read -P 0x11 20M 64k", "read -P 0x22 21M 64k",
                    "read -P 0 30M 1M", "flush"));
            assertNoFailure(out);
            assertThat(Qemu.exec(dir, qemuIo(s.uri(), "read -P 0x55 0 4k")).output())
                    .as("a wrong pattern is noticed").contains("Pattern verification failed");
        }
        Qemu.requireClean(img, "after serving");
        assertNoFailure(Qemu.run(dir, "qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 1M", "-c",
                "read -P 0xcd 10M 64k", "-c", "read -P 0x22 21M 64k", "-c", "read -P 0 30M 1M", img.toString()));
    }

    @Test
    void qemuImgConvertFromTheExportEqualsTheImage() throws Exception {
        Path img = Qemu.create(dir, "b.qcow2", "cluster_size=4096", "16M");
        Qemu.io(img, "write -P 0x5a 0 100k", "write -P 0x6b 8M 3M", "write -z 12M 1M");
        Path out = dir.resolve("out.raw");
        try (Served s = Served.start(img, 1, true, false, Served.address())) {
            Qemu.img(dir, "convert", "-f", "raw", "-O", "raw", s.uri(), out.toString());
        }
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img.toString(), out.toString())
                .exit()).isZero();
        Qemu.io(img, "write -P 0x01 0 1");
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img.toString(), out.toString())
                .exit()).as("compare notices a difference").isEqualTo(1);
    }

    /** qemu-img map's (data, zero) runs, merged: what base:allocation can show. */
    private static List<String> runs(String json) {
        List<String> runs = new ArrayList<>();
        long start = -1;
        long end = 0;
        String kind = null;
        for (Object o : Json.array(json)) {
            @SuppressWarnings("unchecked")
            Map<String, Object> m = (Map<String, Object>) o;
            String k = "data=" + m.get("data") + ",zero=" + m.get("zero");
            long st = ((Number) m.get("start")).longValue();
            long len = ((Number) m.get("length")).longValue();
            if (k.equals(kind) && st == end) {
                end += len;
                continue;
            }
            if (kind != null) {
                runs.add(start + "+" + (end - start) + ":" + kind);
            }
            kind = k;
            start = st;
            end = st + len;
        }
        runs.add(start + "+" + (end - start) + ":" + kind);
        return runs;
    }

    @Test
    void qemuImgMapOverNbdShowsTheImagesBlockStatus() throws Exception {
        Path img = Qemu.create(dir, "c.qcow2", null, "8M");
        Qemu.io(img, "write -P 1 0 64k", "write -z 1M 128k", "write -P 2 4M 192k");
        String local = Qemu.img(dir, "map", "--output=json", img.toString());
        try (Served s = Served.start(img, 1)) {
            String remote = Qemu.img(dir, "map", "--output=json", "-f", "raw", s.uri());
            assertThat(runs(remote)).isEqualTo(runs(local)).hasSizeGreaterThan(3);
        }
    }

    @Test
    void nbdinfoListsAndDescribesTheExportAndItsMap() throws Exception {
        Path img = Qemu.create(dir, "d.qcow2", null, "4M");
        Qemu.io(img, "write -P 1 1M 64k");
        try (Served s = Served.start(img, 1)) {
            String list = Qemu.run(dir, "nbdinfo", "--list", s.uri());
            assertThat(list).contains("export=\"\"", "description: a test export", "export-size: 4194304");
            String info = Qemu.run(dir, "nbdinfo", s.uri());
            assertThat(info).contains("export-size: 4194304", "can_flush: true", "can_fua: true",
                    "can_trim: true", "can_zero: true", "can_fast_zero: true", "can_cache: true",
                    "can_df: true", "can_multi_conn: false", "is_read_only: false", "base:allocation",
                    "qemu:allocation-depth", "block_size_preferred: 4096");
            String map = Qemu.run(dir, "nbdinfo", "--map", s.uri());
            assertThat(map.strip().lines().map(String::strip).toList()).containsExactly(
                    "0     1048576    3  hole,zero",
                    "1048576       65536    0  data",
                    "1114112     3080192    3  hole,zero");
            String depth = Qemu.run(dir, "nbdinfo", "--map=qemu:allocation-depth", s.uri());
            assertThat(depth).contains("1048576       65536    1  local");
        }
        Qemu.requireClean(img, "after nbdinfo");
    }

    @Test
    void nbdcopyCopiesTheExportBothWays() throws Exception {
        Path img = Qemu.create(dir, "e.qcow2", null, "32M");
        Qemu.io(img, "write -P 0x77 0 3M", "write -P 0x78 20M 5M");
        Path out = dir.resolve("copy.raw");
        try (Served s = Served.start(img, 4)) {
            Qemu.run(dir, "nbdcopy", s.uri(), out.toString());
        }
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img.toString(), out.toString())
                .exit()).isZero();
        Path target = Qemu.create(dir, "f.qcow2", null, "32M");
        try (Served s = Served.start(target, 4)) {
            Qemu.run(dir, "nbdcopy", out.toString(), s.uri());
        }
        Qemu.requireClean(target, "after nbdcopy");
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", img.toString(),
                target.toString()).exit()).isZero();
    }

    @Test
    void fioNbdJobVerifiesWhatItWrote() throws Exception {
        Path img = Qemu.create(dir, "g.qcow2", null, "16M");
        try (Served s = Served.start(img, 1)) {
            String out = Qemu.run(dir, "fio", "--name=verify", "--ioengine=nbd", "--uri=" + s.uri(),
                    "--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=16M", "--io_size=4M", "--verify=crc32c",
                    "--do_verify=1", "--randrepeat=1", "--output-format=terse");
            assertThat(out).isNotBlank();
        }
        Qemu.requireClean(img, "after fio");
    }
}
