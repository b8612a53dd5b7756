package io.qcow2j.ffm;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.BindException;
import java.net.SocketException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * A listening Unix-domain stream socket at a path, accepting {@link UnixStreamSocket}s.
 *
 * <p>The socket file is made by {@code bind} with the process's umask, as any Unix socket. A path that is
 * taken by a stale socket (a socket file no server listens on any more: connecting to it is refused, as
 * after a server that was killed) is replaced; a path where a server still listens, or that is not a
 * socket, is refused with {@code Address already in use}. The path, in the JVM's file name encoding, must
 * fit {@code sun_path} (108 bytes) with its terminating NUL.
 *
 * <p>{@link #close()} wakes a thread blocked in {@link #accept()} (which then throws
 * {@link java.nio.channels.AsynchronousCloseException}) and closes the descriptor once it has returned;
 * the socket file stays, for the owner to remove.
 */
public final class UnixServerSocket implements java.io.Closeable {
    /** The longest path {@code sun_path} holds, in bytes, its NUL apart. */
    public static final int MAX_PATH_BYTES = 107;
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;

    private final int fd;
    private final Path path;
    private final FdLifetime life;

    private UnixServerSocket(int fd, Path path) {
        this.fd = fd;
        this.path = path;
        this.life = new FdLifetime(() -> {
            try {
                LibC.close(fd);
            } catch (ErrnoException e) {
                // the descriptor is gone either way
            }
        });
    }

    /** Listens at {@code path} with a queue of {@code backlog} connections not yet accepted. */
    public static UnixServerSocket bind(Path path, int backlog) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment address = address(arena, path);
            int fd = SocketCalls.socket();
            try {
                int r = SocketCalls.bind(fd, address, (int) address.byteSize());
                if (r == -Errno.EADDRINUSE && stale(path, address)) {
                    Files.deleteIfExists(path);
                    r = SocketCalls.bind(fd, address, (int) address.byteSize());
                }
                if (r < 0) {
                    throw new BindException(LibC.strerror(-r)); // the caller names the path, as for TCP
                }
                r = SocketCalls.listen(fd, backlog);
                if (r < 0) {
                    throw new ErrnoException("listen(" + path + ")", -r);
                }
                return new UnixServerSocket(fd, path);
            } catch (IOException | RuntimeException | Error e) {
                LibC.close(fd);
                throw e;
            }
        }
    }

    /** Waits for the next client. */
    public UnixStreamSocket accept() throws IOException {
        life.enter();
        try {
            while (true) {
                int c = SocketCalls.accept(fd);
                if (c >= 0) {
                    return new UnixStreamSocket(c, path.toString());
                }
                if (life.isClosed()) {
                    throw FdLifetime.closedMeanwhile();
                }
                if (c != -Errno.ECONNABORTED && c != -Errno.EAGAIN) { // a client that left while queued: next
                    throw new ErrnoException("accept4(" + path + ")", -c);
                }
            }
        } finally {
            life.leave();
        }
    }

    public Path path() {
        return path;
    }

    /** Stops accepting (waking a blocked {@link #accept()}); the socket file is left in place. */
    @Override
    public void close() {
        if (life.close()) {
            try {
                SocketCalls.shutdown(fd, SocketCalls.SHUT_RDWR);
            } finally {
                life.leave();
            }
        }
    }

    /** A {@code struct sockaddr_un} for {@code path}, sized as bind and connect take it (family, path, NUL). */
    static MemorySegment address(Arena arena, Path path) throws SocketException {
        String s = path.toString();
        if (s.indexOf('\0') >= 0) {
            throw new SocketException("Unix domain path contains a NUL character");
        }
        byte[] bytes = s.getBytes(fileNameEncoding());
        if (bytes.length == 0) {
            throw new SocketException("empty Unix domain path");
        }
        if (bytes.length > MAX_PATH_BYTES) {
            throw new SocketException("Unix domain path too long (" + bytes.length + " bytes, at most "
                    + MAX_PATH_BYTES + ")");
        }
        MemorySegment a = arena.allocate(2 + bytes.length + 1, 2);
        a.set(JAVA_SHORT, 0, (short) SocketCalls.AF_UNIX);
        MemorySegment.copy(bytes, 0, a, JAVA_BYTE, 2, bytes.length);
        a.set(JAVA_BYTE, 2 + bytes.length, (byte) 0);
        return a;
    }

    /** Whether {@code path} is a socket file that nothing listens on (connecting is refused). */
    private static boolean stale(Path path, MemorySegment address) throws IOException {
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
        if ((mode & S_IFMT) != S_IFSOCK) {
            return false;
        }
        int probe = SocketCalls.socket();
        try {
            return SocketCalls.connect(probe, address, (int) address.byteSize()) == -Errno.ECONNREFUSED;
        } finally {
            LibC.close(probe);
        }
    }

    /** How the JVM encodes file names (what {@link Files} uses for the same path). */
    private static Charset fileNameEncoding() {
        try {
            return Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        } catch (RuntimeException e) {
            return StandardCharsets.UTF_8;
        }
    }
}
