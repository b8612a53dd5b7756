package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow2j commit} against {@code qemu-img commit} on twin chains (base ← mid ← top): every image of
 * the chain compares equal to its twin afterwards, is clean, maps alike and has qemu-img info's size,
 * format-specific fields, backing names and snapshot list; over the read tests' geometries and with internal
 * snapshots in the top and the mid; errors as qemu-img's.
 */
class CommitCommandTest {
    @TempDir
    Path dir;

    private void chain(String side, String spec) {
        String opts = spec.replace(",snap", "");
        Qemu.create(dir, side + "-b.qcow2", opts, "4M");
        Qemu.io(dir.resolve(side + "-b.qcow2"), "write -P 1 0 1M");
        Qemu.create(dir, side + "-m.qcow2", opts + ",backing_file=" + side + "-b.qcow2,backing_fmt=qcow2", null);
        Qemu.io(dir.resolve(side + "-m.qcow2"), "write -P 2 512k 1M", "write -z 3M 64k");
        Qemu.create(dir, side + "-t.qcow2", opts + ",backing_file=" + side + "-m.qcow2,backing_fmt=qcow2", null);
        Qemu.io(dir.resolve(side + "-t.qcow2"), "write -P 3 3M 64k", "write -P 4 100k 10k", "write -z 600k 64k");
        if (opts.contains("refcount_bits=4")) {
            Qemu.io(dir.resolve(side + "-t.qcow2"), "write -c -P 5 1536k 64k"); // a compressed cluster
        }
        if (spec.contains(",snap")) {
            // internal snapshots in the top and the mid: emptying the top keeps its snapshots' clusters
            for (String layer : List.of("-m.qcow2", "-t.qcow2")) {
                Qemu.img(dir, "snapshot", "-c", "s", side + layer);
            }
            Qemu.io(dir.resolve(side + "-t.qcow2"), "write -P 6 128k 64k", "write -z 3M 4k");
        }
    }

    /** {@code mode|create options}: the three modes, and the geometries of the read tests. */
    @ParameterizedTest
    @ValueSource(strings = {"|cluster_size=65536", "-d|cluster_size=65536", "-b|cluster_size=65536", "|cluster_size=512",
        "-b|cluster_size=65536,extended_l2=on", "|cluster_size=4096,refcount_bits=1", "-d|compat=0.10,cluster_size=4096",
        "|cluster_size=65536,refcount_bits=4", "-b|cluster_size=2097152", "|cluster_size=65536,snap",
        "-b|cluster_size=4096,snap"})
    void sameAsQemuImg(String spec) throws IOException {
        String mode = spec.substring(0, spec.indexOf('|'));
        String opts = spec.substring(spec.indexOf('|') + 1);
        chain("ours", opts);
        chain("theirs", opts);
        List<String> ours = new java.util.ArrayList<>(List.of("commit"));
        List<String> theirs = new java.util.ArrayList<>(List.of("qemu-img", "commit"));
        if (mode.equals("-d")) {
            ours.add("-d");
            theirs.add("-d");
        } else if (mode.equals("-b")) {
            ours.addAll(List.of("-b", dir.resolve("ours-b.qcow2").toString()));
            theirs.addAll(List.of("-b", "theirs-b.qcow2"));
        }
        ours.add(dir.resolve("ours-t.qcow2").toString());
        theirs.add("theirs-t.qcow2");
        Qemu.Result q = Qemu.exec(dir, theirs.toArray(String[]::new));
        Qemu.Result o = Cli.run(ours.toArray(String[]::new));
        assertThat(o.exit()).as(o.err() + q.err()).isEqualTo(q.exit()).isZero();
        assertThat(o.out()).isEqualTo(q.out()).isEqualTo("Image committed.\n");
        for (String layer : List.of("b", "m", "t")) {
            Qemu.requireClean(dir.resolve("ours-" + layer + ".qcow2"), "ours " + layer);
            // each layer on its own (its backing chain below is the twin's equal too)
            assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours-" + layer + ".qcow2", "theirs-" + layer + ".qcow2")
                    .exit()).as(layer).isZero();
            // info: the size, the format-specific fields, the backing names and the snapshots (dates aside)
            Map<String, Object> oi = Qemu.info(dir.resolve("ours-" + layer + ".qcow2"));
            Map<String, Object> qi = Qemu.info(dir.resolve("theirs-" + layer + ".qcow2"));
            for (String key : List.of("virtual-size", "format-specific", "backing-filename", "backing-filename-format")) {
                assertThat(String.valueOf(oi.get(key)).replace("ours-", "X-")).as(layer + " " + key)
                        .isEqualTo(String.valueOf(qi.get(key)).replace("theirs-", "X-"));
            }
            assertThat(snapshotsWithoutDates(dir, "ours-" + layer + ".qcow2")).as(layer + " snapshots")
                    .isEqualTo(snapshotsWithoutDates(dir, "theirs-" + layer + ".qcow2"));
            if (opts.contains(",snap") && !layer.equals("b")) { // the snapshots read as the twin's
                for (String side : List.of("ours", "theirs")) {
                    Qemu.img(dir, "convert", "-l", "snapshot.name=s", "-O", "raw", side + "-" + layer + ".qcow2",
                            side + "-snap.raw");
                }
                assertThat(Files.mismatch(dir.resolve("ours-snap.raw"), dir.resolve("theirs-snap.raw")))
                        .as(layer + " snapshot").isEqualTo(-1);
            }
            if (layer.equals("b")) {
                continue; // the base: same content (compare above); where its new clusters landed may differ
            }
            // the kind of every run (depth, data, zero; extents split where host offsets jump are merged)
            assertThat(ResizeCommandTest.allocation(dir, dir.resolve("ours-" + layer + ".qcow2"))).as("map of " + layer)
                    .isEqualTo(ResizeCommandTest.allocation(dir, dir.resolve("theirs-" + layer + ".qcow2")));
        }
    }

    /**
     * {@code -p} and {@code -r RATE} on twins: the same result as qemu-img (compare equal, check clean), the
     * same line printed (qemu-img also draws its progress when stdout is not a terminal; qcow2j draws it only on
     * a terminal, so qemu-img's progress is taken out before comparing); {@code -r 1M} over 2 MiB of data
     * takes at least a second, as in qemu-img; a bad rate is qemu-img's message (one line, where qemu-img
     * breaks it in two) and changes nothing.
     */
    @Test
    void progressAndRateAsQemuImg() throws IOException {
        for (String side : List.of("ours", "theirs")) {
            Qemu.create(dir, side + "-b.qcow2", "cluster_size=65536", "4M");
            Qemu.io(dir.resolve(side + "-b.qcow2"), "write -P 1 0 1M");
            Qemu.create(dir, side + "-t.qcow2", "cluster_size=65536,backing_file=" + side + "-b.qcow2,backing_fmt=qcow2",
                    null);
            Qemu.io(dir.resolve(side + "-t.qcow2"), "write -P 2 512k 2M");
        }
        Path top = dir.resolve("ours-t.qcow2");
        Path base = dir.resolve("ours-b.qcow2");
        byte[] topBefore = Files.readAllBytes(top);
        byte[] baseBefore = Files.readAllBytes(base);
        for (String bad : List.of("1x", "-5")) {
            Qemu.Result q = Qemu.exec(dir, "qemu-img", "commit", "-r", bad, "theirs-t.qcow2");
            Qemu.Result o = Cli.run("commit", "-r", bad, top.toString());
            assertThat(o.exit()).as(bad).isEqualTo(q.exit()).isEqualTo(1);
            assertThat(o.err().strip().replace("qcow2j: ", ""))
                    .isEqualTo(q.err().strip().replace("qemu-img: ", "").replace("\n", " "));
            assertThat(Files.readAllBytes(top)).as(bad).isEqualTo(topBefore);
            assertThat(Files.readAllBytes(base)).as(bad).isEqualTo(baseBefore);
        }
        byte[] guest = Qemu.guestContent(top);
        Qemu.Result q = Qemu.exec(dir, "qemu-img", "commit", "-p", "-r", "1M", "theirs-t.qcow2");
        long started = System.nanoTime();
        Qemu.Result o = Cli.run("commit", "-p", "-r", "1M", top.toString());
        long millis = (System.nanoTime() - started) / 1_000_000;
        assertThat(o.exit()).as(o.err()).isEqualTo(q.exit()).isZero();
        assertThat(q.out()).contains("/100%)\r");
        assertThat(o.out()).isEqualTo(q.out().replaceAll(" *\\(\\d+\\.\\d\\d/100%\\)\r", "").replaceFirst("^\n", ""))
                .isEqualTo("Image committed.\n");
        assertThat(millis).as("2 MiB at 1 MiB/s").isGreaterThanOrEqualTo(900);
        for (String layer : List.of("b", "t")) {
            Qemu.requireClean(dir.resolve("ours-" + layer + ".qcow2"), layer);
            assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours-" + layer + ".qcow2", "theirs-" + layer + ".qcow2")
                    .exit()).as(layer).isZero();
        }
        assertThat(Qemu.guestContent(base)).isEqualTo(guest);
    }

    @Test
    void errorsAsQemuImg() throws IOException {
        chain("ours", "cluster_size=65536");
        byte[] before = Files.readAllBytes(dir.resolve("ours-t.qcow2"));
        Qemu.Result q = Qemu.exec(dir, "qemu-img", "commit", "ours-b.qcow2");
        Qemu.Result o = Cli.run("commit", dir.resolve("ours-b.qcow2").toString());
        assertThat(o.exit()).isEqualTo(q.exit()).isEqualTo(1);
        assertThat(o.err().replace("qcow2j: ", "")).isEqualTo(q.err().replace("qemu-img: ", ""));
        o = Cli.run("commit", "-b", "nope", dir.resolve("ours-t.qcow2").toString());
        assertThat(o.exit()).isEqualTo(1);
        assertThat(o.err()).isEqualTo("qcow2j: Did not find 'nope' in the backing chain of '" + dir.resolve("ours-t.qcow2")
                + "'\n");
        assertThat(Files.readAllBytes(dir.resolve("ours-t.qcow2"))).isEqualTo(before);
    }

    /** {@code qemu-img snapshot -l} of {@code name} with the dates taken out (twins' snapshots are made apart). */
    static String snapshotsWithoutDates(Path dir, String name) {
        return Qemu.img(dir, "snapshot", "-l", name).replaceAll("\\d{4}-\\d\\d-\\d\\d \\S+", "D");
    }
}
