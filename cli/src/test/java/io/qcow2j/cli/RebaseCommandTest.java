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
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow2j rebase} against {@code qemu-img rebase} on twin chains (base ← mid ← top): safe onto the
 * base, safe flatten ({@code -b ""}), unsafe rename; the tops compare equal to their twins, check clean, and
 * info's backing fields are equal; safe ones also compare equal to the content before the rebase. Over the read
 * tests' geometries too, and onto a new backing file that differs from the old chain in part.
 */
class RebaseCommandTest {
    @TempDir
    Path dir;

    private void chain(String side, String spec) {
        String opts = spec.replace(",snap", "");
        Qemu.create(dir, side + "-b.qcow2", opts, "4M");
        Qemu.io(dir.resolve(side + "-b.qcow2"), "write -P 1 0 2M");
        Qemu.create(dir, side + "-m.qcow2", opts + ",backing_file=" + side + "-b.qcow2,backing_fmt=qcow2", null);
        Qemu.io(dir.resolve(side + "-m.qcow2"), "write -P 2 512k 1M", "write -z 1800k 64k");
        Qemu.create(dir, side + "-t.qcow2", opts + ",backing_file=" + side + "-m.qcow2,backing_fmt=qcow2", null);
        // 2 MiB clusters: the top's writes in its second cluster, so that the first one is left to copy
        Qemu.io(dir.resolve(side + "-t.qcow2"), "write -P 3 3M 64k",
                opts.contains("cluster_size=2097152") ? "write -P 4 2600k 10k" : "write -P 4 700k 10k");
        if (spec.contains(",snap")) {
            // a snapshot in the top: the copy writes into the active layer only
            Qemu.img(dir, "snapshot", "-c", "s", side + "-t.qcow2");
            Qemu.io(dir.resolve(side + "-t.qcow2"), "write -P 8 2560k 64k", "write -P 9 3M 4k");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"cluster_size=65536|-b|B-b.qcow2|-F|qcow2", "cluster_size=4096|-b|",
        "cluster_size=65536|-u|-b|B-b.qcow2|-F|qcow2", "compat=0.10,cluster_size=65536|-b|B-b.qcow2|-F|qcow2",
        "cluster_size=65536|-b|B-b.qcow2"})
    void sameAsQemuImg(String spec) throws IOException {
        String[] parts = spec.split("\\|", -1);
        chain("ours", parts[0]);
        chain("theirs", parts[0]);
        twins(List.of(parts).subList(1, parts.length));
    }

    /**
     * The read tests' geometries (extended L2 at 64 KiB and 32 KiB, 512-byte clusters, 1- and 64-bit
     * refcounts, a top holding compressed clusters, 2 MiB clusters, a top with an internal snapshot), each rebased safe onto the base, {@code -u}, flattened
     * ({@code -b ""}) and safe onto a new backing file that differs from the old chain in part.
     */
    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
        "cluster_size=65536,extended_l2=on;false", "cluster_size=32768,extended_l2=on;false",
        "cluster_size=512;false", "refcount_bits=1;false", "refcount_bits=64;false", "cluster_size=65536;true",
        "cluster_size=2097152;false", "cluster_size=65536,snap;false"})
    void geometriesSameAsQemuImg(String opts, boolean compressed) throws IOException {
        for (List<String> args : List.of(List.of("-b", "B-b.qcow2", "-F", "qcow2"),
                List.of("-u", "-b", "B-b.qcow2", "-F", "qcow2"), List.of("-b", ""),
                List.of("-b", "B-n.qcow2", "-F", "qcow2"))) {
            for (String side : List.of("ours", "theirs")) {
                chain(side, opts);
                if (compressed) {
                    // whole clusters compressed in the top, next to its plain data and over the mid's data
                    Qemu.io(dir.resolve(side + "-t.qcow2"), "write -c -P 6 2M 128k", "write -c -P 7 1M 64k");
                }
                // a new backing that agrees with the old chain (mid over base) only in part
                Qemu.create(dir, side + "-n.qcow2", opts.replace(",snap", ""), "4M");
                Qemu.io(dir.resolve(side + "-n.qcow2"), "write -P 1 0 512k", "write -P 2 512k 256k",
                        "write -P 5 1536k 1M");
            }
            assertThat(twins(args)).as(opts + " " + args + ": qemu-img's exit").isZero();
        }
    }

    /**
     * {@code -p} on twins, safe onto the base and flattening: the same result as without it (compare equal to
     * the twin and to the content before, check clean), and nothing printed but qemu-img's progress, which
     * qemu-img draws even when stdout is not a terminal and qcow2j only on a terminal.
     */
    @ParameterizedTest
    @ValueSource(strings = {"-b|B-b.qcow2|-F|qcow2", "-b|"})
    void progressAsQemuImg(String spec) throws IOException {
        chain("ours", "cluster_size=65536");
        chain("theirs", "cluster_size=65536");
        byte[] guest = Qemu.guestContent(dir.resolve("ours-t.qcow2"));
        List<String> args = new java.util.ArrayList<>(List.of("-p"));
        args.addAll(List.of(spec.split("\\|", -1)));
        Qemu.Result[] results = runBoth(args);
        Qemu.Result qr = results[0];
        Qemu.Result or = results[1];
        assertThat(or.exit()).as(or.err()).isEqualTo(qr.exit()).isZero();
        assertThat(qr.out()).contains("(100.00/100%)\r");
        assertThat(or.out()).isEqualTo(qr.out().replaceAll(" *\\(\\d+\\.\\d\\d/100%\\)\r", "").strip()).isEmpty();
        Qemu.requireClean(dir.resolve("ours-t.qcow2"), spec);
        assertThat(Qemu.guestContent(dir.resolve("ours-t.qcow2"))).isEqualTo(guest);
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", "ours-t.qcow2", "theirs-t.qcow2")
                .exit()).isZero();
    }

    /** Runs {@code qemu-img rebase ARGS theirs-t.qcow2} and ours on ours-t.qcow2 (B- names both): {qemu-img's, ours}. */
    private Qemu.Result[] runBoth(List<String> args) {
        List<String> q = new java.util.ArrayList<>(List.of("qemu-img", "rebase"));
        List<String> o = new java.util.ArrayList<>(List.of("rebase"));
        for (String a : args) {
            q.add(a.replace("B-", "theirs-"));
            o.add(a.replace("B-", "ours-"));
        }
        q.add("theirs-t.qcow2");
        o.add(dir.resolve("ours-t.qcow2").toString());
        return new Qemu.Result[] {Qemu.exec(dir, q.toArray(String[]::new)), Cli.run(o.toArray(String[]::new))};
    }

    /** Runs qemu-img rebase on the theirs- chain and ours on the ours- chain with {@code args} (B- names both). */
    private int twins(List<String> args) throws IOException {
        byte[] guest = Qemu.guestContent(dir.resolve("ours-t.qcow2"));
        Files.write(dir.resolve("pre.raw"), guest);
        Qemu.Result[] results = runBoth(args);
        Qemu.Result qr = results[0];
        Qemu.Result or = results[1];
        assertThat(or.exit()).as(args + ": " + or.err() + qr.err()).isEqualTo(qr.exit());
        assertThat(or.out()).isEqualTo(qr.out());
        assertThat(or.err().replace("qcow2j: ", "").replace("ours-", "X-"))
                .isEqualTo(qr.err().replace("qemu-img: ", "").replace("theirs-", "X-"));
        if (qr.exit() != 0) {
            return qr.exit();
        }
        Qemu.requireClean(dir.resolve("ours-t.qcow2"), "after rebase " + args);
        Map<String, Object> oi = Qemu.info(dir.resolve("ours-t.qcow2"));
        Map<String, Object> qi = Qemu.info(dir.resolve("theirs-t.qcow2"));
        assertThat(String.valueOf(oi.get("backing-filename")).replace("ours-", "X-"))
                .isEqualTo(String.valueOf(qi.get("backing-filename")).replace("theirs-", "X-"));
        assertThat(oi.get("backing-filename-format")).isEqualTo(qi.get("backing-filename-format"));
        assertThat(oi.get("full-backing-filename") == null).isEqualTo(qi.get("full-backing-filename") == null);
        assertThat(String.valueOf(oi.get("format-specific"))).as(args.toString())
                .isEqualTo(String.valueOf(qi.get("format-specific")));
        assertThat(CommitCommandTest.snapshotsWithoutDates(dir, "ours-t.qcow2")).as(args + ": snapshot -l")
                .isEqualTo(CommitCommandTest.snapshotsWithoutDates(dir, "theirs-t.qcow2"));
        if (!args.contains("-u")) {
            assertThat(Qemu.exec(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", "ours-t.qcow2", "pre.raw")
                    .exit()).as(args + ": ours against the content before the rebase").isZero();
        }
        Qemu.Result cmp = Qemu.exec(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", "ours-t.qcow2",
                "theirs-t.qcow2");
        assertThat(cmp.exit()).as(args + ": ours against theirs " + cmp.output()).isZero();
        assertThat(Files.size(dir.resolve("ours-t.qcow2"))).as(args.toString()).isLessThanOrEqualTo(
                Files.size(dir.resolve("theirs-t.qcow2")) + 2 * 65536);
        return 0;
    }
}
