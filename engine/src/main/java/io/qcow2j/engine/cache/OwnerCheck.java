package io.qcow2j.engine.cache;

/**
 * The cache's single-owner contract, checked when assertions are on: the owner serializes all metadata work
 * under one lock, so two threads inside a cache at once is a bug of the owner. Every public entry point runs
 * {@code assert enter()} / {@code assert exit()}; a load with the owner's lock released suspends the check
 * ({@link #suspend()}) so that other threads may enter meanwhile, and resumes it after.
 */
final class OwnerCheck {
    private final CacheKind kind;
    /** Thread inside a public method of the cache, or null. */
    private Thread busy;
    /** How deep that thread is (public methods call each other). */
    private int busyDepth;
    /** Depth of the suspended owner, per thread (a load or a wait inside it lets others in). */
    private final ThreadLocal<int[]> suspendedDepth = ThreadLocal.withInitial(() -> new int[1]);

    OwnerCheck(CacheKind kind) {
        this.kind = kind;
    }

    /** Single-owner assertion: fails if another thread is inside the cache. Always returns true. */
    boolean enter() {
        Thread t = Thread.currentThread();
        if (busy != null && busy != t) {
            throw new AssertionError(kind.label() + " cache used by " + t.getName() + " while "
                    + busy.getName() + " is inside it: the owner must serialize metadata work");
        }
        busy = t;
        busyDepth++;
        return true;
    }

    boolean exit() {
        if (--busyDepth == 0) {
            busy = null;
        }
        return true;
    }

    boolean suspend() {
        suspendedDepth.get()[0] = busyDepth;
        busy = null;
        busyDepth = 0;
        return true;
    }

    boolean resume() {
        if (busy != null) {
            throw new AssertionError(kind.label() + " cache: " + busy.getName() + " still inside it after a load");
        }
        busy = Thread.currentThread();
        busyDepth = suspendedDepth.get()[0];
        return true;
    }
}
