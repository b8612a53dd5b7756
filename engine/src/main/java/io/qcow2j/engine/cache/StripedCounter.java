package io.qcow2j.engine.cache;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A counter that many threads add to at once without sharing a cache line: each thread adds to the stripe
 * its thread id picks, and {@link #sum} adds the stripes up. Unlike {@code LongAdder}, whose cells are
 * capped at the number of CPUs (2 here, for 16 request threads, so nearly every add moved a cache line
 * between the cores), there are enough stripes for the threads of a typical queue depth (platform thread
 * ids are consecutive) to get one each.
 *
 * <p>Every {@link #add} is a volatile read-modify-write and {@link #sum} reads every stripe with volatile
 * reads, so a thread that adds and then reads some flag, and one that writes that flag and then sums,
 * cannot both miss each other (the request lock relies on it).
 */
public final class StripedCounter {
    private static final VarHandle CELLS = MethodHandles.arrayElementVarHandle(long[].class);
    /** Longs between two stripes: 128 bytes, so neighbours share neither a cache line nor a prefetched pair. */
    private static final int STRIDE = 16;
    private static final int STRIPES = 64;

    /** Stripe {@code s} at index {@code (s + 1) * STRIDE}: padded on both sides. */
    private final long[] cells = new long[(STRIPES + 2) * STRIDE];

    private static int index() {
        return ((int) Thread.currentThread().threadId() & (STRIPES - 1)) * STRIDE + STRIDE;
    }

    public void add(long delta) {
        CELLS.getAndAdd(cells, index(), delta);
    }

    public void increment() {
        add(1);
    }

    /** The total; exact when no thread is adding, else some value the counter had during the call. */
    public long sum() {
        long n = 0;
        for (int s = 0; s < STRIPES; s++) {
            n += (long) CELLS.getVolatile(cells, s * STRIDE + STRIDE);
        }
        return n;
    }
}
