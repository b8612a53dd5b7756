package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The other way round from the surgery twins tests: images changed by qemu-img 7.2 ({@code snapshot -c/-a/-d},
 * {@code resize} grow, shrink and {@code --preallocation=metadata}, {@code amend} of every option, {@code commit}
 * with and without {@code -d} and {@code -b}, {@code rebase} safe, {@code -u} and {@code -b ""}) read by us, over
 * the read tests' geometries. After every step, on every image the step changed:
 * <ul>
 *   <li>our {@code convert -O raw} equals qemu-img's byte for byte, and our {@code compare} of the image with
 *       qemu-img's raw read of it finds them identical;</li>
 *   <li>our {@code check --output=json} prints what qemu-img's does, with the same (clean) exit status;</li>
 *   <li>our {@code info --output=json} is qemu-img's (the snapshots, the backing fields, the format-specific
 *       fields) and our {@code snapshot -l} its table byte for byte; every snapshot read with our
 *       {@code convert -l snapshot.id=…} equals qemu-img's;</li>
 *   <li>writes by us on a copy (data over clusters shared with snapshots, zeros, a discard, the last
 *       cluster) leave it clean for {@code qemu-img check} and equal ({@code qemu-img compare}) to a copy that
 *       qemu-io wrote the same way.</li>
 * </ul>
 * Each case is a geometry: create options, then {@code +c} for compressed clusters where qemu-io writes them,
 * {@code -s} where no internal snapshot fits (1-bit refcounts), {@code -r} where qemu-img's refcount width
 * change takes minutes (2 MiB clusters).
 */
class QemuSurgeryReadTest {
    @TempDir
    Path dir;

    private String geometry;

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=65536|+c", "cluster_size=512|+c", "cluster_size=2097152|+c-r",
        "cluster_size=4096,refcount_bits=1|-s", "cluster_size=65536,refcount_bits=64,lazy_refcounts=on|+c",
        "cluster_size=65536,extended_l2=on|+c", "compat=0.10,cluster_size=4096|+c"})
    void imageChangedByQemuImgReadByUs(String spec) throws IOException {
        geometry = spec;
        String opts = spec.substring(0, spec.indexOf('|'));
        boolean compressed = spec.contains("+c");
        boolean snapshots = !spec.contains("-s");
        long cluster = opts.contains("cluster_size=") ? Long.parseLong(opts.replaceAll(".*cluster_size=(\\d+).*", "$1"))
                : 65536;
        String compressedWrite = "write -c -P 3 2M " + Math.max(cluster, 128 << 10);

        Path img = Qemu.create(dir, "img.qcow2", opts, "4M");
        Qemu.io(img, "write -P 1 0 1M", "write -z 1M 64k", "discard 256k 64k");
        if (compressed) {
            Qemu.io(img, compressedWrite);
        }
        Qemu.io(img, "write -P 2 3M 512k");
        step("resize img.qcow2 16M", img); // 512-byte clusters: the L1 table moves
        Qemu.io(img, "write -P 4 12M 64k");
        boolean v2 = opts.contains("compat=0.10");
        if (snapshots) {
            step("snapshot -c s1 img.qcow2", img);
            Qemu.io(img, "write -P 5 512k 1M", compressed ? "write -c -P 6 8M " + Math.max(cluster, 128 << 10)
                    : "write -P 6 2M 64k");
            step("snapshot -c s2 img.qcow2", img);
            Qemu.io(img, "write -z 0 64k", "discard 3M 64k", "write -P 7 15M 4k");
            step("snapshot -a s1 img.qcow2", img);
            step("snapshot -d s2 img.qcow2", img);
            Qemu.io(img, "write -P 8 64k 64k");
            step("snapshot -c s3 img.qcow2", img);
        }
        if (v2) {
            step("amend -o compat=1.1 img.qcow2", img);
        } else if (!opts.contains("refcount_bits") && !opts.contains("extended_l2")) {
            step("amend -o compat=0.10 img.qcow2", img);
            step("amend -o compat=1.1 img.qcow2", img);
        }
        step("amend -o lazy_refcounts=" + (opts.contains("lazy_refcounts=on") ? "off" : "on") + " img.qcow2", img);
        if (!spec.contains("-r")) {
            step("amend -o refcount_bits=" + (opts.contains("refcount_bits=1") ? "4" : opts.contains("refcount_bits=64")
                    ? "8" : "64") + " img.qcow2", img);
        }
        step("amend -o size=20M img.qcow2", img);
        Qemu.io(img, "write -P 9 19M 1M");
        step("resize --shrink img.qcow2 3146240", img); // into an L2 table and a cluster
        step("resize --preallocation=metadata img.qcow2 6M", img);

        Path base = Qemu.create(dir, "base.qcow2", opts, "4M");
        Qemu.io(base, "write -P 0x41 0 2M");
        Path mid = Qemu.create(dir, "mid.qcow2", opts + ",backing_file=base.qcow2,backing_fmt=qcow2", null);
        Qemu.io(mid, "write -P 0x51 1M 1M", "write -z 3M 64k");
        Path top = Qemu.create(dir, "top.qcow2", opts + ",backing_file=mid.qcow2,backing_fmt=qcow2", null);
        Qemu.io(top, "write -P 0x61 1536k 64k", "write -z 512k 64k");
        if (compressed) {
            Qemu.io(top, compressedWrite);
        }
        step("commit -d top.qcow2", mid, top);
        Qemu.io(top, "write -P 0x62 0 64k");
        step("commit top.qcow2", mid, top);
        Qemu.io(top, "write -P 0x63 64k 64k");
        Qemu.io(mid, "write -P 0x53 128k 64k");
        step("commit -b base.qcow2 top.qcow2", base, mid, top);
        Qemu.io(top, "write -P 0x64 256k 64k");
        step("rebase -b base.qcow2 -F qcow2 top.qcow2", top);
        step("rebase -u -b mid.qcow2 -F qcow2 top.qcow2", top);
        step("amend -o backing_file=mid.qcow2,backing_fmt=qcow2 top.qcow2", top);
        step("rebase -b  top.qcow2", top); // -b "": flattened
    }

    /** Runs {@code qemu-img COMMAND} (spaces apart; two spaces: an empty argument), then reads {@code changed} by us. */
    private void step(String command, Path... changed) throws IOException {
        List<String> args = new ArrayList<>(List.of("qemu-img"));
        args.addAll(List.of(command.split(" ", -1)));
        Qemu.Result r = Qemu.exec(dir, args.toArray(String[]::new));
        assertThat(r.exit()).as("%s: qemu-img %s: %s", geometry, command, r.output()).isZero();
        for (Path image : changed) {
            readByUs(image, geometry + ": after qemu-img " + command + ": " + image.getFileName());
        }
    }

    private void readByUs(Path image, String what) throws IOException {
        String name = image.getFileName().toString();
        Path theirRaw = dir.resolve("qemu.raw");
        Path ourRaw = dir.resolve("ours.raw");
        Cli.ok("convert", "-O", "raw", image.toString(), ourRaw.toString());
        Qemu.Result read = Qemu.exec(dir, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", "ours.raw", name);
        assertThat(read.exit()).as("%s: our read against qemu-img's: %s", what, read.output()).isZero();
        // our compare against qemu-img's read of the image, written out as a qcow2 image
        Qemu.img(dir, "convert", "-O", "qcow2", name, "qemu.qcow2");
        Qemu.Result cmp = Cli.run("compare", image.toString(), dir.resolve("qemu.qcow2").toString());
        assertThat(cmp.out()).as("%s: our compare %s", what, cmp.err()).isEqualTo("Images are identical.\n");
        assertThat(cmp.exit()).as(what).isZero();

        Qemu.Result theirCheck = Qemu.exec(dir, "qemu-img", "check", "--output=json", image.toString());
        Qemu.Result ourCheck = Cli.run("check", "--output=json", image.toString());
        assertThat(theirCheck.exit()).as("%s: qemu-img check %s", what, theirCheck.output()).isZero();
        assertThat(ourCheck.out()).as("%s: our check %s", what, ourCheck.err()).isEqualTo(theirCheck.out());
        assertThat(ourCheck.exit()).as(what).isZero();

        Compare.infoJson(Cli.ok("info", "--output=json", image.toString()),
                Qemu.img(dir, "info", "--output=json", image.toString()));
        String table = Qemu.img(dir, "snapshot", "-l", name);
        assertThat(Cli.ok("snapshot", "-l", image.toString())).as("%s: snapshot -l", what).isEqualTo(table);
        for (String id : table.lines().skip(2).map(l -> l.split("\\s+")[0]).toList()) {
            Qemu.img(dir, "convert", "-l", "snapshot.id=" + id, "-O", "raw", name, theirRaw.getFileName().toString());
            Cli.ok("convert", "-l", "snapshot.id=" + id, "-O", "raw", image.toString(), ourRaw.toString());
            assertThat(Files.mismatch(ourRaw, theirRaw)).as("%s: our read of snapshot %s", what, id).isEqualTo(-1);
        }

        long size = ((Number) Qemu.info(image).get("virtual-size")).longValue();
        String[] writes = {"write -P 0x71 0 64k", "write -z 96k 32k", "discard 192k 64k",
            "write -P 0x72 " + (size - 6144) + " 6k"};
        Path ours = Files.copy(image, dir.resolve("w-ours.qcow2"), StandardCopyOption.REPLACE_EXISTING);
        Path theirs = Files.copy(image, dir.resolve("w-qemu.qcow2"), StandardCopyOption.REPLACE_EXISTING);
        List<String> io = new ArrayList<>(List.of("io"));
        for (String w : writes) {
            io.add("-c");
            io.add(w);
        }
        io.add(ours.toString());
        CheckCommandTest.Run wr = CheckCommandTest.qcow2j(io.toArray(String[]::new));
        assertThat(wr.exit()).as("%s: our writes: %s", what, wr.err()).isZero();
        assertThat(wr.err()).as(what).isEmpty();
        Qemu.io(theirs, writes);
        Qemu.requireClean(ours, what + ": after our writes");
        Qemu.Result same = Qemu.exec(dir, "qemu-img", "compare", ours.getFileName().toString(),
                theirs.getFileName().toString());
        assertThat(same.exit()).as("%s: our writes against qemu-io's: %s", what, same.output()).isZero();
    }
}
