package io.qcow2j.cli;

import io.qcow2j.ffm.RawDeflater;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code qcow2j convert -O qcow2 [-c]} against {@code qemu-img convert} with the same flags: qemu-img compare
 * finds source and output identical, qemu-img check finds the output clean, the file is within 10% of
 * qemu-img's, and compressed output has compressed clusters.
 */
@Timeout(value = 300, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class Qcow2ConvertTest {
    @TempDir
    static Path dir;
    static Map<String, Path> images = new LinkedHashMap<>();

    @BeforeAll
    static void makeImages() throws Exception {
        images.putAll(TestImages.all(dir));
    }

    static Stream<Arguments> cases() {
        List<Arguments> l = new ArrayList<>();
        String[][] flags = {{}, {"-c"}, {"-c", "-o", "compression_type=zstd"}, {"-W", "-m", "4"},
            {"-o", "cluster_size=4k,refcount_bits=1"}, {"-o", "extended_l2=on"}, {"-S", "0", "-m", "1"}};
        for (Map.Entry<String, Path> e : images.entrySet()) {
            for (String[] f : flags) {
                l.add(Arguments.of(e.getKey(), e.getValue(), f));
            }
        }
        return l.stream();
    }

    @ParameterizedTest(name = "{0} {2}")
    @MethodSource("cases")
    void outputEqualsSourceAndQemuImgs(String name, Path image, String[] flags) throws Exception {
        String tag = Integer.toHexString(String.join(" ", flags).hashCode());
        Path ours = dir.resolve(image.getFileName() + "." + tag + ".qcow2j.qcow2");
        Path qemu = dir.resolve(image.getFileName() + "." + tag + ".qemu.qcow2");
        List<String> args = new ArrayList<>(List.of("convert", "-O", "qcow2"));
        args.addAll(List.of(flags));
        args.add(image.toString());
        Qemu.Result r = Cli.run(concat(args, ours.toString()));
        assertThat(r.err()).isEmpty();
        assertThat(r.exit()).isZero();
        List<String> q = new ArrayList<>(List.of("qemu-img"));
        q.addAll(args);
        Qemu.run(dir, concat(q, qemu.toString()));
        assertThat(Qemu.exec(dir, "qemu-img", "compare", image.toString(), ours.toString()).out())
                .isEqualTo("Images are identical.\n");
        Qemu.Check check = Qemu.requireClean(ours, name);
        long mine = Files.size(ours);
        long theirs = Files.size(qemu);
        assertThat((double) mine).as("file size vs qemu-img's %d", theirs).isBetween(theirs * 0.9, theirs * 1.1 + 65536 * 4);
        if (List.of(flags).contains("-c") && check.output().contains("compressed clusters")) {
            assertThat(Qemu.check(qemu).output()).contains("compressed clusters");
        }
        // and we read it back the same
        assertThat(Cli.run("compare", image.toString(), ours.toString()).out()).isEqualTo("Images are identical.\n");
    }

    @Test
    void compressedOutputHasCompressedClustersForQemu() {
        Path src = Qemu.create(dir, "text.qcow2", null, "8M");
        Qemu.io(src, "write -s /etc/services 0 1M", "write -P 7 4M 1M");
        Path out = dir.resolve("text.c.qcow2");
        Cli.ok("convert", "-c", "-O", "qcow2", src.toString(), out.toString());
        assertThat(Qemu.requireClean(out, "compressed").output()).contains("100.00% compressed clusters");
        assertThat(Qemu.img(dir, "compare", src.toString(), out.toString())).isEqualTo("Images are identical.\n");
    }

    /**
     * zlib through the system's library with QEMU's parameters (window bits -12, memLevel 9, default level)
     * and QEMU's layout: the whole output file is qemu-img's, byte for byte, but for the few bytes qemu-img
     * adds to end the file on a 512-byte sector.
     */
    @Test
    void compressedOutputIsQemuImgsByteForByte() throws Exception {
        assumeTrue(RawDeflater.available(), "no system zlib: the java.util.zip fallback writes other streams");
        byte[] line = "qcow2j\t4242/tcp\t# a line of text, not quite repeating: ".getBytes(StandardCharsets.US_ASCII);
        byte[] raw = new byte[6 << 20];
        SplittableRandom rnd = new SplittableRandom(5);
        for (int i = 0; i < (2 << 20); i++) { // 2 MiB text, 1 MiB random, 1 MiB zeros, 2 MiB mixed
            raw[i] = (byte) (i % 997 == 0 ? 'a' + rnd.nextInt(26) : line[i % line.length]);
        }
        byte[] noise = new byte[1 << 20];
        rnd.nextBytes(noise);
        System.arraycopy(noise, 0, raw, 2 << 20, noise.length);
        for (int i = 4 << 20; i < raw.length; i++) { // letters from 16: literals only, blocks split by memLevel
            raw[i] = (byte) (i % 2 == 0 ? 'a' + rnd.nextInt(16) : line[(i / 3) % line.length]);
        }
        Path rawFile = dir.resolve("mixed.raw");
        Files.write(rawFile, raw);
        Path src = dir.resolve("mixed.qcow2");
        Qemu.run(dir, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", rawFile.toString(), src.toString());
        Path ours = dir.resolve("mixed.c.qcow2j.qcow2");
        Path qemu = dir.resolve("mixed.c.qemu.qcow2");
        Cli.ok("convert", "-c", "-O", "qcow2", src.toString(), ours.toString());
        Qemu.run(dir, "qemu-img", "convert", "-c", "-O", "qcow2", src.toString(), qemu.toString());
        assertThat(Qemu.img(dir, "compare", src.toString(), ours.toString())).isEqualTo("Images are identical.\n");
        assertThat(Qemu.requireClean(ours, "mixed -c").output()).contains("compressed clusters");
        byte[] a = Files.readAllBytes(ours);
        byte[] b = Files.readAllBytes(qemu);
        assertThat(b.length).isEqualTo((a.length + 511) / 512 * 512);
        assertThat(Arrays.copyOf(b, a.length)).as("qcow2j's file against qemu-img's").isEqualTo(a);
    }

    @Test
    void backingOutputHoldsOnlyTheTopImage() throws Exception {
        Path base = Qemu.create(dir, "base.qcow2", null, "16M");
        Qemu.io(base, "write -P 1 0 8M");
        Path top = Qemu.create(dir, "top.qcow2", null, null, "-b", "base.qcow2", "-F", "qcow2");
        Qemu.io(top, "write -P 2 1M 64k", "write -z 2M 64k");
        Path out = dir.resolve("top.B.qcow2");
        Cli.ok("convert", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2", top.toString(), out.toString());
        Qemu.requireClean(out, "-B");
        assertThat(Qemu.img(dir, "compare", top.toString(), out.toString())).isEqualTo("Images are identical.\n");
        assertThat(Files.size(out)).isLessThan(1 << 20);
        Map<String, Object> info = Qemu.info(out);
        assertThat(info.get("backing-filename")).isEqualTo("base.qcow2");
    }

    @Test
    void concatenatedSourcesAndExistingTarget() {
        Path a = Qemu.create(dir, "cat-a.qcow2", null, "1M");
        Qemu.io(a, "write -P 3 0 1M");
        Path b = Qemu.create(dir, "cat-b.qcow2", "cluster_size=4096", "1536k");
        Qemu.io(b, "write -P 4 512k 4k");
        Path ours = dir.resolve("cat.ours.qcow2");
        Path qemu = dir.resolve("cat.qemu.qcow2");
        Cli.ok("convert", "-O", "qcow2", a.toString(), b.toString(), ours.toString());
        Qemu.img(dir, "convert", "-O", "qcow2", a.toString(), b.toString(), qemu.toString());
        assertThat(Qemu.img(dir, "compare", "-s", qemu.toString(), ours.toString())).isEqualTo("Images are identical.\n");
        Path target = Qemu.create(dir, "n.qcow2", null, "2560k");
        Qemu.io(target, "write -P 9 0 2560k");
        Cli.ok("convert", "-n", "-O", "qcow2", a.toString(), b.toString(), target.toString());
        Qemu.requireClean(target, "-n");
        assertThat(Qemu.img(dir, "compare", qemu.toString(), target.toString())).isEqualTo("Images are identical.\n");
    }

    @Test
    void hostileSourceFailsInOneLineAndLeavesNoOutput() throws Exception {
        Path bad = Qemu.create(dir, "hostile.qcow2", null, "4M");
        Qemu.io(bad, "write -P 1 0 1M");
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(bad,
                java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8);
            ch.read(b, 40); // l1_table_offset
            long l1 = b.flip().getLong();
            // L1 entry 0 names an L2 table at a misaligned offset: a corrupt image
            ch.write(java.nio.ByteBuffer.allocate(8).putLong(0, 0x8000000000012345L), l1);
        }
        Path out = dir.resolve("from-corrupt.qcow2");
        Qemu.Result r = Cli.run("convert", "-O", "qcow2", bad.toString(), out.toString());
        assertThat(r.exit()).isNotZero();
        assertThat(r.err().strip()).doesNotContain("\n").doesNotContain("Exception").startsWith("qcow2j: ");
        assertThat(out).doesNotExist();
    }

    private static String[] concat(List<String> l, String last) {
        List<String> c = new ArrayList<>(l);
        c.add(last);
        return c.toArray(String[]::new);
    }
}
