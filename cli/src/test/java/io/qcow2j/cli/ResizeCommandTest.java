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

    /**
     * Where qemu-img refuses a resize because of internal snapshots (a version 2 image: its snapshot entries
     * have no disk size of their own), growing and shrinking: the same exit status and error line, and the
     * image unchanged byte for byte. Version 3 images with snapshots are resized (ResizeTest).
     */
    @Test
    void refusedWithSnapshotsAsQemuImg() throws IOException {
        Path ours = Qemu.create(dir, "ours.qcow2", "compat=0.10,cluster_size=65536", "1M");
        Qemu.io(ours, "write -P 1 0 1M");
        Qemu.img(dir, "snapshot", "-c", "s", "ours.qcow2");
        Files.copy(ours, dir.resolve("theirs.qcow2"));
        byte[] before = Files.readAllBytes(ours);
        for (List<String> c : List.of(List.of("IMG.qcow2", "+1M"), List.of("--shrink", "IMG.qcow2", "512k"),
                List.of("--preallocation=full", "IMG.qcow2", "2M"))) {
            Qemu.Result qemu = Qemu.exec(dir, with("qemu-img", "theirs", c));
            Qemu.Result r = Cli.run(with(null, dir + "/ours", c));
            String what = String.join(" ", c);
            assertThat(qemu.exit()).as(what).isEqualTo(1);
            assertThat(r.exit()).as(what).isEqualTo(1);
            assertThat(errors(r.err())).as(what).isEqualTo(errors(qemu.err()))
                    .containsExactly("Can't resize a v2 image which has snapshots");
            assertThat(Files.readAllBytes(ours)).as(what + ": unchanged").isEqualTo(before);
        }
    }

    /**
     * {@code --preallocation=metadata|falloc|full} on twins: qcow2 (with and without extended L2, with a
     * backing file that ends at the old size, and with one that reaches past it and must not show through, from
     * a cluster-aligned and an unaligned old size) and raw; the same status and messages (a shrink and raw
     * metadata are refused), the same virtual size, {@code qemu-img check} clean and {@code compare} equal, the
     * same kind of allocation in {@code qemu-img map} (depth, present, data, zero, whether an offset is given:
     * metadata leaves the new clusters holes, reading as zeros; falloc and full allocate them) and the file's
     * blocks ({@code stat %b}) within 1/8 + 128 KiB of qemu-img's.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"metadata|IMG.qcow2|2M", "falloc|IMG.qcow2|2M",
        "full|IMG.qcow2|+1M", "metadata|IMG.top.qcow2|2M", "falloc|IMG.top.qcow2|2M", "full|--shrink|IMG.qcow2|512k",
        "metadata|IMG.small.qcow2|2M", "falloc|IMG.small.qcow2|2M", "full|IMG.small.qcow2|2M", "off|IMG.small.qcow2|2M",
        "metadata|IMG.odd.qcow2|2M", "falloc|IMG.odd.qcow2|2M", "off|IMG.odd.qcow2|2M",
        "x:metadata|IMG.qcow2|2M", "x:falloc|IMG.qcow2|2M", "x:metadata|IMG.small.qcow2|2M",
        "x:full|IMG.small.qcow2|2M", "x:metadata|IMG.top.qcow2|2M",
        "falloc|-f|raw|IMG.raw|2M", "full|-f|raw|IMG.raw|2M", "metadata|-f|raw|IMG.raw|2M"})
    void preallocationSameAsQemuImg(String spec) throws IOException {
        boolean ext = spec.startsWith("x:");
        String opts = "cluster_size=65536" + (ext ? ",extended_l2=on" : "");
        for (String side : List.of("ours", "theirs")) {
            Qemu.create(dir, side + ".qcow2", opts, "1M");
            Qemu.io(dir.resolve(side + ".qcow2"), "write -P 1 0 64k", "write -P 2 768k 64k");
            String backing = opts + ",backing_file=" + side + ".qcow2,backing_fmt=qcow2";
            Qemu.create(dir, side + ".top.qcow2", backing, null);
            Qemu.create(dir, side + ".small.qcow2", backing, "512k"); // the backing file reaches past its end
            Qemu.create(dir, side + ".odd.qcow2", backing, "524800"); // and the end is inside a cluster
            Qemu.img(dir, "create", "-q", "-f", "raw", side + ".raw", "1M");
        }
        String[] parts = spec.substring(ext ? 2 : 0).split("\\|");
        List<String> args = new java.util.ArrayList<>(List.of("--preallocation=" + parts[0]));
        args.addAll(List.of(parts).subList(1, parts.length));
        Qemu.Result qemu = Qemu.exec(dir, with("qemu-img", "theirs", args));
        Qemu.Result ours = Cli.run(with(null, dir + "/ours", args));
        assertThat(ours.exit()).as(spec + ours.err()).isEqualTo(qemu.exit());
        assertThat(errors(ours.err())).as(spec).isEqualTo(errors(qemu.err()));
        String image = args.stream().filter(a -> a.startsWith("IMG")).findFirst().orElseThrow();
        Path o = dir.resolve(image.replace("IMG", "ours"));
        Path t = dir.resolve(image.replace("IMG", "theirs"));
        long oursBlocks = blocks(dir, o);
        long theirBlocks = blocks(dir, t);
        if (image.endsWith(".raw")) {
            assertThat(Files.size(o)).as(spec).isEqualTo(Files.size(t));
            assertThat(oursBlocks >= 2048).as(spec + ": %d blocks allocated, qemu-img %d", oursBlocks, theirBlocks)
                    .isEqualTo(theirBlocks >= 2048);
            return;
        }
        assertThat(Qemu.info(o).get("virtual-size")).as(spec).isEqualTo(Qemu.info(t).get("virtual-size"));
        Qemu.requireClean(o, spec);
        assertThat(Qemu.exec(dir, "qemu-img", "compare", o.getFileName().toString(), t.getFileName().toString())
                .exit()).as(spec).isZero();
        assertThat(allocation(dir, o)).as(spec).isEqualTo(allocation(dir, t));
        assertThat(Math.abs(oursBlocks - theirBlocks)).as(spec + ": %d blocks, qemu-img's %d", oursBlocks, theirBlocks)
                .isLessThanOrEqualTo(theirBlocks / 8 + 256);
    }

    /** The map of {@code image} as (start, length, kind) runs, adjacent equal runs merged. */
    /** The file's allocated 512-byte blocks ({@code stat %b}). */
    static long blocks(Path dir, Path file) {
        return Long.parseLong(Qemu.run(dir, "stat", "-c", "%b", file.getFileName().toString()).strip());
    }

    static List<String> allocation(Path dir, Path image) {
        List<String> runs = new java.util.ArrayList<>();
        long start = 0;
        long end = 0;
        String key = null;
        for (Object e : io.qcow2j.testsupport.Json.array(Qemu.run(dir, "qemu-img", "map", "--output=json",
                image.getFileName().toString()))) {
            java.util.Map<?, ?> m = (java.util.Map<?, ?>) e;
            String k = m.get("depth") + "/present=" + m.get("present") + "/data=" + m.get("data") + "/zero="
                    + m.get("zero") + (m.containsKey("offset") ? "/offset" : "");
            long s = ((Number) m.get("start")).longValue();
            long len = ((Number) m.get("length")).longValue();
            if (!k.equals(key)) {
                if (key != null) {
                    runs.add(start + "+" + (end - start) + ":" + key);
                }
                key = k;
                start = s;
            }
            end = s + len;
        }
        runs.add(start + "+" + (end - start) + ":" + key);
        return runs;
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
