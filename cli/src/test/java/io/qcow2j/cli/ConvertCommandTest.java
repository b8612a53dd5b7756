package io.qcow2j.cli;

import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@code qcow2j convert -O raw} against {@code qemu-img convert -O raw}: same bytes, similar holes. */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ConvertCommandTest {
    @TempDir
    static Path dir;
    static Map<String, Path> images = new LinkedHashMap<>();

    @BeforeAll
    static void makeImages() throws Exception {
        images.putAll(TestImages.all(dir));
    }

    static Stream<Arguments> images() {
        return images.entrySet().stream().map(e -> Arguments.of(e.getKey(), e.getValue()));
    }

    static long allocated(Path p) throws IOException {
        try (AlignedFile f = AlignedFile.open(p, IoMode.BUFFERED, StandardOpenOption.READ)) {
            return f.stat().allocatedBytes();
        }
    }

    /** Converts with both and compares size, content and allocation; returns our file. */
    static Path convertBoth(Path image, String tag, String... extra) throws IOException {
        Path ours = dir.resolve(image.getFileName() + "." + tag + ".qcow2j.raw");
        Path qemu = dir.resolve(image.getFileName() + "." + tag + ".qemu.raw");
        String[] args = new String[extra.length + 5];
        args[0] = "convert";
        System.arraycopy(extra, 0, args, 1, extra.length);
        args[extra.length + 1] = "-O";
        args[extra.length + 2] = "raw";
        args[extra.length + 3] = image.toString();
        args[extra.length + 4] = ours.toString();
        Qemu.Result r = Cli.run(args);
        assertThat(r.err()).isEmpty();
        assertThat(r.out()).isEmpty();
        assertThat(r.exit()).isZero();
        args[0] = "convert";
        args[extra.length + 4] = qemu.toString();
        String[] q = new String[args.length + 1];
        q[0] = "qemu-img";
        System.arraycopy(args, 0, q, 1, args.length);
        Qemu.run(dir, q);
        assertThat(Files.size(ours)).isEqualTo(Files.size(qemu));
        assertThat(Files.mismatch(ours, qemu)).as("first differing byte").isEqualTo(-1L);
        Compare.assertClose(allocated(ours), allocated(qemu), "allocated bytes of the raw file");
        return ours;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void sameBytesAsQemuImg(String name, Path image) throws IOException {
        Path ours = convertBoth(image, "plain");
        assertThat(Files.size(ours)).isEqualTo(Json.object(Qemu.img(dir, "info", "--output=json", image.toString()))
                .get("virtual-size"));
    }

    @Test
    void zeroDataBecomesHoles() throws IOException {
        // 4 MiB of data, then 4 MiB written as explicit zero *data* (not zero clusters): a hole in the output.
        Path p = Qemu.create(dir, "zerodata.qcow2", null, "8M");
        Qemu.io(p, "write -P 0x77 0 4M", "write -P 0 4M 4M", "write -P 0x78 6M 4k");
        Path ours = convertBoth(p, "zerodata");
        assertThat(allocated(ours)).isBetween(4L << 20, (4L << 20) + (256 << 10));
    }

    @Test
    void cacheModesPreallocationAndImageOpts() throws IOException {
        Path chain = images.get("chain");
        convertBoth(chain, "writethrough", "-t", "writethrough");
        convertBoth(chain, "writeback", "-t", "writeback", "-T", "none");
        convertBoth(chain, "falloc", "-o", "preallocation=falloc");
        convertBoth(images.get("cluster 2M"), "full", "-o", "preallocation=full,size=1G");
        Path opts = dir.resolve("imageopts.raw");
        assertThat(Cli.run("convert", "-U", "-f", "qcow2", "-O", "raw", "--image-opts",
                "driver=qcow2,file.filename=" + images.get("zstd") + ",cache-size=256k", opts.toString()).exit()).isZero();
        Qemu.run(dir, "qemu-img", "convert", "-O", "raw", images.get("zstd").toString(), dir.resolve("zstd.raw").toString());
        assertThat(Files.mismatch(opts, dir.resolve("zstd.raw"))).isEqualTo(-1L);
    }

    @Test
    void overwritesAnExistingFileAndDefaultsToRaw() throws IOException {
        Path dst = dir.resolve("existing.raw");
        Files.write(dst, new byte[10 << 20]);
        Files.write(dst, new byte[] {1, 2, 3}, StandardOpenOption.APPEND);
        Qemu.Result r = Cli.run("convert", "-p", images.get("cluster 512").toString(), dst.toString());
        assertThat(r.exit()).isZero();
        assertThat(r.out()).as("no progress when not on a terminal").isEmpty();
        Path qemu = dir.resolve("c512-default.raw");
        Qemu.run(dir, "qemu-img", "convert", images.get("cluster 512").toString(), qemu.toString());
        assertThat(Files.mismatch(dst, qemu)).isEqualTo(-1L);
    }

    @Test
    void progressLooksLikeQemuImgs() {
        StringWriter sw = new StringWriter();
        Progress p = new Progress(new PrintWriter(sw), true);
        p.set(0);
        p.set(0.5f);
        p.set(42);
        p.set(42.5f);
        p.set(100);
        p.end();
        assertThat(sw.toString()).isEqualTo("    (0.00/100%)\r    (42.00/100%)\r    (100.00/100%)\r\n");
        StringWriter off = new StringWriter();
        Progress q = new Progress(new PrintWriter(off), false);
        q.set(50);
        q.end();
        assertThat(off.toString()).isEmpty();
    }

    @Test
    void optionHelp() {
        Qemu.Result r = Cli.run("convert", "-O", "raw", "-o", "help", images.get("zstd").toString(),
                dir.resolve("never.raw").toString());
        assertThat(r.exit()).isZero();
        assertThat(r.out()).startsWith("Supported raw options:\n").contains("size=<size>");
        assertThat(dir.resolve("never.raw")).doesNotExist();
    }
}
