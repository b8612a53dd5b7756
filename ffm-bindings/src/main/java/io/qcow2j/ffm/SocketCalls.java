package io.qcow2j.ffm;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The socket system calls behind {@link UnixStreamSocket} and {@link UnixServerSocket}, each linked on first
 * use as {@link LibC}'s are. Each returns the call's result, or {@code -errno} when it failed, with
 * {@code EINTR} already retried: the callers decide what an error means (a peer gone, a socket we closed),
 * and the per-request paths throw nothing they did not mean to.
 */
final class SocketCalls {
    static final int AF_UNIX = 1;
    static final int SOCK_STREAM = 1;
    static final int SOCK_CLOEXEC = Platform.O_CLOEXEC;
    static final int SHUT_RD = 0;
    static final int SHUT_RDWR = 2;
    /** {@code ioctl(fd, FIONREAD, &n)}: bytes waiting to be read (the same number on x86-64 and aarch64). */
    static final long FIONREAD = 0x541B;
    /** A write to a socket whose peer left answers EPIPE instead of raising SIGPIPE. */
    static final int MSG_NOSIGNAL = 0x4000;

    private static final class Socket {
        static final MethodHandle H = LibC.handle("socket",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), LibC.CAPTURE_ERRNO);
    }

    private static final class Bind {
        static final MethodHandle H = LibC.handle("bind",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), LibC.CAPTURE_ERRNO);
    }

    private static final class Connect {
        static final MethodHandle H = LibC.handle("connect",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT), LibC.CAPTURE_ERRNO);
    }

    private static final class Listen {
        static final MethodHandle H = LibC.handle("listen",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), LibC.CAPTURE_ERRNO);
    }

    private static final class Accept4 {
        static final MethodHandle H = LibC.handle("accept4",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), LibC.CAPTURE_ERRNO);
    }

    private static final class Read {
        static final MethodHandle H = LibC.handle("read",
                FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), LibC.CAPTURE_ERRNO);
    }

    private static final class Sendmsg {
        static final MethodHandle H = LibC.handle("sendmsg",
                FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT), LibC.CAPTURE_ERRNO);
    }

    private static final class Ioctl {
        static final MethodHandle H = LibC.handle("ioctl",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), LibC.CAPTURE_ERRNO,
                Linker.Option.firstVariadicArg(2));
    }

    private static final class Shutdown {
        static final MethodHandle H = LibC.handle("shutdown",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT), LibC.CAPTURE_ERRNO);
    }

    private SocketCalls() {}

    /** A new Unix-domain stream socket, close-on-exec. */
    static int socket() throws ErrnoException {
        MemorySegment st = LibC.state();
        while (true) {
            int fd;
            try {
                fd = (int) Socket.H.invokeExact(st, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            } catch (Throwable t) {
                throw LibC.rethrow(t);
            }
            if (fd >= 0) {
                return fd;
            }
            if (LibC.errno(st) != Errno.EINTR) {
                throw new ErrnoException("socket(AF_UNIX, SOCK_STREAM)", LibC.errno(st));
            }
        }
    }

    static int bind(int fd, MemorySegment address, int length) {
        MemorySegment st = LibC.state();
        try {
            int r = (int) Bind.H.invokeExact(st, fd, address, length);
            return r == 0 ? 0 : -LibC.errno(st);
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }

    /** Not retried on EINTR: the connection goes on in the background then (it is only used to probe). */
    static int connect(int fd, MemorySegment address, int length) {
        MemorySegment st = LibC.state();
        try {
            int r = (int) Connect.H.invokeExact(st, fd, address, length);
            return r == 0 ? 0 : -LibC.errno(st);
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }

    static int listen(int fd, int backlog) {
        MemorySegment st = LibC.state();
        try {
            int r = (int) Listen.H.invokeExact(st, fd, backlog);
            return r == 0 ? 0 : -LibC.errno(st);
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }

    /** The accepted socket's descriptor (close-on-exec), or -errno. */
    static int accept(int fd) {
        MemorySegment st = LibC.state();
        while (true) {
            int r;
            try {
                r = (int) Accept4.H.invokeExact(st, fd, MemorySegment.NULL, MemorySegment.NULL, SOCK_CLOEXEC);
            } catch (Throwable t) {
                throw LibC.rethrow(t);
            }
            if (r >= 0 || LibC.errno(st) != Errno.EINTR) {
                return r >= 0 ? r : -LibC.errno(st);
            }
        }
    }

    /** Bytes read into {@code dst} (at most {@code length}; 0 at end of input), or -errno. */
    static long read(int fd, MemorySegment dst, long length) {
        MemorySegment st = LibC.state();
        while (true) {
            long r;
            try {
                r = (long) Read.H.invokeExact(st, fd, dst, length);
            } catch (Throwable t) {
                throw LibC.rethrow(t);
            }
            if (r >= 0 || LibC.errno(st) != Errno.EINTR) {
                return r >= 0 ? r : -LibC.errno(st);
            }
        }
    }

    /** Bytes sent of the iovecs {@code message} (a {@code struct msghdr}) points to, or -errno; no SIGPIPE. */
    static long sendmsg(int fd, MemorySegment message) {
        MemorySegment st = LibC.state();
        while (true) {
            long r;
            try {
                r = (long) Sendmsg.H.invokeExact(st, fd, message, MSG_NOSIGNAL);
            } catch (Throwable t) {
                throw LibC.rethrow(t);
            }
            if (r >= 0 || LibC.errno(st) != Errno.EINTR) {
                return r >= 0 ? r : -LibC.errno(st);
            }
        }
    }

    /** Bytes waiting to be read ({@code FIONREAD} into {@code count}, an int), or -errno. */
    static int pending(int fd, MemorySegment count) {
        MemorySegment st = LibC.state();
        try {
            int r = (int) Ioctl.H.invokeExact(st, fd, FIONREAD, count);
            return r == 0 ? count.get(JAVA_INT, 0) : -LibC.errno(st);
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }

    static int shutdown(int fd, int how) {
        MemorySegment st = LibC.state();
        try {
            int r = (int) Shutdown.H.invokeExact(st, fd, how);
            return r == 0 ? 0 : -LibC.errno(st);
        } catch (Throwable t) {
            throw LibC.rethrow(t);
        }
    }
}
