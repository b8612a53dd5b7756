package io.qcow2j.cli;

import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@code compare}, {@code measure} and {@code io write -c} side by side with qemu-img and qemu-io. */
@Timeout(value = 300, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CompareMeasureTest {
    @TempDir
    static Path dir;
    static List<Path> images = new ArrayList<>();

    @BeforeAll
    static void makeImages() {
        Path a = Qemu.create(dir, "a.qcow2", null, "8M");
        Qemu.io(a, "write -P 1 0 1M", "write -P 2 3M 64k", "write -z 5M 1M");
        Path same = Qemu.create(dir, "same.qcow2", "cluster_size=4096", "8M");
        Qemu.io(same, "write -P 1 0 1M", "write -P 2 3M 64k");
        Path diff = Qemu.create(dir, "diff.qcow2", null, "8M");
        Qemu.io(diff, "write -P 1 0 1M", "write -P 2 3M 64k", "write -P 3 3000k 512");
        Path bigger = Qemu.create(dir, "bigger.qcow2", null, "9M");
        Qemu.io(bigger, "write -P 1 0 1M", "write -P 2 3M 64k");
        Path biggerDirty = Qemu.create(dir, "bigger-dirty.qcow2", null, "9M");
        Qemu.io(biggerDirty, "write -P 1 0 1M", "write -P 2 3M 64k", "write -P 4 8800k 1k");
        Path top = Qemu.create(dir, "top.qcow2", null, null, "-b", "a.qcow2", "-F", "qcow2");
        Qemu.io(top, "write -P 1 64k 64k");
        Path extra = Qemu.create(dir, "extra.qcow2", null, "8M");
        Qemu.io(extra, "write -P 1 0 1M", "write -P 2 3M 64k", "write -P 0 6M 64k");
        Path diffByte = Qemu.create(dir, "diff-byte.qcow2", null, "8M");
        // one byte in the middle of a sector: qemu-img reports the sector's offset
        Qemu.io(diffByte, "write -P 1 0 1M", "write -P 2 3M 64k", "write -P 3 1000 1");
        images.addAll(List.of(a, same, diff, bigger, biggerDirty, top, extra, diffByte));
    }

    @Test
    void compareSaysWhatQemuImgSays() {
        for (Path x : images) {
            for (Path y : images) {
                Qemu.Result q = Qemu.exec(dir, "qemu-img", "compare", x.toString(), y.toString());
                Qemu.Result ours = Cli.run("compare", x.toString(), y.toString());
                assertThat(ours.exit()).as("%s %s", x, y).isEqualTo(q.exit());
                assertThat(ours.out()).as("%s %s", x, y).isEqualTo(q.out());
                Qemu.Result qs = Qemu.exec(dir, "qemu-img", "compare", "-s", x.toString(), y.toString());
                Qemu.Result os = Cli.run("compare", "-s", x.toString(), y.toString());
                assertThat(os.exit()).as("-s %s %s", x, y).isEqualTo(qs.exit());
                if (qs.out().contains("size") || qs.out().contains("identical")) {
                    assertThat(os.out()).as("-s %s %s", x, y).isEqualTo(qs.out());
                }
            }
        }
        assertThat(Cli.run("compare", "-q", images.get(0).toString(), images.get(2).toString()).out()).isEmpty();
        assertThat(Cli.run("compare", images.get(0).toString(), dir.resolve("missing").toString()).exit()).isEqualTo(2);
    }

    @Test
    void measureGivesQemuImgsNumbers() {
        String[] options = {"", "cluster_size=512", "cluster_size=2M", "refcount_bits=1", "refcount_bits=64",
            "extended_l2=on", "preallocation=metadata", "preallocation=falloc", "preallocation=full",
            "backing_file=a.qcow2,backing_fmt=qcow2", "compat=0.10"};
        for (String o : options) {
            List<List<String>> sources = new ArrayList<>();
            sources.add(List.of("--size", "7G"));
            sources.add(List.of("--size", "1000"));
            for (Path p : images) {
                sources.add(List.of(p.toString()));
            }
            for (List<String> src : sources) {
                for (String output : new String[] {"human", "json"}) {
                    List<String> args = new ArrayList<>(List.of("measure", "--output=" + output, "-O", "qcow2"));
                    if (!o.isEmpty()) {
                        args.add("-o");
                        args.add(o);
                    }
                    args.addAll(src);
                    List<String> q = new ArrayList<>(List.of("qemu-img"));
                    q.addAll(args);
                    String theirs = Qemu.run(dir, q.toArray(String[]::new));
                    assertThat(Cli.ok(args.toArray(String[]::new))).as(String.join(" ", args)).isEqualTo(theirs);
                }
            }
        }
        assertThat(Cli.ok("measure", "--size", "1G")).isEqualTo(Qemu.img(dir, "measure", "--size", "1G"));
    }

    @Test
    void ioWriteCompressedAsQemuIo() {
        for (String type : new String[] {"zlib", "zstd"}) {
            Path ours = Qemu.create(dir, "wc-ours-" + type + ".qcow2", "compression_type=" + type, "1M");
            Path theirs = Qemu.create(dir, "wc-qemu-" + type + ".qcow2", "compression_type=" + type, "1M");
            String[] cmds = {"write -c -s /etc/services 0 256k", "write -c -P 7 256k 64k", "write -c 512 64k",
                "write -c -P 7 0 64k"};
            String[] q = concat("qemu-io", cmds, theirs.toString());
            Qemu.Result qr = Qemu.exec(dir, q);
            Qemu.Result r = Cli.run(concat("io", cmds, ours.toString()));
            assertThat(r.exit()).isEqualTo(qr.exit());
            assertThat(qr.out()).contains("write failed: Invalid argument").contains("write failed: Input/output error");
            assertThat(Qemu.requireClean(ours, type).output()).contains("100.00% compressed clusters");
            assertThat(Qemu.img(dir, "compare", theirs.toString(), ours.toString())).isEqualTo("Images are identical.\n");
        }
    }

    private static String[] concat(String first, String[] cmds, String last) {
        List<String> l = new ArrayList<>(List.of(first));
        for (String c : cmds) {
            l.add("-c");
            l.add(c);
        }
        l.add(last);
        return l.toArray(String[]::new);
    }
}
