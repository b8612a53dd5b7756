package io.qcow2j.engine.check;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** {@link ClusterCounts} against a map: every width change (bits, bytes, longs), sparse chunks, scans. */
class ClusterCountsTest {

    @Test
    void matchesAMapUnderRandomUpdates() {
        SplittableRandom rnd = new SplittableRandom(42);
        long capacity = 5L * ClusterCounts.CHUNK + 123;
        ClusterCounts c = new ClusterCounts(capacity);
        Map<Long, Long> model = new HashMap<>();
        for (int step = 0; step < 200_000; step++) {
            long i = rnd.nextInt(10) == 0 ? rnd.nextLong(capacity) : rnd.nextLong(3 * ClusterCounts.CHUNK);
            long v = switch (rnd.nextInt(6)) {
                case 0 -> 0;
                case 1, 2 -> 1;
                case 3 -> rnd.nextLong(256);
                case 4 -> model.getOrDefault(i, 0L) + 1;
                default -> rnd.nextInt(50) == 0 ? rnd.nextLong(Long.MAX_VALUE) : 2;
            };
            c.set(i, v);
            model.put(i, v);
            long probe = rnd.nextLong(capacity);
            assertThat(c.get(probe)).isEqualTo(model.getOrDefault(probe, 0L));
        }
        for (Map.Entry<Long, Long> e : model.entrySet()) {
            assertThat(c.get(e.getKey())).isEqualTo(e.getValue());
        }
        // nextNonZero visits exactly the non-zero entries, in order.
        long expectedNext = -1;
        for (long i = capacity - 1; i >= 0; i--) {
            if (model.getOrDefault(i, 0L) != 0) {
                expectedNext = i;
            }
            if (i % 997 == 0 || i == capacity - 1) {
                long want = expectedNext < 0 ? capacity : expectedNext;
                assertThat(c.nextNonZero(i, capacity)).as("next non-zero from %d", i).isEqualTo(want);
            }
        }
    }

    @Test
    void scansStopAtTheirEnd() {
        ClusterCounts c = new ClusterCounts(3L * ClusterCounts.CHUNK);
        c.set(ClusterCounts.CHUNK + 70, 1);
        assertThat(c.nextNonZero(0, ClusterCounts.CHUNK + 70)).isEqualTo(ClusterCounts.CHUNK + 70);
        assertThat(c.nextNonZero(0, ClusterCounts.CHUNK + 71)).isEqualTo(ClusterCounts.CHUNK + 70);
        assertThat(c.nextNonZero(ClusterCounts.CHUNK + 71, 3L * ClusterCounts.CHUNK)).isEqualTo(3L * ClusterCounts.CHUNK);
        c.set(5, 300);
        assertThat(c.nextNonZero(0, 10)).isEqualTo(5);
        assertThat(c.nextNonZero(6, 10)).isEqualTo(10);
    }

    @Test
    void refusesClustersOutsideItsCapacity() {
        ClusterCounts c = new ClusterCounts(10);
        assertThatThrownBy(() -> c.set(10, 1)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> c.get(-1)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> new ClusterCounts((1L << 31) + 1)).isInstanceOf(IllegalArgumentException.class);
    }
}
