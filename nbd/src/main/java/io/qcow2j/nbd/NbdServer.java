package io.qcow2j.nbd;

import io.qcow2j.ffm.UnixServerSocket;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * An NBD server exporting one {@link Export} on a TCP address or a Unix socket, as {@code qemu-nbd} does.
 *
 * <p>At most {@code shared} clients are served at once; further ones wait in the listen backlog until one
 * leaves (qemu-nbd's {@code -e}). A client that has not finished its handshake within the handshake timeout
 * is disconnected, so idle connections cannot hold the slots. Without {@code persistent} the server stops
 * when its last client leaves. {@link #close()} stops accepting, lets every connection finish the requests
 * in flight and closes them; the caller then flushes and closes the disk.
 *
 * <p>Threads: one platform thread accepts; each connection reads and serves its requests on a platform
 * thread of its own, and writes the replies of requests that went through the disk's asynchronous API on a
 * virtual one, or on a platform one for a Unix socket, whose blocking writes would pin a virtual thread's
 * carrier ({@link Connection}, {@link ReplyWriter}, {@link RequestDispatcher}, {@link Transport}). TCP goes
 * through the JDK's channels, a Unix socket through our own ({@code io.qcow2j.ffm.UnixServerSocket}): the
 * JDK's cannot tell how many bytes have arrived, which {@link ArrivalSpin} asks. All connections share
 * one {@link MemoryBudget} for requests in flight.
 */
public final class NbdServer implements AutoCloseable {
    /**
     * How a server listens and how many clients it serves.
     *
     * @param tls        the credentials clients must use ({@code STARTTLS} is then required), or null for no TLS
     * @param maxBuffer  bytes of request payloads in flight over all connections together (at least one
     *                   request of the largest size, {@link #MIN_BUFFER}); readers wait while it is used
     * @param stallLimit how long a reply write may make no progress while other clients wait for memory before
     *                   its client is disconnected
     */
    public record Options(SocketAddress address, int shared, boolean persistent, Duration handshakeTimeout,
            TlsCredentials tls, long maxBuffer, Duration stallLimit) {
        /** The default {@code maxBuffer}: 256 MiB. */
        public static final long DEFAULT_BUFFER = 256L << 20;
        /** The default {@code stallLimit}: 30 s. */
        public static final Duration DEFAULT_STALL = Duration.ofSeconds(30);

        public Options {
            Objects.requireNonNull(address);
            Objects.requireNonNull(stallLimit);
            if (shared < 1) {
                throw new IllegalArgumentException("Invalid shared device number '" + shared + "'");
            }
            if (maxBuffer < MIN_BUFFER) {
                throw new IllegalArgumentException("Invalid max buffer '" + maxBuffer + "': at least "
                        + (MIN_BUFFER >> 20) + " MiB (one request of the largest size)");
            }
        }

        /** Without TLS, with the default memory budget. */
        public Options(SocketAddress address, int shared, boolean persistent, Duration handshakeTimeout) {
            this(address, shared, persistent, handshakeTimeout, null, DEFAULT_BUFFER, DEFAULT_STALL);
        }

        public Options withTls(TlsCredentials t) {
            return new Options(address, shared, persistent, handshakeTimeout, t, maxBuffer, stallLimit);
        }

        public Options withMaxBuffer(long bytes, Duration stall) {
            return new Options(address, shared, persistent, handshakeTimeout, tls, bytes, stall);
        }
    }

    /** The smallest {@code maxBuffer}: one request of the largest payload and its overhead (33 MiB). */
    public static final long MIN_BUFFER = NbdProtocol.MAX_PAYLOAD + (1L << 20);

    private final Export export;
    private final Options options;
    private final Consumer<String> log;
    /** The TCP listener, or null on a Unix socket. */
    private final ServerSocketChannel listener;
    /** The Unix-socket listener, or null on TCP (our own: its connections can tell {@link ArrivalSpin} what came). */
    private final UnixServerSocket unixListener;
    private final SocketAddress bound;
    /** Free client slots ({@code shared} - connections being served). */
    private final Semaphore slots;
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final Thread acceptor;
    /** Bytes of requests in flight, over all connections. */
    private final MemoryBudget memory;
    private volatile boolean closing;

    private NbdServer(Export export, Options options, Consumer<String> log) throws IOException {
        this.export = export;
        this.options = options;
        this.log = log;
        this.slots = new Semaphore(options.shared());
        this.memory = new MemoryBudget(options.maxBuffer(), Math.max(50, options.stallLimit().toMillis()),
                this::disconnectStalled);
        if (options.address() instanceof UnixDomainSocketAddress u) {
            listener = null;
            try {
                unixListener = UnixServerSocket.bind(u.getPath(), 128);
            } catch (IOException e) {
                throw new IOException("Failed to bind socket " + describe(u) + ": " + e.getMessage(), e);
            }
            bound = u;
        } else {
            unixListener = null;
            listener = ServerSocketChannel.open(familyOf(options.address()));
            try {
                listener.setOption(StandardSocketOptions.SO_REUSEADDR, true);
                listener.bind(options.address(), 128);
            } catch (IOException e) {
                listener.close();
                throw new IOException("Failed to bind socket " + describe(options.address()) + ": " + e.getMessage(),
                        e);
            }
            bound = listener.getLocalAddress();
        }
        ArrivalSpin.loadBound(); // reads QCOW2J_NBD_SPIN_NS now: a bad value is named at start, not at the first client
        acceptor = Thread.ofPlatform().name("nbd-accept").daemon().unstarted(this::acceptLoop);
    }

    /** Binds {@code options.address()} and starts serving {@code export}; {@code log} gets one-line events. */
    public static NbdServer start(Export export, Options options, Consumer<String> log) throws IOException {
        NbdServer s = new NbdServer(export, options, log);
        s.acceptor.start();
        return s;
    }

    /** The address actually bound (a TCP port of 0 is resolved). */
    public SocketAddress address() {
        return bound;
    }

    /** The export's URI as libnbd and QEMU write it. */
    public String uri() {
        String name = export.name();
        if (bound instanceof UnixDomainSocketAddress u) {
            return "nbd+unix:///" + name + "?socket=" + u.getPath();
        }
        InetSocketAddress a = (InetSocketAddress) bound;
        String host = a.getAddress().getHostAddress();
        return "nbd://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort() + "/" + name;
    }

    /** Waits until the server has stopped (closed, or its last client left when not persistent). */
    public void await() throws InterruptedException {
        stopped.await();
    }

    /** Number of clients being served now. */
    public int clients() {
        return connections.size();
    }

    private void acceptLoop() {
        while (!closing) {
            slots.acquireUninterruptibly();
            Transport c;
            try {
                c = unixListener != null ? Transport.unix(unixListener.accept()) : Transport.tcp(listener.accept());
            } catch (IOException e) {
                slots.release();
                if (!closing && !(e instanceof ClosedChannelException)) {
                    log.accept("accept failed: " + e.getMessage());
                    continue;
                }
                return;
            }
            Connection conn = new Connection(c, export, options.tls(), memory, log);
            connections.add(conn);
            if (closing) {
                conn.close();
            }
            // A platform thread: its socket and file I/O are plain blocking system calls, where a virtual
            // thread's cost a park, a poller or io_uring wake-up and an unpark each (measured: 178 us of
            // server CPU per depth-1 read on a virtual thread, see docs/BENCHMARKS.md).
            Thread.ofPlatform().name("nbd-connection").daemon().start(() -> serve(conn));
            Thread.ofVirtual().name("nbd-handshake-timer").start(() -> handshakeTimer(conn));
        }
    }

    private void serve(Connection conn) {
        try {
            conn.run();
        } finally {
            connections.remove(conn);
            slots.release();
            if (!options.persistent() && connections.isEmpty() && !closing) {
                Thread.ofVirtual().start(this::close);
            }
        }
    }

    /**
     * Called when a reader has waited {@code stallLimit} for memory: disconnects the clients that hold memory
     * and have not taken a reply for that long (they never read; their buffers come back when the writes fail).
     */
    private void disconnectStalled() {
        long limit = options.stallLimit().toNanos();
        for (Connection c : connections) {
            if (c.holdsMemory() && c.stalledNanos() >= limit) {
                log.accept("client " + c.remote() + ": disconnected, it has not read its replies for "
                        + options.stallLimit().toSeconds() + " s while other clients wait for memory");
                c.close();
            }
        }
    }

    private void handshakeTimer(Connection conn) {
        try {
            Thread.sleep(options.handshakeTimeout());
        } catch (InterruptedException e) {
            return;
        }
        if (!conn.negotiated()) {
            conn.close();
        }
    }

    /** Stops accepting, finishes the requests in flight of every client and disconnects them. Idempotent. */
    @Override
    public void close() {
        synchronized (this) {
            if (closing) {
                awaitQuietly();
                return;
            }
            closing = true;
        }
        if (unixListener != null) {
            unixListener.close();
        } else {
            try {
                listener.close();
            } catch (IOException e) {
                // already closed
            }
        }
        for (Connection c : connections) {
            c.stop();
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!connections.isEmpty() && System.nanoTime() < deadline) {
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        connections.forEach(Connection::close);
        if (bound instanceof UnixDomainSocketAddress u) {
            try {
                Files.deleteIfExists(u.getPath());
            } catch (IOException e) {
                log.accept("could not remove " + u.getPath() + ": " + e.getMessage());
            }
        }
        stopped.countDown();
    }

    private void awaitQuietly() {
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static StandardProtocolFamily familyOf(SocketAddress a) {
        return a instanceof InetSocketAddress i && i.getAddress() instanceof java.net.Inet6Address
                ? StandardProtocolFamily.INET6 : StandardProtocolFamily.INET;
    }

    private static String describe(SocketAddress a) {
        if (a instanceof UnixDomainSocketAddress u) {
            return u.getPath().toString();
        }
        InetSocketAddress i = (InetSocketAddress) a;
        return i.getHostString() + ":" + i.getPort();
    }

    /** A Unix socket address, for callers that do not import java.net. */
    public static SocketAddress unixSocket(Path path) {
        return UnixDomainSocketAddress.of(path);
    }
}
