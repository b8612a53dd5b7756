package io.qcow2j.nbd;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Before a connection's reader blocks in a socket read for the client's next request, it spins here a little
 * while, asking the socket whether bytes have come ({@code FIONREAD}, no wait). A client that waits for each
 * reply before it sends the next request (depth 1) answers within a few microseconds; a reader asleep in the
 * kernel must then be woken and scheduled, which on this machine costs more than serving the request (the
 * kernel's task switch and the socket's wake-up were most of a depth-1 read's server time). Spinning keeps
 * the reader running instead, so the request is read as soon as it lands.
 *
 * <p>Bounded, so the CPU it burns stays small: at most {@link #SPIN_NANOS} per wait; after {@link #MISSES}
 * spins in a row that found nothing (a client slower than the spin, or idle) only one wait in
 * {@link #PROBE_EVERY} spins until one finds its request again; and at most one connection less than the
 * machine has processors spins at once, so spinners never take every core from the clients and the disk.
 * Plain connections spin, TCP and Unix socket alike ({@link Transport#available()}: the JDK's input stream
 * of a TCP socket, our own {@code FIONREAD} on a Unix socket, whose JDK channel offers no such query); TLS
 * connections do not: a record may arrive in parts, and bytes waiting need not make a whole request.
 */
final class ArrivalSpin {
    /** The longest one wait spins (a depth-1 client's next request comes well within it). */
    static final long SPIN_NANOS = spinNanos();
    /** After this many fruitless spins in a row the client counts as slow. */
    static final int MISSES = 4;
    /** A slow client's waits spin one time in this many, to notice when it is fast again. */
    static final int PROBE_EVERY = 64;
    /** Connections spinning now, server-wide. */
    private static final AtomicInteger SPINNING = new AtomicInteger();
    private static final int MAX_SPINNING = Math.max(1, Runtime.getRuntime().availableProcessors() - 1);

    /** What the spin asks: the bytes that have arrived on the socket, without waiting. */
    @FunctionalInterface
    interface Arrived {
        int available() throws IOException;
    }

    private final Arrived socket;
    private int misses;
    private int waits;

    /** {@code socket}: the connection's socket ({@link Transport#available()}). */
    ArrivalSpin(Arrived socket) {
        this.socket = socket;
    }

    /** Returns once bytes are there to read, or when spinning is not worth it (then the read blocks). */
    void await() throws IOException {
        if (SPIN_NANOS <= 0 || (misses >= MISSES && ++waits % PROBE_EVERY != 0)) {
            return;
        }
        if (SPINNING.incrementAndGet() > MAX_SPINNING) {
            SPINNING.decrementAndGet();
            return;
        }
        try {
            long start = System.nanoTime();
            do {
                if (socket.available() > 0) {
                    misses = 0;
                    return;
                }
                Thread.onSpinWait();
            } while (System.nanoTime() - start < SPIN_NANOS);
            misses++;
        } finally {
            SPINNING.decrementAndGet();
        }
    }

    /** The default bound, and the largest one accepted: a longer spin would only burn a core. */
    static final long DEFAULT_SPIN_NANOS = 50_000;
    static final long MAX_SPIN_NANOS = 1_000_000;

    /** The bound in use; the first call reads the environment (the server calls it when it starts on TCP). */
    static long loadBound() {
        return SPIN_NANOS;
    }

    /** {@code QCOW2J_NBD_SPIN_NS}, or the default; a bad value is named in one line on stderr, not obeyed. */
    private static long spinNanos() {
        String s = System.getenv("QCOW2J_NBD_SPIN_NS");
        try {
            return parseSpinNanos(s);
        } catch (IllegalArgumentException e) {
            System.err.println("qcow2j: " + e.getMessage());
            return DEFAULT_SPIN_NANOS;
        }
    }

    /** The bound {@code value} sets (null: the default); refused unless a whole number of ns in [0, 1 ms]. */
    static long parseSpinNanos(String value) {
        if (value == null) {
            return DEFAULT_SPIN_NANOS;
        }
        long n;
        try {
            n = Long.parseLong(value.trim());
        } catch (NumberFormatException e) {
            n = -1;
        }
        if (n < 0 || n > MAX_SPIN_NANOS) {
            throw new IllegalArgumentException("QCOW2J_NBD_SPIN_NS='" + value + "' ignored: expected nanoseconds from 0 to "
                    + MAX_SPIN_NANOS + " (0 turns the spin off); spinning up to " + DEFAULT_SPIN_NANOS + " ns");
        }
        return n;
    }
}
