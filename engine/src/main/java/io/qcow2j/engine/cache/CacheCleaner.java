package io.qcow2j.engine.cache;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.LockSupport;

/**
 * QEMU's {@code cache-clean-interval}: every interval, under the owner's lock, drops the tables no one
 * used since the previous pass ({@link MetadataCache#cleanUnused}) and gives their memory back. A large
 * cache can then serve bursts of I/O and still cost little memory while the image idles.
 *
 * <p>Runs on one daemon thread; {@link #close} stops it and waits for a pass in progress to end.
 */
public final class CacheCleaner implements AutoCloseable {
    private final Thread thread;
    private final long intervalNanos;
    private final Lock ownerLock;
    private final List<MetadataCache> caches;
    private volatile boolean stopped;
    private volatile long passes;

    private CacheCleaner(Duration interval, Lock ownerLock, List<MetadataCache> caches) {
        this.intervalNanos = interval.toNanos();
        this.ownerLock = ownerLock;
        this.caches = caches;
        this.thread = Thread.ofPlatform().daemon().name("qcow2j-cache-cleaner").unstarted(this::run);
    }

    /**
     * Starts cleaning {@code caches} every {@code interval}, taking {@code ownerLock} (the lock that
     * serializes the owner's metadata work) for each pass.
     */
    public static CacheCleaner start(Duration interval, Lock ownerLock, MetadataCache... caches) {
        if (interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("cache-clean-interval must be positive: " + interval);
        }
        CacheCleaner c = new CacheCleaner(interval, Objects.requireNonNull(ownerLock), List.of(caches));
        c.thread.start();
        return c;
    }

    private void run() {
        long deadline = System.nanoTime() + intervalNanos;
        while (!stopped) {
            long wait = deadline - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(this, wait);
                continue;
            }
            ownerLock.lock();
            try {
                if (stopped) {
                    return;
                }
                for (MetadataCache c : caches) {
                    c.cleanUnused();
                }
                passes++;
            } finally {
                ownerLock.unlock();
            }
            deadline = System.nanoTime() + intervalNanos;
        }
    }

    /** Completed passes so far. */
    public long passes() {
        return passes;
    }

    /** Stops the cleaner and waits (bounded) for its thread to end. Idempotent. */
    @Override
    public void close() {
        stopped = true;
        LockSupport.unpark(thread);
        try {
            thread.join(TimeUnit.SECONDS.toMillis(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
