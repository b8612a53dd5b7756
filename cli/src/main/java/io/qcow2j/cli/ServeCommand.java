package io.qcow2j.cli;

import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Sizes;
import io.qcow2j.nbd.Export;
import io.qcow2j.nbd.NbdServer;
import io.qcow2j.nbd.TlsCredentials;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code qcow2j serve}: exports an image over NBD with qemu-nbd's options. Prints one line when it listens;
 * SIGINT/SIGTERM stop it cleanly (requests in flight finish, the image is flushed and closed, exit 0).
 */
@Command(name = "serve", sortOptions = false, mixinStandardHelpOptions = true,
        header = "Export an image over the network block device protocol, as qemu-nbd does.",
        description = "Serve IMAGE over NBD until stopped (SIGINT/SIGTERM) or, without -t, until the last client"
                + " disconnects.")
final class ServeCommand implements Callable<Integer> {
    private static final int QCOW2_MAGIC = 0x514649fb;

    @Spec
    CommandSpec spec;

    @Option(names = {"-b", "--bind"}, paramLabel = "IFACE", description = "Interface to bind to (default 127.0.0.1).")
    String bind = "127.0.0.1";

    @Option(names = {"-p", "--port"}, paramLabel = "PORT", description = "TCP port (default 10809; 0: any free).")
    int port = 10809;

    @Option(names = {"-k", "--socket"}, paramLabel = "PATH", description = "Listen on this Unix socket instead.")
    Path socket;

    @Option(names = {"-x", "--export-name"}, paramLabel = "NAME", description = "Export name (default \"\").")
    String exportName = "";

    @Option(names = {"-D", "--description"}, paramLabel = "TEXT", description = "Export description.")
    String description;

    @Option(names = {"-r", "--read-only"}, description = "Export read-only.")
    boolean readOnly;

    @Option(names = {"-e", "--shared"}, paramLabel = "NUM", description = "Clients served at once (default 1;"
            + " 0: no limit).")
    int shared = 1;

    @Option(names = {"-t", "--persistent"}, description = "Keep serving after the last client disconnects.")
    boolean persistent;

    @Option(names = "--cache", paramLabel = "MODE", description = "none, writeback (default), writethrough or unsafe.")
    String cache;

    @Option(names = "--discard", paramLabel = "MODE", description = "ignore (default) or unmap: what TRIM does.")
    String discard = "ignore";

    @Option(names = "--detect-zeroes", paramLabel = "MODE", description = "off (default), on or unmap.")
    String detectZeroes = "off";

    @Option(names = "--image-opts", description = "IMAGE is an option string: driver=qcow2,file.filename=FILE,...")
    boolean imageOpts;

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Image options (l2-cache-size=..., cache=...).")
    String options;

    @Option(names = "--pid-file", paramLabel = "PATH", description = "Write the process id here; removed on exit.")
    Path pidFile;

    @Option(names = {"-f", "--format"}, paramLabel = "FMT", description = "qcow2 or raw (default: probe).")
    String format;

    @Option(names = "--handshake-limit", paramLabel = "SECONDS", description = "Drop clients that have not"
            + " finished the handshake after this long (default 10).")
    int handshakeLimit = 10;

    @Option(names = "--max-buffer", paramLabel = "SIZE", description = "Request payloads in flight over all"
            + " clients together (default 256M, at least 33M); reading requests waits while it is used.")
    String maxBuffer;

    @Option(names = "--object", paramLabel = "OBJECTDEF", description = "tls-creds-x509,id=ID,dir=DIR,"
            + "endpoint=server[,verify-peer=on|off]: X.509 credentials from DIR (ca-cert.pem, server-cert.pem,"
            + " server-key.pem), as QEMU's.")
    java.util.List<String> objects = new java.util.ArrayList<>();

    @Option(names = "--tls-creds", paramLabel = "ID", description = "Require TLS with the credentials object ID.")
    String tlsCreds;

    @Option(names = "--tls-authz", paramLabel = "ID", description = "Not supported (refused).")
    String tlsAuthz;

    @Option(names = "--tls-hostname", paramLabel = "NAME", description = "Client side only (refused).")
    String tlsHostname;

    @Parameters(index = "0", paramLabel = "IMAGE", description = "The image (or with --image-opts its options).")
    String image;

    @Override
    public Integer call() throws Exception {
        Export.DetectZeroes dz = parse(() -> Export.DetectZeroes.parse(detectZeroes));
        boolean unmap = switch (discard) {
            case "unmap", "on" -> true;
            case "ignore", "off" -> false;
            default -> throw new CommandFailure("Invalid discard option '" + discard + "' (expected ignore or unmap)");
        };
        if (shared < 0) {
            throw new CommandFailure("Invalid shared device number '" + shared + "'");
        }
        if (handshakeLimit <= 0) {
            throw new CommandFailure("Invalid handshake limit '" + handshakeLimit + "'");
        }
        ImageOptions.Builder b = Main.imageOptions().readOnly(readOnly).discardUnmap(unmap);
        if (cache != null) {
            b.cacheMode(ImageSource.cacheMode(cache));
        }
        ImageOptions opts = b.build();
        if (options != null) {
            opts = parse(() -> ImageOptions.parse(options, Main.imageOptions().readOnly(readOnly)
                    .discardUnmap(unmap).build()));
        }
        String filename = image;
        if (imageOpts) {
            ImageOptions base = opts;
            opts = parse(() -> ImageOptions.parse(image, base));
            if (opts.filename() == null || opts.filename().isEmpty()) {
                throw new CommandFailure("Could not open '" + image + "': The 'file' block driver requires a file name");
            }
            filename = opts.filename();
        }
        if (port < 0 || port > 65535) {
            throw new CommandFailure("Invalid port '" + port + "'");
        }
        SocketAddress address = socket != null ? NbdServer.unixSocket(socket) : new InetSocketAddress(bind, port);
        if (address instanceof InetSocketAddress i && i.isUnresolved()) {
            throw new CommandFailure("Cannot resolve address '" + bind + "'");
        }
        TlsCredentials tls = tlsCredentials();
        long buffer = NbdServer.Options.DEFAULT_BUFFER;
        if (maxBuffer != null) {
            try {
                buffer = Sizes.parse("max-buffer", maxBuffer);
            } catch (IllegalArgumentException e) {
                throw new CommandFailure("Invalid max buffer '" + maxBuffer + "' (a size: k, M, G, T suffixes)");
            }
            if (buffer < NbdServer.MIN_BUFFER) {
                throw new CommandFailure("Invalid max buffer '" + maxBuffer + "': at least 33M (one request of the"
                        + " largest size)");
            }
        }
        Disk disk = open(filename, opts);
        NbdServer server;
        try {
            Export export = parse(() -> new Export(exportName, description, disk, readOnly, unmap, dz, shared != 1));
            NbdServer.Options so = new NbdServer.Options(address, shared == 0 ? Integer.MAX_VALUE : shared,
                    persistent, Duration.ofSeconds(handshakeLimit)).withTls(tls).withMaxBuffer(buffer,
                    NbdServer.Options.DEFAULT_STALL);
            server = NbdServer.start(export, so, m -> log("qcow2j serve: " + m));
        } catch (IOException | RuntimeException e) {
            disk.close();
            throw e;
        }
        Thread hook = new Thread(() -> {
            stop(server, disk);
            Runtime.getRuntime().halt(0); // a signal asked us to stop, and we did cleanly: exit 0, as qemu-nbd
        }, "qcow2j-serve-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        if (pidFile != null) {
            Files.writeString(pidFile, ProcessHandle.current().pid() + "\n");
        }
        PrintWriter out = spec.commandLine().getOut();
        out.println("qcow2j serve: serving '" + filename + "' at " + server.uri());
        out.flush();
        server.await();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            Thread.currentThread().join(); // shutting down: the hook closes everything and exits
        }
        stop(server, disk);
        return 0;
    }

    private void stop(NbdServer server, Disk disk) {
        server.close();
        try {
            disk.close(); // flushes
        } catch (IOException | RuntimeException e) {
            log("qcow2j serve: closing '" + disk.filename() + "' failed: " + Main.describe(e));
        }
        if (pidFile != null) {
            try {
                Files.deleteIfExists(pidFile);
            } catch (IOException e) {
                log("qcow2j serve: could not remove " + pidFile + ": " + e.getMessage());
            }
        }
        System.out.flush();
    }

    private void log(String line) {
        PrintWriter err = spec.commandLine().getErr();
        err.println(line);
        err.flush();
    }

    /** The credentials {@code --tls-creds} names among the {@code --object}s, loaded; null without TLS. */
    private TlsCredentials tlsCredentials() {
        if (tlsAuthz != null) {
            throw new CommandFailure("--tls-authz is not supported (use verify-peer=on and a CA that signs only"
                    + " the clients you allow)");
        }
        if (tlsHostname != null) {
            throw new CommandFailure("--tls-hostname is only for clients (qcow2j serve is a server)");
        }
        java.util.Map<String, TlsObject> byId = new java.util.HashMap<>();
        for (String o : objects) {
            TlsObject t = TlsObject.parse(o);
            if (byId.put(t.id(), t) != null) {
                throw new CommandFailure("attempt to add duplicate property '" + t.id() + "' to object");
            }
        }
        if (tlsCreds == null) {
            return null;
        }
        TlsObject t = byId.get(tlsCreds);
        if (t == null) {
            throw new CommandFailure("No TLS credentials with id '" + tlsCreds + "'");
        }
        if (!t.server()) {
            throw new CommandFailure("Expecting TLS credentials with a server endpoint");
        }
        try {
            return TlsCredentials.load(Path.of(t.dir()), t.verifyPeer());
        } catch (IOException e) {
            throw new CommandFailure(e.getMessage(), e);
        }
    }

    /** Opens {@code name} as {@code -f} says: qcow2, raw, or probed. */
    private Disk open(String name, ImageOptions opts) {
        ImageSource.checkFile(name);
        boolean qcow2 = hasQcow2Magic(name);
        if (format != null) {
            switch (format) {
                case "qcow2" -> {
                    if (!qcow2) {
                        throw new CommandFailure("Could not open '" + name + "': Image is not in qcow2 format");
                    }
                }
                case "raw" -> {
                    if (qcow2) {
                        // Images.open would take it for qcow2; exporting its metadata as raw bytes is not done.
                        throw new CommandFailure("Could not open '" + name + "': -f raw on a qcow2 image is not"
                                + " supported (qcow2j would open it as qcow2)");
                    }
                }
                default -> throw new CommandFailure("Could not open '" + name + "': " + (ImageSource.knownFormat(format)
                        ? "format '" + format + "' is not supported (qcow2j serves qcow2 and raw)"
                        : "Unknown driver '" + format + "'"));
            }
        }
        try {
            return qcow2 ? Images.openQcow2(Path.of(name), opts) : Images.open(Path.of(name), opts);
        } catch (NoSuchFileException e) {
            throw new CommandFailure("Could not open '" + name + "': Could not open backing file: "
                    + Main.describe(e), e);
        } catch (IOException | RuntimeException e) {
            throw new CommandFailure("Could not open '" + name + "': " + ImageSource.reason(name, e), e);
        }
    }

    private static boolean hasQcow2Magic(String name) {
        try (InputStream in = Files.newInputStream(Path.of(name))) {
            byte[] h = in.readNBytes(4);
            return h.length == 4 && ((h[0] & 0xff) << 24 | (h[1] & 0xff) << 16 | (h[2] & 0xff) << 8 | (h[3] & 0xff))
                    == QCOW2_MAGIC;
        } catch (IOException e) {
            throw new CommandFailure("Could not open '" + name + "': " + Main.describe(e), e);
        }
    }

    private interface Parse<T> {
        T get();
    }

    private static <T> T parse(Parse<T> p) {
        try {
            return p.get();
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(e.getMessage());
        }
    }
}
