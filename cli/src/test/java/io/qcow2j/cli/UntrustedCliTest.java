package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The global {@code --untrusted} flag: the report ({@code qemu-img create -u -b /host/secret -F raw}
 * then {@code convert -O raw} copied the host file out) is reproduced without the flag and refused with it, by
 * every command that opens an image, before or after the subcommand name.
 */
class UntrustedCliTest {
    @TempDir
    Path tmp;
    Path dir;
    Path secret;
    String evil;

    @BeforeEach
    void setUp() throws IOException {
        secret = Files.write(tmp.resolve("secret.raw"), Arrays.copyOf("TOP SECRET".getBytes(StandardCharsets.US_ASCII),
                1 << 20));
        dir = Files.createDirectory(tmp.resolve("uploads"));
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", secret.toString(), "-F", "raw",
                "evil.qcow2", "1M");
        evil = dir.resolve("evil.qcow2").toString();
    }

    private void refused(String... args) {
        Qemu.Result r = Cli.run(args);
        assertThat(r.exit()).as(String.join(" ", args)).isEqualTo(1);
        assertThat(r.err().strip()).startsWith("qcow2j: ").contains(secret.toString(), "untrusted")
                .doesNotContain("\n");
    }

    @Test
    void convertCopiesTheHostFileWithoutTheFlagAndIsRefusedWithIt() throws IOException {
        Path out = dir.resolve("out.raw");
        Cli.ok("convert", "-O", "raw", evil, out.toString());
        assertThat(Arrays.equals(Files.readAllBytes(out), Files.readAllBytes(secret))).isTrue(); // as qemu-img
        Files.delete(out);
        refused("--untrusted", "convert", "-O", "raw", evil, out.toString());
        refused("convert", "--untrusted", "-O", "raw", evil, out.toString());
        assertThat(out).doesNotExist();
    }

    @Test
    void everyCommandThatOpensAnImageRefusesIt() {
        refused("--untrusted", "info", evil);
        refused("--untrusted", "info", "--backing-chain", evil);
        refused("--untrusted", "map", evil);
        refused("--untrusted", "check", evil);
        refused("--untrusted", "check", "-r", "leaks", evil);
        // serve opens the image before it listens: refused before any client can read the host file
        refused("--untrusted", "serve", "-p", "0", evil);
        refused("serve", "--untrusted", "-r", "-k", dir.resolve("nbd.sock").toString(), evil);
        // compare: qemu-img compare's exit status 2 for an error
        Qemu.Result c = Cli.run("--untrusted", "compare", evil, secret.toString());
        assertThat(c.exit()).isEqualTo(2);
        assertThat(c.err().strip()).startsWith("qcow2j: ").contains(secret.toString(), "untrusted").doesNotContain("\n");
        // io prints its errors to System.err as qemu-io does (IoCommandTest reads them from a real process)
        assertThat(Cli.run("io", "-r", "-c", "read 0 16", evil).exit()).isZero();
        assertThat(Cli.run("--untrusted", "io", "-c", "read 0 16", evil).exit()).isEqualTo(1);
        assertThat(Cli.run("--untrusted", "io", "-r", "-c", "read 0 16", evil).exit()).isEqualTo(1);
    }

    @Test
    void theFlagDoesNotOutliveItsRunAndGoodChainsStillOpen() {
        refused("--untrusted", "map", evil);
        assertThat(Cli.ok("map", "--output=json", evil)).contains("\"data\": true"); // trusted again
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        assertThat(Cli.ok("--untrusted", "info", "--backing-chain", dir.resolve("top.qcow2").toString()))
                .contains("base.qcow2");
    }
}
