package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow2j rebase} against {@code qemu-img rebase} on twin chains (base ← mid ← top): safe onto the
 * base, safe flatten ({@code -b ""}), unsafe rename; the tops compare equal to their twins, check clean, and
 * info's backing fields are equal.
 */
class RebaseCommandTest {
    @TempDir
    Path dir;

    private void chain(String side, String opts) {
        Qemu.create(dir, side + "-b.qcow2", opts, "4M");
        Qemu.io(dir.resolve(side + "-b.qcow2"), "write -P 1 0 2M");
        Qemu.create(dir, side + "-m.qcow2", opts + ",backing_file=" + side + "-b.qcow2,backing_fmt=qcow2", null);
        Qemu.io(dir.resolve(side + "-m.qcow2"), "write -P 2 512k 1M", "write -z 1800k 64k");
        Qemu.create(dir, side + "-t.qcow2", opts + ",backing_file=" + side + "-m.qcow2,backing_fmt=qcow2", null);
        Qemu.io(dir.resolve(side + "-t.qcow2"), "write -P 3 3M 64k", "write -P 4 700k 10k");
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=65536|-b|B-b.qcow2|-F|qcow2", "cluster_size=4096|-b|",
        "cluster_size=65536|-u|-b|B-b.qcow2|-F|qcow2", "compat=0.10,cluster_size=65536|-b|B-b.qcow2|-F|qcow2",
        "cluster_size=65536|-b|B-b.qcow2"})
    void sameAsQemuImg(String spec) throws IOException {
        String[] parts = spec.split("\\|", -1);
        chain("ours", parts[0]);
        chain("theirs", parts[0]);
        byte[] guest = Qemu.guestContent(dir.resolve("ours-t.qcow2"));
        List<String> args = List.of(parts).subList(1, parts.length);
        List<String> q = new java.util.ArrayList<>(List.of("qemu-img", "rebase"));
        List<String> o = new java.util.ArrayList<>(List.of("rebase"));
        for (String a : args) {
            q.add(a.replace("B-", "theirs-"));
            o.add(a.replace("B-", "ours-"));
        }
        q.add("theirs-t.qcow2");
        o.add(dir.resolve("ours-t.qcow2").toString());
        Qemu.Result qr = Qemu.exec(dir, q.toArray(String[]::new));
        Qemu.Result or = Cli.run(o.toArray(String[]::new));
        assertThat(or.exit()).as(or.err() + qr.err()).isEqualTo(qr.exit());
        assertThat(or.out()).isEqualTo(qr.out());
        assertThat(or.err().replace("qcow2j: ", "").replace("ours-", "X-"))
                .isEqualTo(qr.err().replace("qemu-img: ", "").replace("theirs-", "X-"));
        if (qr.exit() != 0) {
            return;
        }
        Qemu.requireClean(dir.resolve("ours-t.qcow2"), "after rebase");
        Map<String, Object> oi = Qemu.info(dir.resolve("ours-t.qcow2"));
        Map<String, Object> qi = Qemu.info(dir.resolve("theirs-t.qcow2"));
        assertThat(String.valueOf(oi.get("backing-filename")).replace("ours-", "X-"))
                .isEqualTo(String.valueOf(qi.get("backing-filename")).replace("theirs-", "X-"));
        assertThat(oi.get("backing-filename-format")).isEqualTo(qi.get("backing-filename-format"));
        if (!args.contains("-u")) {
            assertThat(Qemu.guestContent(dir.resolve("ours-t.qcow2"))).isEqualTo(guest);
        }
        assertThat(Qemu.guestContent(dir.resolve("ours-t.qcow2"))).isEqualTo(
                Qemu.guestContent(dir.resolve("theirs-t.qcow2")));
        assertThat(Files.size(dir.resolve("ours-t.qcow2"))).isLessThanOrEqualTo(
                Files.size(dir.resolve("theirs-t.qcow2")) + 2 * 65536);
    }
}
