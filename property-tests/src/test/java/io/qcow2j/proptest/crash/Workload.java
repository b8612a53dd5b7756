package io.qcow2j.proptest.crash;

import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.proptest.driver.GuestOp;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** Random guest requests for crash and fault tests, and their execution through a {@link RecordingFile}. */
final class Workload {
    private Workload() {}

    /**
     * A request as it ran: where in the log it started and where it returned, and the error it ended with (null
     * if it succeeded). {@code close} marks the final close, which flushes.
     */
    record Executed(GuestOp op, int start, int end, Throwable error, boolean close) {
        boolean failed() {
            return error != null;
        }

        /** A flush (or close) that returned without error: what came before it is durable from {@code end} on. */
        boolean completedFlush() {
            return op instanceof GuestOp.Flush && error == null;
        }

        @Override
        public String toString() {
            return (close ? "close()" : op.toString()) + " [log " + start + ".." + end + ")"
                    + (error != null ? " FAILED: " + error : "");
        }
    }

    /**
     * {@code count} requests over a guest of {@code size} bytes with clusters of {@code cluster} bytes: writes
     * (tiny and unaligned, whole clusters, unaligned multi-cluster, up to {@code maxWrite} bytes), write zeroes
     * with and without unmap, discards, and a flush about every seventh request. Many requests land on or next
     * to an earlier one (overwrites in place, partial clusters next to allocated ones).
     */
    static List<GuestOp> generate(long seed, long size, int cluster, int count, int maxWrite) {
        SplittableRandom rnd = new SplittableRandom(seed);
        List<GuestOp> ops = new ArrayList<>();
        List<Long> earlier = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int kind = rnd.nextInt(100);
            if (kind < 14) {
                ops.add(new GuestOp.Flush());
                continue;
            }
            long length = switch (rnd.nextInt(4)) {
                case 0 -> 1 + rnd.nextInt(Math.min(cluster, 1500));
                case 1 -> (long) cluster * (1 + rnd.nextInt(4));
                case 2 -> 1 + rnd.nextInt(3 * cluster);
                default -> 512 + (rnd.nextInt(Math.max(1, maxWrite / 512)) * 512L);
            };
            length = Math.min(length, size);
            long offset;
            if (!earlier.isEmpty() && rnd.nextInt(5) < 2) {
                long near = earlier.get(rnd.nextInt(earlier.size()));
                offset = Math.max(0, near + rnd.nextLong(-2L * cluster, 2L * cluster + 1));
            } else {
                offset = rnd.nextLong(size);
            }
            if (rnd.nextInt(3) == 0) {
                offset &= -(long) cluster; // cluster aligned
            } else if (rnd.nextInt(2) == 0) {
                offset &= -512L;
            }
            offset = Math.min(offset, size - length);
            earlier.add(offset);
            if (kind < 62) {
                ops.add(new GuestOp.Write(offset, (int) length, rnd.nextLong()));
            } else if (kind < 80) {
                ops.add(new GuestOp.WriteZeroes(offset, length, rnd.nextBoolean()));
            } else {
                ops.add(new GuestOp.Discard(offset, length));
            }
        }
        return ops;
    }

    /**
     * Runs {@code ops} on {@code img}, noting log positions; then closes the image (retrying a failed close
     * once). An {@link IOException} is noted and the run goes on; anything else propagates.
     */
    static List<Executed> run(Qcow2Image img, RecordingFile rec, List<GuestOp> ops) throws IOException {
        return run(img, rec, ops, () -> { });
    }

    /** As {@link #run(Qcow2Image, RecordingFile, List)}, calling {@code beforeClose} before the close. */
    static List<Executed> run(Qcow2Image img, RecordingFile rec, List<GuestOp> ops, Runnable beforeClose)
            throws IOException {
        List<Executed> done = new ArrayList<>();
        for (GuestOp op : ops) {
            int start = rec.logSize();
            IOException error = null;
            try {
                op.apply(img);
            } catch (IOException e) {
                error = e;
            }
            done.add(new Executed(op, start, rec.logSize(), error, false));
        }
        beforeClose.run();
        for (int attempt = 0; attempt < 2; attempt++) {
            int start = rec.logSize();
            IOException error = null;
            try {
                img.close();
            } catch (IOException e) {
                error = e;
            }
            done.add(new Executed(new GuestOp.Flush(), start, rec.logSize(), error, true));
            if (error == null) {
                break;
            }
        }
        return done;
    }
}
