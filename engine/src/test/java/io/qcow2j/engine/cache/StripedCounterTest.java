package io.qcow2j.engine.cache;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class StripedCounterTest {
    @Test
    void concurrentAddsAreNeverLost() throws InterruptedException {
        StripedCounter c = new StripedCounter();
        List<Thread> threads = new ArrayList<>();
        // more threads than stripes, so several share one and their adds race on it
        for (int t = 0; t < 80; t++) {
            int id = t;
            threads.add(Thread.ofPlatform().start(() -> {
                for (int i = 0; i < 20_000; i++) {
                    c.add(id % 3 == 0 ? -1 : 2);
                }
            }));
        }
        for (Thread t : threads) {
            t.join();
        }
        long down = 27; // ids 0, 3, ..., 78
        assertThat(c.sum()).isEqualTo((80 - down) * 2 * 20_000L - down * 20_000L);
    }

    @Test
    void oneThreadSeesItsOwnAddsAtOnce() {
        StripedCounter c = new StripedCounter();
        c.increment();
        c.add(41);
        assertThat(c.sum()).isEqualTo(42);
        c.add(-42);
        assertThat(c.sum()).isZero();
    }
}
