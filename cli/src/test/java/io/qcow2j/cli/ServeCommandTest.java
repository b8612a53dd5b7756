package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Pki;
import io.qcow2j.testsupport.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow2j serve} as a process: options, the ready line, SIGTERM, the exit without -t, bad options. */
class ServeCommandTest {
    @TempDir
    Path dir;

    @Test
    void sigtermFlushesClosesAndExitsZero() throws Exception {
        Path img = Qemu.create(dir, "a.qcow2", null, "16M");
        Path sock = dir.resolve("s.sock");
        Path pid = dir.resolve("serve.pid");
        try (ServeProcess s = ServeProcess.start(dir, "-k", sock.toString(), "-t", "-x", "disk", "--pid-file",
                pid.toString(), "--cache=writeback", img.toString())) {
            assertThat(s.ready).isEqualTo("qcow2j serve: serving '" + img + "' at nbd+unix:///disk?socket=" + sock);
            assertThat(Files.readString(pid).strip()).isEqualTo(Long.toString(s.process.pid()));
            String out = Qemu.run(dir, "qemu-io", "-f", "raw", "-c", "write -P 0x42 1M 256k", s.uri);
            assertThat(out).contains("wrote 262144/262144 bytes");
            // -t: the server outlives its client
            assertThat(Qemu.run(dir, "qemu-io", "-f", "raw", "-r", "-c", "read -P 0x42 1M 256k", s.uri))
                    .doesNotContain("fail");
            assertThat(s.terminate()).isZero();
        }
        assertThat(pid).doesNotExist();
        assertThat(sock).doesNotExist();
        Qemu.requireClean(img, "after SIGTERM");
        assertThat(Qemu.run(dir, "qemu-io", "-f", "qcow2", "-c", "read -P 0x42 1M 256k", img.toString()))
                .doesNotContain("fail");
    }

    @Test
    void sigintWhileAClientWritesStopsCleanly() throws Exception {
        Path img = Qemu.create(dir, "busy.qcow2", null, "64M");
        try (ServeProcess s = ServeProcess.start(dir, "-p", "0", "-t", img.toString())) {
            Process fio = new ProcessBuilder("fio", "--name=busy", "--ioengine=nbd", "--uri=" + s.uri,
                    "--rw=randwrite", "--bs=64k", "--iodepth=16", "--size=64M", "--time_based", "--runtime=60")
                    .redirectErrorStream(true).redirectOutput(dir.resolve("fio.out").toFile()).start();
            try {
                Thread.sleep(2000);
                assertThat(fio.isAlive()).as("fio is writing").isTrue();
                Qemu.run(dir, "kill", "-INT", Long.toString(s.process.pid()));
                assertThat(s.waitFor()).as("exit status after SIGINT").isZero();
                assertThat(fio.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)).as("fio sees the end").isTrue();
            } finally {
                fio.destroyForcibly();
            }
        }
        Qemu.requireClean(img, "after SIGINT during writes");
    }

    @Test
    void withoutPersistentTheServerExitsAfterTheLastClient() throws Exception {
        Path img = Qemu.create(dir, "b.qcow2", null, "1M");
        try (ServeProcess s = ServeProcess.start(dir, "-p", "0", "-r", img.toString())) {
            assertThat(s.uri).startsWith("nbd://127.0.0.1:");
            Qemu.Result w = Qemu.exec(dir, "qemu-io", "-f", "raw", "-c", "write 0 4k", s.uri);
            assertThat(w.output()).as("the export is advertised read-only").contains("Permission denied");
            assertThat(s.waitFor()).isZero();
        }
        Qemu.requireClean(img, "after a read-only export");
    }

    @Test
    void badOptionsGetOneLineErrors() {
        Path img = Qemu.create(dir, "c.qcow2", null, "1M");
        assertThat(Cli.run("serve", "--detect-zeroes=maybe", img.toString()).err())
                .isEqualTo("qcow2j: Invalid detect-zeroes value 'maybe' (expected off, on or unmap)\n");
        assertThat(Cli.run("serve", "--discard=x", img.toString()).err())
                .isEqualTo("qcow2j: Invalid discard option 'x' (expected ignore or unmap)\n");
        assertThat(Cli.run("serve", "-f", "vmdk", img.toString()).err()).isEqualTo("qcow2j: Could not open '" + img
                + "': format 'vmdk' is not supported (qcow2j serves qcow2 and raw)\n");
        assertThat(Cli.run("serve", "-f", "raw", img.toString()).err()).contains("-f raw on a qcow2 image");
        assertThat(Cli.run("serve", dir.resolve("none.qcow2").toString()).err())
                .isEqualTo("qcow2j: Could not open '" + dir.resolve("none.qcow2") + "': No such file or directory\n");
        assertThat(Cli.run("serve", "-e", "-1", img.toString()).err()).isEqualTo("qcow2j: Invalid shared device number '-1'\n");
        assertThat(Cli.run("serve", "-b", "256.1.1.1.1", "-p", "0", img.toString()).err())
                .startsWith("qcow2j: ").doesNotContain("Exception");
    }

    @Test
    void tlsCredsAsQemuNbdTakesThemServeQemuIoAndQemuImg() throws Exception {
        Pki pki = Pki.create(Files.createDirectories(dir.resolve("pki")));
        Path img = Qemu.create(dir, "t.qcow2", null, "16M");
        String tlsObject = "tls-creds-x509,id=tls0,dir=" + pki.client + ",endpoint=client";
        try (ServeProcess s = ServeProcess.start(dir, "-p", "0", "-t", "--max-buffer", "64M", "--object",
                "tls-creds-x509,id=srv,dir="
                + pki.server + ",endpoint=server,verify-peer=on", "--tls-creds", "srv", img.toString())) {
            String port = s.uri.replaceAll(".*:(\\d+)/.*", "$1");
            String opts = "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=" + port + ",tls-creds=tls0";
            String out = Qemu.run(dir, "qemu-io", "--object", tlsObject, "--image-opts", opts,
                    "-c", "write -P 0x71 0 2M", "-c", "write -P 0x72 5M 64k", "-c", "read -P 0x71 0 2M",
                    "-c", "read -P 0x72 5M 64k");
            assertThat(out).doesNotContain("fail").contains("read 65536/65536");
            Path copy = dir.resolve("copy.raw");
            Qemu.run(dir, "qemu-img", "convert", "--object", tlsObject, "--image-opts", opts, "-O", "raw",
                    copy.toString());
            assertThat(Qemu.exec(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img.toString(),
                    copy.toString()).exit()).as("qemu-img convert over TLS equals the image").isZero();
            assertThat(Qemu.exec(dir, "qemu-io", "-f", "raw", "-c", "read 0 4k", s.uri).exit())
                    .as("a plaintext client is refused").isNotZero();
            assertThat(s.terminate()).isZero();
        }
        Qemu.requireClean(img, "after serving over TLS");
        assertThat(Qemu.run(dir, "qemu-io", "-f", "qcow2", "-c", "read -P 0x72 5M 64k", img.toString()))
                .doesNotContain("fail");
    }

    @Test
    void badTlsOptionsGetOneLineErrors() throws Exception {
        Path img = Qemu.create(dir, "u.qcow2", null, "1M");
        Path none = dir.resolve("no-pki");
        assertThat(Cli.run("serve", "--tls-creds", "x", img.toString()).err())
                .isEqualTo("qcow2j: No TLS credentials with id 'x'\n");
        assertThat(Cli.run("serve", "--object", "tls-creds-x509,id=x,dir=" + none, "--tls-creds", "x",
                img.toString()).err()).isEqualTo("qcow2j: Expecting TLS credentials with a server endpoint\n");
        assertThat(Cli.run("serve", "--object", "tls-creds-x509,id=x,dir=" + none + ",endpoint=server",
                "--tls-creds", "x", img.toString()).err())
                .isEqualTo("qcow2j: Cannot read TLS file " + none.resolve("ca-cert.pem") + ": no such file\n");
        assertThat(Cli.run("serve", "--object", "secret,id=s,data=x", img.toString()).err())
                .startsWith("qcow2j: Invalid object type 'secret'");
        assertThat(Cli.run("serve", "--object", "tls-creds-x509,id=x,dir=d,endpoint=server,priority=NORMAL",
                img.toString()).err()).startsWith("qcow2j: Property 'priority' of tls-creds-x509 is not supported");
        assertThat(Cli.run("serve", "--max-buffer", "1M", img.toString()).err())
                .isEqualTo("qcow2j: Invalid max buffer '1M': at least 33M (one request of the largest size)\n");
        assertThat(Cli.run("serve", "--max-buffer", "lots", img.toString()).err())
                .isEqualTo("qcow2j: Invalid max buffer 'lots' (a size: k, M, G, T suffixes)\n");
        assertThat(Cli.run("serve", "--tls-authz", "auth0", img.toString()).err())
                .startsWith("qcow2j: --tls-authz is not supported");
        assertThat(Cli.run("serve", "--tls-hostname", "h", img.toString()).err())
                .isEqualTo("qcow2j: --tls-hostname is only for clients (qcow2j serve is a server)\n");
    }
}
