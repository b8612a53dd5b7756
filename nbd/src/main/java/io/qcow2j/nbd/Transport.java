package io.qcow2j.nbd;

import io.qcow2j.ffm.UnixStreamSocket;
import java.io.IOException;
import java.io.InputStream;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.SocketChannel;

/**
 * A client's connected socket as a {@link Connection} uses it, whichever kind it is: a TCP connection (the
 * JDK's {@link SocketChannel}) or a Unix socket (our own {@link UnixStreamSocket}, because the JDK's
 * Unix-domain channel cannot say how many bytes have arrived, which {@link ArrivalSpin} asks). Blocking,
 * one reader and any number of writers at once.
 */
interface Transport extends ByteChannel, GatheringByteChannel {
    /** Bytes that have arrived and wait to be read ({@code FIONREAD}); never blocks. */
    int available() throws IOException;

    /** Ends input: a blocked or later read sees end of input; replies can still be written. */
    void shutdownInput() throws IOException;

    /** The client, as log lines name it. */
    String remote();

    /**
     * Whether a blocking call here is a plain system call, which on a virtual thread pins its carrier for as
     * long as the peer keeps it waiting (the JDK's own channels park a virtual thread instead): then a thread
     * that may wait on a client that does not read must be a platform thread.
     */
    boolean pinsCarrier();

    /** A TCP connection, with Nagle's delay off (each reply is one gathering write: nothing to coalesce). */
    static Transport tcp(SocketChannel c) throws IOException {
        try {
            c.setOption(StandardSocketOptions.TCP_NODELAY, true);
            return new Tcp(c, c.socket().getInputStream());
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** A Unix-socket connection. */
    static Transport unix(UnixStreamSocket s) {
        return new Unix(s);
    }

    /** {@code available()} through the socket's input stream (the channel has none of its own). */
    record Tcp(SocketChannel ch, InputStream stream) implements Transport {
        @Override
        public int read(ByteBuffer dst) throws IOException {
            return ch.read(dst);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            return ch.write(src);
        }

        @Override
        public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
            return ch.write(srcs, offset, length);
        }

        @Override
        public long write(ByteBuffer[] srcs) throws IOException {
            return ch.write(srcs);
        }

        @Override
        public int available() throws IOException {
            return stream.available();
        }

        @Override
        public void shutdownInput() throws IOException {
            ch.shutdownInput();
        }

        @Override
        public String remote() {
            try {
                return String.valueOf(ch.getRemoteAddress());
            } catch (IOException e) {
                return "?";
            }
        }

        @Override
        public boolean pinsCarrier() {
            return false;
        }

        @Override
        public boolean isOpen() {
            return ch.isOpen();
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }

    record Unix(UnixStreamSocket s) implements Transport {
        @Override
        public int read(ByteBuffer dst) throws IOException {
            return s.read(dst);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            return s.write(src);
        }

        @Override
        public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
            return s.write(srcs, offset, length);
        }

        @Override
        public long write(ByteBuffer[] srcs) throws IOException {
            return s.write(srcs);
        }

        @Override
        public int available() throws IOException {
            return s.available();
        }

        @Override
        public void shutdownInput() throws IOException {
            s.shutdownInput();
        }

        @Override
        public String remote() {
            return s.toString();
        }

        @Override
        public boolean pinsCarrier() {
            return true;
        }

        @Override
        public boolean isOpen() {
            return s.isOpen();
        }

        @Override
        public void close() {
            s.close();
        }
    }
}
