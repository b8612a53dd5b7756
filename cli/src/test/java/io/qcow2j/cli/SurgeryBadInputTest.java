package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Bad input to the surgery commands side by side with qemu-img 7.2 on twins: a missing snapshot tag, a
 * duplicate tag (accepted by both), a shrink without {@code --shrink}, a commit without a backing file or
 * with a base outside the chain, a backing loop, a safe rebase that would make one (onto the image itself or
 * onto its child); the same exit status and error line (a loop: qemu-img
 * fails on its own image lock, we name the loop), and every file of the refused command unchanged. Then
 * what {@code --untrusted} refuses: a commit of an image whose backing file is an absolute path, a rebase
 * onto one; and a commit into a base smaller than the image, which grows the base as qemu-img does.
 */
class SurgeryBadInputTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"snapshot -a nope IMG.qcow2", "snapshot -d nope IMG.qcow2", "snapshot -c s1 IMG.qcow2",
        "resize IMG.qcow2 512k", "resize IMG.qcow2 -- -64k", "commit IMG-base.qcow2", "commit -b IMG-other.qcow2 IMG.qcow2",
        "commit IMG-loop.qcow2", "rebase -b IMG-base.qcow2 -F qcow2 IMG-loop.qcow2", "snapshot -c x IMG-loop.qcow2",
        "rebase -b IMG-missing.qcow2 -F qcow2 IMG.qcow2", "rebase -b IMG.qcow2 -F qcow2 IMG.qcow2",
        "rebase -b IMG.qcow2 -F qcow2 IMG-base.qcow2"})
    void sameAsQemuImg(String command) throws IOException {
        for (String side : List.of("ours", "theirs")) {
            Qemu.create(dir, side + "-base.qcow2", "cluster_size=65536", "1M");
            Qemu.io(dir.resolve(side + "-base.qcow2"), "write -P 1 0 1M");
            Qemu.create(dir, side + "-other.qcow2", "cluster_size=65536", "1M");
            Qemu.create(dir, side + ".qcow2", "backing_file=" + side + "-base.qcow2,backing_fmt=qcow2", null);
            Qemu.io(dir.resolve(side + ".qcow2"), "write -P 2 64k 64k");
            Qemu.img(dir, "snapshot", "-c", "s1", side + ".qcow2");
            Qemu.create(dir, side + "-loop2.qcow2", "cluster_size=65536", "1M", "-u");
            Qemu.create(dir, side + "-loop.qcow2", "backing_file=" + side + "-loop2.qcow2,backing_fmt=qcow2", "1M", "-u");
            Qemu.img(dir, "rebase", "-u", "-b", side + "-loop.qcow2", "-F", "qcow2", side + "-loop2.qcow2");
        }
        List<String> files = List.of("ours.qcow2", "ours-base.qcow2", "ours-other.qcow2", "ours-loop.qcow2",
                "ours-loop2.qcow2");
        List<byte[]> before = new ArrayList<>();
        for (String f : files) {
            before.add(Files.readAllBytes(dir.resolve(f)));
        }
        List<String> q = new ArrayList<>(List.of("qemu-img"));
        List<String> o = new ArrayList<>();
        for (String a : command.split(" ")) {
            q.add(a.replace("IMG", "theirs"));
            o.add(a.startsWith("IMG") ? dir.resolve(a.replace("IMG", "ours")).toString() : a);
        }
        Qemu.Result qr = Qemu.exec(dir, q.toArray(String[]::new));
        Qemu.Result or = Cli.run(o.toArray(String[]::new));
        assertThat(or.exit()).as(command + ": " + or.err() + " / qemu-img: " + qr.err()).isEqualTo(qr.exit());
        String ours = firstLine(or.err(), "qcow2j: ").replace(dir + "/", "").replace("ours", "X");
        String theirs = firstLine(qr.err(), "qemu-img: ").replace("theirs", "X");
        if (command.contains("loop")) {
            assertThat(ours).as(command).contains("backing chain loops back");
        } else {
            assertThat(ours).as(command).isEqualTo(theirs);
        }
        if (qr.exit() == 0) {
            assertThat(Qemu.img(dir, "snapshot", "-l", "ours.qcow2").lines().skip(2).map(l -> l.substring(0, 20)).toList())
                    .isEqualTo(Qemu.img(dir, "snapshot", "-l", "theirs.qcow2").lines().skip(2).map(l -> l.substring(0, 20))
                            .toList());
            return;
        }
        for (int i = 0; i < files.size(); i++) {
            assertThat(Arrays.equals(Files.readAllBytes(dir.resolve(files.get(i))), before.get(i)))
                    .as("%s: %s unchanged", command, files.get(i)).isTrue();
        }
    }

    /**
     * A backing file missing one and two levels down: every surgery command that opens the chain fails with
     * qemu-img's line ("Could not open 'IMAGE': Could not open backing file: …", once per level), exit 1, and
     * the image unchanged; {@code rebase -u} does not open the chain and succeeds, as in qemu-img.
     */
    @ParameterizedTest
    @ValueSource(strings = {"map", "snapshot -c x", "snapshot -l", "snapshot -a x", "snapshot -d x", "resize IMG +1M",
        "amend -o lazy_refcounts=on", "commit", "rebase -b IMG-other.qcow2 -F qcow2", "rebase -b EMPTY"})
    void missingBackingFileAsQemuImg(String command) throws IOException {
        for (String side : List.of("ours", "theirs")) {
            Qemu.create(dir, side + "-base.qcow2", "cluster_size=65536", "1M");
            Qemu.create(dir, side + "-mid.qcow2", "backing_file=" + side + "-base.qcow2,backing_fmt=qcow2", null);
            Qemu.create(dir, side + ".qcow2", "backing_file=" + side + "-base.qcow2,backing_fmt=qcow2", null);
            Qemu.create(dir, side + "-top.qcow2", "backing_file=" + side + "-mid.qcow2,backing_fmt=qcow2", null);
            Qemu.create(dir, side + "-other.qcow2", "cluster_size=65536", "1M");
            Files.delete(dir.resolve(side + "-base.qcow2"));
        }
        for (String image : List.of("IMG.qcow2", "IMG-top.qcow2")) {
            byte[] before = Files.readAllBytes(dir.resolve(image.replace("IMG", "ours")));
            List<String> q = new ArrayList<>(List.of("qemu-img"));
            List<String> o = new ArrayList<>();
            String full = command.contains("IMG +") ? command.replace("IMG", image) : command + " " + image;
            for (String a : full.split(" ")) {
                String arg = a.equals("EMPTY") ? "" : a;
                q.add(arg.replace("IMG", "theirs"));
                o.add(arg.startsWith("IMG") ? dir.resolve(arg.replace("IMG", "ours")).toString() : arg);
            }
            Qemu.Result qr = Qemu.exec(dir, q.toArray(String[]::new));
            Qemu.Result or = Cli.run(o.toArray(String[]::new));
            String what = command + " on " + image;
            assertThat(qr.exit()).as(what + ": " + qr.err()).isEqualTo(1);
            assertThat(or.exit()).as(what + ": " + or.err()).isEqualTo(1);
            assertThat(firstLine(or.err(), "qcow2j: ").replace(dir + "/", "").replace("ours", "X")).as(what)
                    .isEqualTo(firstLine(qr.err(), "qemu-img: ").replace("theirs", "X"));
            assertThat(Files.readAllBytes(dir.resolve(image.replace("IMG", "ours")))).as(what + ": unchanged")
                    .isEqualTo(before);
        }
    }

    @Test
    void untrustedRefusesAbsoluteBackingNames() throws IOException {
        Path base = Qemu.create(dir, "base.qcow2", "cluster_size=65536", "1M");
        Qemu.io(base, "write -P 1 0 1M");
        Path top = Qemu.create(dir, "top.qcow2", "backing_file=" + base.toAbsolutePath() + ",backing_fmt=qcow2", null);
        Qemu.io(top, "write -P 2 0 64k");
        Path plain = Qemu.create(dir, "plain.qcow2", "cluster_size=65536", "1M");
        byte[] topBefore = Files.readAllBytes(top);
        byte[] baseBefore = Files.readAllBytes(base);
        byte[] plainBefore = Files.readAllBytes(plain);

        Qemu.Result commit = Cli.run("--untrusted", "commit", top.toString());
        assertThat(commit.exit()).isEqualTo(1);
        assertThat(commit.err()).contains("refused (untrusted image): absolute names are not allowed");
        Qemu.Result rebase = Cli.run("--untrusted", "rebase", "-b", base.toAbsolutePath().toString(), "-F", "qcow2",
                plain.toString());
        assertThat(rebase.exit()).isEqualTo(1);
        assertThat(rebase.err()).contains("refused (untrusted image): absolute names are not allowed");
        Qemu.Result unsafe = Cli.run("--untrusted", "rebase", "-u", "-b", base.toAbsolutePath().toString(), "-F",
                "qcow2", plain.toString());
        assertThat(unsafe.exit()).isEqualTo(1);
        assertThat(Files.readAllBytes(top)).isEqualTo(topBefore);
        assertThat(Files.readAllBytes(base)).isEqualTo(baseBefore);
        assertThat(Files.readAllBytes(plain)).isEqualTo(plainBefore);
        // trusted, the same commands run
        assertThat(Cli.run("rebase", "-u", "-b", base.toAbsolutePath().toString(), "-F", "qcow2", plain.toString())
                .exit()).isZero();
        assertThat(Cli.run("commit", top.toString()).exit()).isZero();
    }

    @Test
    void commitGrowsASmallerBase() throws IOException {
        for (String side : List.of("ours", "theirs")) {
            Qemu.create(dir, side + "-base.qcow2", "cluster_size=65536", "1M");
            Qemu.io(dir.resolve(side + "-base.qcow2"), "write -P 1 0 1M");
            Qemu.create(dir, side + ".qcow2", "backing_file=" + side + "-base.qcow2,backing_fmt=qcow2", "3M");
            Qemu.io(dir.resolve(side + ".qcow2"), "write -P 2 1536k 64k", "write -P 3 0 4k", "write -P 4 3008k 64k");
        }
        byte[] guest = Qemu.guestContent(dir.resolve("ours.qcow2"));
        Qemu.img(dir, "commit", "-q", "theirs.qcow2");
        Qemu.Result r = Cli.run("commit", "-q", dir.resolve("ours.qcow2").toString());
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(Qemu.info(dir.resolve("ours-base.qcow2")).get("virtual-size"))
                .isEqualTo(Qemu.info(dir.resolve("theirs-base.qcow2")).get("virtual-size"));
        Qemu.requireClean(dir.resolve("ours-base.qcow2"), "after commit");
        Qemu.requireClean(dir.resolve("ours.qcow2"), "after commit");
        assertThat(Qemu.guestContent(dir.resolve("ours-base.qcow2"))).isEqualTo(guest)
                .isEqualTo(Qemu.guestContent(dir.resolve("theirs-base.qcow2")));
        assertThat(Qemu.guestContent(dir.resolve("ours.qcow2"))).isEqualTo(guest);
    }

    private static String firstLine(String err, String prefix) {
        return err.lines().filter(l -> !l.contains("warning:")).findFirst().orElse("").replace(prefix, "");
    }
}
