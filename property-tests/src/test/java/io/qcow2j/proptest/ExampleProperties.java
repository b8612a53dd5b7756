package io.qcow2j.proptest;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * How a property is written, with the public API only; a template for the engine's properties. Unlike the
 * harness's own tests it honours {@code -Dqcow2j.seed}, {@code -Dqcow2j.property} and {@code -Dqcow2j.tries}.
 */
class ExampleProperties {

    /** The model of a handle table: the handles the system handed out and not yet released. */
    static final class Handles {
        final List<Integer> held = new ArrayList<>();
    }

    @Test
    void lruBehavesLikeItsModel() {
        Result r = StatefulProperty.<ToyLru, LruModel>builder("example: lru behaves like its model")
                .setup(() -> new ToyLru(3, ToyLru.Bug.NONE), () -> new LruModel(3))
                // actions as records: parameters are fields, toString prints them
                .action(5, "put", (rnd, model) -> new LruActions.Put(rnd.nextInt(6), rnd.nextInt(100)))
                // or inline, with Action.of(description, body)
                .action(3, "get", (rnd, model) -> {
                    int key = rnd.nextInt(6);
                    return Action.of("get(" + key + ")", (lru, m, ctx) -> {
                        Integer expected = m.get(key);
                        ctx.count(expected == null ? "miss" : "hit");
                        assertThat(lru.get(key)).as("get(%d)", key).isEqualTo(expected);
                    });
                })
                // depends on the state: null when there is nothing to remove; the precondition guards replays
                .action(1, "remove a held key", (rnd, model) -> {
                    if (model.isEmpty()) {
                        return null;
                    }
                    int key = model.keys().get(rnd.nextInt(model.keys().size()));
                    return Action.of("remove(" + key + ")", m -> m.keys().contains(key),
                            (lru, m, ctx) -> assertThat(lru.remove(key)).isEqualTo(m.remove(key)));
                })
                .invariant("same keys in recency order", (lru, model) -> assertThat(lru.keys()).isEqualTo(model.keys()))
                .invariant("within capacity", (lru, model, ctx) -> {
                    assertThat(lru.size()).isLessThanOrEqualTo(3);
                    if (lru.size() == 3) {
                        ctx.count("full");
                    }
                })
                .tries(1000).maxActions(50)
                .check();
        if (r.tries() >= 100) { // a replayed seed or a tiny -Dqcow2j.tries may not get there
            assertThat(r.count("hit")).isPositive();
            assertThat(r.count("full")).isPositive();
        }
    }

    @Test
    void handlesAreReleasedOnlyOnce() {
        // a state-dependent generator: "release one of the handles held"
        StatefulProperty.<List<Integer>, Handles>builder("example: handles are released once")
                .setup(rnd -> new Instance<>(new ArrayList<>(), new Handles()))
                .action(2, "open", (rnd, model) -> Action.of("open()", (open, m, ctx) -> {
                    int handle = open.isEmpty() ? 1 : open.getLast() + 1;
                    open.add(handle);
                    m.held.add(handle);
                }))
                .action(1, "release", (rnd, model) -> {
                    if (model.held.isEmpty()) {
                        return null;
                    }
                    Integer handle = model.held.get(rnd.nextInt(model.held.size()));
                    return Action.of("release(" + handle + ")", m -> m.held.contains(handle), (open, m, ctx) -> {
                        assertThat(open.remove(handle)).as("release(%d) found it", handle).isTrue();
                        m.held.remove(handle);
                    });
                })
                .invariant("the same handles are open", (open, model) -> assertThat(open).isEqualTo(model.held))
                .check();
    }

    @Test
    void aSimpleProperty() {
        Property.forAll("example: cluster offsets round-trip through a shift", rnd -> rnd.nextLong(0, 1L << 40),
                        off -> assertThat((off >>> 16) << 16 | (off & 0xFFFF)).isEqualTo(off))
                .shrink(off -> List.of(off / 2, off - 1))
                .check();
    }
}
