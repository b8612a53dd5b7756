package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code create -o preallocation=…} and {@code convert -O qcow2 -o preallocation=…} side by side with
 * qemu-img on twins (metadata, falloc and full; standard and extended L2; with a backing file where QEMU allows
 * it): exit status 0, {@code qemu-img check} clean, {@code compare} equal, the same kind of allocation in
 * {@code qemu-img map} (metadata: holes reading as zeros; falloc and full: allocated data) and the file's
 * blocks ({@code stat %b}) within 1/8 + 128 KiB of qemu-img's.
 */
class PreallocationTwinsTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"create|metadata|", "create|falloc|", "create|full|", "create|falloc|,extended_l2=on",
        "create|full|,extended_l2=on,cluster_size=16384", "create|falloc|,extended_l2=on,backing_file=base.qcow2,backing_fmt=qcow2",
        "create|metadata|,extended_l2=on,backing_file=base.qcow2,backing_fmt=qcow2",
        "convert|metadata|", "convert|falloc|", "convert|full|,extended_l2=on"})
    void sameAsQemuImg(String spec) throws IOException {
        String[] p = spec.split("\\|", -1);
        Path base = Qemu.create(dir, "base.qcow2", "", "3M");
        Qemu.io(base, "write -P 5 0 3M");
        Path src = Qemu.create(dir, "src.qcow2", "", "3M");
        // whole clusters of data: convert writes a partly written cluster whole (its zeros too), where qemu-img
        // writes only the data, which map shows on a preallocated target (a convert difference, not a
        // preallocation one)
        Qemu.io(src, "write -P 1 64k 64k", "write -z 1M 64k", "write -P 2 2M 64k");
        String opts = "preallocation=" + p[1] + p[2];
        for (String side : List.of("ours", "theirs")) {
            List<String> args = new ArrayList<>(side.equals("ours") ? List.of() : List.of("qemu-img"));
            String out = dir.resolve(side + ".qcow2").toString();
            if (p[0].equals("create")) {
                args.addAll(List.of("create", "-q", "-f", "qcow2", "-o", opts, out, "3M"));
            } else {
                args.addAll(List.of("convert", "-O", "qcow2", "-o", opts, src.toString(), out));
            }
            Qemu.Result r = side.equals("ours") ? Cli.run(args.toArray(String[]::new))
                    : Qemu.exec(dir, args.toArray(String[]::new));
            assertThat(r.exit()).as(spec + " " + side + ": " + r.err()).isZero();
        }
        Path o = dir.resolve("ours.qcow2");
        Path t = dir.resolve("theirs.qcow2");
        Qemu.requireClean(o, spec);
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "ours.qcow2", "theirs.qcow2").exit()).as(spec).isZero();
        assertThat(ResizeCommandTest.allocation(dir, o)).as(spec).isEqualTo(ResizeCommandTest.allocation(dir, t));
        long ours = ResizeCommandTest.blocks(dir, o);
        long theirs = ResizeCommandTest.blocks(dir, t);
        assertThat(Math.abs(ours - theirs)).as(spec + ": %d blocks, qemu-img's %d", ours, theirs)
                .isLessThanOrEqualTo(theirs / 8 + 256);
    }
}
