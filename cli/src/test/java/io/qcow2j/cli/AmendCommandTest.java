package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow2j amend} against {@code qemu-img amend} on twins: exit status, messages, info and check after each. */
class AmendCommandTest {
    @TempDir
    Path dir;

    @Test
    void sameAsQemuImg() throws IOException {
        for (String side : List.of("ours", "theirs")) {
            Qemu.create(dir, side + ".qcow2", "cluster_size=65536", "4M");
            Qemu.io(dir.resolve(side + ".qcow2"), "write -P 1 0 3M");
            Qemu.create(dir, side + "2.qcow2", "compat=0.10", "1M");
        }
        List<List<String>> cases = List.of(
                List.of("-o", "lazy_refcounts=on", "IMG.qcow2"),
                List.of("-o", "size=8M", "IMG.qcow2"),
                List.of("-o", "size=2M", "IMG.qcow2"),
                List.of("-o", "lazy_refcounts=off,size=3M", "IMG.qcow2"),
                List.of("-o", "size=1000", "IMG.qcow2"),
                List.of("-o", "bogus=1", "IMG.qcow2"),
                List.of("IMG.qcow2"),
                List.of("-o", "backing_file=x.qcow2", "IMG.qcow2"),
                List.of("-o", "cluster_size=4096", "IMG.qcow2"),
                List.of("-o", "lazy_refcounts=maybe", "IMG.qcow2"),
                List.of("-o", "compat=1.1", "IMG.qcow2"),
                List.of("-o", "refcount_bits=16", "IMG.qcow2"),
                List.of("-o", "lazy_refcounts=on", "IMG2.qcow2"));
        for (List<String> c : cases) {
            List<String> q = new java.util.ArrayList<>(List.of("qemu-img", "amend"));
            List<String> o = new java.util.ArrayList<>(List.of("amend"));
            for (String a : c) {
                q.add(a.replace("IMG", "theirs"));
                o.add(a.startsWith("IMG") ? dir.resolve(a.replace("IMG", "ours")).toString() : a);
            }
            Qemu.Result qr = Qemu.exec(dir, q.toArray(String[]::new));
            Qemu.Result or = Cli.run(o.toArray(String[]::new));
            String what = String.join(" ", c);
            assertThat(or.exit()).as(what + ": " + or.err()).isEqualTo(qr.exit());
            assertThat(or.err().lines().findFirst().orElse("").replace("qcow2j: ", "")).as(what)
                    .isEqualTo(qr.err().lines().findFirst().orElse("").replace("qemu-img: ", ""));
            for (String img : List.of("", "2")) {
                var oi = Qemu.info(dir.resolve("ours" + img + ".qcow2"));
                var qi = Qemu.info(dir.resolve("theirs" + img + ".qcow2"));
                assertThat(oi.get("virtual-size")).as(what).isEqualTo(qi.get("virtual-size"));
                assertThat(String.valueOf(oi.get("format-specific"))).as(what)
                        .isEqualTo(String.valueOf(qi.get("format-specific")));
                Qemu.requireClean(dir.resolve("ours" + img + ".qcow2"), what);
            }
        }
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).isZero();
        assertThat(Files.exists(dir.resolve("ours.qcow2"))).isTrue();
    }
}
