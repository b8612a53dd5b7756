package io.qcow2j.proptest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The stateless helper {@link Property#forAll}. */
class PropertyTest {

    @Test
    void aPropertyThatHoldsReturnsItsStatistics() {
        Result r = Property.forAll("abs is not negative", rnd -> rnd.nextInt(-1000, 1000), x -> {
            if (Math.abs(x) < 0) {
                throw new AssertionError(x);
            }
        }).settings(k -> null).tries(500).check();
        assertThat(r.sequences()).isEqualTo(500);
        assertThat(r.passed()).isTrue();
    }

    @Test
    void aFailingValueIsShrunkAndReplayable() {
        PropertyFailure f = catchThrowableOfType(PropertyFailure.class,
                () -> Property.forAll("below 100", rnd -> rnd.nextInt(10_000), x -> {
                    if (x >= 100) {
                        throw new AssertionError(x + " >= 100");
                    }
                }).shrink(x -> List.of(x / 2, x - 1)).settings(k -> null).check());
        assertThat(f.shrunkActions()).containsExactly("100");
        assertThat(f.failure()).hasMessage("100 >= 100");
        assertThat(f.getMessage()).contains("Shrunk value:   100").contains("-Dqcow2j.seed=" + f.seed())
                .contains("Original value: " + f.originalActions().getFirst());
        PropertyFailure again = catchThrowableOfType(PropertyFailure.class,
                () -> Property.forAll("below 100", rnd -> rnd.nextInt(10_000), x -> {
                    if (x >= 100) {
                        throw new AssertionError(x + " >= 100");
                    }
                }).settings(k -> null).seed(f.seed()).tries(1).check());
        assertThat(again.originalActions()).isEqualTo(f.originalActions());
    }
}
