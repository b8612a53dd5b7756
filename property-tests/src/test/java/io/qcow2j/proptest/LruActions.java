package io.qcow2j.proptest;

import java.util.Objects;
import java.util.Random;

/** The actions of the LRU properties, and a property builder that uses them. */
final class LruActions {
    private LruActions() {}

    static final int CAPACITY = 2;
    static final int KEYS = 5;

    record Put(int key, int value) implements Action<ToyLru, LruModel> {
        @Override
        public void run(ToyLru lru, LruModel model, Context ctx) {
            Integer expected = model.put(key, value);
            Integer actual = lru.put(key, value);
            ctx.count(expected == null ? "insert" : "update");
            if (model.lastEvicted != null) {
                ctx.count("eviction");
            }
            check("put(" + key + ", " + value + ")", expected, actual);
        }

        @Override
        public String toString() {
            return "put(" + key + ", " + value + ")";
        }
    }

    record Get(int key) implements Action<ToyLru, LruModel> {
        @Override
        public void run(ToyLru lru, LruModel model, Context ctx) {
            Integer expected = model.get(key);
            ctx.count(expected == null ? "miss" : "hit");
            check("get(" + key + ")", expected, lru.get(key));
        }

        @Override
        public String toString() {
            return "get(" + key + ")";
        }
    }

    /** Removes a key the model holds: its generator needs the state, and its precondition guards replays. */
    record RemoveHeld(int key) implements Action<ToyLru, LruModel> {
        @Override
        public boolean precondition(LruModel model) {
            return model.keys().contains(key);
        }

        @Override
        public void run(ToyLru lru, LruModel model, Context ctx) {
            check("remove(" + key + ")", model.remove(key), lru.remove(key));
        }

        @Override
        public String toString() {
            return "remove(" + key + ")";
        }
    }

    static void check(String what, Object expected, Object actual) {
        if (!Objects.equals(expected, actual)) {
            throw new AssertionError(what + ": expected " + expected + " but was " + actual);
        }
    }

    /** The LRU property (without invariants): put, get, remove-one-held. */
    static StatefulProperty.Builder<ToyLru, LruModel> property(String name, ToyLru.Bug bug) {
        return StatefulProperty.<ToyLru, LruModel>builder(name)
                .setup(() -> new ToyLru(CAPACITY, bug), () -> new LruModel(CAPACITY))
                .action(4, "put", (rnd, model) -> new Put(rnd.nextInt(KEYS), rnd.nextInt(100)))
                .action(4, "get", (rnd, model) -> new Get(rnd.nextInt(KEYS)))
                .action(1, "remove", (rnd, model) -> model.isEmpty() ? null : new RemoveHeld(anyKey(rnd, model)))
                .settings(k -> null); // the harness's own tests ignore -Dqcow2j.* unless they test them
    }

    static int anyKey(Random rnd, LruModel model) {
        return model.keys().get(rnd.nextInt(model.keys().size()));
    }
}
