package io.qcow2j.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;

/** Blocking reads and writes of whole buffers on a connection's channel (network byte order throughout). */
final class Wire {
    private Wire() {}

    /** Fills {@code buf}; a client that goes away first is an {@link EOFException}. */
    static void readFully(ByteChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            if (ch.read(buf) < 0) {
                throw new EOFException("client closed the connection");
            }
        }
    }

    /** Reads exactly {@code n} bytes into a new heap buffer (n is bounded by the caller). */
    static ByteBuffer read(ByteChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        readFully(ch, b);
        return b.flip();
    }

    /** Writes all of {@code bufs}. */
    static void writeFully(ByteChannel ch, ByteBuffer... bufs) throws IOException {
        for (ByteBuffer b : bufs) {
            while (b.hasRemaining()) {
                ch.write(b);
            }
        }
    }
}
