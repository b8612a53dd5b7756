package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Raw guest disks as sources of {@code convert}, {@code compare} and {@code measure}, with {@code -f raw} and
 * through qemu-img's probe (no {@code -f}: a file without the qcow2 magic is raw), side by side with
 * qemu-img: outputs compare equal to the source and check clean, exit codes and lines are qemu-img's.
 */
@Timeout(value = 300, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class RawSourceTest {
    @TempDir
    static Path dir;
    static Path raw;
    static Path rawOther;
    static Path qcow2;

    /** A sparse raw disk: random data, a run of written zeros, holes, a tail that is not cluster-aligned. */
    @BeforeAll
    static void makeImages() throws IOException {
        raw = dir.resolve("disk.raw");
        byte[] data = new byte[3 << 20];
        new Random(7).nextBytes(data);
        try (RandomAccessFile f = new RandomAccessFile(raw.toFile(), "rw")) {
            f.setLength((9L << 20) + 1536);
            f.seek(0);
            f.write(data, 0, 1 << 20);
            f.seek(2L << 20);
            f.write(new byte[1 << 20]); // allocated zeros
            f.seek(5L << 20);
            f.write(data, 1 << 20, 2 << 20);
            f.seek((9L << 20) + 512);
            f.write(data, 0, 1024);
        }
        rawOther = dir.resolve("other.raw");
        Qemu.exec(dir, "cp", raw.toString(), rawOther.toString());
        try (RandomAccessFile f = new RandomAccessFile(rawOther.toFile(), "rw")) {
            f.seek((6L << 20) + 4097);
            f.write(0x5a);
        }
        qcow2 = Qemu.create(dir, "q.qcow2", null, "4M");
        Qemu.io(qcow2, "write -P 3 64k 128k");
    }

    @Test
    void convertReadsRawSourcesWithAndWithoutFormat() {
        for (List<String> flags : List.of(List.of("-f", "raw"), List.<String>of(), List.of("-c"), List.of("-m", "4", "-W"))) {
            Path out = dir.resolve("out" + String.join("", flags).replace("-", "_") + ".qcow2");
            Qemu.Result r = Cli.run(args("convert", flags, "-O", "qcow2", raw.toString(), out.toString()));
            assertThat(r.exit()).as("%s: %s", flags, r.err()).isZero();
            assertThat(Qemu.exec(dir, "qemu-img", "compare", "-f", "raw", "-F", "qcow2", raw.toString(), out.toString())
                    .exit()).as("%s", flags).isZero();
            assertThat(Qemu.exec(dir, "qemu-img", "check", out.toString()).exit()).as("%s", flags).isZero();
        }
        Path twin = dir.resolve("twin.qcow2");
        Qemu.exec(dir, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(), twin.toString());
        assertThat(Qemu.exec(dir, "qemu-img", "info", "--output=json", dir.resolve("out.qcow2").toString()).out()
                .replaceAll("\"(filename|actual-size|dirty-flag)\": [^,\\n]*", ""))
                .as("what qemu-img allocated, we allocated")
                .isEqualTo(Qemu.exec(dir, "qemu-img", "info", "--output=json", twin.toString()).out()
                        .replaceAll("\"(filename|actual-size|dirty-flag)\": [^,\\n]*", ""));
        assertThat(Qemu.exec(dir, "qemu-img", "map", "--output=json", dir.resolve("out.qcow2").toString()).out()
                .replaceAll("\"offset\": \\d+", ""))
                .isEqualTo(Qemu.exec(dir, "qemu-img", "map", "--output=json", twin.toString()).out()
                        .replaceAll("\"offset\": \\d+", ""));
    }

    @Test
    void rawAndQcow2SourcesConcatenateAndRawOutputIsTheSameBytes() throws IOException {
        Path cat = dir.resolve("cat.qcow2");
        assertThat(Cli.run("convert", "-O", "qcow2", qcow2.toString(), raw.toString(), cat.toString()).exit()).isZero();
        Path qcat = dir.resolve("qcat.qcow2");
        Qemu.exec(dir, "qemu-img", "convert", "-O", "qcow2", qcow2.toString(), raw.toString(), qcat.toString());
        assertThat(Qemu.exec(dir, "qemu-img", "compare", cat.toString(), qcat.toString()).out())
                .isEqualTo("Images are identical.\n");
        Path back = dir.resolve("back.raw");
        assertThat(Cli.run("convert", "-f", "raw", "-O", "raw", raw.toString(), back.toString()).exit()).isZero();
        assertThat(Qemu.exec(dir, "cmp", raw.toString(), back.toString()).exit()).isZero();
    }

    @Test
    void compareOfRawDisksIsQemuImgs() {
        Path q = dir.resolve("cmp.qcow2");
        Qemu.exec(dir, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw.toString(), q.toString());
        for (String[] pair : new String[][] {{raw.toString(), q.toString()}, {raw.toString(), rawOther.toString()},
                {q.toString(), rawOther.toString()}, {raw.toString(), qcow2.toString()}}) {
            for (List<String> flags : List.of(List.<String>of(), List.of("-s"))) {
                Qemu.Result want = Qemu.exec(dir, qemuImg(args("compare", flags, pair[0], pair[1])));
                Qemu.Result got = Cli.run(args("compare", flags, pair[0], pair[1]));
                assertThat(got.exit()).as("%s %s %s", flags, pair[0], pair[1]).isEqualTo(want.exit());
                assertThat(got.out()).as("%s %s %s", flags, pair[0], pair[1]).isEqualTo(want.out());
            }
        }
        Qemu.Result mismatch = Cli.run("compare", "-f", "raw", "-F", "raw", raw.toString(), rawOther.toString());
        assertThat(mismatch.exit()).isEqualTo(1);
        assertThat(mismatch.out()).isEqualTo("Content mismatch at offset " + ((6L << 20) + 4096) + "!\n");
    }

    @Test
    void measureOfARawSourceIsQemuImgs() {
        for (String o : new String[] {"cluster_size=65536", "cluster_size=4096", "cluster_size=2M,extended_l2=on",
                "refcount_bits=1"}) {
            Qemu.Result want = Qemu.exec(dir, "qemu-img", "measure", "-O", "qcow2", "-o", o, "--output=json",
                    raw.toString());
            Qemu.Result got = Cli.run("measure", "-O", "qcow2", "-o", o, "--output=json", raw.toString());
            assertThat(got.exit()).as(o).isZero();
            assertThat(got.out()).as(o).isEqualTo(want.out());
        }
    }

    @Test
    void aQcow2FileNamedRawAndSnapshotsOfRawAreRefusedInOneLine() {
        Qemu.Result r = Cli.run("convert", "-f", "raw", "-O", "qcow2", qcow2.toString(), dir.resolve("x.qcow2").toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("qcow2j: Could not open '" + qcow2
                + "': -f raw on a qcow2 image is not supported (qcow2j would open it as qcow2)\n");
        assertThat(dir.resolve("x.qcow2")).doesNotExist();
        Qemu.Result l = Cli.run("convert", "-l", "s1", "-O", "qcow2", raw.toString(), dir.resolve("y.qcow2").toString());
        Qemu.Result ql = Qemu.exec(dir, "qemu-img", "convert", "-l", "s1", "-O", "qcow2", raw.toString(),
                dir.resolve("qy.qcow2").toString());
        assertThat(l.exit()).isEqualTo(ql.exit()).isEqualTo(1);
        assertThat(l.err()).isEqualTo(ql.err().replace("qemu-img: ", "qcow2j: "));
        assertThat(Cli.run("convert", "-f", "qcow2", "-O", "qcow2", raw.toString(), dir.resolve("z.qcow2").toString())
                .err()).isEqualTo("qcow2j: Could not open '" + raw + "': Image is not in qcow2 format\n");
    }

    private static String[] qemuImg(String[] args) {
        String[] a = new String[args.length + 1];
        a[0] = "qemu-img";
        System.arraycopy(args, 0, a, 1, args.length);
        return a;
    }

    private static String[] args(String command, List<String> flags, String... rest) {
        String[] a = new String[1 + flags.size() + rest.length];
        a[0] = command;
        for (int i = 0; i < flags.size(); i++) {
            a[1 + i] = flags.get(i);
        }
        System.arraycopy(rest, 0, a, 1 + flags.size(), rest.length);
        return a;
    }
}
