package io.qcow2j.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;

/**
 * The read side of a connection in the transmission phase, buffered: one read from the socket takes whatever
 * the client has sent (up to 64 KiB), so a pipelining client's requests cost one system call for several,
 * and {@link #buffered()} tells whether the next request has already arrived, which the connection uses to
 * decide whether serving a request inline could delay others. Write payloads are copied from the buffer as
 * far as it holds them, the rest is read straight into the payload's buffer; after a large payload
 * ({@link #DIRECT} or more) the next read takes only the header, so that a following large payload is read
 * straight into its buffer too instead of being copied (a sequential writer's 64 KiB payloads cost no copy).
 *
 * <p>Before a read from the socket that may wait for the client (a header's: the client may be waiting for
 * our replies; a long payload's) it runs {@code beforeRead}: the connection writes the replies it holds then.
 * The rest of a short payload needs no such flush: a client always sends the whole request, replies or not.
 * Then, on a plain (not TLS) connection, it spins a little for the request to come ({@link ArrivalSpin}).
 */
final class RequestReader {
    private static final int SIZE = 64 << 10;
    /** A write payload of at least this many bytes is read straight into its buffer (see the class comment). */
    static final int DIRECT = 16 << 10;
    /** Reading the rest of a payload longer than this may take a while: the held replies go out first. */
    private static final int LONG_PAYLOAD = 1 << 20;

    private final ByteChannel in;
    private final Runnable beforeRead;
    /** Spins before a read that may wait for the client, or null. */
    private final ArrivalSpin spin;
    /** Bytes read and not yet consumed (read mode between calls). Direct: the socket fills it without a copy. */
    private final ByteBuffer buf = ByteBuffer.allocateDirect(SIZE).flip();
    /** The last request was a write with a payload of {@link #DIRECT} bytes or more: read only a header next. */
    private boolean direct;

    RequestReader(ByteChannel in, Runnable beforeRead, ArrivalSpin spin) {
        this.in = in;
        this.beforeRead = beforeRead;
        this.spin = spin;
    }

    /** Whether bytes of a next request are already here. */
    boolean buffered() {
        return buf.hasRemaining();
    }

    /** Fills {@code h} (a request header); false at a clean end of input (before its first byte). */
    boolean header(ByteBuffer h) throws IOException {
        while (buf.remaining() < h.remaining()) {
            if (!fill(h.remaining() - buf.remaining())) {
                if (!buf.hasRemaining()) {
                    return false;
                }
                throw new EOFException("client closed the connection mid-request");
            }
        }
        take(h);
        direct = false;
        return true;
    }

    /** Fills {@code dst} (a write's payload). */
    void payload(ByteBuffer dst) throws IOException {
        direct = dst.remaining() >= DIRECT;
        take(dst);
        while (dst.hasRemaining()) {
            if (dst.remaining() > LONG_PAYLOAD) {
                beforeRead.run();
            }
            if (in.read(dst) < 0) {
                throw new EOFException("client closed the connection mid-request");
            }
        }
    }

    /** Moves what is buffered, as far as {@code dst} has room. */
    private void take(ByteBuffer dst) {
        int n = Math.min(dst.remaining(), buf.remaining());
        dst.put(dst.position(), buf, buf.position(), n);
        dst.position(dst.position() + n);
        buf.position(buf.position() + n);
    }

    /** Reads more (at least one byte; only {@code need} after a large payload); false at the end of input. */
    private boolean fill(int need) throws IOException {
        beforeRead.run();
        if (spin != null) {
            spin.await();
        }
        buf.compact();
        if (direct) {
            buf.limit(Math.min(buf.capacity(), buf.position() + need));
        }
        try {
            return in.read(buf) >= 0;
        } finally {
            buf.flip();
        }
    }
}
