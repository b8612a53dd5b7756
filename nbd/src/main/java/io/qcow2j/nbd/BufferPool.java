package io.qcow2j.nbd;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Direct buffers for the payloads of one connection's common requests (up to {@link #SIZE}), reused: the
 * socket reads and writes them without the JDK's copy through a temporary direct buffer, and the engine
 * reads and writes them as native segments. Larger payloads get heap buffers. How many exist at once is
 * bounded by the connection's in-flight budget; at most {@link #MAX_POOLED} are kept when idle.
 */
final class BufferPool {
    static final int SIZE = 128 << 10;
    private static final int MAX_POOLED = 32;

    private final ConcurrentLinkedDeque<ByteBuffer> free = new ConcurrentLinkedDeque<>();
    /** Buffers in {@link #free}; kept apart because the deque's size() is O(n). */
    private final AtomicInteger pooled = new AtomicInteger();

    /** A buffer with position 0 and limit {@code length}. */
    ByteBuffer take(int length) {
        if (length > SIZE) {
            return ByteBuffer.allocate(length);
        }
        ByteBuffer b = free.pollFirst();
        if (b == null) {
            b = ByteBuffer.allocateDirect(SIZE);
        } else {
            pooled.decrementAndGet();
        }
        return b.clear().limit(length);
    }

    /** Gives back a buffer from {@link #take}; it must not be used afterwards. */
    void give(ByteBuffer b) {
        if (b != null && b.isDirect() && pooled.incrementAndGet() <= MAX_POOLED) {
            free.offerFirst(b);
        } else if (b != null && b.isDirect()) {
            pooled.decrementAndGet();
        }
    }
}
