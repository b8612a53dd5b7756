package io.qcow2j.proptest;

/** A counter whose increments go wrong after {@code breakAfter} of them (never if negative). */
final class ToyCounter {
    private final int breakAfter;
    private int value;
    private int increments;

    ToyCounter(int breakAfter) {
        this.breakAfter = breakAfter;
    }

    int incrementAndGet() {
        increments++;
        value += breakAfter >= 0 && increments > breakAfter ? 2 : 1;
        return value;
    }

    int decrementAndGet() {
        return --value;
    }

    int get() {
        return value;
    }

    /** The model: a plain int. */
    static final class Model {
        int value;
    }

    record Inc() implements Action<ToyCounter, Model> {
        @Override
        public void run(ToyCounter sut, Model model, Context ctx) {
            LruActions.check("incrementAndGet()", ++model.value, sut.incrementAndGet());
        }

        @Override
        public String toString() {
            return "incrementAndGet()";
        }
    }

    record Dec() implements Action<ToyCounter, Model> {
        @Override
        public void run(ToyCounter sut, Model model, Context ctx) {
            LruActions.check("decrementAndGet()", --model.value, sut.decrementAndGet());
        }

        @Override
        public String toString() {
            return "decrementAndGet()";
        }
    }

    record Get() implements Action<ToyCounter, Model> {
        @Override
        public void run(ToyCounter sut, Model model, Context ctx) {
            LruActions.check("get()", model.value, sut.get());
        }

        @Override
        public String toString() {
            return "get()";
        }
    }

    static StatefulProperty.Builder<ToyCounter, Model> property(String name, int breakAfter) {
        return StatefulProperty.<ToyCounter, Model>builder(name)
                .setup(() -> new ToyCounter(breakAfter), Model::new)
                .action(3, "inc", (rnd, m) -> new Inc())
                .action(2, "dec", (rnd, m) -> new Dec())
                .action(2, "get", (rnd, m) -> new Get())
                .settings(k -> null);
    }
}
