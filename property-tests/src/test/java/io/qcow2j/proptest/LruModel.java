package io.qcow2j.proptest;

import java.util.ArrayList;
import java.util.List;

/** The obviously correct model of {@link ToyLru}: a list of entries, least recently used first. */
final class LruModel {
    record Entry(int key, int value) {}

    final int capacity;
    final List<Entry> entries = new ArrayList<>();

    LruModel(int capacity) {
        this.capacity = capacity;
    }

    private int indexOf(int key) {
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i).key() == key) {
                return i;
            }
        }
        return -1;
    }

    Integer get(int key) {
        int i = indexOf(key);
        if (i < 0) {
            return null;
        }
        Entry e = entries.remove(i);
        entries.add(e);
        return e.value();
    }

    /** Puts; returns the previous value. {@link #lastEvicted} tells which key was evicted, if any. */
    Integer put(int key, int value) {
        lastEvicted = null;
        int i = indexOf(key);
        Integer old = null;
        if (i >= 0) {
            old = entries.remove(i).value();
        } else if (entries.size() == capacity) {
            lastEvicted = entries.remove(0).key();
        }
        entries.add(new Entry(key, value));
        return old;
    }

    Integer lastEvicted;

    Integer remove(int key) {
        int i = indexOf(key);
        return i < 0 ? null : entries.remove(i).value();
    }

    List<Integer> keys() {
        return entries.stream().map(Entry::key).toList();
    }

    boolean isEmpty() {
        return entries.isEmpty();
    }
}
