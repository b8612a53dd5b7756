package io.qcow2j.nbd;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManagerFactory;

/**
 * A server's X.509 credentials as QEMU's {@code tls-creds-x509,endpoint=server} reads them from a directory:
 * {@code ca-cert.pem} (the CA(s) that sign client certificates), {@code server-cert.pem} (the server's
 * certificate, optionally followed by its chain) and {@code server-key.pem} (its private key, unencrypted PEM:
 * PKCS#8 {@code PRIVATE KEY}, PKCS#1 {@code RSA PRIVATE KEY} or SEC1 {@code EC PRIVATE KEY}). Loaded with
 * the JDK alone: PKCS#1 and SEC1 keys are rewrapped as PKCS#8 (a few DER bytes) for {@link KeyFactory}.
 *
 * <p>{@code verifyPeer} (QEMU's {@code verify-peer}, on by default there as here) makes the TLS handshake
 * require a client certificate that chains to {@code ca-cert.pem}; off, clients need only trust the server.
 */
public final class TlsCredentials {
    private static final Pattern PEM = Pattern.compile(
            "-----BEGIN ([A-Z0-9 ]+)-----\\s*([A-Za-z0-9+/=\\s]*?)-----END \\1-----");
    /** DER of the AlgorithmIdentifier for rsaEncryption (1.2.840.113549.1.1.1, NULL parameters). */
    private static final byte[] RSA_ALGORITHM = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86,
        (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
    /** DER of the OID id-ecPublicKey (1.2.840.10045.2.1). */
    private static final byte[] EC_PUBLIC_KEY = {0x06, 0x07, 0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 0x02, 0x01};

    private final SSLContext context;
    private final boolean verifyPeer;

    private TlsCredentials(SSLContext context, boolean verifyPeer) {
        this.context = context;
        this.verifyPeer = verifyPeer;
    }

    /** Loads {@code dir}'s files; a missing or unreadable one is an IOException naming it, in one line. */
    public static TlsCredentials load(Path dir, boolean verifyPeer) throws IOException {
        List<X509Certificate> cas = certificates(dir.resolve("ca-cert.pem"));
        List<X509Certificate> chain = certificates(dir.resolve("server-cert.pem"));
        PrivateKey key = privateKey(dir.resolve("server-key.pem"));
        try {
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            keys.setKeyEntry("server", key, new char[0], chain.toArray(Certificate[]::new));
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, new char[0]);
            KeyStore trusted = KeyStore.getInstance("PKCS12");
            trusted.load(null, null);
            for (int i = 0; i < cas.size(); i++) {
                trusted.setCertificateEntry("ca" + i, cas.get(i));
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trusted);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
            return new TlsCredentials(ctx, verifyPeer);
        } catch (GeneralSecurityException e) {
            throw new IOException("Cannot use the TLS credentials in " + dir + ": " + e.getMessage(), e);
        }
    }

    public boolean verifyPeer() {
        return verifyPeer;
    }

    /**
     * A server-side engine for one connection: TLS 1.2 (the spec's floor) and 1.3, client auth as configured.
     * With {@code verifyPeer}, TLS 1.2 only: in TLS 1.3 the JDK's certificate request lists no PKCS#1 RSA
     * signature scheme (1.3 forbids them for handshake signatures), and GnuTLS clients (libnbd, QEMU) then find
     * no usable RSA client certificate and send none (measured with libnbd 1.14 / GnuTLS 3.7: EC client keys
     * work, RSA ones, which QEMU's documentation makes, fail). TLS 1.2 works with both.
     */
    SSLEngine newEngine() {
        SSLEngine e = context.createSSLEngine();
        e.setUseClientMode(false);
        e.setNeedClientAuth(verifyPeer);
        List<String> protocols = new ArrayList<>();
        for (String p : e.getSupportedProtocols()) {
            if (p.equals("TLSv1.2") || (p.equals("TLSv1.3") && !verifyPeer)) {
                protocols.add(p);
            }
        }
        e.setEnabledProtocols(protocols.toArray(String[]::new));
        return e;
    }

    private static String read(Path file) throws IOException {
        try {
            return Files.readString(file, StandardCharsets.US_ASCII);
        } catch (NoSuchFileException e) {
            throw new IOException("Cannot read TLS file " + file + ": no such file", e);
        } catch (IOException e) {
            throw new IOException("Cannot read TLS file " + file + ": " + e.getMessage(), e);
        }
    }

    /** The PEM blocks of {@code text} as (label, DER) pairs, in order. */
    private record Block(String label, byte[] der) {}

    private static List<Block> blocks(Path file) throws IOException {
        List<Block> out = new ArrayList<>();
        Matcher m = PEM.matcher(read(file));
        while (m.find()) {
            try {
                out.add(new Block(m.group(1), Base64.getMimeDecoder().decode(m.group(2))));
            } catch (IllegalArgumentException e) {
                throw new IOException("Cannot read TLS file " + file + ": bad base64 in " + m.group(1));
            }
        }
        return out;
    }

    static List<X509Certificate> certificates(Path file) throws IOException {
        List<X509Certificate> certs = new ArrayList<>();
        try {
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            for (Block b : blocks(file)) {
                if (b.label().equals("CERTIFICATE")) {
                    certs.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(b.der())));
                }
            }
        } catch (GeneralSecurityException e) {
            throw new IOException("Cannot read TLS file " + file + ": " + e.getMessage(), e);
        }
        if (certs.isEmpty()) {
            throw new IOException("Cannot read TLS file " + file + ": no PEM certificate in it");
        }
        return certs;
    }

    static PrivateKey privateKey(Path file) throws IOException {
        for (Block b : blocks(file)) {
            try {
                switch (b.label()) {
                    case "PRIVATE KEY" -> {
                        return pkcs8(b.der());
                    }
                    case "RSA PRIVATE KEY" -> {
                        return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(
                                Der.sequence(Der.INTEGER_ZERO, RSA_ALGORITHM, Der.octetString(b.der()))));
                    }
                    case "EC PRIVATE KEY" -> {
                        byte[] curve = Der.ecCurve(b.der());
                        return KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(
                                Der.sequence(Der.INTEGER_ZERO, Der.sequence(EC_PUBLIC_KEY, curve),
                                        Der.octetString(b.der()))));
                    }
                    case "ENCRYPTED PRIVATE KEY" -> throw new IOException("Cannot read TLS file " + file
                            + ": encrypted keys are not supported");
                    default -> { } // e.g. EC PARAMETERS before the key: skip
                }
            } catch (GeneralSecurityException | IllegalArgumentException e) {
                throw new IOException("Cannot read TLS file " + file + ": bad " + b.label() + ": " + e.getMessage(),
                        e);
            }
        }
        throw new IOException("Cannot read TLS file " + file + ": no PEM private key in it");
    }

    /** A PKCS#8 key of whichever algorithm the JDK recognises (RSA, EC, Ed25519...). */
    private static PrivateKey pkcs8(byte[] der) throws GeneralSecurityException {
        GeneralSecurityException last = null;
        for (String alg : new String[] {"RSA", "EC", "EdDSA", "RSASSA-PSS"}) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (GeneralSecurityException e) {
                last = e;
            }
        }
        throw last;
    }

    /** The little DER this class writes and reads. */
    static final class Der {
        static final byte[] INTEGER_ZERO = {0x02, 0x01, 0x00};

        private Der() {}

        static byte[] sequence(byte[]... parts) {
            return tagged(0x30, parts);
        }

        static byte[] octetString(byte[] content) {
            return tagged(0x04, content);
        }

        private static byte[] tagged(int tag, byte[]... parts) {
            int n = 0;
            for (byte[] p : parts) {
                n += p.length;
            }
            byte[] len = n < 0x80 ? new byte[] {(byte) n}
                    : n < 0x100 ? new byte[] {(byte) 0x81, (byte) n}
                    : n < 0x10000 ? new byte[] {(byte) 0x82, (byte) (n >> 8), (byte) n}
                    : new byte[] {(byte) 0x83, (byte) (n >> 16), (byte) (n >> 8), (byte) n};
            byte[] out = new byte[1 + len.length + n];
            out[0] = (byte) tag;
            System.arraycopy(len, 0, out, 1, len.length);
            int at = 1 + len.length;
            for (byte[] p : parts) {
                System.arraycopy(p, 0, out, at, p.length);
                at += p.length;
            }
            return out;
        }

        /**
         * The named curve OID (tag and all) of a SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING key,
         * [0] OID curve, [1] BIT STRING public key }; the [0] field is optional in SEC1 but OpenSSL writes it.
         */
        static byte[] ecCurve(byte[] der) {
            int[] at = {0};
            expect(der, at, 0x30);
            int end = length(der, at) + at[0];
            while (at[0] < end) {
                int tag = der[at[0]++] & 0xff;
                int len = length(der, at);
                if (tag == 0xa0) {
                    if ((der[at[0]] & 0xff) != 0x06) {
                        break;
                    }
                    byte[] oid = new byte[len];
                    System.arraycopy(der, at[0], oid, 0, len);
                    return oid;
                }
                at[0] += len;
            }
            throw new IllegalArgumentException("no named curve in the EC key");
        }

        private static void expect(byte[] der, int[] at, int tag) {
            if (at[0] >= der.length || (der[at[0]++] & 0xff) != tag) {
                throw new IllegalArgumentException("malformed DER");
            }
        }

        private static int length(byte[] der, int[] at) {
            if (at[0] >= der.length) {
                throw new IllegalArgumentException("truncated DER");
            }
            int b = der[at[0]++] & 0xff;
            if (b < 0x80) {
                return check(der, at, b);
            }
            int n = b & 0x7f;
            if (n == 0 || n > 3 || at[0] + n > der.length) {
                throw new IllegalArgumentException("bad DER length");
            }
            int len = 0;
            for (int i = 0; i < n; i++) {
                len = len << 8 | (der[at[0]++] & 0xff);
            }
            return check(der, at, len);
        }

        private static int check(byte[] der, int[] at, int len) {
            if (at[0] + len > der.length) {
                throw new IllegalArgumentException("truncated DER");
            }
            return len;
        }
    }
}
