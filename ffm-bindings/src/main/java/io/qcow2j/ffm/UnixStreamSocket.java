package io.qcow2j.ffm;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A connected Unix-domain stream socket on a descriptor of our own, blocking, as a channel. It exists for
 * what the JDK's Unix-domain {@code SocketChannel} does not offer: {@link #available()}, the bytes waiting
 * to be read ({@code FIONREAD}), which lets a server spin briefly for a client's next request instead of
 * sleeping in {@code read} (see the NBD server's {@code ArrivalSpin}).
 *
 * <p>Reads and writes may run at once on two threads (one reader, one writer at a time each: each side has
 * its own lock and its own native buffers). Direct buffers are read and written in place; heap buffers go
 * through a native staging buffer of this socket (16 KiB, or 256 KiB once larger heap buffers come), so a
 * request costs no native allocation. Writes never raise {@code SIGPIPE} ({@code MSG_NOSIGNAL}): a peer
 * that left is an {@code EPIPE} {@link ErrnoException}, and a peer's close is end of input (-1) for a read.
 *
 * <p>{@link #close()} may come from any thread while others are blocked in a read or write: it shuts the
 * socket down, which wakes them ({@link java.nio.channels.AsynchronousCloseException}), and the descriptor
 * is closed only once the last of them has returned ({@link FdLifetime}), so its number is never used after
 * the kernel could have reused it. The calls are plain blocking system calls: on a virtual thread they pin
 * its carrier for as long as they block, so a thread that may wait on a slow peer should be a platform one.
 */
public final class UnixStreamSocket implements ByteChannel, GatheringByteChannel {
    /** At most this many buffers go into one {@code sendmsg}; the caller writes the rest with the next call. */
    private static final int MAX_IOV = 128;
    private static final long SMALL_STAGE = 16 << 10;
    private static final long BULK_STAGE = 256 << 10;
    /** {@code struct msghdr} on 64-bit Linux: the iovec array's address at 16, its length at 24. */
    private static final long MSGHDR_SIZE = 56;
    private static final long MSG_IOV = 16;
    private static final long MSG_IOVLEN = 24;

    private final int fd;
    /** What error messages call this socket (the listener's path). */
    private final String name;
    /**
     * This socket's native memory (a few KiB, 256 KiB more per side once large heap buffers come), freed
     * with the socket object. Not a shared arena closed with the descriptor: closing one waits on a
     * handshake with every thread of the JVM, which a server with a thousand connections (two threads each)
     * would pay per connection.
     */
    private final Arena arena = Arena.ofAuto();
    private final FdLifetime life;
    private final ReentrantLock reading = new ReentrantLock();
    private final ReentrantLock writing = new ReentrantLock();
    /** FIONREAD's answer (under {@link #reading}). */
    private final MemorySegment count;
    /** The iovecs and the msghdr of a write (under {@link #writing}). */
    private final MemorySegment iov;
    private final MemorySegment message;
    /** Staging for heap buffers, allocated when first needed (under their side's lock). */
    private MemorySegment readStage;
    private MemorySegment writeStage;

    UnixStreamSocket(int fd, String name) {
        this.fd = fd;
        this.name = name;
        this.life = new FdLifetime(this::release);
        this.count = arena.allocate(JAVA_INT);
        this.iov = arena.allocate(16L * MAX_IOV, 8);
        this.message = arena.allocate(MSGHDR_SIZE, 8);
        message.set(ADDRESS, MSG_IOV, iov);
    }

    /** Connects to the server listening at {@code path}. */
    public static UnixStreamSocket connect(Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment address = UnixServerSocket.address(arena, path);
            int fd = SocketCalls.socket();
            int r = SocketCalls.connect(fd, address, (int) address.byteSize());
            if (r < 0) {
                LibC.close(fd);
                throw new ErrnoException("connect(" + path + ")", -r);
            }
            return new UnixStreamSocket(fd, path.toString());
        }
    }

    /** Reads what has come, at most {@code dst.remaining()} bytes, blocking until some has; -1 at end of input. */
    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("read into a read-only buffer");
        }
        reading.lock();
        try {
            life.enter();
            try {
                int want = dst.remaining();
                if (want == 0) {
                    return 0;
                }
                while (true) {
                    long n;
                    if (dst.isDirect()) {
                        n = SocketCalls.read(fd, MemorySegment.ofBuffer(dst), want);
                    } else {
                        MemorySegment stage = readStage = stage(readStage, want);
                        n = SocketCalls.read(fd, stage, Math.min(want, stage.byteSize()));
                        if (n > 0) {
                            MemorySegment.copy(stage, 0, MemorySegment.ofBuffer(dst), 0, n);
                        }
                    }
                    if (n > 0) {
                        dst.position(dst.position() + (int) n);
                        return (int) n;
                    }
                    if (life.isClosed()) {
                        throw FdLifetime.closedMeanwhile(); // woken by close(): not the peer's end
                    }
                    if (n == 0) {
                        return -1;
                    }
                    if (n != -Errno.EAGAIN) {
                        throw new ErrnoException("read(unix socket " + name + ")", (int) -n);
                    }
                    Thread.yield(); // never on a blocking socket; if it comes, wait as a blocking read would
                }
            } finally {
                life.leave();
            }
        } finally {
            reading.unlock();
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

    /**
     * Writes from {@code srcs[offset..offset+length)} in order, blocking until some bytes went; returns how
     * many (possibly fewer than all: the caller loops, as with any gathering channel).
     */
    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        Objects.checkFromIndexSize(offset, length, srcs.length);
        writing.lock();
        try {
            life.enter();
            try {
                while (true) {
                    int entries = 0;
                    long staged = 0;
                    MemorySegment stage = null;
                    for (int i = offset; i < offset + length && entries < MAX_IOV; i++) {
                        ByteBuffer b = srcs[i];
                        int rem = b.remaining();
                        if (rem == 0) {
                            continue;
                        }
                        long base;
                        long len = rem;
                        if (b.isDirect()) {
                            base = MemorySegment.ofBuffer(b).address();
                        } else {
                            if (stage == null) {
                                stage = writeStage = stage(writeStage, heapBytes(srcs, i, offset + length));
                            }
                            len = Math.min(rem, stage.byteSize() - staged);
                            if (len == 0) {
                                break;
                            }
                            MemorySegment.copy(MemorySegment.ofBuffer(b), 0, stage, staged, len);
                            base = stage.address() + staged;
                            staged += len;
                        }
                        iov.setAtIndex(JAVA_LONG, 2L * entries, base);
                        iov.setAtIndex(JAVA_LONG, 2L * entries + 1, len);
                        entries++;
                        if (len < rem) {
                            break; // the stage is full: the rest of this buffer goes with the next call
                        }
                    }
                    if (entries == 0) {
                        return 0;
                    }
                    message.set(JAVA_LONG, MSG_IOVLEN, entries);
                    long n = SocketCalls.sendmsg(fd, message);
                    Reference.reachabilityFence(srcs); // the iovecs point into its direct buffers
                    if (n >= 0) {
                        advance(srcs, offset, length, n);
                        return n;
                    }
                    if (life.isClosed()) {
                        throw FdLifetime.closedMeanwhile();
                    }
                    if (n != -Errno.EAGAIN) {
                        throw new ErrnoException("sendmsg(unix socket " + name + ")", (int) -n);
                    }
                    Thread.yield(); // never on a blocking socket; if it comes, wait as a blocking write would
                }
            } finally {
                life.leave();
            }
        } finally {
            writing.unlock();
        }
    }

    /** Bytes that have arrived and wait to be read ({@code FIONREAD}); never blocks. */
    public int available() throws IOException {
        reading.lock();
        try {
            life.enter();
            try {
                int n = SocketCalls.pending(fd, count);
                if (n < 0) {
                    throw new ErrnoException("ioctl(unix socket " + name + ", FIONREAD)", -n);
                }
                return n;
            } finally {
                life.leave();
            }
        } finally {
            reading.unlock();
        }
    }

    /** Ends input: a read blocked now or later returns end of input; writing goes on. */
    public void shutdownInput() throws IOException {
        life.enter();
        try {
            int r = SocketCalls.shutdown(fd, SocketCalls.SHUT_RD);
            if (r < 0 && r != -Errno.ENOTCONN) {
                throw new ErrnoException("shutdown(unix socket " + name + ", SHUT_RD)", -r);
            }
        } finally {
            life.leave();
        }
    }

    @Override
    public boolean isOpen() {
        return !life.isClosed();
    }

    /** Wakes every read and write blocked on this socket; the descriptor is closed once they have returned. */
    @Override
    public void close() {
        if (life.close()) {
            try {
                SocketCalls.shutdown(fd, SocketCalls.SHUT_RDWR); // ENOTCONN when the peer already left: fine
            } finally {
                life.leave();
            }
        }
    }

    @Override
    public String toString() {
        return "unix socket " + name;
    }

    private void release() {
        try {
            LibC.close(fd);
        } catch (ErrnoException e) {
            // Linux frees the descriptor even when close fails: nothing to retry
        }
    }

    /** {@code current}, or a larger one when {@code want} needs it: at most two allocations per side. */
    private MemorySegment stage(MemorySegment current, long want) {
        long size = want <= SMALL_STAGE ? SMALL_STAGE : BULK_STAGE;
        if (current == null || current.byteSize() < size) {
            return arena.allocate(size, 64);
        }
        return current;
    }

    private static long heapBytes(ByteBuffer[] srcs, int from, int to) {
        long n = 0;
        for (int i = from; i < to && n < BULK_STAGE; i++) {
            if (!srcs[i].isDirect()) {
                n += srcs[i].remaining();
            }
        }
        return n;
    }

    /** Moves the buffers' positions past the {@code n} bytes written, in order. */
    private static void advance(ByteBuffer[] srcs, int offset, int length, long n) {
        for (int i = offset; i < offset + length && n > 0; i++) {
            ByteBuffer b = srcs[i];
            int step = (int) Math.min(n, b.remaining());
            b.position(b.position() + step);
            n -= step;
        }
    }
}
