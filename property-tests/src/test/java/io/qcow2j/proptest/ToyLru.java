package io.qcow2j.proptest;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** A bounded LRU map (hash map + doubly linked list), the system under test of the harness's own tests. */
class ToyLru implements AutoCloseable {
    enum Bug {
        NONE,
        /** On eviction, drops the most recently used entry instead of the least: shows from 3 distinct keys on. */
        EVICTS_MOST_RECENT
    }

    private static final class Node {
        final int key;
        int value;
        Node prev;
        Node next;

        Node(int key, int value) {
            this.key = key;
            this.value = value;
        }
    }

    private final int capacity;
    private final Bug bug;
    private final Map<Integer, Node> nodes = new HashMap<>();
    private final Node head = new Node(0, 0); // head.next is the least recently used
    private final Node tail = new Node(0, 0); // tail.prev is the most recently used
    private boolean closed;

    ToyLru(int capacity, Bug bug) {
        this.capacity = capacity;
        this.bug = bug;
        head.next = tail;
        tail.prev = head;
    }

    Integer get(int key) {
        open();
        Node n = nodes.get(key);
        if (n == null) {
            return null;
        }
        unlink(n);
        linkLast(n);
        return n.value;
    }

    /** Returns the previous value of {@code key}, or null. */
    Integer put(int key, int value) {
        open();
        Node n = nodes.get(key);
        if (n != null) {
            Integer old = n.value;
            n.value = value;
            unlink(n);
            linkLast(n);
            return old;
        }
        if (nodes.size() == capacity) {
            Node victim = bug == Bug.EVICTS_MOST_RECENT ? tail.prev : head.next;
            unlink(victim);
            nodes.remove(victim.key);
        }
        n = new Node(key, value);
        nodes.put(key, n);
        linkLast(n);
        return null;
    }

    Integer remove(int key) {
        open();
        Node n = nodes.remove(key);
        if (n == null) {
            return null;
        }
        unlink(n);
        return n.value;
    }

    int size() {
        open();
        return nodes.size();
    }

    /** Keys from the least to the most recently used. */
    List<Integer> keys() {
        open();
        List<Integer> keys = new ArrayList<>();
        for (Node n = head.next; n != tail; n = n.next) {
            keys.add(n.key);
        }
        return keys;
    }

    boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        closed = true;
    }

    private void open() {
        if (closed) {
            throw new IllegalStateException("closed");
        }
    }

    private void unlink(Node n) {
        n.prev.next = n.next;
        n.next.prev = n.prev;
    }

    private void linkLast(Node n) {
        n.prev = tail.prev;
        n.next = tail;
        tail.prev.next = n;
        tail.prev = n;
    }
}
