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
 * far as it holds them, the rest is read straight into the payload's buffer. Before every read from the
 * socket (which may block) it runs {@code beforeRead}: the connection writes the replies it holds then.
 */
final class RequestReader {
    private static final int SIZE = 64 << 10;

    private final ByteChannel in;
    private final Runnable beforeRead;
    /** Bytes read and not yet consumed (read mode between calls). Direct: the socket fills it without a copy. */
    private final ByteBuffer buf = ByteBuffer.allocateDirect(SIZE).flip();

    RequestReader(ByteChannel in, Runnable beforeRead) {
        this.in = in;
        this.beforeRead = beforeRead;
    }

    /** Whether bytes of a next request are already here. */
    boolean buffered() {
        return buf.hasRemaining();
    }

    /** Fills {@code h} (a request header); false at a clean end of input (before its first byte). */
    boolean header(ByteBuffer h) throws IOException {
        while (buf.remaining() < h.remaining()) {
            if (!fill()) {
                if (!buf.hasRemaining()) {
                    return false;
                }
                throw new EOFException("client closed the connection mid-request");
            }
        }
        take(h);
        return true;
    }

    /** Fills {@code dst} (a write's payload). */
    void payload(ByteBuffer dst) throws IOException {
        take(dst);
        while (dst.hasRemaining()) {
            beforeRead.run();
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

    /** Reads more (at least one byte); false at the end of input. */
    private boolean fill() throws IOException {
        beforeRead.run();
        buf.compact();
        try {
            return in.read(buf) >= 0;
        } finally {
            buf.flip();
        }
    }
}
