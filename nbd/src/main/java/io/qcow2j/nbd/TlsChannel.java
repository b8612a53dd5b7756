package io.qcow2j.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.GatheringByteChannel;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;

/**
 * A blocking channel that speaks TLS over a connected {@link Transport} (TCP or Unix socket alike) through
 * an {@link SSLEngine}: what the connection switches to after {@code NBD_OPT_STARTTLS} was acknowledged.
 *
 * <p>One thread reads (the connection's reader) while others write (replies): the engine allows wrap and
 * unwrap at once, and each side has its own buffers and lock. The one crossing is a TLS 1.3 post-handshake
 * message met while reading that asks for an answer (a key update): the reader then wraps under the write
 * lock. Reads that end before a TLS record is complete are {@link EOFException}s; a clean end of input
 * (the peer's close_notify or a closed socket between records) is -1.
 */
final class TlsChannel implements ByteChannel, GatheringByteChannel {
    private static final ByteBuffer[] NOTHING = {ByteBuffer.allocate(0)};

    private final Transport ch;
    private final SSLEngine engine;
    /** Reader side: ciphertext read from the socket, not yet unwrapped (in read mode between calls). */
    private ByteBuffer netIn;
    /** Reader side: plaintext unwrapped, not yet handed out (in read mode between calls). */
    private ByteBuffer appIn;
    /** Writer side, guarded by {@link #writeLock}: ciphertext being written. */
    private ByteBuffer netOut;
    private final ReentrantLock readLock = new ReentrantLock();
    private final ReentrantLock writeLock = new ReentrantLock();

    TlsChannel(Transport ch, SSLEngine engine) {
        this.ch = ch;
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        netIn = ByteBuffer.allocate(packet).flip();
        appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize()).flip();
        netOut = ByteBuffer.allocate(packet);
    }

    /** Runs the TLS handshake to its end; an SSLException says why it failed (the socket is then useless). */
    void handshake() throws IOException {
        try {
            engine.beginHandshake();
            steps();
        } catch (SSLException e) {
            try {
                wrap(NOTHING); // the alert that tells the client why (a certificate it does not trust...)
            } catch (IOException again) {
                // the client is gone
            }
            throw e;
        }
    }

    private void steps() throws IOException {
        while (true) {
            switch (engine.getHandshakeStatus()) {
                case NEED_WRAP -> wrap(NOTHING);
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                    if (!unwrapSome()) {
                        throw new EOFException("client closed the connection during the TLS handshake");
                    }
                }
                case NEED_TASK -> runTasks();
                case FINISHED, NOT_HANDSHAKING -> {
                    return;
                }
            }
        }
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        readLock.lock();
        try {
            while (!appIn.hasRemaining()) {
                if (!unwrapSome()) {
                    return -1;
                }
            }
            int n = Math.min(dst.remaining(), appIn.remaining());
            dst.put(dst.position(), appIn, appIn.position(), n);
            dst.position(dst.position() + n);
            appIn.position(appIn.position() + n);
            return n;
        } finally {
            readLock.unlock();
        }
    }

    /**
     * Unwraps one record (reading from the socket as needed) into {@link #appIn}; false at a clean end of the
     * stream. Plaintext already in {@code appIn} is kept.
     */
    private boolean unwrapSome() throws IOException {
        while (true) {
            appIn.compact();
            SSLEngineResult r;
            try {
                r = engine.unwrap(netIn, appIn);
            } finally {
                appIn.flip();
            }
            switch (r.getStatus()) {
                case OK -> {
                    answerHandshake(r.getHandshakeStatus());
                    if (r.bytesProduced() > 0 || r.getHandshakeStatus() != HandshakeStatus.NOT_HANDSHAKING
                            || engine.getHandshakeStatus() != HandshakeStatus.NOT_HANDSHAKING) {
                        return true;
                    }
                    // a record without application data (a session ticket): go on
                }
                case BUFFER_UNDERFLOW -> {
                    if (netIn.limit() == netIn.capacity() && netIn.position() == 0) {
                        netIn = grow(netIn, engine.getSession().getPacketBufferSize());
                    }
                    netIn.compact();
                    int n;
                    try {
                        n = ch.read(netIn);
                    } finally {
                        netIn.flip();
                    }
                    if (n < 0) {
                        if (netIn.hasRemaining()) {
                            throw new EOFException("client closed the connection mid-record");
                        }
                        return false;
                    }
                }
                case BUFFER_OVERFLOW -> appIn = grow(appIn, engine.getSession().getApplicationBufferSize());
                case CLOSED -> {
                    answerHandshake(r.getHandshakeStatus());
                    return false;
                }
            }
        }
    }

    /** What unwrapping asked for: delegated work, or an answer to send (under the write lock). */
    private void answerHandshake(HandshakeStatus s) throws IOException {
        if (s == HandshakeStatus.NEED_TASK) {
            runTasks();
        }
        if (engine.getHandshakeStatus() == HandshakeStatus.NEED_WRAP) {
            try {
                wrap(NOTHING);
            } catch (IOException e) {
                // the peer went away while we answered it: the read will see the end
            }
        }
    }

    private void runTasks() {
        Runnable t;
        while ((t = engine.getDelegatedTask()) != null) {
            t.run();
        }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        return (int) write(new ByteBuffer[] {src}, 0, 1);
    }

    @Override
    public long write(ByteBuffer[] srcs) throws IOException {
        return write(srcs, 0, srcs.length);
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        ByteBuffer[] part = offset == 0 && length == srcs.length ? srcs : java.util.Arrays.copyOfRange(srcs,
                offset, offset + length);
        return wrap(part);
    }

    /** Encrypts all of {@code srcs} (or, with nothing to send, one handshake message) and writes it. */
    private long wrap(ByteBuffer[] srcs) throws IOException {
        writeLock.lock();
        try {
            long consumed = 0;
            do {
                netOut.clear();
                SSLEngineResult r = engine.wrap(srcs, netOut);
                netOut.flip();
                while (netOut.hasRemaining()) {
                    ch.write(netOut);
                }
                consumed += r.bytesConsumed();
                switch (r.getStatus()) {
                    case BUFFER_OVERFLOW -> netOut = grow(netOut, engine.getSession().getPacketBufferSize());
                    case CLOSED -> throw new ClosedChannelException();
                    default -> {
                        if (r.getHandshakeStatus() == HandshakeStatus.NEED_TASK) {
                            runTasks();
                        }
                    }
                }
            } while (srcs == NOTHING ? engine.getHandshakeStatus() == HandshakeStatus.NEED_WRAP : remaining(srcs) > 0);
            return consumed;
        } finally {
            writeLock.unlock();
        }
    }

    private static long remaining(ByteBuffer[] bufs) {
        long n = 0;
        for (ByteBuffer b : bufs) {
            n += b.remaining();
        }
        return n;
    }

    /** {@code b} (in read mode) copied into a buffer of at least {@code size} more room. */
    private static ByteBuffer grow(ByteBuffer b, int size) {
        ByteBuffer bigger = ByteBuffer.allocate(b.capacity() + Math.max(size, 1024));
        bigger.put(b).flip();
        return bigger;
    }

    /** Sends close_notify (best effort); the caller closes the socket. */
    void closeOutbound() {
        if (!writeLock.tryLock()) {
            return; // a reply is being written (perhaps blocked on a stalled client): just close the socket
        }
        try {
            engine.closeOutbound();
            netOut.clear();
            engine.wrap(NOTHING, netOut);
            netOut.flip();
            while (netOut.hasRemaining() && ch.write(netOut) > 0) {
                // write the alert
            }
        } catch (IOException e) {
            // closing anyway
        } finally {
            writeLock.unlock();
        }
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
