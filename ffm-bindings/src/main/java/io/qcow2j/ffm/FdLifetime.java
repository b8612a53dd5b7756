package io.qcow2j.ffm;

import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * When a descriptor shared by several threads may really be closed: only once every call using it has
 * returned. A thread blocked in {@code read} on a socket that another thread closes would otherwise go on
 * with a descriptor number the kernel may already have given to a newly opened file or connection, and read
 * or write that one by mistake. So each use is bracketed by {@link #enter} and {@link #leave}; {@link #close}
 * marks the descriptor closed (later enters fail), lets its caller wake the blocked users (a socket's
 * {@code shutdown}) while it counts as a user itself, and the last one to leave runs {@code release}, which
 * closes the descriptor, exactly once.
 */
final class FdLifetime {
    /** Set in {@link #state} once closed; the rest is the number of users in a call now. */
    private static final long CLOSED = 1L << 62;

    private final AtomicLong state = new AtomicLong();
    private final Runnable release;

    /** {@code release}: closes the descriptor (and frees what went with it); run once, by the last user. */
    FdLifetime(Runnable release) {
        this.release = release;
    }

    /** Counts the caller as a user until {@link #leave}; fails once closed. */
    void enter() throws ClosedChannelException {
        while (true) {
            long s = state.get();
            if ((s & CLOSED) != 0) {
                throw new ClosedChannelException();
            }
            if (state.compareAndSet(s, s + 1)) {
                return;
            }
        }
    }

    /** Ends a use begun by {@link #enter} (or by a {@link #close} that returned true). */
    void leave() {
        if (state.decrementAndGet() == CLOSED) {
            release.run();
        }
    }

    /**
     * Marks the descriptor closed. True for the first call, which then counts as a user: it may still use
     * the descriptor (to wake the blocked users) and must {@link #leave} afterwards. False if already closed.
     */
    boolean close() {
        while (true) {
            long s = state.get();
            if ((s & CLOSED) != 0) {
                return false;
            }
            if (state.compareAndSet(s, (s | CLOSED) + 1)) {
                return true;
            }
        }
    }

    boolean isClosed() {
        return (state.get() & CLOSED) != 0;
    }

    /** What a call that failed or returned nothing because the descriptor was closed meanwhile throws. */
    static AsynchronousCloseException closedMeanwhile() {
        return new AsynchronousCloseException();
    }
}
