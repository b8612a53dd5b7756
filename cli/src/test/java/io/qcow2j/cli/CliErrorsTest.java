package io.qcow2j.cli;

import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Failures of info, map and convert: one line on stderr ({@code qcow2j: ...}), nothing on stdout, exit
 * status 1, no stack trace; and qemu-img fails on the same arguments too.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CliErrorsTest {
    @TempDir
    static Path dir;
    static String img;
    static String raw;

    @BeforeAll
    static void makeImages() throws IOException {
        img = Qemu.create(dir, "ok.qcow2", null, "1M").toString();
        raw = dir.resolve("plain.raw").toString();
        Files.write(Path.of(raw), new byte[65536]);
        Files.createDirectory(dir.resolve("folder"));
        Qemu.img(dir, "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", "orphan.qcow2", "1M");
        Qemu.img(dir, "create", "-q", "-f", "qcow2", "-u", "-b", "loop2.qcow2", "-F", "qcow2", "loop1.qcow2", "1M");
        Qemu.img(dir, "create", "-q", "-f", "qcow2", "-u", "-b", "loop1.qcow2", "-F", "qcow2", "loop2.qcow2", "1M");
    }

    static Stream<Arguments> failures() {
        String missing = dir.resolve("missing.qcow2").toString();
        String out = dir.resolve("out.raw").toString();
        String folder = dir.resolve("folder").toString();
        String orphan = dir.resolve("orphan.qcow2").toString();
        String loop = dir.resolve("loop1.qcow2").toString();
        return Stream.of(
                failure("Could not open '" + missing + "': No such file or directory", "info", missing),
                failure("Could not open '" + missing + "': No such file or directory", "map", missing),
                failure("Could not open '" + missing + "': No such file or directory", "convert", "-O", "raw", missing, out),
                failure("Could not open '" + raw + "': Image is not in qcow2 format", "info", "-f", "qcow2", raw),
                failure("Could not open '" + raw + "': Image is not in qcow2 format", "map", "-f", "qcow2", raw),
                failure("Could not open '" + raw + "': Image is not in qcow2 format", "convert", "-f", "qcow2", raw, out),
                failure("Could not open '" + folder + "': 'file' driver requires '" + folder + "' to be a regular file",
                        "info", folder),
                failure("Could not open '" + orphan + "': Could not open backing file: Could not open '"
                        + dir.resolve("gone.qcow2") + "': No such file or directory", "map", orphan),
                failure("Backing file '" + loop + "' creates an infinite loop.", "info", "--backing-chain", loop),
                failure("--output must be used with human or json as argument.", "info", "--output=xml", img),
                failure("--output must be used with human or json as argument.", "map", "--output=yaml", img),
                failure("Invalid start offset specified. You may use k, M, G, T, P or E suffixes for kilobytes,"
                        + " megabytes, gigabytes, terabytes, petabytes and exabytes.", "map", "--start-offset=abc", img),
                failure("Invalid max length specified. You may use k, M, G, T, P or E suffixes for kilobytes,"
                        + " megabytes, gigabytes, terabytes, petabytes and exabytes.", "map", "--max-length=-5", img),
                failure("Could not open 'driver=qcow2,file.filename=" + img + ",l2-cache-size=xx': l2-cache-size: 'xx'"
                        + " is not a size (a number with an optional suffix k, M, G, T, P or E)",
                        "info", "--image-opts", "driver=qcow2,file.filename=" + img + ",l2-cache-size=xx"),
                failure("Could not open 'driver=qcow2,file.filename=" + img + ",bogus=1': Block format 'qcow2' does not"
                        + " support the option 'bogus'", "map", "--image-opts", "driver=qcow2,file.filename=" + img + ",bogus=1"),
                failure("Could not open '" + img + "': Unknown driver 'nosuch'", "info", "-f", "nosuch", img),
                failure("Could not open 'driver=qcow2,file.filename=" + img + ",l2-cache-entry-size=3': L2 cache entry"
                        + " size must be a power of two between 512 and the cluster size (65536)",
                        "info", "--image-opts", "driver=qcow2,file.filename=" + img + ",l2-cache-entry-size=3"),
                failure("Could not open 'driver=qcow2,file.filename=" + img + ",l2-cache-entry-size=3': L2 cache entry"
                        + " size must be a power of two between 512 and the cluster size (65536)",
                        "map", "--image-opts", "driver=qcow2,file.filename=" + img + ",l2-cache-entry-size=3"),
                failure("Could not open 'driver=qcow2,file.filename=" + missing + "': Could not open '" + missing
                        + "': No such file or directory", "map", "--image-opts", "driver=qcow2,file.filename=" + missing),
                failure("Could not open 'driver=qcow2,file.filename=" + raw + "': Image is not in qcow2 format",
                        "info", "--image-opts", "driver=qcow2,file.filename=" + raw),
                failure("Could not open 'driver=qcow2,file.filename=" + orphan + "': Could not open backing file: Could"
                        + " not open '" + dir.resolve("gone.qcow2") + "': No such file or directory",
                        "convert", "--image-opts", "driver=qcow2,file.filename=" + orphan, out),
                failure("Invalid cache option: bogus", "convert", "-t", "bogus", img, out),
                failure("Invalid cache option: sometimes", "convert", "-T", "sometimes", img, out),
                failure("Invalid parameter 'foo'", "convert", "-O", "raw", "-o", "foo=bar", img, out),
                failure(out + ": error while converting raw: invalid parameter value: bogus",
                        "convert", "-O", "raw", "-o", "preallocation=bogus", img, out),
                failure("Unknown file format 'nosuch'", "convert", "-O", "nosuch", img, out));
    }

    private static Arguments failure(String message, String... args) {
        return Arguments.of(String.join(" ", args), message, args);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("failures")
    void oneLineExitOne(String label, String message, String[] args) throws IOException {
        Qemu.Result r = Cli.run(args);
        assertThat(r.err()).isEqualTo("qcow2j: " + message + "\n");
        assertThat(r.out()).isEmpty();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(dir.resolve("out.raw")).as("nothing created").doesNotExist();
        List<String> cmd = new ArrayList<>(List.of("qemu-img"));
        cmd.addAll(List.of(args));
        assertThat(Qemu.exec(dir, cmd.toArray(String[]::new)).exit()).as("qemu-img fails too").isEqualTo(1);
        Files.deleteIfExists(dir.resolve("out.raw")); // qemu-img creates it before it checks -t
    }

    @Test
    void badQcow2OutputOptionsAreOneLineAndCreateNothing() {
        Qemu.Result r = Cli.run("convert", "-O", "qcow2", "-o", "cluster_size=3000", img, dir.resolve("x.qcow2").toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).startsWith("qcow2j: ").endsWith("\n").doesNotContain("Exception");
        assertThat(r.err().strip()).doesNotContain("\n");
        assertThat(dir.resolve("x.qcow2")).doesNotExist();
        Qemu.Result m = Cli.run("convert", "-O", "qcow2", "-m", "17", img, dir.resolve("x.qcow2").toString());
        assertThat(m.err()).isEqualTo("qcow2j: Invalid number of coroutines. Allowed number of coroutines is between 1"
                + " and 16\n");
    }

    @Test
    void rawSourcesAreRefusedInOneLine() {
        Qemu.Result r = Cli.run("map", "-f", "raw", raw);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).isEqualTo("qcow2j: Could not open '" + raw
                + "': format 'raw' is not supported (qcow2j opens qcow2 images)\n");
    }
}
