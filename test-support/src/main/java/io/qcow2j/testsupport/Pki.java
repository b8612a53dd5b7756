package io.qcow2j.testsupport;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * X.509 credentials for TLS tests, made with {@code openssl} (Debian's {@code openssl}) in the directory
 * layout QEMU's {@code tls-creds-x509} and libnbd's {@code tls-certificates} read: a CA, a server directory
 * (ca-cert.pem, server-cert.pem for localhost and 127.0.0.1, server-key.pem as PKCS#8 EC P-256), a trusted
 * client (ca-cert.pem, client-cert.pem, client-key.pem as PKCS#8 RSA, the kind QEMU's documentation makes),
 * a client that trusts another CA, and one that trusts the CA but has no certificate.
 */
public final class Pki {
    /** Where the CA's files are (ca-cert.pem, ca-key.pem), for tests that sign more. */
    public final Path root;
    public final Path server;
    public final Path client;
    public final Path stranger;
    public final Path anonymous;

    private Pki(Path root) {
        this.root = root;
        this.server = root.resolve("server");
        this.client = root.resolve("client");
        this.stranger = root.resolve("stranger");
        this.anonymous = root.resolve("anonymous");
    }

    /** Runs {@code openssl ARGS} in {@code cwd}; a failure is an AssertionError with its output. */
    public static void openssl(Path cwd, String... args) {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "openssl";
        System.arraycopy(args, 0, cmd, 1, args.length);
        Qemu.run(cwd, cmd);
    }

    /** Signs {@code csr} with the CA named {@code ca} (its NAME-cert.pem and NAME-key.pem in {@code d}). */
    public static void sign(Path d, String ca, String csr, String out, String extensions) {
        try {
            Files.writeString(d.resolve("ext.cnf"), extensions);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        openssl(d, "x509", "-req", "-in", csr, "-CA", ca + "-cert.pem", "-CAkey", ca + "-key.pem",
                "-CAcreateserial", "-out", out, "-days", "2", "-extfile", "ext.cnf");
    }

    private static void ca(Path d, String name) {
        openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                name + "-key.pem", "-out", name + "-cert.pem", "-days", "2", "-subj", "/CN=" + name,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
    }

    /** Makes everything under {@code root} (an empty directory). */
    public static Pki create(Path root) throws IOException {
        Pki p = new Pki(root);
        ca(root, "ca");
        ca(root, "other");
        for (Path d : new Path[] {p.server, p.client, p.stranger, p.anonymous}) {
            Files.createDirectories(d);
        }
        openssl(root, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                "server/server-key.pem", "-out", "server.csr", "-subj", "/CN=localhost");
        sign(root, "ca", "server.csr", "server/server-cert.pem", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                + "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n");
        openssl(root, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client/client-key.pem", "-out",
                "client.csr", "-subj", "/CN=client");
        sign(root, "ca", "client.csr", "client/client-cert.pem",
                "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n");
        for (Path d : new Path[] {p.server, p.client, p.anonymous}) {
            Files.copy(root.resolve("ca-cert.pem"), d.resolve("ca-cert.pem"));
        }
        Files.copy(root.resolve("other-cert.pem"), p.stranger.resolve("ca-cert.pem"));
        Files.copy(p.client.resolve("client-cert.pem"), p.stranger.resolve("client-cert.pem"));
        Files.copy(p.client.resolve("client-key.pem"), p.stranger.resolve("client-key.pem"));
        return p;
    }
}
