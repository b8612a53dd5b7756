package io.qcow2j.cli;

import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
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

/** {@code qcow2j map} against {@code qemu-img map}, line by line, human and JSON. */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MapCommandTest {
    @TempDir
    static Path dir;
    static Map<String, Path> images = new LinkedHashMap<>();

    @BeforeAll
    static void makeImages() throws Exception {
        images.putAll(TestImages.all(dir));
        images.put("1 TiB sparse", TestImages.sparse1T(dir));
    }

    static Stream<Arguments> images() {
        return images.entrySet().stream().map(e -> Arguments.of(e.getKey(), e.getValue()));
    }

    /** Runs both; they must agree on the exit status, stdout, and (apart from the program name) stderr. */
    static Qemu.Result same(Path cwd, String... args) {
        Qemu.Result ours = Cli.run(args);
        List<String> cmd = new ArrayList<>(List.of("qemu-img"));
        cmd.addAll(List.of(args));
        Qemu.Result qemu = Qemu.exec(cwd, cmd.toArray(String[]::new));
        assertThat(ours.out().lines().toList()).as("stdout of map " + String.join(" ", args))
                .containsExactlyElementsOf(qemu.out().lines().toList());
        assertThat(ours.out()).isEqualTo(qemu.out());
        assertThat(ours.exit()).as("exit status").isEqualTo(qemu.exit());
        assertThat(ours.err()).isEqualTo(qemu.err().replace("qemu-img: ", "qcow2j: "));
        return ours;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void jsonMatchesQemuImg(String name, Path image) {
        String out = same(dir, "map", "--output=json", image.toString()).out();
        List<Object> entries = Json.array(out);
        assertThat(entries).isNotEmpty();
        long end = 0;
        for (Object o : entries) {
            Map<?, ?> e = (Map<?, ?>) o;
            assertThat(e.get("start")).isEqualTo(end);
            end += (Long) e.get("length");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void humanMatchesQemuImg(String name, Path image) {
        same(dir, "map", image.toString());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("images")
    void rangesMatchQemuImg(String name, Path image) {
        for (String[] range : new String[][] {{"1000", "70000"}, {"1M", "3M"}, {"65536", "1"}, {"3k", "0"},
                {"5M", "1T"}, {"2T", "1k"}}) {
            same(dir, "map", "--output=json", "--start-offset=" + range[0], "--max-length=" + range[1], image.toString());
            same(dir, "map", "-s", range[0], "-l", range[1], image.toString());
        }
    }

    @Test
    void imagesHoldWhatTheyWereMadeFor() {
        // Against a silently empty comparison: the chain's map has all three depths, the prealloc one
        // data+zero extents, the 1 TiB image its last megabyte.
        String chain = Cli.ok("map", "--output=json", images.get("chain").toString());
        assertThat(chain).contains("\"depth\": 0", "\"depth\": 1", "\"depth\": 2");
        assertThat(Cli.ok("map", "--output=json", images.get("preallocation=metadata").toString()))
                .contains("\"present\": true, \"zero\": true, \"data\": true");
        assertThat(Cli.ok("map", "--output=json", images.get("1 TiB sparse").toString()))
                .contains("{ \"start\": 1099510579200, \"length\": 1048576, \"depth\": 0, \"present\": true,"
                        + " \"zero\": false, \"data\": true");
    }

    @Test
    void chainWithRelativeNamesAndImageOpts() {
        Path cwd = Path.of("").toAbsolutePath();
        String rel = cwd.relativize(images.get("chain")).toString();
        same(cwd, "map", rel);
        same(cwd, "map", "--output=json", rel);
        String opts = "driver=qcow2,file.filename=" + images.get("chain") + ",l2-cache-size=64k,l2-cache-entry-size=4k";
        same(dir, "map", "--image-opts", opts);
        same(dir, "map", "--output=json", "-f", "qcow2", "-U", images.get("chain").toString());
    }

    /**
     * QEMU looks at the image file for holes only when its metadata-preallocation heuristic says so (more
     * clusters in use than about 10/9 of those allocated): a hole punched into a data cluster shows as zero
     * on a small image with a snapshot (metadata clusters are mostly holes) and not on one with 2 MiB of data.
     */
    @Test
    void holesPunchedIntoDataClustersFollowQemusHeuristic() throws Exception {
        Path small = Qemu.create(dir, "punched-small.qcow2", null, "4M");
        Qemu.io(small, "write -P 1 0 128k");
        Qemu.img(dir, "snapshot", "-c", "s", small.getFileName().toString());
        Qemu.io(small, "write -P 2 64k 64k");
        Path large = Qemu.create(dir, "punched-large.qcow2", null, "16M");
        Qemu.io(large, "write -P 1 0 2M");
        for (Path p : List.of(small, large)) {
            long host = (Long) ((Map<?, ?>) Json.array(Qemu.img(dir, "map", "--output=json", p.toString())).get(0))
                    .get("offset");
            try (AlignedFile f = AlignedFile.open(p, IoMode.BUFFERED, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                f.punchHole(host + 4096, 4096);
            }
            same(dir, "map", "--output=json", p.toString());
            same(dir, "map", p.toString());
        }
        assertThat(Cli.ok("map", "--output=json", small.toString()))
                .contains("\"length\": 4096, \"depth\": 0, \"present\": true, \"zero\": true, \"data\": true");
        assertThat(Cli.ok("map", "--output=json", large.toString())).doesNotContain("\"zero\": true, \"data\": true");
    }

    @Test
    void compressedClustersInHumanFormFailLikeQemuImg() {
        Qemu.Result r = same(dir, "map", images.get("zstd").toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("qcow2j: " + MapCommand.COMPRESSED_ERROR + "\n");
    }

    @Test
    void cacheStatsGoToStderrAfterTheMap() {
        String img = images.get("chain").toString();
        Qemu.Result r = Cli.run("map", "--cache-stats", "--image-opts",
                "driver=qcow2,file.filename=" + img + ",l2-cache-entry-size=4k");
        assertThat(r.exit()).isZero();
        assertThat(r.out()).isEqualTo(Qemu.img(dir, "map", img));
        List<String> err = r.err().lines().toList();
        assertThat(err).hasSize(6);
        assertThat(err.get(0)).isEqualTo("cache statistics of " + img + " (depth 0):");
        assertThat(err.get(1)).matches("  L2 cache: +\\d+ entries of 4096 bytes; hits \\d+, misses [1-9]\\d*, loads [1-9]\\d*,"
                + " evictions \\d+, probes per lookup \\d+\\.\\d\\d");
        assertThat(err.get(2)).matches("  refcount cache: +4 entries of 65536 bytes; hits \\d+, misses \\d+, loads \\d+,"
                + " evictions \\d+, probes per lookup \\d+\\.\\d\\d");
        assertThat(err.get(3)).isEqualTo("cache statistics of " + dir.resolve("mid.qcow2") + " (depth 1):");
    }
}
