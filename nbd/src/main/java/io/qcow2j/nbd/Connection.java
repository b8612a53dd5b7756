package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * One client: the handshake, then the transmission phase. This thread only reads: each request header (and a
 * write's payload) is read here and handed to the {@link RequestDispatcher}, which runs it and writes its
 * reply; the next request is read meanwhile, so requests pipeline.
 *
 * <p>Memory is bounded per connection, never by a number the client sends: before a request's buffer is
 * allocated, its cost (payload bytes, at most {@link NbdProtocol#MAX_PAYLOAD}, plus {@link #REQUEST_COST})
 * is taken from {@link #budget}; it is given back once the reply is written. A client that never reads its
 * replies thus stalls its own connection (writers block on the socket, this reader on the budget) and
 * nothing else. At the end (DISC, EOF, protocol error, server stop) the requests in flight are waited for
 * before the socket is closed.
 */
final class Connection {
    /** Bytes of request payloads and reply buffers a connection may hold at once. */
    static final int MAX_IN_FLIGHT_BYTES = 96 << 20; // two reads of the largest size, and then some
    /** What every request costs besides its payload: bounds the number in flight (1024). */
    static final int REQUEST_COST = 64 << 10;
    /** How long the end of a connection waits for its requests in flight before closing the socket anyway. */
    private static final long DRAIN_SECONDS = 30;

    private final SocketChannel ch;
    private final Export export;
    /** The server's TLS credentials, or null. */
    private final TlsCredentials tls;
    private final Consumer<String> log;
    /** Permits are bytes: what the requests in flight may still hold. */
    private final Semaphore budget = new Semaphore(MAX_IN_FLIGHT_BYTES);
    /** Set once the handshake ended (the server's handshake timeout closes the socket otherwise). */
    private volatile boolean negotiated;
    private volatile boolean stopping;

    Connection(SocketChannel ch, Export export, TlsCredentials tls, Consumer<String> log) {
        this.ch = ch;
        this.export = export;
        this.tls = tls;
        this.log = log;
    }

    boolean negotiated() {
        return negotiated;
    }

    /** Serves the client until it leaves or the server stops; closes the socket. Never throws. */
    void run() {
        try {
            Handshake.Result session = new Handshake(ch, export, tls).run();
            negotiated = true;
            if (session != null) {
                transmit(session);
            }
        } catch (EOFException | ClosedChannelException e) {
            // the client left (or the server stopped it): nothing to say
        } catch (IOException e) {
            if (!stopping) {
                log.accept("client " + remote() + ": " + e.getMessage());
            }
        } finally {
            close();
        }
    }

    /** Stops reading requests; the ones in flight finish, then the connection closes. */
    void stop() {
        stopping = true;
        try {
            ch.shutdownInput();
        } catch (IOException e) {
            close();
        }
    }

    void close() {
        try {
            ch.close();
        } catch (IOException e) {
            // closing: nothing left to do
        }
    }

    private void transmit(Handshake.Result session) throws IOException {
        ByteChannel in = session.in();
        ReplyWriter out = new ReplyWriter(session.out());
        BufferPool buffers = new BufferPool();
        RequestDispatcher dispatcher = new RequestDispatcher(session, out, log, buffers);
        ByteBuffer h = ByteBuffer.allocate(REQUEST_HEADER);
        try {
            while (true) {
                h.clear();
                if (!readHeader(in, h)) {
                    return;
                }
                h.flip();
                if (h.getInt() != REQUEST_MAGIC) {
                    throw new Handshake.ProtocolException("bad request magic");
                }
                int flags = Short.toUnsignedInt(h.getShort());
                int type = Short.toUnsignedInt(h.getShort());
                long cookie = h.getLong();
                long offset = h.getLong();
                long length = Integer.toUnsignedLong(h.getInt());
                if (type == CMD_DISC) {
                    return;
                }
                boolean sized = type == CMD_READ || type == CMD_WRITE;
                int cost = REQUEST_COST + (sized ? (int) Math.min(length, MAX_PAYLOAD) : 0);
                budget.acquireUninterruptibly(cost);
                ByteBuffer payload = null;
                if (type == CMD_WRITE) {
                    if (length > MAX_PAYLOAD) {
                        // Its payload follows and is too big to take: answer, then hang up (the spec allows it).
                        budget.release(cost);
                        out.simple(cookie, EOVERFLOW, null);
                        throw new Handshake.ProtocolException("write of " + length + " bytes");
                    }
                    payload = buffers.take((int) length);
                    try {
                        Wire.readFully(in, payload);
                    } catch (IOException e) {
                        budget.release(cost); // the request never runs: its cost must not stall the drain
                        throw e;
                    }
                    payload.flip();
                }
                RequestDispatcher.Request r = new RequestDispatcher.Request(flags, type, cookie, offset, length,
                        payload);
                dispatcher.submit(r, () -> budget.release(cost), e -> close());
            }
        } finally {
            drain();
            if (in instanceof TlsChannel t) {
                t.closeOutbound();
            }
        }
    }

    /** Reads a request header; false at a clean end of input (between requests). */
    private static boolean readHeader(ByteChannel in, ByteBuffer h) throws IOException {
        while (h.hasRemaining()) {
            if (in.read(h) < 0) {
                if (h.position() == 0) {
                    return false;
                }
                throw new EOFException("client closed the connection mid-request");
            }
        }
        return true;
    }

    /** Waits until every request in flight has written its reply (bounded: a stuck client is cut off). */
    private void drain() {
        try {
            if (!budget.tryAcquire(MAX_IN_FLIGHT_BYTES, DRAIN_SECONDS, TimeUnit.SECONDS)) {
                close();
                budget.acquireUninterruptibly(MAX_IN_FLIGHT_BYTES);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private String remote() {
        try {
            return String.valueOf(ch.getRemoteAddress());
        } catch (IOException e) {
            return "?";
        }
    }
}
