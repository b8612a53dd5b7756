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
final class Transport implements ByteChannel, GatheringByteChannel {
    /** A call on the socket that may fail. */
    @FunctionalInterface
    private interface Call {
        void run() throws IOException;
    }

    /** The socket: a channel both ways, with gathering writes (SocketChannel and UnixStreamSocket are). */
    private final ByteChannel ch;
    private final GatheringByteChannel gathering;
    private final ArrivalSpin.Arrived arrived;
    private final Call shutdownInput;
    private final java.util.function.Supplier<String> remote;
    private final boolean pinsCarrier;

    private <C extends ByteChannel & GatheringByteChannel> Transport(C ch, ArrivalSpin.Arrived arrived,
            Call shutdownInput, java.util.function.Supplier<String> remote, boolean pinsCarrier) {
        this.ch = ch;
        this.gathering = ch;
        this.arrived = arrived;
        this.shutdownInput = shutdownInput;
        this.remote = remote;
        this.pinsCarrier = pinsCarrier;
    }

    /** A TCP connection, with Nagle's delay off (each reply is one gathering write: nothing to coalesce). */
    static Transport tcp(SocketChannel c) throws IOException {
        try {
            c.setOption(StandardSocketOptions.TCP_NODELAY, true);
            InputStream in = c.socket().getInputStream(); // available(): the channel has none of its own
            return new Transport(c, in::available, c::shutdownInput, () -> {
                try {
                    return String.valueOf(c.getRemoteAddress());
                } catch (IOException e) {
                    return "?";
                }
            }, false);
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /** A Unix-socket connection. */
    static Transport unix(UnixStreamSocket s) {
        return new Transport(s, s::available, s::shutdownInput, s::toString, true);
    }

    /** Bytes that have arrived and wait to be read ({@code FIONREAD}); never blocks. */
    int available() throws IOException {
        return arrived.available();
    }

    /** Ends input: a blocked or later read sees end of input; replies can still be written. */
    void shutdownInput() throws IOException {
        shutdownInput.run();
    }

    /** The client, as log lines name it. */
    String remote() {
        return remote.get();
    }

    /**
     * Whether a blocking call here is a plain system call, which on a virtual thread pins its carrier for as
     * long as the peer keeps it waiting (the JDK's own channels park a virtual thread instead): then a thread
     * that may wait on a client that does not read must be a platform thread.
     */
    boolean pinsCarrier() {
        return pinsCarrier;
    }

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
        return gathering.write(srcs, offset, length);
    }

    @Override
    public long write(ByteBuffer[] srcs) throws IOException {
        return gathering.write(srcs);
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
