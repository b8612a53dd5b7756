package io.qcow2j.engine.qcow2;

import java.lang.invoke.VarHandle;
import java.util.Date;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The image's metadata lock, which also lets readers of cached L2 slices go without it: a
 * {@link ReentrantLock} with a version number in the manner of a seqlock (or {@code StampedLock}'s optimistic
 * reads). A reader takes the version with {@link #optimisticVersion}, reads metadata without the lock, and
 * keeps what it read only if {@link #validate} then says no thread held the lock in between; otherwise it
 * takes the lock and reads again.
 *
 * <p>Why: a read of a cached L2 entry takes ~50 ns, but with more threads than cores a lock holder is
 * sometimes descheduled, and every other request then queues behind it (measured: 4 KiB reads stopped at
 * ~500k IOPS at any depth on 2 cores, with {@code futex} the top system call).
 *
 * <p>Invariant: {@code version} is odd exactly while some thread holds the lock. It changes only in the
 * holder's thread: on the outermost acquire and release, and around condition waits (which release the lock
 * inside {@link Condition#await}), so its parity never drifts.
 */
final class MetadataLock extends ReentrantLock {
    /** What {@link #optimisticVersion} returns while the lock is held: no optimistic read can succeed. */
    static final long HELD = -1;

    private volatile long version;

    /** The version to pass to {@link #validate}, or {@link #HELD}. */
    long optimisticVersion() {
        long v = version;
        return (v & 1) == 0 ? v : HELD;
    }

    /** Whether no thread held the lock since {@link #optimisticVersion} returned {@code v}. */
    boolean validate(long v) {
        VarHandle.acquireFence(); // the reader's plain loads happen before this load of the version
        return v != HELD && version == v;
    }

    /** Called by the holder only: after an acquire (version now odd) or before a release (now even). */
    private void bump() {
        version = version + 1;
        VarHandle.storeStoreFence(); // after an acquire: the holder's writes stay after the odd version
    }

    private void acquired() {
        if (getHoldCount() == 1) {
            bump();
        }
    }

    @Override
    public void lock() {
        super.lock();
        acquired();
    }

    @Override
    public void lockInterruptibly() throws InterruptedException {
        super.lockInterruptibly();
        acquired();
    }

    @Override
    public boolean tryLock() {
        if (!super.tryLock()) {
            return false;
        }
        acquired();
        return true;
    }

    @Override
    public boolean tryLock(long timeout, TimeUnit unit) throws InterruptedException {
        if (!super.tryLock(timeout, unit)) {
            return false;
        }
        acquired();
        return true;
    }

    @Override
    public void unlock() {
        if (isHeldByCurrentThread() && getHoldCount() == 1) {
            bump();
        }
        super.unlock(); // throws IllegalMonitorStateException for a thread that does not hold it
    }

    @Override
    public Condition newCondition() {
        return new VersionedCondition(super.newCondition());
    }

    /** A condition of this lock: a wait releases the lock, so it moves the version like a release and an acquire. */
    private final class VersionedCondition implements Condition {
        private final Condition condition;

        VersionedCondition(Condition condition) {
            this.condition = condition;
        }

        /** Runs a wait with the version even while the lock is released, odd again once it is reacquired. */
        private <T> T waiting(Wait<T> wait) throws InterruptedException {
            if (!isHeldByCurrentThread()) {
                throw new IllegalMonitorStateException("condition wait without holding the metadata lock");
            }
            bump();
            try {
                return wait.run();
            } finally {
                bump(); // the wait returns (or throws) only with the lock held again
            }
        }

        @Override
        public void await() throws InterruptedException {
            waiting(() -> {
                condition.await();
                return null;
            });
        }

        @Override
        public void awaitUninterruptibly() {
            try {
                waiting(() -> {
                    condition.awaitUninterruptibly();
                    return null;
                });
            } catch (InterruptedException e) {
                throw new AssertionError(e); // awaitUninterruptibly does not throw it
            }
        }

        @Override
        public long awaitNanos(long nanosTimeout) throws InterruptedException {
            return waiting(() -> condition.awaitNanos(nanosTimeout));
        }

        @Override
        public boolean await(long time, TimeUnit unit) throws InterruptedException {
            return waiting(() -> condition.await(time, unit));
        }

        @Override
        public boolean awaitUntil(Date deadline) throws InterruptedException {
            return waiting(() -> condition.awaitUntil(deadline));
        }

        @Override
        public void signal() {
            condition.signal();
        }

        @Override
        public void signalAll() {
            condition.signalAll();
        }
    }

    @FunctionalInterface
    private interface Wait<T> {
        T run() throws InterruptedException;
    }
}
