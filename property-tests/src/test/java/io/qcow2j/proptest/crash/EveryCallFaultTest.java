package io.qcow2j.proptest.crash;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Qcow2j;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.ErrnoException;
import io.qcow2j.proptest.driver.GuestModel;
import io.qcow2j.proptest.driver.GuestOp;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * I/O faults at every I/O call of a write workload, on a real file opened as the engine opens it
 * ({@link ChainOpener#ALIGNED_FILES}: libc, and io_uring for virtual threads) under a {@link FaultyFile}: the
 * workload runs once counting its calls, then once per call index k and fault that fits the call ({@code EIO},
 * {@code ENOSPC}, a short write, a short read), the fault at call k. Each run, after the workload:
 * <ul>
 *   <li>the first failed request (if any) names the injected errno; a failed read, write or sync makes a
 *       request fail (only advisory calls, hole punches, may be swallowed);</li>
 *   <li>a flush that failed on a table write keeps dirty tables cached;</li>
 *   <li>the image stays writable and unmarked: an I/O error is not corruption;</li>
 *   <li>the fault has cleared: a flush and the close succeed;</li>
 *   <li>reopened, every request that succeeded reads back (the last flush covers them all; the bytes of a
 *       failed request may be old or new until a later request succeeds over them);</li>
 *   <li>{@code qemu-img check} finds no corruption (leaks allowed).</li>
 * </ul>
 * Blocking requests run on the test thread (heap buffers: direct {@code pwrite}); asynchronous ones on virtual
 * threads with native buffers, whose file calls go through the shared io_uring (or its thread-pool fallback).
 *
 * <p>CI runs a spread of about {@value #CI_RUNS} runs per path; {@code -Dqcow2j.faults.full=true} (scripts/faults)
 * runs every call with every fault.
 */
class EveryCallFaultTest {
    static final int CI_RUNS = 30;
    static final boolean FULL = Boolean.getBoolean("qcow2j.faults.full");
    enum Requests { BLOCKING, ASYNC }

    /** The metadata caches: QEMU's defaults (tables are written at flushes), or tiny (also on evictions). */
    enum Caches {
        DEFAULT(ImageOptions.builder().readOnly(false).cacheCleanInterval(0).build()),
        TINY(CrashConsistencyTest.TINY);

        final ImageOptions options;

        Caches(ImageOptions options) {
            this.options = options;
        }
    }

    static Stream<Arguments> paths() {
        return Stream.of(Requests.values()).flatMap(r -> Stream.of(Caches.values()).map(c -> Arguments.of(r, c)));
    }

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} requests, {1} caches")
    @MethodSource("paths")
    void everyIoCallFailingOnceLosesNothingAcknowledged(Requests how, Caches caches) throws Exception {
        long t0 = System.nanoTime();
        Path base = Qemu.create(dir, "base.qcow2", "cluster_size=4096,refcount_bits=4", 4L << 20);
        Qemu.io(base, "write -P 0x33 0 200k", "write -P 0x34 1M 64k");
        byte[] initial = Qemu.guestContent(base);
        byte[] baseBytes = Files.readAllBytes(base);
        List<GuestOp> ops = new ArrayList<>(Workload.generate(41, 4L << 20, 4096, 24, 96 << 10));
        ops.add(new GuestOp.Flush()); // the workload's last request; the flush after it must then succeed

        FaultyFile.Plan dry = FaultyFile.Plan.counting();
        Run clean = run(baseBytes, initial, ops, how, caches.options, dry);
        assertThat(clean.failures()).as("the run without faults").isEmpty();
        List<FaultyFile.Call> kinds = dry.kinds().subList(0, (int) clean.workloadCalls());

        List<long[]> plans = new ArrayList<>(); // {call index, fault ordinal}
        for (int k = 1; k <= kinds.size(); k++) {
            for (FaultyFile.Fault f : FaultyFile.Fault.values()) {
                if (f.appliesTo(kinds.get(k - 1))) {
                    plans.add(new long[] {k, f.ordinal()});
                }
            }
        }
        List<long[]> chosen = plans;
        if (!FULL && plans.size() > CI_RUNS) {
            chosen = new ArrayList<>();
            for (int i = 0; i < CI_RUNS; i++) {
                chosen.add(plans.get((int) ((long) i * plans.size() / CI_RUNS)));
            }
        }
        int failedRequests = 0;
        int keptDirty = 0;
        int[] byFault = new int[FaultyFile.Fault.values().length];
        for (long[] p : chosen) {
            FaultyFile.Fault fault = FaultyFile.Fault.values()[(int) p[1]];
            FaultyFile.Plan plan = new FaultyFile.Plan(p[0], fault);
            String context = how + ", " + caches + " caches, " + fault + " at I/O call " + p[0] + " of " + kinds.size() + " ("
                    + kinds.get((int) p[0] - 1) + ")";
            Run r = run(baseBytes, initial, ops, how, caches.options, plan);
            context += " [" + plan.firedAs() + "]";
            assertThat(plan.fired()).as("%s: the fault fired", context).isTrue();
            if (!r.failures().isEmpty()) {
                Throwable first = r.failures().get(0);
                assertThat(errnoOf(first)).as("%s: %s names the injected errno", context, first)
                        .isEqualTo(fault.errno());
            } else if (kinds.get((int) p[0] - 1) != FaultyFile.Call.PUNCH_HOLE) {
                throw new AssertionError(context + ": no request reported the failed call");
            }
            if (r.openError() == null) {
                assertThat(r.finalFlush()).as("%s: the flush after the fault cleared", context).isNull();
                assertThat(r.writable()).as("%s: still writable (an I/O error is not corruption)", context).isTrue();
            }
            if (r.flushLostDirty()) {
                throw new AssertionError(context + ": a flush failed on a table write and no dirty table was left");
            }
            keptDirty += r.keptDirty();
            failedRequests += r.failures().size();
            byFault[fault.ordinal()]++;
            Path file = dir.resolve("run.qcow2");
            Qemu.requireConsistent(file, context);
            try (Qcow2Image after = ChainOpener.openQcow2(file, ImageOptions.builder().readOnly(true).build())) {
                assertThat(after.header().isCorrupt()).as("%s: marked corrupt", context).isFalse();
                byte[] got = new byte[(int) after.size()];
                after.read(0, MemorySegment.ofArray(got));
                r.acknowledged().compare(got, context);
            }
        }
        System.out.printf("every-call faults, %s requests, %s caches (%s): %d I/O calls in the workload (%d requests); %d of"
                + " %d fault runs (EIO %d, ENOSPC %d, short write %d, short read %d): %d requests failed with the"
                + " injected errno, %d failed flushes kept their dirty tables, every run consistent with nothing"
                + " acknowledged lost; %d ms%n", how, caches, Qcow2j.ioBackend(), kinds.size(), ops.size(), chosen.size(),
                plans.size(), byFault[0], byFault[1], byFault[2], byFault[3], failedRequests, keptDirty,
                (System.nanoTime() - t0) / 1_000_000);
        assertThat(failedRequests).isPositive();
    }

    /**
     * What one run did: the errors of the requests that failed (in order), whether the open failed, the calls of
     * the workload, the final flush's error, and what must read back.
     */
    record Run(List<Throwable> failures, Throwable openError, long workloadCalls, Throwable finalFlush,
            boolean writable, boolean flushLostDirty, int keptDirty, Acknowledged acknowledged) {}

    /** Runs {@code ops} on a fresh copy of the image, with {@code plan}'s fault; then flushes and closes. */
    private Run run(byte[] baseBytes, byte[] initial, List<GuestOp> ops, Requests how, ImageOptions options,
            FaultyFile.Plan plan) throws IOException {
        Path file = Files.write(dir.resolve("run.qcow2"), baseBytes);
        Acknowledged acked = new Acknowledged(new GuestModel(initial.length, 4096, 3, false, initial));
        List<Throwable> failures = new ArrayList<>();
        Qcow2Image img;
        try {
            img = ChainOpener.openQcow2(file, options,
                    (p, mode, writable) -> new FaultyFile(ChainOpener.ALIGNED_FILES.open(p, mode, writable), plan));
        } catch (IOException e) {
            failures.add(e);
            return new Run(failures, e, plan.calls(), null, false, false, 0, acked);
        }
        boolean lostDirty = false;
        int keptDirty = 0;
        for (GuestOp op : ops) {
            int dirtyBefore = dirty(img);
            boolean firedBefore = plan.fired();
            Throwable error = apply(img, op, how);
            acked.record(op, error);
            if (error != null) {
                failures.add(error);
                if (op instanceof GuestOp.Flush && dirtyBefore > 0 && !firedBefore
                        && plan.firedAs() != null && plan.firedAs().startsWith("write")) {
                    if (dirty(img) == 0) {
                        lostDirty = true;
                    } else {
                        keptDirty++;
                    }
                }
            }
        }
        long workloadCalls = plan.calls();
        Throwable flush = apply(img, new GuestOp.Flush(), how);
        boolean writable = img.isWritable();
        img.close();
        return new Run(failures, null, workloadCalls, flush, writable, lostDirty, keptDirty, acked);
    }

    static int dirty(Qcow2Image img) {
        return img.l2Cache().dirtyCount() + img.refcountCache().dirtyCount();
    }

    /** Runs one request; returns its {@link IOException}, or null. Anything else fails the test. */
    static Throwable apply(Qcow2Image img, GuestOp op, Requests how) {
        if (how == Requests.BLOCKING) {
            try {
                op.apply(img);
                return null;
            } catch (IOException e) {
                return e;
            }
        }
        AtomicReference<Throwable> error = new AtomicReference<>();
        Thread t = Thread.ofVirtual().start(() -> {
            try (Arena arena = Arena.ofConfined()) {
                if (op instanceof GuestOp.Write w) {
                    byte[] data = w.data();
                    MemorySegment buf = arena.allocate(data.length, 4096);
                    MemorySegment.copy(data, 0, buf, ValueLayout.JAVA_BYTE, 0, data.length);
                    img.write(w.offset(), buf);
                } else {
                    op.apply(img);
                }
            } catch (IOException e) {
                error.set(e);
            } catch (RuntimeException | Error e) {
                error.set(new AssertionError("the engine threw " + e, e));
            }
        });
        try {
            t.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
        if (error.get() instanceof AssertionError a) {
            throw a;
        }
        return error.get();
    }

    /** The errno of the first {@link ErrnoException} in the cause chain (or suppressed), or -1. */
    static int errnoOf(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof ErrnoException ee) {
                return ee.errno();
            }
            for (Throwable sup : c.getSuppressed()) {
                int e = errnoOf(sup);
                if (e >= 0) {
                    return e;
                }
            }
        }
        return -1;
    }
}
