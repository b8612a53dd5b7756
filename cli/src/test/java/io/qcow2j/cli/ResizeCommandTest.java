package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow2j resize} against {@code qemu-img resize}: output, error lines and exit status, sizes on twins. */
class ResizeCommandTest {
    @TempDir
    Path dir;

    @Test
    void sameAsQemuImg() throws IOException {
        Qemu.create(dir, "ours.qcow2", "", "64M");
        Qemu.io(dir.resolve("ours.qcow2"), "write -P 1 0 1M", "write -P 2 60M 1M");
        Files.copy(dir.resolve("ours.qcow2"), dir.resolve("theirs.qcow2"));
        Qemu.img(dir, "create", "-q", "-f", "raw", "ours.raw", "1M");
        Qemu.img(dir, "create", "-q", "-f", "raw", "theirs.raw", "1M");
        List<List<String>> cases = List.of(
                List.of("IMG.qcow2", "+64M"),
                List.of("IMG.qcow2", "32M"),
                List.of("--shrink", "IMG.qcow2", "32M"),
                List.of("IMG.qcow2", "-100G"),
                List.of("--shrink", "IMG.qcow2", "-1M"),
                List.of("IMG.qcow2", "+1x"),
                List.of("IMG.qcow2", "2000000"),
                List.of("-q", "IMG.qcow2", "+1M"),
                List.of("--preallocation=bogus", "IMG.qcow2", "+1M"),
                List.of("IMG.qcow2", "33M"),
                List.of("-f", "raw", "IMG.raw", "2000001"),
                List.of("-f", "raw", "IMG.raw", "1M"),
                List.of("-f", "raw", "--shrink", "IMG.raw", "1000"));
        for (List<String> c : cases) {
            Qemu.Result qemu = Qemu.exec(dir, with("qemu-img", "theirs", c));
            Qemu.Result ours = Cli.run(with(null, dir + "/ours", c));
            String what = String.join(" ", c);
            assertThat(ours.exit()).as(what).isEqualTo(qemu.exit());
            assertThat(ours.out()).as(what).isEqualTo(qemu.out());
            assertThat(errors(ours.err())).as(what).isEqualTo(errors(qemu.err()));
            assertThat(Qemu.info(dir.resolve("ours.qcow2")).get("virtual-size")).as(what)
                    .isEqualTo(Qemu.info(dir.resolve("theirs.qcow2")).get("virtual-size"));
            assertThat(Files.size(dir.resolve("ours.raw"))).as(what).isEqualTo(Files.size(dir.resolve("theirs.raw")));
        }
        Qemu.requireClean(dir.resolve("ours.qcow2"), "after the resizes");
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).isZero();
    }

    private static String[] with(String program, String image, List<String> args) {
        List<String> out = new java.util.ArrayList<>();
        if (program != null) {
            out.add(program);
        }
        out.add("resize");
        for (String a : args) {
            out.add(a.startsWith("IMG.") ? image + a.substring(3) : a);
        }
        return out.toArray(String[]::new);
    }

    /** Lines naming the program, with its name taken out. */
    private static List<String> errors(String err) {
        return err.lines().filter(l -> l.startsWith("qemu-img: ") || l.startsWith("qcow2j: "))
                .map(l -> l.replaceFirst("^(qemu-img|qcow2j): ", "")).toList();
    }
}
