package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qcow2j.testsupport.Pki;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * STARTTLS with real TLS clients: libnbd's nbdinfo ({@code nbds://}, {@code nbds+unix://}) and qemu-io with
 * {@code --object tls-creds-x509}, on credentials openssl makes for each run ({@link Pki}).
 */
@Timeout(120)
class TlsTest {
    @TempDir
    static Path pki;

    @TempDir
    Path dir;

    static Pki pkiFiles;
    static Path server;
    static Path client;
    static Path stranger;
    static Path anonymous;

    @BeforeAll
    static void certificates() throws IOException {
        pkiFiles = Pki.create(pki);
        server = pkiFiles.server;
        client = pkiFiles.client;
        stranger = pkiFiles.stranger;
        anonymous = pkiFiles.anonymous;
    }

    private Served serve(Path img, SocketAddress address, boolean verifyPeer) throws IOException {
        return Served.start(img, new NbdServer.Options(address, 4, true, Duration.ofSeconds(5))
                .withTls(TlsCredentials.load(server, verifyPeer)));
    }

    private static String tlsUri(Served s, Path certs) {
        String plain = s.uri();
        String tls = plain.replaceFirst("^nbd", "nbds");
        return tls + (tls.contains("?") ? "&" : "?") + "tls-certificates=" + certs;
    }

    private Qemu.Result nbdinfo(String uri) {
        return Qemu.exec(dir, "nbdinfo", uri);
    }

    @Test
    void nbdinfoAndQemuIoSpeakTlsOverUnixSocketsAndTcp() throws Exception {
        Path img = Qemu.create(dir, "a.qcow2", null, "16M");
        try (Served s = serve(img, NbdServer.unixSocket(dir.resolve("s.sock")), true)) {
            String info = Qemu.run(dir, "nbdinfo", tlsUri(s, client));
            assertThat(info).contains("with TLS", "export-size: 16777216");
            String out = Qemu.run(dir, "qemu-io", "--object", "tls-creds-x509,id=tls0,dir=" + client
                    + ",endpoint=client", "--image-opts", "driver=nbd,server.type=unix,server.path=" + dir.resolve(
                    "s.sock") + ",tls-creds=tls0,tls-hostname=localhost", "-c", "write -P 0x5a 0 1M",
                    "-c", "aio_write -P 0x5b 2M 64k", "-c", "aio_write -P 0x5c 3M 3M", "-c", "aio_flush",
                    "-c", "read -P 0x5a 0 1M", "-c", "read -P 0x5c 3M 3M", "-c", "flush");
            assertThat(out).doesNotContainIgnoringCase("fail").doesNotContainIgnoringCase("error")
                    .contains("read 3145728/3145728");
        }
        try (Served s = serve(img, new InetSocketAddress("127.0.0.1", 0), true)) {
            assertThat(Qemu.run(dir, "nbdinfo", tlsUri(s, client))).contains("with TLS");
            String out = Qemu.run(dir, "qemu-io", "--object", "tls-creds-x509,id=tls0,dir=" + client
                    + ",endpoint=client", "--image-opts", "driver=nbd,server.type=inet,server.host=127.0.0.1,"
                    + "server.port=" + s.port() + ",tls-creds=tls0", "-c", "read -P 0x5b 2M 64k",
                    "-c", "write -P 0x5d 8M 128k", "-c", "read -P 0x5d 8M 128k");
            assertThat(out).doesNotContainIgnoringCase("fail").contains("read 131072/131072");
        }
        Qemu.requireClean(img, "after TLS clients");
        assertThat(Qemu.run(dir, "qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 0 1M", "-c", "read -P 0x5b 2M 64k",
                "-c", "read -P 0x5d 8M 128k", img.toString())).doesNotContain("fail");
    }

    @Test
    void withoutTlsClientsAreRefusedAsTheSpecSays() throws Exception {
        Path img = Qemu.create(dir, "b.qcow2", null, "1M");
        // TCP whatever Served.address() says: over a Unix socket libnbd does not check the server's certificate
        // (a client that does not trust our CA connects; the same with the JDK's Unix channel before ours)
        try (Served s = serve(img, new InetSocketAddress("127.0.0.1", 0), true)) {
            Qemu.Result plain = nbdinfo(s.uri());
            assertThat(plain.exit()).as("a plaintext nbdinfo").isNotZero();
            try (TestClient c = new TestClient(s.server.address()).greet()) {
                c.option(OPT_LIST, ByteBuffer.allocate(0));
                assertThat(c.optionReply().type()).as("LIST before STARTTLS").isEqualTo(REP_ERR_TLS_REQD);
                c.option(OPT_GO, ByteBuffer.allocate(6).putInt(0).putShort((short) 0).flip());
                assertThat(c.optionReply().type()).as("GO before STARTTLS").isEqualTo(REP_ERR_TLS_REQD);
                c.option(OPT_STARTTLS, ByteBuffer.wrap(new byte[] {1}));
                assertThat(c.optionReply().type()).as("STARTTLS with data").isEqualTo(REP_ERR_INVALID);
                c.option(OPT_EXPORT_NAME, ByteBuffer.allocate(0));
                assertThat(c.closedByServer()).as("EXPORT_NAME without TLS ends the session").isTrue();
            }
            try (TestClient c = new TestClient(s.server.address()).greet()) {
                c.option(OPT_STARTTLS, ByteBuffer.allocate(0));
                assertThat(c.optionReply().type()).as("STARTTLS").isEqualTo(REP_ACK);
                // then plaintext instead of a TLS ClientHello: the handshake fails and the session ends
                c.option(OPT_LIST, ByteBuffer.allocate(0));
                assertThatThrownBy(c::optionReply).isInstanceOf(IOException.class);
            }
            assertThat(nbdinfo(tlsUri(s, stranger)).exit()).as("a client that does not trust our CA").isNotZero();
            assertThat(nbdinfo(tlsUri(s, anonymous)).exit()).as("verify-peer: a client without a certificate")
                    .isNotZero();
            assertThat(Qemu.run(dir, "nbdinfo", tlsUri(s, client))).as("the server survived all that")
                    .contains("with TLS");
            assertThat(s.log).anyMatch(l -> l.contains("TLS handshake failed"));
        }
        try (Served s = serve(img, Served.address(), false)) {
            assertThat(Qemu.run(dir, "nbdinfo", tlsUri(s, anonymous))).as("verify-peer=off: no client certificate")
                    .contains("with TLS");
            assertThat(nbdinfo(s.uri()).exit()).as("still no plaintext").isNotZero();
        }
        try (Served s = Served.start(img, 1)) {
            assertThat(nbdinfo(tlsUri(s, client)).exit()).as("a TLS client against a server without TLS")
                    .isNotZero();
        }
    }

    @Test
    void keysInPkcs1AndSec1FormAreLoaded() throws Exception {
        Path rsa = Files.createDirectories(dir.resolve("rsa"));
        Path ec = Files.createDirectories(dir.resolve("ec"));
        Pki.openssl(dir, "genrsa", "-traditional", "-out", "rsa/server-key.pem", "2048");
        Pki.openssl(dir, "ecparam", "-name", "secp384r1", "-genkey", "-out", "ec/server-key.pem");
        assertThat(Files.readString(rsa.resolve("server-key.pem"))).contains("BEGIN RSA PRIVATE KEY");
        assertThat(Files.readString(ec.resolve("server-key.pem"))).contains("BEGIN EC PRIVATE KEY");
        assertThat(TlsCredentials.privateKey(rsa.resolve("server-key.pem")).getAlgorithm()).isEqualTo("RSA");
        assertThat(TlsCredentials.privateKey(ec.resolve("server-key.pem")).getAlgorithm()).isEqualTo("EC");
        // a server on the PKCS#1 key (certificate from the CA) serves a real client
        Pki.openssl(dir, "req", "-new", "-key", "rsa/server-key.pem", "-out", "rsa.csr", "-subj", "/CN=localhost");
        Files.copy(pki.resolve("ca-key.pem"), dir.resolve("ca-key.pem"));
        Files.copy(pki.resolve("ca-cert.pem"), dir.resolve("ca-cert.pem"));
        Pki.sign(dir, "ca", "rsa.csr", "rsa/server-cert.pem", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
        Files.copy(pki.resolve("ca-cert.pem"), rsa.resolve("ca-cert.pem"));
        Path img = Qemu.create(dir, "c.qcow2", null, "1M");
        try (Served s = Served.start(img, new NbdServer.Options(Served.address(), 1, true,
                Duration.ofSeconds(5)).withTls(TlsCredentials.load(rsa, true)))) {
            assertThat(Qemu.run(dir, "nbdinfo", tlsUri(s, client))).contains("with TLS");
        }
        assertThatThrownBy(() -> TlsCredentials.load(dir.resolve("nowhere"), true)).isInstanceOf(IOException.class)
                .hasMessageContaining("ca-cert.pem").hasMessageContaining("no such file");
        Files.writeString(ec.resolve("ca-cert.pem"), "not a certificate\n");
        assertThatThrownBy(() -> TlsCredentials.load(ec, true)).hasMessageContaining("no PEM certificate");
    }
}
