package io.qcow2j.engine.check;

import io.qcow2j.engine.CheckResult;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * {@code qemu-img check --output=json} as the oracle for {@link ImageCheck}: runs it, and compares its
 * numbers and exit status with ours field by field.
 */
public record QemuCheck(int exit, Map<String, Object> json, String stderr) {
    /** The numeric fields of qemu-img's JSON (absent means 0). */
    public static final List<String> FIELDS = List.of("check-errors", "corruptions", "leaks", "image-end-offset",
            "total-clusters", "allocated-clusters", "fragmented-clusters", "compressed-clusters");

    /** Runs {@code qemu-img ARGS IMAGE}, the image by its name, in its folder. */
    public static Qemu.Result qemuImg(Path image, String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of("qemu-img"));
        cmd.addAll(List.of(args));
        cmd.add(image.getFileName().toString());
        return Qemu.exec(image.toAbsolutePath().getParent(), cmd.toArray(String[]::new));
    }

    /** Runs {@code qemu-img check --output=json} on {@code image} (by its name, in its folder). */
    public static QemuCheck run(Path image) {
        Qemu.Result r = qemuImg(image, "check", "--output=json");
        if (r.exit() > 3 && r.exit() != 63) { // 63: not qcow2 (probed as raw): "does not support checks"
            throw new AssertionError("qemu-img check " + image + " exited " + r.exit() + ": " + r.err());
        }
        return new QemuCheck(r.exit(), r.out().isBlank() ? null : Json.object(r.out()), r.err());
    }

    /** qemu-img's numbers, every field present (0 where qemu-img leaves it out). */
    public Map<String, Long> numbers() {
        Map<String, Long> m = new LinkedHashMap<>();
        for (String f : FIELDS) {
            Object v = json.get(f);
            m.put(f, v == null ? 0L : (Long) v);
        }
        return m;
    }

    public static Map<String, Long> numbers(CheckResult r) {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("check-errors", r.checkErrors());
        m.put("corruptions", r.corruptions());
        m.put("leaks", r.leaks());
        m.put("image-end-offset", r.imageEndOffset());
        m.put("total-clusters", r.totalClusters());
        m.put("allocated-clusters", r.allocatedClusters());
        m.put("fragmented-clusters", r.fragmentedClusters());
        m.put("compressed-clusters", r.compressedClusters());
        return m;
    }

    /** Our check of {@code image}, opened with {@code options}; problem lines go to {@code lines}. */
    public static CheckResult ours(Path image, ImageOptions options, List<String> lines) throws IOException {
        try (Qcow2Image img = ChainOpener.openQcow2(image, options)) {
            return ImageCheck.check(img, lines::add);
        }
    }

    /**
     * Checks {@code image} with qemu-img and with {@link ImageCheck} under each of {@code options}, and
     * asserts the same outcome: the same numbers and exit status, or (where qemu-img's check fails with
     * no result) a one-line failure. Returns qemu-img's outcome.
     */
    public static QemuCheck assertSameAsQemu(Path image, ImageOptions... options) throws IOException {
        QemuCheck q = run(image);
        for (ImageOptions o : options) {
            List<String> lines = new ArrayList<>();
            if (q.json() == null) {
                assertThat(q.exit()).as("qemu-img check without output: %s", q.stderr()).isEqualTo(1);
                try {
                    CheckResult r = ours(image, o, lines);
                    throw new AssertionError("qemu-img check failed (" + q.stderr().strip() + ") but ours gave " + r);
                } catch (Qcow2FormatException e) {
                    assertThat(e.getMessage()).doesNotContain("\n");
                }
                continue;
            }
            CheckResult r = ours(image, o, lines);
            assertThat(numbers(r)).as("%s with %s; qemu-img said:%n%s%nwe said:%n%s", image.getFileName(), o,
                    q.stderr(), String.join("\n", lines)).isEqualTo(q.numbers());
            assertThat(r.exitCode()).as("exit status").isEqualTo(q.exit());
            assertThat(Path.of(r.filename()).getFileName().toString()).isEqualTo(q.json().get("filename"));
            assertThat(r.format()).isEqualTo(q.json().get("format"));
        }
        return q;
    }
}
