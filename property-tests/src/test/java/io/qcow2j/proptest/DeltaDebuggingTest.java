package io.qcow2j.proptest;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class DeltaDebuggingTest {

    private static final List<Integer> HUNDRED = IntStream.range(0, 100).boxed().toList();

    @Test
    void findsTheTwoElementsThatMatter() {
        var out = DeltaDebugging.minimize(HUNDRED, c -> c.contains(13) && c.contains(71) ? c : null, 1000);
        assertThat(out.minimized()).containsExactly(13, 71);
        assertThat(out.exhausted()).isFalse();
        assertThat(out.steps()).isPositive();
        assertThat(out.replays()).isLessThan(200);
    }

    @Test
    void usesTheShorterListTheOracleReports() {
        // the oracle "fails at" the first element >= 50: everything after it is cut
        var out = DeltaDebugging.minimize(HUNDRED, c -> {
            for (int i = 0; i < c.size(); i++) {
                if (c.get(i) >= 50) {
                    return c.subList(0, i + 1);
                }
            }
            return null;
        }, 1000);
        assertThat(out.minimized()).hasSize(1).allMatch(x -> x >= 50);
    }

    @Test
    void stopsWhenTheBudgetIsSpent() {
        var out = DeltaDebugging.minimize(HUNDRED, c -> c.contains(13) && c.contains(71) ? c : null, 5);
        assertThat(out.replays()).isEqualTo(5);
        assertThat(out.exhausted()).isTrue();
        assertThat(out.minimized()).contains(13, 71);
    }

    @Test
    void canShrinkToNothing() {
        var out = DeltaDebugging.minimize(HUNDRED, c -> c, 1000);
        assertThat(out.minimized()).isEmpty();
        assertThat(out.steps()).isEqualTo(2); // the first half, then the other
    }
}
