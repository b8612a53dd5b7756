package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link RequestLock}: shared holders are counted; the exclusive side waits for them and keeps new ones out; its
 * holder may take the shared side and may take the exclusive side again; under load, no shared holder is ever
 * inside together with an exclusive one.
 */
@Timeout(30)
class RequestLockTest {
    /** How long a blocked call is given to (wrongly) get through before we conclude it waits. */
    private static final long BLOCKED_MS = 150;

    private static Future<Void> inThread(String name, java.util.concurrent.Callable<Void> body) {
        FutureTask<Void> f = new FutureTask<>(body);
        Thread t = new Thread(f, name);
        t.setDaemon(true);
        t.start();
        return f;
    }

    private static void assertBlocked(Future<?> f, String what) throws Exception {
        assertThatThrownBy(() -> f.get(BLOCKED_MS, TimeUnit.MILLISECONDS)).as(what + " waits")
                .isInstanceOf(TimeoutException.class);
    }

    @Test
    void sharedHoldersAreCounted() throws Exception {
        RequestLock lock = new RequestLock();
        assertThat(lock.sharedHolders()).isZero();
        lock.lockShared();
        lock.lockShared(); // a thread may hold it twice (a request within a request)
        assertThat(lock.sharedHolders()).isEqualTo(2);
        CountDownLatch in = new CountDownLatch(1);
        CountDownLatch out = new CountDownLatch(1);
        Future<Void> other = inThread("other", () -> {
            lock.lockShared();
            in.countDown();
            out.await();
            lock.unlockShared();
            return null;
        });
        assertThat(in.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(lock.sharedHolders()).isEqualTo(3);
        out.countDown();
        other.get(10, TimeUnit.SECONDS);
        lock.unlockShared();
        lock.unlockShared();
        assertThat(lock.sharedHolders()).isZero();
        assertThat(lock.isHeldExclusivelyByCurrentThread()).isFalse();
    }

    @Test
    void exclusiveWaitsUntilTheSharedHoldersLeave() throws Exception {
        RequestLock lock = new RequestLock();
        CountDownLatch sharedIn = new CountDownLatch(2);
        CountDownLatch leave = new CountDownLatch(1);
        List<Future<Void>> readers = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            readers.add(inThread("shared-" + i, () -> {
                lock.lockShared();
                try {
                    sharedIn.countDown();
                    leave.await();
                } finally {
                    lock.unlockShared();
                }
                return null;
            }));
        }
        assertThat(sharedIn.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(lock.sharedHolders()).isEqualTo(2);
        AtomicBoolean exclusiveIn = new AtomicBoolean();
        AtomicLong sharedSeenInside = new AtomicLong(-1);
        CountDownLatch release = new CountDownLatch(1);
        Future<Void> exclusive = inThread("exclusive", () -> {
            lock.lockExclusive();
            try {
                exclusiveIn.set(true);
                sharedSeenInside.set(lock.sharedHolders());
                assertThat(lock.isHeldExclusivelyByCurrentThread()).isTrue();
                release.await();
            } finally {
                lock.unlockExclusive();
            }
            return null;
        });
        assertBlocked(exclusive, "lockExclusive with two shared holders");
        assertThat(exclusiveIn).isFalse();
        assertThat(lock.isHeldExclusivelyByCurrentThread()).isFalse();
        // a new shared request now waits too (the exclusive side has announced itself)
        AtomicBoolean lateIn = new AtomicBoolean();
        Future<Void> late = inThread("late-shared", () -> {
            lock.lockShared();
            lateIn.set(true);
            lock.unlockShared();
            return null;
        });
        assertBlocked(late, "a shared request after the exclusive one announced itself");
        leave.countDown();
        for (Future<Void> r : readers) {
            r.get(10, TimeUnit.SECONDS);
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!exclusiveIn.get() && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertThat(exclusiveIn).as("exclusive got in once the shared holders left").isTrue();
        assertThat(sharedSeenInside.get()).isZero();
        assertThat(lateIn).as("the late shared request stays out while the exclusive holder is in").isFalse();
        release.countDown();
        exclusive.get(10, TimeUnit.SECONDS);
        late.get(10, TimeUnit.SECONDS);
        assertThat(lateIn).isTrue();
        assertThat(lock.sharedHolders()).isZero();
    }

    @Test
    void sharedWaitsWhileExclusiveIsHeld() throws Exception {
        RequestLock lock = new RequestLock();
        lock.lockExclusive();
        AtomicBoolean in = new AtomicBoolean();
        Future<Void> shared = inThread("shared", () -> {
            lock.lockShared();
            in.set(true);
            lock.unlockShared();
            return null;
        });
        try {
            assertBlocked(shared, "lockShared while exclusive is held");
            assertThat(in).isFalse();
            assertThat(lock.sharedHolders()).as("a waiting shared request does not count").isZero();
        } finally {
            lock.unlockExclusive();
        }
        shared.get(10, TimeUnit.SECONDS);
        assertThat(in).isTrue();
        assertThat(lock.sharedHolders()).isZero();
    }

    @Test
    void theExclusiveHolderMayTakeTheSharedSide() throws Exception {
        RequestLock lock = new RequestLock();
        // in a thread, so that a wrong answer (waiting for itself) fails the test instead of hanging it
        inThread("exclusive", () -> {
            lock.lockExclusive();
            try {
                lock.lockShared();
                assertThat(lock.sharedHolders()).isEqualTo(1);
                lock.lockShared();
                assertThat(lock.sharedHolders()).isEqualTo(2);
                lock.unlockShared();
                lock.unlockShared();
                assertThat(lock.sharedHolders()).isZero();
                // a shared hold taken inside may outlive the exclusive one
                lock.lockShared();
            } finally {
                lock.unlockExclusive();
            }
            assertThat(lock.isHeldExclusivelyByCurrentThread()).isFalse();
            assertThat(lock.sharedHolders()).isEqualTo(1);
            lock.unlockShared();
            return null;
        }).get(10, TimeUnit.SECONDS);
        assertThat(lock.sharedHolders()).isZero();
        // and the lock is free again for others
        inThread("next", () -> {
            lock.lockExclusive();
            lock.unlockExclusive();
            return null;
        }).get(10, TimeUnit.SECONDS);
    }

    @Test
    void exclusiveIsReentrantAndOnlyTheOutermostReleaseLetsOthersIn() throws Exception {
        RequestLock lock = new RequestLock();
        CountDownLatch twice = new CountDownLatch(1);
        CountDownLatch releaseOnce = new CountDownLatch(1);
        CountDownLatch releasedOnce = new CountDownLatch(1);
        CountDownLatch releaseAll = new CountDownLatch(1);
        Future<Void> holder = inThread("holder", () -> {
            lock.lockExclusive();
            lock.lockShared(); // own request in flight: a nested lockExclusive must not wait for it
            lock.lockExclusive();
            assertThat(lock.isHeldExclusivelyByCurrentThread()).isTrue();
            twice.countDown();
            releaseOnce.await();
            lock.unlockExclusive();
            assertThat(lock.isHeldExclusivelyByCurrentThread()).isTrue();
            releasedOnce.countDown();
            releaseAll.await();
            lock.unlockShared();
            lock.unlockExclusive();
            assertThat(lock.isHeldExclusivelyByCurrentThread()).isFalse();
            return null;
        });
        assertThat(twice.await(10, TimeUnit.SECONDS)).as("nested lockExclusive returned").isTrue();
        AtomicBoolean in = new AtomicBoolean();
        Future<Void> shared = inThread("shared", () -> {
            lock.lockShared();
            in.set(true);
            lock.unlockShared();
            return null;
        });
        assertBlocked(shared, "lockShared while exclusive is held twice");
        releaseOnce.countDown();
        assertThat(releasedOnce.await(10, TimeUnit.SECONDS)).isTrue();
        assertBlocked(shared, "lockShared while exclusive is still held once");
        // a request arriving now (it finds the lock's state as the inner release left it) waits too
        AtomicInteger entered = new AtomicInteger();
        Future<Void> fresh = inThread("fresh-shared", () -> {
            lock.lockShared();
            entered.incrementAndGet();
            lock.unlockShared();
            return null;
        });
        assertBlocked(fresh, "a new lockShared after the inner unlockExclusive");
        assertThat(in).isFalse();
        // a foreign unlock is refused and does not let anyone in, waiting or new
        assertThatThrownBy(lock::unlockExclusive).isInstanceOf(IllegalMonitorStateException.class);
        Future<Void> afterForeign = inThread("shared-after-foreign-unlock", () -> {
            lock.lockShared();
            entered.incrementAndGet();
            lock.unlockShared();
            return null;
        });
        assertBlocked(shared, "lockShared after a refused foreign unlockExclusive");
        assertBlocked(afterForeign, "a new lockShared after a refused foreign unlockExclusive");
        assertThat(entered.get()).isZero();
        releaseAll.countDown();
        holder.get(10, TimeUnit.SECONDS);
        shared.get(10, TimeUnit.SECONDS);
        fresh.get(10, TimeUnit.SECONDS);
        afterForeign.get(10, TimeUnit.SECONDS);
        assertThat(in).isTrue();
        assertThat(entered.get()).isEqualTo(2);
        assertThat(lock.sharedHolders()).isZero();
    }

    @Test
    void exclusiveHoldersQueueBehindEachOther() throws Exception {
        RequestLock lock = new RequestLock();
        lock.lockExclusive();
        AtomicBoolean in = new AtomicBoolean();
        Future<Void> second = inThread("second", () -> {
            lock.lockExclusive();
            in.set(true);
            lock.unlockExclusive();
            return null;
        });
        try {
            assertBlocked(second, "a second lockExclusive");
        } finally {
            lock.unlockExclusive();
        }
        second.get(10, TimeUnit.SECONDS);
        assertThat(in).isTrue();
    }

    /**
     * Threads (more than the stripes' worth of cores, so some share a stripe) take the shared side most of the
     * time and the exclusive side now and then, sometimes with a nested exclusive hold (and a shared one inside it)
     * released before its checks; whoever is inside checks: no shared holder while an exclusive one is in, never two exclusive ones.
     */
    @Test
    void sharedAndExclusiveHoldersNeverOverlap() throws Exception {
        RequestLock lock = new RequestLock();
        int threads = 6;
        AtomicInteger sharedInside = new AtomicInteger();
        AtomicInteger exclusiveInside = new AtomicInteger();
        AtomicLong sharedOps = new AtomicLong();
        AtomicLong exclusiveOps = new AtomicLong();
        AtomicLong overlapsWithShared = new AtomicLong();
        AtomicReference<String> bad = new AtomicReference<>();
        AtomicBoolean stop = new AtomicBoolean();
        CyclicBarrier start = new CyclicBarrier(threads);
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int me = t;
            ts.add(Thread.ofPlatform().name("worker-" + t).unstarted(() -> {
                SplittableRandom rnd = new SplittableRandom(me);
                try {
                    start.await();
                } catch (Exception e) {
                    bad.compareAndSet(null, e.toString());
                    return;
                }
                while (!stop.get()) {
                    if (rnd.nextInt(40) == 0) {
                        lock.lockExclusive();
                        if (rnd.nextBoolean()) { // a nested hold, released before the checks below
                            lock.lockExclusive();
                            if (rnd.nextBoolean()) {
                                lock.lockShared(); // its own request passes
                                lock.unlockShared();
                            }
                            lock.unlockExclusive();
                            if (!lock.isHeldExclusivelyByCurrentThread()) {
                                bad.compareAndSet(null, "the nested unlockExclusive released the lock");
                            }
                        }
                        try {
                            if (exclusiveInside.incrementAndGet() != 1) {
                                bad.compareAndSet(null, "two exclusive holders inside");
                            }
                            for (int i = 0; i < 50; i++) {
                                int s = sharedInside.get();
                                if (s != 0) {
                                    bad.compareAndSet(null, s + " shared holders inside with the exclusive one");
                                }
                                Thread.onSpinWait();
                            }
                            if (rnd.nextBoolean()) { // its own request: passes
                                lock.lockShared();
                                lock.unlockShared();
                            }
                            exclusiveInside.decrementAndGet();
                        } finally {
                            lock.unlockExclusive();
                        }
                        exclusiveOps.incrementAndGet();
                    } else {
                        lock.lockShared();
                        try {
                            sharedInside.incrementAndGet();
                            int e = exclusiveInside.get();
                            if (e != 0) {
                                bad.compareAndSet(null, "a shared holder inside with " + e + " exclusive holders");
                            }
                            if (rnd.nextInt(4) == 0) {
                                Thread.yield(); // hold it a while: the exclusive side must wait
                            }
                            if (sharedInside.get() > 1) {
                                overlapsWithShared.incrementAndGet();
                            }
                            e = exclusiveInside.get();
                            if (e != 0) {
                                bad.compareAndSet(null, "an exclusive holder came in while a shared one is inside");
                            }
                            sharedInside.decrementAndGet();
                        } finally {
                            lock.unlockShared();
                        }
                        sharedOps.incrementAndGet();
                    }
                }
            }));
        }
        ts.forEach(Thread::start);
        Thread.sleep(1500);
        stop.set(true);
        for (Thread t : ts) {
            t.join(10_000);
            assertThat(t.isAlive()).as(t.getName() + " finished (no deadlock)").isFalse();
        }
        System.out.printf("request lock: %d shared holds (%d overlapping another), %d exclusive holds%n",
                sharedOps.get(), overlapsWithShared.get(), exclusiveOps.get());
        assertThat(bad.get()).isNull();
        assertThat(sharedOps.get()).isGreaterThan(1000);
        assertThat(exclusiveOps.get()).isGreaterThan(10);
        assertThat(overlapsWithShared.get()).as("shared holders really were inside together").isPositive();
        assertThat(lock.sharedHolders()).isZero();
    }
}
