package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.cache.StripedCounter;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Requests against the operations that free clusters: any number of reads and writes at once (shared), or
 * one discard, write-zeroes or repair alone (exclusive), so that no request is using a cluster while it is
 * freed and reused.
 *
 * <p>Why not a {@code ReentrantReadWriteLock}: its shared side is a compare-and-set on one word (plus a
 * thread-local hold count), and with 16 requests on 2 cores that word's cache line moved between the cores
 * twice per request: measured, it held cached 4 KiB reads at ~0.65× raw {@code pread} at depth 16, and
 * ~1.0× without it. Here a request counts itself in one of several stripes, each on its own cache lines,
 * picked by thread; the rare exclusive holder raises a flag and waits until every stripe is zero.
 *
 * <p>Invariants: {@code exclusive} is true only while {@code exclusiveLock} is held by the exclusive holder;
 * a shared holder's stripe count is raised for the whole time it holds the lock. A shared holder raises its
 * count before reading the flag, and the exclusive holder raises the flag before reading the counts (all
 * volatile, hence sequentially consistent): so one of the two always sees the other. Not reentrant for
 * upgrades: a thread holding the shared side must not ask for the exclusive one (it would wait for itself).
 * The exclusive holder may take the shared side too (its own requests pass).
 */
public final class RequestLock {
    /** Shared holders, counted per thread stripe; a holder's count is raised for as long as it holds. */
    private final StripedCounter shared = new StripedCounter();
    private volatile boolean exclusive;
    private final ReentrantLock exclusiveLock = new ReentrantLock();

    /** Enters as one of many requests; waits while an exclusive holder is in. Pair with {@link #unlockShared}. */
    public void lockShared() {
        while (true) {
            shared.add(1);
            if (!exclusive || exclusiveLock.isHeldByCurrentThread()) {
                return;
            }
            shared.add(-1);
            exclusiveLock.lock(); // sleeps until the exclusive holder leaves
            exclusiveLock.unlock();
        }
    }

    /**
     * Enters as one of many requests if no exclusive holder is in or waiting; never waits. The fast read path
     * ({@link FastReads}) uses it on the caller's thread, which must not block: it takes the general path
     * instead. The unlock may come from another thread (the I/O completion): the stripes only need to add up.
     */
    public boolean tryLockShared() {
        shared.add(1);
        if (!exclusive || exclusiveLock.isHeldByCurrentThread()) {
            return true;
        }
        shared.add(-1);
        return false;
    }

    public void unlockShared() {
        shared.add(-1);
    }

    /** Enters alone: waits for the requests in flight to finish; new ones wait until {@link #unlockExclusive}. */
    public void lockExclusive() {
        exclusiveLock.lock();
        if (exclusiveLock.getHoldCount() > 1) {
            return;
        }
        exclusive = true;
        for (int round = 0; sharedHolders() != 0; round++) {
            if (round < 64) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(Math.min(1_000_000L, 1_000L << Math.min(round - 64, 10)));
            }
        }
    }

    public void unlockExclusive() {
        if (exclusiveLock.isHeldByCurrentThread() && exclusiveLock.getHoldCount() == 1) {
            exclusive = false;
        }
        exclusiveLock.unlock();
    }

    /** Requests in flight (their shared holds). */
    long sharedHolders() {
        return shared.sum();
    }

    boolean isHeldExclusivelyByCurrentThread() {
        return exclusiveLock.isHeldByCurrentThread();
    }
}
