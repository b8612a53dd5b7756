package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link MetadataLock}: the version is even (and validates) exactly while no thread holds the lock; any hold in
 * between (reentrant, by tryLock, or a condition wait and its re-acquire) makes an earlier version fail; and a
 * seqlock reader that trusts only validated snapshots never sees a half-written structure.
 */
@Timeout(30)
class MetadataLockTest {

    /** Runs {@code body} in a new thread and returns its future (started). */
    private static <T> Future<T> inThread(String name, java.util.concurrent.Callable<T> body) {
        FutureTask<T> f = new FutureTask<>(body);
        Thread t = new Thread(f, name);
        t.setDaemon(true);
        t.start();
        return f;
    }

    /** The version another thread sees right now (it never holds the lock). */
    private static long versionSeenElsewhere(MetadataLock lock) throws Exception {
        return inThread("observer", lock::optimisticVersion).get(10, TimeUnit.SECONDS);
    }

    @Test
    void aFreeLockHasAnEvenVersionThatValidatesUntilSomeoneTakesIt() {
        MetadataLock lock = new MetadataLock();
        long v = lock.optimisticVersion();
        assertThat(v).isNotEqualTo(MetadataLock.HELD).isNotNegative();
        assertThat(v % 2).isZero();
        assertThat(lock.validate(v)).isTrue();
        assertThat(lock.validate(v)).as("validating changes nothing").isTrue();
        assertThat(lock.optimisticVersion()).isEqualTo(v);
        assertThat(lock.validate(MetadataLock.HELD)).isFalse();
        assertThat(lock.validate(v + 2)).as("a version from the future").isFalse();
    }

    @Test
    void whileHeldNoVersionIsHandedOutAndAfterwardsTheOldOneFails() throws Exception {
        MetadataLock lock = new MetadataLock();
        long v = lock.optimisticVersion();
        lock.lock();
        try {
            assertThat(lock.optimisticVersion()).isEqualTo(MetadataLock.HELD);
            assertThat(versionSeenElsewhere(lock)).isEqualTo(MetadataLock.HELD);
            assertThat(lock.validate(v)).as("validated while held").isFalse();
        } finally {
            lock.unlock();
        }
        assertThat(lock.validate(v)).as("validated after a hold").isFalse();
        long w = lock.optimisticVersion();
        assertThat(w).isEqualTo(v + 2);
        assertThat(lock.validate(w)).isTrue();
    }

    @Test
    void reentrantHoldsMoveTheVersionOnlyOnTheOutermostAcquireAndRelease() throws Exception {
        MetadataLock lock = new MetadataLock();
        long v = lock.optimisticVersion();
        lock.lock();
        lock.lock();
        assertThat(lock.tryLock()).isTrue();
        assertThat(lock.tryLock(1, TimeUnit.MILLISECONDS)).isTrue();
        lock.lockInterruptibly();
        assertThat(lock.getHoldCount()).isEqualTo(5);
        for (int held = 5; held > 1; held--) {
            lock.unlock();
            assertThat(lock.optimisticVersion()).as("still held %d times", held - 1).isEqualTo(MetadataLock.HELD);
            assertThat(versionSeenElsewhere(lock)).isEqualTo(MetadataLock.HELD);
        }
        lock.unlock();
        assertThat(lock.isLocked()).isFalse();
        assertThat(lock.optimisticVersion()).as("one bump for the outermost acquire, one for its release")
                .isEqualTo(v + 2);
        assertThat(lock.validate(v)).isFalse();
    }

    @Test
    void everyWayOfAcquiringInvalidates() throws Exception {
        MetadataLock lock = new MetadataLock();
        List<String> ways = List.of("lock", "lockInterruptibly", "tryLock", "tryLock(timeout)");
        for (String way : ways) {
            long v = lock.optimisticVersion();
            switch (way) {
                case "lock" -> lock.lock();
                case "lockInterruptibly" -> lock.lockInterruptibly();
                case "tryLock" -> assertThat(lock.tryLock()).isTrue();
                default -> assertThat(lock.tryLock(1, TimeUnit.SECONDS)).isTrue();
            }
            assertThat(lock.optimisticVersion()).as(way).isEqualTo(MetadataLock.HELD);
            assertThat(lock.validate(v)).as(way + ", held").isFalse();
            lock.unlock();
            assertThat(lock.validate(v)).as(way + ", released").isFalse();
            assertThat(lock.optimisticVersion()).as(way).isEqualTo(v + 2);
        }
    }

    @Test
    void failedAcquiresAndForeignUnlocksLeaveTheVersionAlone() throws Exception {
        MetadataLock lock = new MetadataLock();
        long v = lock.optimisticVersion();
        CountDownLatch held = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        Future<Long> holder = inThread("holder", () -> {
            lock.lock();
            try {
                held.countDown();
                release.await();
                return lock.optimisticVersion();
            } finally {
                lock.unlock();
            }
        });
        assertThat(held.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(lock.tryLock()).isFalse();
        assertThat(lock.tryLock(20, TimeUnit.MILLISECONDS)).isFalse();
        assertThatThrownBy(lock::unlock).isInstanceOf(IllegalMonitorStateException.class);
        // a bump from any of these would have made the version even while the holder is still inside
        assertThat(lock.optimisticVersion()).isEqualTo(MetadataLock.HELD);
        // an interrupted lockInterruptibly that never got the lock
        Thread.currentThread().interrupt();
        assertThatThrownBy(lock::lockInterruptibly).isInstanceOf(InterruptedException.class);
        assertThat(lock.optimisticVersion()).isEqualTo(MetadataLock.HELD);
        release.countDown();
        assertThat(holder.get(10, TimeUnit.SECONDS)).as("the holder's own view").isEqualTo(MetadataLock.HELD);
        assertThat(lock.optimisticVersion()).as("exactly the holder's acquire and release").isEqualTo(v + 2);
        assertThatThrownBy(lock::unlock).as("unlock of a free lock").isInstanceOf(IllegalMonitorStateException.class);
        assertThat(lock.optimisticVersion()).isEqualTo(v + 2);
    }

    @Test
    void aConditionWaitOpensTheLockAndTheReacquireClosesItAgain() throws Exception {
        MetadataLock lock = new MetadataLock();
        Condition cond = lock.newCondition();
        AtomicBoolean go = new AtomicBoolean();
        CountDownLatch waiting = new CountDownLatch(1);
        long before = lock.optimisticVersion();
        Future<long[]> waiter = inThread("waiter", () -> {
            lock.lock();
            try {
                lock.lock(); // a reentrant hold: the wait releases both and restores both
                try {
                    waiting.countDown();
                    while (!go.get()) {
                        cond.await();
                    }
                    long inside = lock.optimisticVersion();
                    int holds = lock.getHoldCount();
                    return new long[] {inside, holds};
                } finally {
                    lock.unlock();
                }
            } finally {
                lock.unlock();
            }
        });
        assertThat(waiting.await(10, TimeUnit.SECONDS)).isTrue();
        // wait until the waiter really released the lock inside await
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (lock.isLocked() && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        assertThat(lock.isLocked()).as("the waiter released the lock inside await").isFalse();
        long during = lock.optimisticVersion();
        assertThat(during).as("nobody holds the lock during the wait").isNotEqualTo(MetadataLock.HELD);
        assertThat(during % 2).isZero();
        assertThat(lock.validate(during)).isTrue();
        assertThat(lock.validate(before)).as("the waiter held it before waiting").isFalse();
        // another thread takes the lock while the first one waits, and wakes it
        lock.lock();
        try {
            assertThat(lock.optimisticVersion()).isEqualTo(MetadataLock.HELD);
            go.set(true);
            cond.signalAll();
        } finally {
            lock.unlock();
        }
        long[] seen = waiter.get(10, TimeUnit.SECONDS);
        assertThat(seen[0]).as("after the wait the waiter holds the lock again").isEqualTo(MetadataLock.HELD);
        assertThat(seen[1]).as("hold count restored").isEqualTo(2);
        assertThat(lock.validate(during)).isFalse();
        // waiter: +1 acquire, +1 before the wait; us: +2; waiter: +1 reacquire, +1 release
        assertThat(lock.optimisticVersion()).isEqualTo(before + 6);
    }

    @Test
    void aTimedOutWaitStillInvalidatesVersionsTakenDuringIt() throws Exception {
        MetadataLock lock = new MetadataLock();
        Condition cond = lock.newCondition();
        for (String way : List.of("awaitNanos", "await(time)", "awaitUntil")) {
            AtomicLong during = new AtomicLong(MetadataLock.HELD);
            AtomicReference<Boolean> validAfterReacquire = new AtomicReference<>();
            lock.lock();
            long start;
            try {
                start = lock.optimisticVersion();
                assertThat(start).isEqualTo(MetadataLock.HELD);
                Thread reader = Thread.ofPlatform().start(() -> {
                    long v;
                    while ((v = lock.optimisticVersion()) == MetadataLock.HELD) {
                        Thread.onSpinWait();
                    }
                    during.set(v);
                });
                boolean signalled = switch (way) {
                    case "awaitNanos" -> cond.awaitNanos(TimeUnit.MILLISECONDS.toNanos(300)) > 0;
                    case "await(time)" -> cond.await(300, TimeUnit.MILLISECONDS);
                    default -> cond.awaitUntil(new Date(System.currentTimeMillis() + 300));
                };
                assertThat(signalled).as(way + " timed out").isFalse();
                reader.join(10_000);
                assertThat(during.get()).as(way + ": a version was handed out during the wait")
                        .isNotEqualTo(MetadataLock.HELD);
                assertThat(lock.optimisticVersion()).as(way + ": held again").isEqualTo(MetadataLock.HELD);
                validAfterReacquire.set(lock.validate(during.get()));
            } finally {
                lock.unlock();
            }
            assertThat(validAfterReacquire.get()).as(way + ": validated after the re-acquire").isFalse();
            assertThat(lock.validate(during.get())).as(way + ": validated after the release").isFalse();
            assertThat(lock.optimisticVersion()).isEqualTo(during.get() + 2);
        }
    }

    @Test
    void anInterruptedWaitReturnsWithTheLockHeldAndTheVersionOdd() throws Exception {
        MetadataLock lock = new MetadataLock();
        Condition cond = lock.newCondition();
        CountDownLatch waiting = new CountDownLatch(1);
        long before = lock.optimisticVersion();
        Thread[] self = new Thread[1];
        Future<long[]> waiter = inThread("waiter", () -> {
            self[0] = Thread.currentThread();
            lock.lock();
            try {
                waiting.countDown();
                try {
                    cond.await();
                    return new long[] {0};
                } catch (InterruptedException e) {
                    return new long[] {1, lock.optimisticVersion(), lock.isHeldByCurrentThread() ? 1 : 0};
                }
            } finally {
                lock.unlock();
            }
        });
        assertThat(waiting.await(10, TimeUnit.SECONDS)).isTrue();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (lock.isLocked() && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        self[0].interrupt();
        long[] r = waiter.get(10, TimeUnit.SECONDS);
        assertThat(r[0]).as("interrupted").isEqualTo(1);
        assertThat(r[1]).isEqualTo(MetadataLock.HELD);
        assertThat(r[2]).isEqualTo(1);
        assertThat(lock.optimisticVersion()).isEqualTo(before + 4);
    }

    @Test
    void anUninterruptibleWaitBumpsLikeTheOthers() throws Exception {
        MetadataLock lock = new MetadataLock();
        Condition cond = lock.newCondition();
        CountDownLatch waiting = new CountDownLatch(1);
        long before = lock.optimisticVersion();
        Future<Long> waiter = inThread("waiter", () -> {
            lock.lock();
            try {
                waiting.countDown();
                cond.awaitUninterruptibly();
                return lock.optimisticVersion();
            } finally {
                lock.unlock();
            }
        });
        assertThat(waiting.await(10, TimeUnit.SECONDS)).isTrue();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (lock.isLocked() && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        long during = lock.optimisticVersion();
        assertThat(during).isEqualTo(before + 2);
        lock.lock();
        try {
            cond.signal();
        } finally {
            lock.unlock();
        }
        assertThat(waiter.get(10, TimeUnit.SECONDS)).isEqualTo(MetadataLock.HELD);
        assertThat(lock.validate(during)).isFalse();
        assertThat(lock.optimisticVersion()).isEqualTo(before + 6);
    }

    @Test
    void waitingWithoutTheLockIsRefusedAndChangesNothing() {
        MetadataLock lock = new MetadataLock();
        Condition cond = lock.newCondition();
        long v = lock.optimisticVersion();
        assertThatThrownBy(cond::await).isInstanceOf(IllegalMonitorStateException.class);
        assertThatThrownBy(() -> cond.awaitNanos(1)).isInstanceOf(IllegalMonitorStateException.class);
        assertThatThrownBy(cond::awaitUninterruptibly).isInstanceOf(IllegalMonitorStateException.class);
        assertThatThrownBy(cond::signal).isInstanceOf(IllegalMonitorStateException.class);
        assertThat(lock.optimisticVersion()).isEqualTo(v);
        assertThat(lock.validate(v)).isTrue();
    }

    // ------------------------------------------------------------------------------------------ seqlock stress

    private static final int WORDS = 16;

    /**
     * A writer keeps rewriting a multi-word structure under the lock (all words equal when consistent, written one
     * by one, so a reader racing it sees a mix), sometimes waiting on a condition halfway (with the structure
     * consistent, as a monitor's invariant requires) and rewriting it after; a second writer takes the lock with
     * tryLock. Readers read without the lock and keep a snapshot only when it validates: no validated snapshot may
     * be a mix. Also shows the test has teeth: unvalidated snapshots are mixes now and then.
     */
    @Test
    void validatedOptimisticReadsNeverSeeAHalfWrittenStructure() throws Exception {
        MetadataLock lock = new MetadataLock();
        Condition cond = lock.newCondition();
        long[] data = new long[WORDS]; // plain (non-volatile) words, as the cache's table memory
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong writes = new AtomicLong();
        AtomicLong waits = new AtomicLong();
        AtomicLong validated = new AtomicLong();
        AtomicLong refused = new AtomicLong();
        AtomicLong heldAtStart = new AtomicLong();
        AtomicLong tornUnvalidated = new AtomicLong();
        AtomicReference<String> bad = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        threads.add(Thread.ofPlatform().name("writer-lock").unstarted(() -> {
            long n = 0;
            while (!stop.get()) {
                lock.lock();
                try {
                    n = writeAll(data, n);
                    if ((n & 63) == 0) {
                        try {
                            cond.awaitNanos(20_000); // consistent here; others may take the lock meanwhile
                        } catch (InterruptedException e) {
                            return;
                        }
                        waits.incrementAndGet();
                        n = writeAll(data, n);
                    }
                    writes.incrementAndGet();
                } finally {
                    lock.unlock();
                }
                if ((n & 7) == 0) {
                    LockSupport.parkNanos(1_000); // let the readers get between holds
                }
            }
        }));
        threads.add(Thread.ofPlatform().name("writer-trylock").unstarted(() -> {
            long n = 1L << 40;
            while (!stop.get()) {
                boolean got;
                try {
                    got = (n & 1) == 0 ? lock.tryLock() : lock.tryLock(50, TimeUnit.MICROSECONDS);
                } catch (InterruptedException e) {
                    return;
                }
                if (!got) {
                    n += 2;
                    Thread.onSpinWait();
                    continue;
                }
                try {
                    n = writeAll(data, n);
                    writes.incrementAndGet();
                    cond.signal();
                } finally {
                    lock.unlock();
                }
                LockSupport.parkNanos(2_000);
            }
        }));
        for (int r = 0; r < 2; r++) {
            threads.add(Thread.ofPlatform().name("reader-" + r).unstarted(() -> {
                long[] snap = new long[WORDS];
                while (!stop.get()) {
                    long v = lock.optimisticVersion();
                    if (v == MetadataLock.HELD) {
                        heldAtStart.incrementAndGet();
                        Thread.onSpinWait();
                        continue;
                    }
                    for (int i = 0; i < WORDS; i++) {
                        snap[i] = data[i];
                    }
                    boolean ok = lock.validate(v);
                    boolean consistent = allEqual(snap);
                    if (ok) {
                        validated.incrementAndGet();
                        if (!consistent) {
                            bad.compareAndSet(null, "validated snapshot " + java.util.Arrays.toString(snap)
                                    + " at version " + v);
                        }
                    } else {
                        refused.incrementAndGet();
                        if (!consistent) {
                            tornUnvalidated.incrementAndGet();
                        }
                    }
                }
            }));
        }
        threads.forEach(Thread::start);
        Thread.sleep(1500);
        stop.set(true);
        for (Thread t : threads) {
            t.join(10_000);
            assertThat(t.isAlive()).as(t.getName() + " stopped").isFalse();
        }
        System.out.printf("seqlock: %d writes (%d with a condition wait), %d validated reads, %d refused, %d"
                        + " started while held, %d torn snapshots refused%n", writes.get(), waits.get(), validated.get(),
                refused.get(), heldAtStart.get(), tornUnvalidated.get());
        assertThat(bad.get()).as("an inconsistent snapshot validated").isNull();
        assertThat(validated.get()).as("optimistic reads that validated").isPositive();
        assertThat(refused.get()).as("optimistic reads that failed validation").isPositive();
        assertThat(writes.get()).isPositive();
        assertThat(waits.get()).as("writes with a condition wait halfway").isPositive();
        assertThat(tornUnvalidated.get()).as("torn snapshots seen (and refused): the race this test is about happened")
                .isPositive();
        // the lock is free and consistent at the end
        assertThat(lock.isLocked()).isFalse();
        assertThat(allEqual(data)).isTrue();
        assertThat(lock.optimisticVersion() % 2).isZero();
    }

    /** Writes {@code n + 1} into every word, one by one; returns it. */
    private static long writeAll(long[] data, long n) {
        long next = n + 1;
        for (int i = 0; i < WORDS; i++) {
            data[i] = next;
        }
        return next;
    }

    private static boolean allEqual(long[] a) {
        for (int i = 1; i < a.length; i++) {
            if (a[i] != a[0]) {
                return false;
            }
        }
        return true;
    }
}
