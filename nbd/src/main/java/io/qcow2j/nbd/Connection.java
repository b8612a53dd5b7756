package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * One client: the handshake, then the transmission phase, on one platform thread (so its socket and file
 * I/O are plain blocking system calls). This thread reads each request header (and a write's payload) and
 * serves most requests itself, inline, with the disk's blocking methods: on a file in memory or in the page
 * cache a 4 KiB read is one {@code pread}, cheaper than any hand-off to another thread and back (the
 * asynchronous path costs two: to the engine's thread and from its completion to the writer). Their replies
 * are held and written together, in one gathering write, before this thread would block (reading the
 * socket, waiting for memory), so a client's pipelined requests cost one reply write for several.
 *
 * <p>What goes through the disk's asynchronous API instead ({@link RequestDispatcher#start}, replies written
 * by the {@link ReplyWriter}'s thread in the order they finish), so that the requests behind it are read
 * and started meanwhile: flushes and FUA writes (they wait for the device), and, while other requests are
 * in flight or already sent, requests over {@link #LARGE} bytes and requests of a kind (reads, or the rest)
 * whose inline service has lately been slow ({@link #SLOW_NANOS} on average: they wait for a device, not
 * memory), which are then still served inline one time in {@link #PROBE_EVERY} to notice when they are fast
 * again.
 *
 * <p>Memory is bounded, never by a number the client sends: before a request's buffer is allocated, its cost
 * (payload bytes, at most {@link NbdProtocol#MAX_PAYLOAD}, plus {@link #REQUEST_COST}) is taken from this
 * connection's {@link #budget} and then from the server's {@link MemoryBudget}; both are given back once the
 * reply is written. A client that never reads its replies thus stalls its own connection (the writer blocks
 * on the socket, this reader on the budget); the server's budget bounds all connections together, and
 * disconnects such a client if others starve for memory. At the end (DISC, EOF, protocol error, server stop)
 * the requests in flight are waited for before the socket is closed.
 */
final class Connection {
    /** Bytes of request payloads and reply buffers one connection may hold at once (less if the server's is). */
    static final int MAX_IN_FLIGHT_BYTES = 96 << 20; // two reads of the largest size, and then some
    /** What every request costs besides its payload: bounds the number in flight (1024 per connection). */
    static final int REQUEST_COST = 64 << 10;
    /** How long the end of a connection waits for its requests in flight before closing the socket anyway. */
    private static final long DRAIN_SECONDS = 30;
    /** An inline request kind taking this long on average waits for a device: pipelined ones go async. */
    static final long SLOW_NANOS = 50_000;
    /** Pipelined requests over this many bytes go asynchronous: the requests behind must not wait for them. */
    static final int LARGE = 1 << 20;
    /** One pipelined request of a slow kind in this many is served inline, to measure it again. */
    static final int PROBE_EVERY = 32;

    private final Transport ch;
    private final Export export;
    /** The server's TLS credentials, or null. */
    private final TlsCredentials tls;
    private final Consumer<String> log;
    private final MemoryBudget shared;
    private final int ownBytes;
    /** Permits are bytes: what this connection's requests in flight may still hold. */
    private final Semaphore budget;
    /** Requests started and not yet replied to. */
    private final AtomicInteger inFlight = new AtomicInteger();
    /** Per kind (0: reads, 1: the rest), a moving average of an inline request's nanoseconds (reader only). */
    private final long[] inlineNanos = new long[2];
    /** Counts pipelined requests of slow kinds, for {@link #PROBE_EVERY} (reader only). */
    private int probes;
    /** Set once the handshake ended (the server's handshake timeout closes the socket otherwise). */
    private volatile boolean negotiated;
    private volatile boolean stopping;
    /** The reply writer, once in the transmission phase. */
    private volatile ReplyWriter out;

    Connection(Transport ch, Export export, TlsCredentials tls, MemoryBudget shared, Consumer<String> log) {
        this.ch = ch;
        this.export = export;
        this.tls = tls;
        this.shared = shared;
        this.log = log;
        this.ownBytes = (int) Math.min(MAX_IN_FLIGHT_BYTES, shared.bytes());
        this.budget = new Semaphore(ownBytes);
    }

    boolean negotiated() {
        return negotiated;
    }

    /** How long this connection's client has not taken a reply we are writing (0: not stalled). */
    long stalledNanos() {
        ReplyWriter w = out;
        return w == null ? 0 : w.stalledNanos();
    }

    /** Whether requests of this connection hold memory now. */
    boolean holdsMemory() {
        return budget.availablePermits() < ownBytes;
    }

    String remote() {
        return ch.remote();
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
        // The writer of a socket whose writes pin a virtual thread's carrier is a platform thread: a client
        // that reads no replies would otherwise hold a carrier (of the machine's few) for as long as it likes.
        Thread.Builder writer = ch.pinsCarrier() ? Thread.ofPlatform().daemon() : Thread.ofVirtual();
        ReplyWriter replies = new ReplyWriter(session.out(), e -> close(), writer);
        out = replies;
        RequestReader requests = new RequestReader(in, replies::flushHeld, spin(in));
        BufferPool buffers = new BufferPool();
        RequestDispatcher dispatcher = new RequestDispatcher(session, log);
        ByteBuffer h = ByteBuffer.allocate(REQUEST_HEADER);
        try {
            while (true) {
                h.clear();
                if (!requests.header(h)) {
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
                boolean sized = (type == CMD_READ || type == CMD_WRITE) && length <= MAX_PAYLOAD;
                int cost = REQUEST_COST + (sized ? (int) length : 0);
                take(cost, replies);
                ByteBuffer data = null;
                if (type == CMD_WRITE) {
                    if (!sized) {
                        // Its payload follows and is too big to take: answer, then hang up (the spec allows it).
                        replies.sendNow(Replies.simple(cookie, EOVERFLOW, null), () -> give(cost));
                        throw new Handshake.ProtocolException("write of " + length + " bytes");
                    }
                    data = buffers.take((int) length);
                    try {
                        requests.payload(data);
                    } catch (IOException e) {
                        buffers.give(data);
                        give(cost); // the request never runs: its cost must not stall the drain
                        throw e;
                    }
                    data.flip();
                } else if (type == CMD_READ && sized) {
                    data = buffers.take((int) length);
                }
                ByteBuffer buffer = data;
                Runnable done = () -> {
                    buffers.give(buffer);
                    inFlight.decrementAndGet();
                    give(cost);
                };
                RequestDispatcher.Request r = new RequestDispatcher.Request(flags, type, cookie, offset, length, data);
                CompletableFuture<ByteBuffer[]> reply = serve(r, dispatcher, requests, replies);
                if (reply.isDone()) {
                    ByteBuffer[] bytes = replied(reply.getNow(null), reply, done);
                    if (bytes != null) {
                        replies.hold(bytes, done);
                    }
                } else {
                    reply.whenComplete((bytes, e) -> {
                        if (replied(bytes, reply, done) != null) {
                            replies.send(bytes, done);
                        }
                    });
                }
            }
        } finally {
            replies.flushHeld();
            drain();
            replies.stop();
            if (in instanceof TlsChannel t) {
                t.closeOutbound();
            }
        }
    }

    /** The reader's spin before it blocks: on a plain socket, not through TLS (see {@link ArrivalSpin}). */
    private static ArrivalSpin spin(ByteChannel in) {
        return in instanceof Transport t ? new ArrivalSpin(t::available) : null;
    }

    /** Serves {@code r} inline or starts it asynchronously (see the class comment for which). */
    private CompletableFuture<ByteBuffer[]> serve(RequestDispatcher.Request r, RequestDispatcher dispatcher,
            RequestReader requests, ReplyWriter replies) {
        boolean alone = inFlight.getAndIncrement() == 0 && !requests.buffered();
        if (r.type() == CMD_FLUSH || (r.flags() & CMD_FLAG_FUA) != 0) {
            return dispatcher.start(r);
        }
        if (!alone && r.length() > LARGE) {
            return dispatcher.start(r); // the hand-off is small beside its transfer; the requests behind go on
        }
        int kind = r.type() == CMD_READ ? 0 : 1;
        boolean fast = inlineNanos[kind] < SLOW_NANOS;
        if (!alone && !fast && ++probes % PROBE_EVERY != 0) {
            return dispatcher.start(r);
        }
        if (!fast) {
            replies.flushHeld(); // this one may wait for a device: the replies held must not wait with it
        }
        long start = System.nanoTime();
        CompletableFuture<ByteBuffer[]> reply = dispatcher.run(r);
        // Capped, so that one pause (a GC, a preemption) cannot make a fast kind look slow (three slow ones in a
        // row do) and three fast probes make a slow kind fast again.
        long took = Math.min(System.nanoTime() - start, 2 * SLOW_NANOS);
        inlineNanos[kind] += (took - inlineNanos[kind]) >> 2;
        return reply;
    }

    /**
     * The reply's bytes, or null if building it failed (a bug: the dispatcher turns every disk failure into an
     * error reply); then the client cannot be answered, so the request's memory is given back, the failure
     * logged and the connection closed.
     */
    private ByteBuffer[] replied(ByteBuffer[] bytes, CompletableFuture<ByteBuffer[]> reply, Runnable done) {
        if (bytes != null) {
            return bytes;
        }
        String why = reply.handle((v, e) -> String.valueOf(e)).getNow("no reply");
        log.accept("client " + remote() + ": internal error building a reply: " + why);
        done.run();
        close();
        return null;
    }

    /** Takes {@code cost} from both budgets; before waiting for one, writes the held replies (they hold memory). */
    private void take(int cost, ReplyWriter replies) throws IOException {
        if (!budget.tryAcquire(cost)) {
            replies.flushHeld();
            budget.acquireUninterruptibly(cost);
        }
        if (shared.tryAcquire(cost)) {
            return;
        }
        replies.flushHeld();
        try {
            shared.acquire(cost);
        } catch (IOException e) {
            budget.release(cost);
            throw e;
        }
    }

    private void give(int cost) {
        shared.release(cost);
        budget.release(cost);
    }

    /** Waits until every request in flight has written its reply (bounded: a stuck client is cut off). */
    private void drain() {
        try {
            if (!budget.tryAcquire(ownBytes, DRAIN_SECONDS, TimeUnit.SECONDS)) {
                close();
                budget.acquireUninterruptibly(ownBytes);
            }
            budget.release(ownBytes);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
