package io.qcow2j.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import org.junit.jupiter.api.Test;

/**
 * {@link ArrivalSpin}'s bounds, with a socket that answers {@code available()} as told: it stops at the first
 * look that finds bytes, spins no longer than its bound, stops spinning for a client slower than that (but
 * probes one wait in {@link ArrivalSpin#PROBE_EVERY}), and spins again once a probe finds its request.
 */
class ArrivalSpinTest {
    /** A socket whose available() answers as told, counting the calls. */
    static final class Answers extends InputStream {
        int available;
        int calls;

        @Override
        public int available() {
            calls++;
            return available;
        }

        @Override
        public int read() {
            return -1;
        }
    }

    @Test
    void theSpinEndsOnArrivalOrWithinItsBoundAndStopsForASlowClient() throws IOException {
        Answers socket = new Answers();
        ArrivalSpin spin = new ArrivalSpin(socket::available);
        socket.available = 28;
        spin.await();
        assertThat(socket.calls).as("bytes there: one look").isEqualTo(1);
        socket.available = 0;
        for (int i = 0; i < ArrivalSpin.MISSES; i++) {
            long start = System.nanoTime();
            spin.await();
            assertThat(System.nanoTime() - start).isGreaterThanOrEqualTo(ArrivalSpin.SPIN_NANOS);
        }
        int before = socket.calls;
        for (int i = 0; i < ArrivalSpin.PROBE_EVERY - 1; i++) {
            spin.await();
        }
        assertThat(socket.calls).as("a slow client's waits do not spin").isEqualTo(before);
        spin.await();
        assertThat(socket.calls).as("but one in PROBE_EVERY does").isGreaterThan(before);
        socket.available = 1;
        int probed = socket.calls;
        for (int i = 0; i < 2 * ArrivalSpin.PROBE_EVERY; i++) {
            spin.await();
        }
        assertThat(socket.calls - probed).as("a probe that finds its request makes every wait look again")
                .isGreaterThan(ArrivalSpin.PROBE_EVERY);
    }

    @Test
    void theBoundFromTheEnvironmentIsCheckedAndABadOneNamed() {
        assertThat(ArrivalSpin.parseSpinNanos(null)).isEqualTo(ArrivalSpin.DEFAULT_SPIN_NANOS);
        assertThat(ArrivalSpin.parseSpinNanos("0")).as("0 turns it off").isZero();
        assertThat(ArrivalSpin.parseSpinNanos(" 20000 ")).isEqualTo(20_000);
        assertThat(ArrivalSpin.parseSpinNanos("1000000")).isEqualTo(ArrivalSpin.MAX_SPIN_NANOS);
        for (String bad : new String[] {"abc", "-1", "1000001", "99999999999999999999", ""}) {
            assertThatThrownBy(() -> ArrivalSpin.parseSpinNanos(bad)).as(bad)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("QCOW2J_NBD_SPIN_NS='" + bad + "' ignored: expected nanoseconds from 0 to 1000000"
                            + " (0 turns the spin off); spinning up to 50000 ns");
        }
    }
}
