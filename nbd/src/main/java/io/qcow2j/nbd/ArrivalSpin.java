package io.qcow2j.nbd;

import java.io.IOException;
import java.io.InputStream;
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
 * Only plain TCP connections spin: a Unix socket channel offers no such query ({@code available()}), and a
 * TLS record may arrive in parts.
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

    private final InputStream socket;
    private int misses;
    private int waits;

    /** {@code socket}: the connection's input stream, asked only for {@link InputStream#available()}. */
    ArrivalSpin(InputStream socket) {
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

    private static long spinNanos() {
        String s = System.getenv("QCOW2J_NBD_SPIN_NS");
        try {
            return s == null ? 50_000 : Long.parseLong(s);
        } catch (NumberFormatException e) {
            return 50_000;
        }
    }
}
