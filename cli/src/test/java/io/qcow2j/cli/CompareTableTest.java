package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code qcow2j compare [-s]} against {@code qemu-img compare [-s]} over a table of image pairs made by
 * qemu-img and qemu-io (allocated zeros, zero clusters and holes; sizes that differ; cluster sizes that
 * split extents differently; extended L2, compressed clusters, metadata preallocation; backing files, short
 * and raw): the same lines and exit code in every case. In strict mode the offset qemu-img reports is the
 * start of the first extent whose block status differs, EOF flag included, so this pins how extents are cut.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CompareTableTest {
    @TempDir
    static Path dir;

    /** name → {create options, size, qemu-io commands...}. */
    static final Map<String, String[]> IMAGES = new LinkedHashMap<>();

    static {
        IMAGES.put("base", new String[] {"", "4M", "write -P 7 0 4M"});
        IMAGES.put("short", new String[] {"", "2M", "write -P 5 0 2M"});
        IMAGES.put("empty", new String[] {"", "4M"});
        IMAGES.put("zeros", new String[] {"", "4M", "write -P 0 1M 64k"});
        IMAGES.put("zcluster", new String[] {"", "4M", "write -z 1M 64k"});
        IMAGES.put("zunmap", new String[] {"", "4M", "write -P 1 1M 64k", "write -z -u 1M 64k"});
        IMAGES.put("data", new String[] {"", "4M", "write -P 1 1M 64k"});
        IMAGES.put("data2", new String[] {"", "4M", "write -P 1 1M 64k", "write -P 2 1050000 1000"});
        IMAGES.put("part", new String[] {"", "4M", "write -P 1 1M 4k"});
        IMAGES.put("big", new String[] {"", "8M", "write -P 1 1M 64k"});
        IMAGES.put("bigtail", new String[] {"", "8M", "write -P 1 1M 64k", "write -P 3 6M 4k"});
        IMAGES.put("small", new String[] {"", "3M", "write -P 1 1M 64k"});
        IMAGES.put("c4k", new String[] {"cluster_size=4096", "4M", "write -P 1 1M 64k"});
        IMAGES.put("c4kzero", new String[] {"cluster_size=4096", "4M", "write -P 0 1M 4k"});
        IMAGES.put("c512", new String[] {"cluster_size=512", "4M", "write -P 1 1M 4k"});
        IMAGES.put("ext", new String[] {"extended_l2=on", "4M", "write -P 1 1M 4k", "write -P 1 1032k 4k",
            "write -z 1040k 8k"});
        IMAGES.put("ext2", new String[] {"extended_l2=on", "4M", "write -P 1 1M 4k", "write -P 1 1032k 4k"});
        IMAGES.put("comp", new String[] {"", "4M", "write -c -P 1 1M 64k", "write -c -P 1 1088k 64k"});
        IMAGES.put("plain128", new String[] {"", "4M", "write -P 1 1M 128k"});
        IMAGES.put("prealloc", new String[] {"preallocation=metadata", "4M", "write -P 1 1M 64k"});
        IMAGES.put("top", new String[] {"backing_file=base.qcow2,backing_fmt=qcow2", "4M"});
        IMAGES.put("topz", new String[] {"backing_file=base.qcow2,backing_fmt=qcow2", "4M", "write -z 0 64k"});
        IMAGES.put("flat", new String[] {"", "4M", "write -P 7 0 4M"});
        IMAGES.put("flatz", new String[] {"", "4M", "write -P 7 64k 4032k"});
        IMAGES.put("overshort", new String[] {"backing_file=short.qcow2,backing_fmt=qcow2", "4M", "write -P 1 3M 4k"});
        IMAGES.put("overshort2", new String[] {"backing_file=short.qcow2,backing_fmt=qcow2", "4M"});
        IMAGES.put("flatshort", new String[] {"", "4M", "write -P 5 0 2M", "write -P 1 3M 4k"});
        IMAGES.put("overraw", new String[] {"backing_file=raw.img,backing_fmt=raw", "4M"});
        IMAGES.put("flatraw", new String[] {"", "4M", "write -P 5 0 1M"});
        IMAGES.put("c2m", new String[] {"cluster_size=2M", "4G", "write -P 1 3G 4k"});
        IMAGES.put("c64k", new String[] {"", "4G", "write -P 1 3G 4k"});
    }

    static final String[] PAIRS = {"empty:zeros", "zeros:empty", "empty:zcluster", "zcluster:empty", "empty:zunmap",
        "zcluster:zeros", "zunmap:zcluster", "empty:data", "data:data2", "data:part", "part:data", "empty:big",
        "data:bigtail", "bigtail:data", "data:small", "data:c4k", "c4k:data", "empty:c4kzero", "zeros:c4kzero",
        "c512:data", "c512:c4k", "data:ext", "ext:ext2", "ext2:ext", "empty:ext2", "comp:plain128", "plain128:comp",
        "prealloc:data", "prealloc:empty", "top:flat", "flat:top", "top:empty", "topz:flatz", "top:topz",
        "overshort:flatshort", "flatshort:overshort", "overshort:overshort2", "overraw:flatraw", "overraw:empty",
        "c2m:c64k", "c64k:c2m", "base:flat", "data:data"};

    @BeforeAll
    static void makeImages() {
        Path raw = dir.resolve("raw.img");
        Qemu.img(dir, "create", "-q", "-f", "raw", raw.toString(), "2M");
        Qemu.ioFormat(raw, "raw", "write -P 5 0 1M");
        for (Map.Entry<String, String[]> e : IMAGES.entrySet()) {
            String[] spec = e.getValue();
            Path p = Qemu.create(dir, e.getKey() + ".qcow2", spec[0].isEmpty() ? null : spec[0], spec[1]);
            if (spec.length > 2) {
                Qemu.io(p, java.util.Arrays.copyOfRange(spec, 2, spec.length));
            }
        }
    }

    static Stream<Arguments> pairs() {
        List<Arguments> l = new ArrayList<>();
        for (String p : PAIRS) {
            String[] ab = p.split(":");
            l.add(Arguments.of(ab[0], ab[1], true));
            l.add(Arguments.of(ab[0], ab[1], false));
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0} {1} strict={2}")
    @MethodSource("pairs")
    void sameLinesAndExitCodeAsQemuImg(String a, String b, boolean strict) {
        List<String> args = new ArrayList<>(List.of("compare"));
        if (strict) {
            args.add("-s");
        }
        args.add(dir.resolve(a + ".qcow2").toString());
        args.add(dir.resolve(b + ".qcow2").toString());
        List<String> q = new ArrayList<>(List.of("qemu-img"));
        q.addAll(args);
        Qemu.Result theirs = Qemu.exec(dir, q.toArray(String[]::new));
        Qemu.Result ours = Cli.run(args.toArray(String[]::new));
        assertThat(ours.out()).isEqualTo(theirs.out());
        assertThat(ours.exit()).isEqualTo(theirs.exit());
        assertThat(ours.err()).isEmpty();
    }
}
