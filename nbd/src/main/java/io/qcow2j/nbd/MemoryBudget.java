package io.qcow2j.nbd;

import java.io.InterruptedIOException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The server's one budget for request payloads in flight, over all connections ({@code --max-buffer}): before
 * a connection allocates a request's buffer it takes the request's cost here (after its own per-connection
 * share), and gives it back once the reply is written. When the budget is used up, readers of further
 * requests wait: back-pressure, so memory stays bounded however many clients there are and whatever they send.
 *
 * <p>Clients that never read their replies hold their share forever, so waiting alone could starve everyone
 * else. A reader that has waited {@code stallLimit} calls {@code starved}, which disconnects the connections
 * whose reply writes have made no progress for that long (see {@link NbdServer}); their buffers come back and
 * the waiting readers go on. Counted in KiB, so budgets beyond 2 GiB fit a {@link Semaphore}.
 */
final class MemoryBudget {
    private final long bytes;
    private final Semaphore kib;
    private final long stallMillis;
    private final Runnable starved;

    MemoryBudget(long bytes, long stallMillis, Runnable starved) {
        this.bytes = bytes;
        this.kib = new Semaphore((int) Math.min(Integer.MAX_VALUE, bytes >> 10));
        this.stallMillis = stallMillis;
        this.starved = starved;
    }

    long bytes() {
        return bytes;
    }

    /** Takes {@code cost} bytes, waiting while the budget is used (and calling {@code starved} meanwhile). */
    void acquire(long cost) throws InterruptedIOException {
        int units = units(cost);
        try {
            while (!kib.tryAcquire(units, stallMillis, TimeUnit.MILLISECONDS)) {
                starved.run();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while waiting for memory");
        }
    }

    /** Takes {@code cost} bytes if they are free now; false (having taken nothing) if not. */
    boolean tryAcquire(long cost) {
        return kib.tryAcquire(units(cost));
    }

    void release(long cost) {
        kib.release(units(cost));
    }

    private static int units(long cost) {
        return (int) ((cost + 1023) >> 10);
    }
}
