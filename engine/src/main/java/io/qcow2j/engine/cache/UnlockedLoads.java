package io.qcow2j.engine.cache;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Loads of a {@link MetadataCache} that read the table from the file with the owner's lock released (see
 * "Loads without the lock" in {@link MetadataCache}), and the load state of every slot.
 *
 * <pre>
 *   slot state:  READY ──release()──▶ LOADING ──retake(ok)──▶ READY
 *                                        └──────retake(failed)──▶ FAILED ──reset()──▶ READY
 * </pre>
 *
 * A slot is indexed and referenced before its load starts, so nothing evicts, writes, discards or cleans it
 * while it is {@code LOADING}; {@code peek} sees only {@code READY} slots, and a {@code get} of a loading slot
 * waits ({@link #await}) holding the owner's lock, which the loader does not need to finish.
 */
final class UnlockedLoads {
    private static final VarHandle STATE = MethodHandles.arrayElementVarHandle(byte[].class);
    private static final byte READY = 0;
    private static final byte LOADING = 1;
    private static final byte FAILED = 2;

    private final CacheKind kind;
    /** The owner's lock, released during loads; null: loads always keep it. */
    private final ReentrantLock ownerLock;
    private final OwnerCheck owner;
    /**
     * Each load without the lock holds a reference the lock holder cannot drop, so at most a quarter of the
     * entries may be so held: the rest stays for the holder, whose operations need two tables at a time at
     * most. Caches under 4 entries always keep the lock.
     */
    private final int limit;
    /** Per slot: READY, LOADING or FAILED. Written by loaders outside the lock, hence volatile access. */
    private final byte[] state;
    /** Loads running without the owner's lock (from its release to its retaking). Under the owner's lock. */
    private int running;

    UnlockedLoads(CacheKind kind, int slots, ReentrantLock ownerLock, OwnerCheck owner) {
        this.kind = kind;
        this.ownerLock = ownerLock;
        this.owner = owner;
        this.limit = slots / 4;
        this.state = new byte[slots];
    }

    /**
     * Starts the load of {@code slot} without the owner's lock if the rules allow it (the caller holds the lock
     * exactly once, fewer than a quarter of the entries are so loading): marks it {@code LOADING} and releases
     * the lock. Returns whether it did; if not, the load runs under the lock.
     */
    boolean release(int slot) {
        if (ownerLock == null || running >= limit || !ownerLock.isHeldByCurrentThread()
                || ownerLock.getHoldCount() != 1) {
            return false;
        }
        STATE.setVolatile(state, slot, LOADING);
        running++;
        assert owner.suspend();
        ownerLock.unlock();
        return true;
    }

    /** Ends a load {@link #release} started: the slot's state first (a waiter holds the lock), then the lock. */
    void retake(int slot, boolean ok) {
        STATE.setVolatile(state, slot, ok ? READY : FAILED);
        ownerLock.lock();
        assert owner.resume();
        running--;
    }

    /** The slot is empty again (its load failed). */
    void reset(int slot) {
        STATE.setVolatile(state, slot, READY);
    }

    boolean isReady(int slot) {
        return (byte) STATE.getVolatile(state, slot) == READY;
    }

    /**
     * Waits, holding the owner's lock, until another thread's load of {@code slot} ends (it needs no lock to
     * end). A failed load fails this get too, as its own load would have.
     */
    void await(int slot, long offset) throws IOException {
        for (int round = 0; (byte) STATE.getVolatile(state, slot) == LOADING; round++) {
            if (round < 100) {
                Thread.onSpinWait();
            } else if (round < 200) {
                Thread.yield();
            } else {
                LockSupport.parkNanos(20_000);
            }
        }
        if ((byte) STATE.getVolatile(state, slot) == FAILED) {
            throw new IOException(kind.label() + " cache: reading the table at 0x" + Long.toHexString(offset)
                    + " failed in a concurrent request");
        }
    }
}
