package io.qcow2j.proptest.crash;

import io.qcow2j.proptest.driver.GuestModel;
import io.qcow2j.proptest.driver.GuestOp;
import java.util.BitSet;

/**
 * What a guest must read after requests some of which failed: the {@link GuestModel} of the requests that
 * succeeded, and the bytes no longer certain (those of a failed request may hold old or new data, until a later
 * request succeeds over them).
 */
final class Acknowledged {
    private final GuestModel model;
    private final BitSet uncertain;

    Acknowledged(GuestModel model) {
        this.model = model;
        this.uncertain = new BitSet((int) model.size());
    }

    /** Notes a request and how it ended ({@code error} null: it succeeded). */
    void record(GuestOp op, Throwable error) {
        long[] range = op.range();
        if (error != null) {
            if (range != null) {
                uncertain.set((int) range[0], (int) range[1]);
            }
            return;
        }
        op.apply(model);
        if (op instanceof GuestOp.Discard d) {
            long[] z = model.discardedRange(d.offset(), d.length());
            if (z != null) {
                uncertain.clear((int) z[0], (int) z[1]);
            }
        } else if (range != null) {
            uncertain.clear((int) range[0], (int) range[1]);
        }
    }

    /** Bytes compared by {@link #compare}. */
    long certainBytes() {
        return model.size() - uncertain.cardinality();
    }

    /** Fails unless {@code got} (the whole guest) holds every byte a request that succeeded left. */
    void compare(byte[] got, String context) {
        byte[] want = model.data();
        for (int i = uncertain.nextClearBit(0); i < want.length; i = uncertain.nextClearBit(i + 1)) {
            if (got[i] != want[i]) {
                throw new AssertionError(context + ": guest byte 0x" + Integer.toHexString(i) + " reads 0x"
                        + Integer.toHexString(got[i] & 0xff) + ", a request that succeeded left 0x"
                        + Integer.toHexString(want[i] & 0xff));
            }
        }
    }
}
