package io.qcow2j.cli;

import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** {@code qcow2j info} against {@code qemu-img info}, human and JSON, on images made by qemu. */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class InfoCommandTest {
    @TempDir
    static Path dir;
    static Map<String, Path> images = new LinkedHashMap<>();

    @BeforeAll
    static void makeImages() throws Exception {
        images.putAll(TestImages.all(dir));
        images.put("1 TiB sparse", TestImages.sparse1T(dir));
        images.put("bitmaps", TestImages.bitmaps(dir));
        images.put("dirty lazy refcounts 64-bit refcounts", TestImages.dirty(dir));
        images.put("corrupt 1-bit refcounts", TestImages.corrupt(dir));
    }

    static Stream<Arguments> images() {
        return images.entrySet().stream().map(e -> Arguments.of(e.getKey(), e.getValue()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void humanMatchesQemuImg(String name, Path image) {
        Compare.infoHuman(Cli.ok("info", image.toString()), Qemu.img(dir, "info", image.toString()));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void jsonMatchesQemuImg(String name, Path image) {
        Compare.infoJson(Cli.ok("info", "--output=json", image.toString()),
                Qemu.img(dir, "info", "--output=json", image.toString()));
    }

    @Test
    void showsWhatTheImagesHold() {
        // Guards against comparing two empty outputs: the facts the images were made to have are there.
        Map<String, Object> snap = Json.object(Cli.ok("info", "--output=json", images.get("snapshots").toString()));
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> list = (List<Map<String, Object>>) snap.get("snapshots");
        assertThat(list).extracting(m -> m.get("name")).containsExactly("second snapshot", "a rather long snapshot name");
        assertThat(list).extracting(m -> m.get("id")).containsExactly("2", "3");
        String zstd = Cli.ok("info", images.get("zstd").toString());
        assertThat(zstd).contains("    compression type: zstd\n");
        assertThat(Cli.ok("info", images.get("compat 0.10").toString())).contains("    compat: 0.10\n")
                .doesNotContain("lazy refcounts");
        assertThat(Cli.ok("info", images.get("extended L2").toString())).contains("    extended l2: true\n");
        assertThat(Cli.ok("info", images.get("dirty lazy refcounts 64-bit refcounts").toString()))
                .contains("cleanly shut down: no\n", "    refcount bits: 64\n", "    lazy refcounts: true\n");
        assertThat(Cli.ok("info", images.get("corrupt 1-bit refcounts").toString()))
                .contains("    corrupt: true\n", "    refcount bits: 1\n");
        assertThat(Cli.ok("info", images.get("bitmaps").toString()))
                .contains("    bitmaps:\n        [0]:\n            flags:\n                [0]: auto\n"
                        + "            name: b0\n            granularity: 65536\n");
        assertThat(Cli.ok("info", images.get("1 TiB sparse").toString()))
                .contains("virtual size: 1 TiB (1099511627776 bytes)\n");
    }

    @Test
    void backingChainHumanAndJson() {
        String top = images.get("chain").toString();
        Compare.infoHuman(Cli.ok("info", "--backing-chain", top), Qemu.img(dir, "info", "--backing-chain", top));
        String ours = Cli.ok("info", "--backing-chain", "--output=json", top);
        Compare.infoJson(ours, Qemu.img(dir, "info", "--backing-chain", "--output=json", top));
        List<Object> chain = Json.array(ours);
        assertThat(chain).hasSize(3);
        assertThat(chain.stream().map(o -> (Object) ((Map<?, ?>) o).get("format")).toList())
                .containsExactly("qcow2", "qcow2", "raw");
        assertThat(((Map<?, ?>) chain.get(0)).get("full-backing-filename")).isEqualTo(dir.resolve("mid.qcow2").toString());
    }

    @Test
    void relativeNamesAreCombinedAsQemuDoes() {
        // A name relative to the working directory: backing names are relative to its folder part.
        Path cwd = Path.of("").toAbsolutePath();
        String rel = cwd.relativize(images.get("chain")).toString();
        assertThat(rel).contains("/");
        Compare.infoHuman(Cli.ok("info", "--backing-chain", rel), Qemu.img(cwd, "info", "--backing-chain", rel));
        Compare.infoJson(Cli.ok("info", "--output=json", rel), Qemu.img(cwd, "info", "--output=json", rel));
    }

    @Test
    void imageOptsForceShareAndFormat() {
        String img = images.get("cluster 64k").toString();
        String opts = "driver=qcow2,file.filename=" + img + ",l2-cache-size=1M";
        Compare.infoJson(Cli.ok("info", "--output=json", "--image-opts", opts),
                Qemu.img(dir, "info", "--output=json", "--image-opts", opts));
        Compare.infoHuman(Cli.ok("info", "-U", "-f", "qcow2", img), Qemu.img(dir, "info", "-U", "-f", "qcow2", img));
    }

    @Test
    void infoDoesNotNeedTheBackingFile() {
        Qemu.img(dir, "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", "orphan.qcow2", "1M");
        String orphan = dir.resolve("orphan.qcow2").toString();
        Compare.infoHuman(Cli.ok("info", orphan), Qemu.img(dir, "info", orphan));
        Qemu.Result r = Cli.run("info", "--backing-chain", orphan);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("qcow2j: Could not open '" + dir.resolve("gone.qcow2")
                + "': No such file or directory\n");
    }
}
