package io.qcow2j.proptest.crash;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.proptest.driver.GuestModel;
import io.qcow2j.proptest.driver.GuestOp;
import io.qcow2j.proptest.driver.IntervalSet;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Checks the crash states of a recorded workload. For every crash state:
 * <ol>
 *   <li>the engine opens the crash image (read-only, not marked corrupt, no warnings);</li>
 *   <li>the guest reads back as the model of the last completed flush (a flush or close that returned before
 *       the crash point), except the bytes of requests issued after that flush, and of requests that failed
 *       (those may hold old or new data). Every state compares the clusters the workload touches; the
 *       sampled states below compare the whole guest;</li>
 *   <li>on a seeded sample: {@code qemu-img check} finds no corruption (leaked clusters are allowed);</li>
 *   <li>on a smaller sample: the engine opens the crash image writable, writes over it, closes it, and it is
 *       still consistent and reads back both the flushed data and the new writes.</li>
 * </ol>
 */
final class CrashChecker {
    /** What was checked. */
    record Stats(int points, int states, Map<Unsynced, Integer> byMode, int qemuChecks, int leaky, int recoveries,
            long checkedBytes, long skippedBytes) {
        @Override
        public String toString() {
            return points + " crash points, " + states + " crash states " + byMode + " opened and read back by the"
                    + " engine (" + (checkedBytes >> 20) + " MiB compared, " + (skippedBytes >> 20)
                    + " MiB written after the last flush not compared), " + qemuChecks + " checked by qemu-img check ("
                    + leaky + " with leaked clusters only, the rest clean), " + recoveries
                    + " reopened writable, written and checked again";
        }
    }

    private static final ImageOptions READ = ImageOptions.builder().cacheCleanInterval(0).build();
    private static final ImageOptions WRITE = ImageOptions.builder().readOnly(false).cacheCleanInterval(0).build();

    private final Path dir;
    private final TestImage image;
    private final String name;

    CrashChecker(Path dir, TestImage image, String name) {
        this.dir = dir;
        this.image = image;
        this.name = name;
    }

    /**
     * How many crash states get the expensive checks: {@code qemu-img check} (all states when there are not more
     * than {@code qemu}, else a sample spread over the log, always with the last state), a read of the whole
     * guest instead of the touched clusters, and the writable reopen.
     */
    record Sampling(int qemu, int wholeGuest, int recover) {}

    /** Checks every crash state of the log from point {@code fromPoint} on; see the class comment. */
    Stats check(CrashSimulator sim, List<Workload.Executed> ops, int fromPoint, long seed, Sampling sampling)
            throws IOException {
        return check(sim, ops, java.util.stream.IntStream.range(fromPoint, sim.points()).toArray(), seed, sampling);
    }

    /** Checks every crash state at the crash points {@code points} (ascending); see the class comment. */
    Stats check(CrashSimulator sim, List<Workload.Executed> ops, int[] points, long seed, Sampling sampling)
            throws IOException {
        Random rnd = new Random(seed);
        List<CrashState> states = new ArrayList<>();
        for (int k : points) {
            states.addAll(sim.states(k, rnd));
        }
        BitSet qemu = sample(states.size(), sampling.qemu(), rnd);
        qemu.set(states.size() - 1); // the final state always
        BitSet whole = sample(states.size(), sampling.wholeGuest(), rnd);
        whole.set(states.size() - 1);
        BitSet recover = sample(states.size(), sampling.recover(), rnd);

        GuestModel model = image.model();
        IntervalSet failed = new IntervalSet();
        int applied = 0; // requests applied to the model
        int lastFlush = -1;
        Map<Unsynced, Integer> byMode = new EnumMap<>(Unsynced.class);
        int recoveries = 0;
        long checked = 0;
        long skipped = 0;
        byte[] buf = new byte[(int) image.size()];
        // the clusters any request touches
        IntervalSet touched = new IntervalSet();
        long cs = image.clusterSize();
        for (Workload.Executed e : ops) {
            long[] r = e.op().range();
            if (r != null) {
                touched.add(r[0] & -cs, Math.min(image.size(), (r[1] + cs - 1) & -cs));
            }
        }
        List<long[]> regions = touched.ranges();
        // qemu-img runs in the background while the engine checks the next states
        ExecutorService pool = Executors.newFixedThreadPool(2);
        List<Future<Qemu.Check>> checks = new ArrayList<>();
        try {
            for (int i = 0; i < states.size(); i++) {
                CrashState st = states.get(i);
                int k = st.point();
                // the model of the last flush that returned before the crash point
                for (int f = lastFlush + 1; f < ops.size(); f++) {
                    if (ops.get(f).completedFlush() && ops.get(f).end() <= k) {
                        for (; applied <= f; applied++) {
                            Workload.Executed e = ops.get(applied);
                            if (e.failed()) {
                                long[] r = e.op().range();
                                if (r != null) {
                                    failed.add(r[0], r[1]);
                                }
                            } else {
                                e.op().apply(model);
                            }
                        }
                        lastFlush = f;
                    }
                }
                IntervalSet skip = failed.copy();
                for (int j = lastFlush + 1; j < ops.size() && ops.get(j).start() < k; j++) {
                    long[] r = ops.get(j).op().range();
                    if (r != null) {
                        skip.add(r[0], r[1]);
                    }
                }
                String context = context(st, ops, lastFlush, sim);
                CrashImage ci = sim.image(st, image.top());
                try (Qcow2Image img = image.open(ci, READ)) {
                    if (img.header().isCorrupt() || !img.warnings().isEmpty()) {
                        throw new AssertionError(context + ": opened with warnings " + img.warnings());
                    }
                    for (long[] r : whole.get(i) ? List.of(new long[] {0, image.size()}) : regions) {
                        img.read(r[0], MemorySegment.ofArray(buf).asSlice(0, r[1] - r[0]));
                        model.compare(buf, r[0], r[1] - r[0], skip, context);
                        checked += r[1] - r[0];
                    }
                } catch (IOException | RuntimeException e) {
                    throw new AssertionError(context + ": the engine cannot open or read the crash image: " + e, e);
                }
                long s = skip.bytes();
                skipped += s;
                checked -= s;
                byMode.merge(st.mode(), 1, Integer::sum);
                if (qemu.get(i)) {
                    Path file = dir.resolve("crash-" + i + ".qcow2");
                    ci.writeTo(file);
                    checks.add(pool.submit(() -> {
                        try {
                            return Qemu.requireConsistent(file, context);
                        } finally {
                            Files.deleteIfExists(file);
                        }
                    }));
                }
                if (recover.get(i)) {
                    recover(ci, model, skip, seed + i, context);
                    recoveries++;
                }
            }
            int leaky = 0;
            for (Future<Qemu.Check> c : checks) {
                if (!c.get().clean()) {
                    leaky++;
                }
            }
            return new Stats(points.length, states.size(), byMode, checks.size(), leaky, recoveries,
                    checked, skipped);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof AssertionError a ? a : new AssertionError(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        } finally {
            pool.shutdownNow();
        }
    }

    /** Opens the crash image writable from disk, writes over it, and checks it. */
    private void recover(CrashImage ci, GuestModel flushed, IntervalSet skip, long seed, String context)
            throws IOException {
        Path file = dir.resolve("recover.qcow2");
        ci.writeTo(file);
        GuestModel after = flushed.copy();
        IntervalSet notCompared = skip.copy();
        List<GuestOp> writes = new ArrayList<>();
        SplittableRandom rnd = new SplittableRandom(seed);
        int cs = image.clusterSize();
        for (int n = 0; n < 4; n++) {
            int len = 1 + rnd.nextInt(3 * cs);
            long off = rnd.nextLong(image.size() - len);
            writes.add(n == 3 ? new GuestOp.WriteZeroes(off & -(long) cs, Math.min(2L * cs, image.size() - (off & -(long) cs)), true)
                    : new GuestOp.Write(off, len, rnd.nextLong()));
        }
        try (Qcow2Image img = ChainOpener.openQcow2(file, WRITE)) {
            for (GuestOp w : writes) {
                w.apply(img);
                w.apply(after);
            }
        } catch (IOException | RuntimeException e) {
            throw new AssertionError(context + ": writing to the crash image after the crash failed: " + e, e);
        }
        Qemu.requireConsistent(file, context + ", then written after the crash: " + writes);
        try (Qcow2Image img = ChainOpener.openQcow2(file, READ)) {
            byte[] buf = new byte[(int) image.size()];
            img.read(0, MemorySegment.ofArray(buf));
            for (GuestOp w : writes) {
                long[] r = w.range();
                after.compare(java.util.Arrays.copyOfRange(buf, (int) r[0], (int) r[1]), r[0], null,
                        context + ", then " + w + " after the crash");
                notCompared.add(r[0], r[1]);
            }
            flushed.compare(buf, 0, notCompared, context + ", then written after the crash: " + writes);
        }
        Files.delete(file);
    }

    private String context(CrashState st, List<Workload.Executed> ops, int lastFlush, CrashSimulator sim) {
        int k = st.point();
        String running = "none";
        for (Workload.Executed e : ops) {
            if (e.start() < k && k <= e.end() && e.start() < e.end()) {
                running = (ops.indexOf(e) + 1) + ". " + e;
                break;
            }
        }
        return name + ": " + st + "; last completed flush: "
                + (lastFlush < 0 ? "none" : "request " + (lastFlush + 1)) + "; in flight: " + running
                + (k > 0 ? "; last log entry: #" + (k - 1) + " " + sim.log().get(k - 1) : "");
    }

    /** About {@code n} of {@code total} indexes, spread evenly (one random pick per stratum); all if n ≥ total. */
    static BitSet sample(int total, int n, Random rnd) {
        BitSet b = new BitSet(total);
        if (n >= total) {
            b.set(0, total);
            return b;
        }
        if (n <= 0) {
            return b;
        }
        double step = (double) total / n;
        for (int i = 0; i < n; i++) {
            int from = (int) (i * step);
            int to = Math.max(from + 1, (int) ((i + 1) * step));
            b.set(from + rnd.nextInt(to - from));
        }
        return b;
    }

    /** The requests of a workload, numbered, for a failure message. */
    static String describe(List<Workload.Executed> ops) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < ops.size(); i++) {
            b.append(String.format("%4d. %s%n", i + 1, ops.get(i)));
        }
        return b.toString();
    }
}
