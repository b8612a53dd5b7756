package io.qcow2j.engine.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantLock;
import org.junit.jupiter.api.Test;

/** {@link MetadataCache#getReleasingLock}: misses read the table with the owner's lock released. */
class UnlockedLoadTest {
    static final int T = 4096;

    final ReentrantLock owner = new ReentrantLock();
    final MemoryFile file = new MemoryFile();
    /** Opened by the test to let a blocked load finish. */
    final CountDownLatch release = new CountDownLatch(1);
    /** Counted down by a load when it starts reading. */
    final CountDownLatch reading = new CountDownLatch(1);
    final AtomicBoolean readsHoldLock = new AtomicBoolean();

    MetadataCache cache(int tables) throws IOException {
        for (int i = 1; i <= 8; i++) {
            file.blocks.put(off(i), MetadataCacheTest.filled((byte) i));
        }
        return MetadataCache.builder(CacheKind.L2_TABLE, file).tables(tables).tableSize(T).clusterSize(65536)
                .loadsWithoutLock(owner).build();
    }

    static long off(int n) {
        return (long) n * T;
    }

    /** Makes the next reads record whether they hold the owner's lock, and block until {@link #release}. */
    void blockReads() {
        file.onRead = () -> {
            readsHoldLock.set(owner.isHeldByCurrentThread());
            reading.countDown();
            try {
                assertThat(release.await(10, TimeUnit.SECONDS)).isTrue();
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        };
    }

    /** Runs get-then-put of {@code offset} under the owner's lock in another thread; returns the first word. */
    CompletableFuture<Long> locked(MetadataCache c, long offset, boolean releasing) {
        return CompletableFuture.supplyAsync(() -> { // each on its own thread: one may block in a load
            owner.lock();
            try {
                int t = releasing ? c.getReleasingLock(offset) : c.get(offset);
                try {
                    return c.word(t, 0);
                } finally {
                    c.put(t);
                }
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            } finally {
                owner.unlock();
            }
        }, r -> Thread.ofPlatform().daemon().start(r));
    }

    @Test
    void aLoadLetsOthersInAndAGetOfTheSameTableWaitsForIt() throws Exception {
        try (MetadataCache c = cache(16)) {
            blockReads();
            CompletableFuture<Long> loader = locked(c, off(3), true);
            assertThat(reading.await(10, TimeUnit.SECONDS)).isTrue();
            assertThat(readsHoldLock).isFalse();
            // the lock is free while the table loads; peek does not show a table that is still loading
            assertThat(owner.tryLock(10, TimeUnit.SECONDS)).isTrue();
            try {
                assertThat(c.peek(off(3))).isEqualTo(-1);
                assertThat(c.references(c.lookup(off(3)))).isEqualTo(1);
            } finally {
                owner.unlock();
            }
            CompletableFuture<Long> waiter = locked(c, off(3), false);
            Thread.sleep(50);
            assertThat(waiter).isNotDone(); // it waits, holding the lock
            assertThat(owner.isLocked()).isTrue();
            file.onRead = () -> {};
            release.countDown();
            assertThat(loader.get(10, TimeUnit.SECONDS)).isEqualTo(0x0303030303030303L);
            assertThat(waiter.get(10, TimeUnit.SECONDS)).isEqualTo(0x0303030303030303L);
            owner.lock();
            try {
                CacheStatistics.Snapshot s = c.statistics().snapshot();
                assertThat(s.loads()).isEqualTo(1);
                assertThat(s.hits()).isEqualTo(1);
                int slot = c.lookup(off(3));
                assertThat(c.references(slot)).isZero();
                assertThat(c.peek(off(3))).isEqualTo(slot);
            } finally {
                owner.unlock();
            }
        }
    }

    @Test
    void aFailedLoadFailsTheWaiterTooAndLeavesNothingCached() throws Exception {
        try (MetadataCache c = cache(16)) {
            blockReads();
            CompletableFuture<Long> loader = locked(c, off(5), true);
            assertThat(reading.await(10, TimeUnit.SECONDS)).isTrue();
            CompletableFuture<Long> waiter = locked(c, off(5), false);
            Thread.sleep(50);
            file.failReads = new IOException("injected EIO");
            release.countDown();
            assertThatThrownBy(() -> loader.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                    .hasMessageContaining("injected EIO");
            assertThatThrownBy(() -> waiter.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                    .hasMessageContaining("failed in a concurrent request");
            file.failReads = null;
            file.onRead = () -> {};
            owner.lock();
            try {
                assertThat(c.lookup(off(5))).isEqualTo(-1);
                assertThat(c.occupied()).isZero();
                assertThat(c.statistics().snapshot().loads()).isZero();
                int t = c.getReleasingLock(off(5)); // loads again, cleanly
                assertThat(c.word(t, 0)).isEqualTo(0x0505050505050505L);
                c.put(t);
            } finally {
                owner.unlock();
            }
        }
    }

    @Test
    void smallCachesAndNestedHoldsKeepTheLock() throws Exception {
        try (MetadataCache c = cache(3)) { // under 4 entries: no load may run without the lock
            file.onRead = () -> readsHoldLock.set(owner.isHeldByCurrentThread());
            assertThat(locked(c, off(1), true).get(10, TimeUnit.SECONDS)).isEqualTo(0x0101010101010101L);
            assertThat(readsHoldLock).isTrue();
        }
        try (MetadataCache c = cache(16)) {
            file.onRead = () -> readsHoldLock.set(owner.isHeldByCurrentThread());
            owner.lock();
            owner.lock(); // held twice: releasing once would not let anyone in, so the load keeps it
            try {
                int t = c.getReleasingLock(off(2));
                c.put(t);
                assertThat(readsHoldLock).isTrue();
            } finally {
                owner.unlock();
                owner.unlock();
            }
            readsHoldLock.set(true);
            assertThat(locked(c, off(4), true).get(10, TimeUnit.SECONDS)).isEqualTo(0x0404040404040404L);
            assertThat(readsHoldLock).isFalse();
            readsHoldLock.set(false);
            assertThat(locked(c, off(6), false).get(10, TimeUnit.SECONDS)).isEqualTo(0x0606060606060606L);
            assertThat(readsHoldLock).as("plain get keeps the lock").isTrue();
        }
    }

    @Test
    void atMostAQuarterOfTheEntriesLoadWithoutTheLock() throws Exception {
        try (MetadataCache c = cache(4)) { // one load at a time may release the lock
            blockReads();
            CompletableFuture<Long> first = locked(c, off(1), true);
            assertThat(reading.await(10, TimeUnit.SECONDS)).isTrue();
            AtomicBoolean secondHeld = new AtomicBoolean();
            file.onRead = () -> secondHeld.set(owner.isHeldByCurrentThread());
            assertThat(locked(c, off(2), true).get(10, TimeUnit.SECONDS)).isEqualTo(0x0202020202020202L);
            assertThat(secondHeld).as("the second load keeps the lock").isTrue();
            release.countDown();
            assertThat(first.get(10, TimeUnit.SECONDS)).isEqualTo(0x0101010101010101L);
        }
    }
}
