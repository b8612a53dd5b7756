package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code qcow2j convert -l SNAPSHOT} against {@code qemu-img convert -l} on one image with several internal
 * snapshots (taken by qemu-img, with a resize and a compressed cluster between them): every -l form, to raw
 * and to qcow2 (plain and -c), gives an output qemu-img compare finds identical to qemu-img's; unknown
 * snapshots and bad parameters get qemu-img's message and exit code and leave no output; and concatenated
 * sources as qemu-img treats them.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class SnapshotConvertTest {
    @TempDir
    static Path dir;
    static Path image;
    static Path other;

    @BeforeAll
    static void makeImage() {
        image = Qemu.create(dir, "snaps.qcow2", "cluster_size=4096", "4M");
        Qemu.io(image, "write -P 1 0 1M", "write -c -P 5 2M 64k");
        Qemu.img(dir, "snapshot", "-c", "one", image.toString());
        Qemu.io(image, "write -P 2 512k 1M", "write -z 2M 4k");
        Qemu.img(dir, "snapshot", "-c", "two", image.toString());
        Qemu.img(dir, "resize", image.toString(), "6M");
        Qemu.io(image, "write -P 3 5M 64k", "discard 0 64k");
        Qemu.img(dir, "snapshot", "-c", "one", image.toString()); // a second "one": ID 3
        Qemu.io(image, "write -P 4 1M 4k");
        other = Qemu.create(dir, "other.qcow2", null, "1M");
        Qemu.io(other, "write -P 9 0 64k");
    }

    static Stream<Arguments> forms() {
        List<Arguments> l = new ArrayList<>();
        String[] forms = {"one", "2", "two", "3", "snapshot.id=1", "snapshot.name=one", "snapshot.name=two",
            "snapshot.id=3,snapshot.name=one"};
        String[][] outputs = {{"-O", "raw"}, {"-O", "qcow2"}, {"-O", "qcow2", "-c"}};
        for (String f : forms) {
            for (String[] o : outputs) {
                l.add(Arguments.of(f, o));
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "-l {0} {1}")
    @MethodSource("forms")
    void sameAsQemuImg(String form, String[] output) {
        String tag = Integer.toHexString((form + String.join(" ", output)).hashCode());
        Path ours = dir.resolve(tag + ".ours");
        Path qemu = dir.resolve(tag + ".qemu");
        List<String> args = new ArrayList<>(List.of("convert", "-l", form));
        args.addAll(List.of(output));
        args.add(image.toString());
        List<String> q = new ArrayList<>(List.of("qemu-img"));
        q.addAll(args);
        q.add(qemu.toString());
        Qemu.run(dir, q.toArray(String[]::new));
        args.add(ours.toString());
        Cli.ok(args.toArray(String[]::new));
        String fmt = output[1];
        assertThat(Qemu.img(dir, "compare", "-f", fmt, "-F", fmt, qemu.toString(), ours.toString()))
                .isEqualTo("Images are identical.\n");
        // the snapshot, not the current state, was read
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "-F", fmt, image.toString(), ours.toString()).exit())
                .isEqualTo(1);
        if (fmt.equals("qcow2")) {
            Qemu.requireClean(ours, "-l " + form);
            assertThat(Qemu.info(ours).get("virtual-size")).isEqualTo(6L << 20); // the current size, as qemu-img
        } else {
            assertThat(ours.toFile().length()).isEqualTo(6L << 20);
        }
    }

    static Stream<Arguments> failures() {
        return Stream.of(
                Arguments.of("nosuch", "qcow2j: Failed to load snapshot: Can't find snapshot\n"),
                Arguments.of("snapshot.id=9", "qcow2j: Failed to load snapshot: Can't find snapshot\n"),
                Arguments.of("snapshot.id=1,snapshot.name=two", "qcow2j: Failed to load snapshot: Can't find snapshot\n"),
                Arguments.of("snapshot.id=1,foo=2",
                        "qcow2j: Invalid parameter 'foo'\nqcow2j: Failed in parsing snapshot param 'snapshot.id=1,foo=2'\n"));
    }

    @ParameterizedTest(name = "-l {0}")
    @MethodSource("failures")
    void failsAsQemuImg(String form, String message) {
        for (String fmt : List.of("raw", "qcow2")) {
            Path ours = dir.resolve("fail.ours");
            Path qemu = dir.resolve("fail.qemu");
            Qemu.Result theirs = Qemu.exec(dir, "qemu-img", "convert", "-O", fmt, "-l", form, image.toString(),
                    qemu.toString());
            Qemu.Result r = Cli.run("convert", "-O", fmt, "-l", form, image.toString(), ours.toString());
            assertThat(r.err()).isEqualTo(message);
            assertThat(r.err().replace("qcow2j: ", "qemu-img: ")).isEqualTo(theirs.err());
            assertThat(r.exit()).isEqualTo(theirs.exit()).isEqualTo(1);
            assertThat(Files.exists(ours)).isFalse();
            assertThat(Files.exists(qemu)).isFalse();
        }
    }

    @Test
    void concatenatedSources() {
        Qemu.Result r = Cli.run("convert", "-O", "qcow2", "-l", "one", image.toString(), other.toString(),
                dir.resolve("cat.ours").toString());
        assertThat(r.err()).isEqualTo("qcow2j: No support for concatenating multiple snapshot\n");
        assertThat(r.exit()).isEqualTo(1);
        // snapshot.id= loads the snapshot in the first source only
        for (String fmt : List.of("raw", "qcow2")) {
            Path ours = dir.resolve("cat-id.ours." + fmt);
            Path qemu = dir.resolve("cat-id.qemu." + fmt);
            Qemu.img(dir, "convert", "-O", fmt, "-l", "snapshot.id=2", image.toString(), other.toString(),
                    qemu.toString());
            Cli.ok("convert", "-O", fmt, "-l", "snapshot.id=2", image.toString(), other.toString(), ours.toString());
            assertThat(Qemu.img(dir, "compare", "-f", fmt, "-F", fmt, qemu.toString(), ours.toString()))
                    .isEqualTo("Images are identical.\n");
        }
    }

    @Test
    void rawOutputOfConcatenatedSourcesIsQemuImgs() throws Exception {
        Path odd = Qemu.create(dir, "odd.qcow2", "cluster_size=512", "1536512"); // not 4 KiB-aligned: 3001 sectors
        Qemu.io(odd, "write -P 6 0 4k", "write -P 0 8k 8k", "write -P 7 1536000 512");
        Path ours = dir.resolve("cat3.ours.raw");
        Path qemu = dir.resolve("cat3.qemu.raw");
        Qemu.img(dir, "convert", "-O", "raw", other.toString(), odd.toString(), image.toString(), qemu.toString());
        Cli.ok("convert", "-O", "raw", other.toString(), odd.toString(), image.toString(), ours.toString());
        assertThat(Files.size(ours)).isEqualTo(Files.size(qemu)).isEqualTo((1L << 20) + 1536512 + (6L << 20));
        assertThat(Files.mismatch(ours, qemu)).isEqualTo(-1);
    }
}
