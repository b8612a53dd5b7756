package io.qcow2j.nbd;

import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** An image opened with the engine and exported by an in-process server on a free port, for tests. */
final class Served implements AutoCloseable {
    final Path image;
    final Disk disk;
    final NbdServer server;
    /** What the server logged (one line per event). */
    final List<String> log;

    private Served(Path image, Disk disk, NbdServer server, List<String> log) {
        this.image = image;
        this.disk = disk;
        this.server = server;
        this.log = log;
    }

    /** Serves {@code image} read/write, export "", persistent, {@code shared} clients, on {@link #address()}. */
    static Served start(Path image, int shared) throws IOException {
        return start(image, shared, false, false, address());
    }

    /**
     * Where the tests' servers listen: a free port on 127.0.0.1, or with {@code -Dqcow2j.test.nbd.unix=true}
     * a new Unix socket, so that the same tests run over either transport.
     */
    static SocketAddress address() throws IOException {
        if (!Boolean.getBoolean("qcow2j.test.nbd.unix")) {
            return new InetSocketAddress("127.0.0.1", 0);
        }
        Path dir = Files.createTempDirectory("qcow2j-nbd-");
        dir.toFile().deleteOnExit(); // the server removes its socket when it stops, so the folder is empty then
        return NbdServer.unixSocket(dir.resolve("s.sock"));
    }

    static Served start(Path image, int shared, boolean readOnly, boolean discard, SocketAddress address)
            throws IOException {
        Disk d = Images.open(image, ImageOptions.builder().readOnly(readOnly).build());
        Export e = new Export("", "a test export", d, readOnly, discard, Export.DetectZeroes.OFF, shared > 1);
        List<String> log = new CopyOnWriteArrayList<>();
        NbdServer s = NbdServer.start(e, new NbdServer.Options(address, shared, true, Duration.ofSeconds(5)),
                log::add);
        return new Served(image, d, s, log);
    }

    /** Serves {@code image} read/write, export "", as {@code options} say. */
    static Served start(Path image, NbdServer.Options options) throws IOException {
        Disk d = Images.open(image, ImageOptions.builder().build());
        Export e = new Export("", "a test export", d, false, false, Export.DetectZeroes.OFF, options.shared() > 1);
        List<String> log = new CopyOnWriteArrayList<>();
        return new Served(image, d, NbdServer.start(e, options, log::add), log);
    }

    String uri() {
        return server.uri();
    }

    int port() {
        return ((InetSocketAddress) server.address()).getPort();
    }

    /** Stops the server, then flushes and closes the image (what SIGTERM does to qcow2j serve). */
    @Override
    public void close() throws IOException {
        server.close();
        disk.close();
    }
}
