package io.qcow2j.engine.cache;

/**
 * The unreferenced, occupied slots in the order their last reference was dropped: the head is the least
 * recently used. An intrusive doubly linked list in two {@code int[]}s, so linking, unlinking and finding
 * the victim are O(1) and allocate nothing.
 *
 * <p>Appending at the tail whenever a slot's reference count drops to zero gives exactly the order of
 * QEMU's {@code lru_counter} (bumped at that moment), without QEMU's scan for the minimum.
 */
final class LruList {
    private static final int NONE = -1;
    private final int[] prev;
    private final int[] next;
    /** Whether a slot is linked; guards against double linking, which would corrupt the list. */
    private final boolean[] linked;
    private int head = NONE;
    private int tail = NONE;
    private int size;

    LruList(int slots) {
        prev = new int[slots];
        next = new int[slots];
        linked = new boolean[slots];
    }

    /** Appends {@code slot} as the most recently used. */
    void addLast(int slot) {
        if (linked[slot]) {
            throw new IllegalStateException("slot " + slot + " already in the LRU list");
        }
        linked[slot] = true;
        prev[slot] = tail;
        next[slot] = NONE;
        if (tail == NONE) {
            head = slot;
        } else {
            next[tail] = slot;
        }
        tail = slot;
        size++;
    }

    /** Unlinks {@code slot} if it is linked. */
    void remove(int slot) {
        if (!linked[slot]) {
            return;
        }
        linked[slot] = false;
        int p = prev[slot];
        int n = next[slot];
        if (p == NONE) {
            head = n;
        } else {
            next[p] = n;
        }
        if (n == NONE) {
            tail = p;
        } else {
            prev[n] = p;
        }
        size--;
    }

    /** The least recently used slot, or -1 if the list is empty. */
    int first() {
        return head;
    }

    /** The slot after {@code slot} (towards the most recently used), or -1. */
    int after(int slot) {
        return next[slot];
    }

    boolean contains(int slot) {
        return linked[slot];
    }

    int size() {
        return size;
    }

    void clear() {
        java.util.Arrays.fill(linked, false);
        head = NONE;
        tail = NONE;
        size = 0;
    }
}
