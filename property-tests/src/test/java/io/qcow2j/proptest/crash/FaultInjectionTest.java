package io.qcow2j.proptest.crash;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.Errno;
import io.qcow2j.proptest.driver.GuestOp;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * I/O errors: the workload of a crash scenario runs again and again with one write or one sync failing
 * ({@code EIO} or {@code ENOSPC}, spread over the whole run), and once with the disk full from the middle on
 * until just before the close. Each time:
 * <ul>
 *   <li>only {@link IOException}s come out of the engine, and the first names the injected errno;</li>
 *   <li>the image is not marked corrupt: an I/O error is not corruption;</li>
 *   <li>the file as it ends (every write that succeeded) passes {@code qemu-img check} (leaks allowed), and
 *       reads back every request that succeeded before a flush that completed; requests that failed may hold
 *       old or new data;</li>
 *   <li>the crash states right after the fault, and at the end, pass the {@link CrashChecker} checks too.</li>
 * </ul>
 */
class FaultInjectionTest {
    @TempDir
    Path dir;

    record Scenario(String name, String options, long size, String backing, int requests, int maxWrite, long seed,
            String... prefill) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Scenario> scenarios() {
        return Stream.of(
                new Scenario("4K clusters, refcount_bits=1", "cluster_size=4096,refcount_bits=1", 8 << 20, null, 30,
                        96 << 10, 11),
                new Scenario("64K clusters, extended L2, refcount_bits=4, over a backing file",
                        "cluster_size=65536,extended_l2=on,refcount_bits=4",
                        8 << 20, "cluster_size=65536", 30, 160 << 10, 12, "write -c -P 0x44 5M 256K"),
                new Scenario("512-byte clusters, refcount_bits=64, refcount table growth",
                        "cluster_size=512,refcount_bits=64", 6 << 20, null, 20, 256 << 10, 13,
                        "write -P 0x55 4M 1950K"));
    }

    private static final ImageOptions TINY = CrashConsistencyTest.TINY;

    /** One run with a fault plan; returns what it did. */
    private record Outcome(String fault, List<Workload.Executed> run, RecordingFile rec) {}

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void ioErrorsLeaveAConsistentImageAndLoseNoFlushedData(Scenario s) throws IOException {
        long t0 = System.nanoTime();
        TestImage image = TestImage.create(dir, s.options(), s.size(), s.backing(), s.seed(), s.prefill());
        List<GuestOp> ops = Workload.generate(s.seed() * 31, image.size(), image.clusterSize(), s.requests(),
                s.maxWrite());
        // a run without faults, to count the calls
        RecordingFile dry = RecordingFile.inMemory(image.top(), image.topBytes());
        Workload.run(image.open(dry, TINY), dry, ops);
        long writes = dry.writeCount();
        long syncs = dry.syncCount();
        Random rnd = new Random(s.seed());
        TreeSet<Long> writeFaults = spread(writes, 8, rnd);
        TreeSet<Long> syncFaults = spread(syncs, 5, rnd);

        int runs = 0;
        int failedRequests = 0;
        int failedCloses = 0;
        long states = 0;
        long qemuChecks = 0;
        int errno = Errno.EIO;
        List<String> plans = new ArrayList<>();
        for (long n : writeFaults) {
            errno = errno == Errno.EIO ? Errno.ENOSPC : Errno.EIO;
            plans.add("write " + n + " " + errno);
        }
        for (long n : syncFaults) {
            errno = errno == Errno.EIO ? Errno.ENOSPC : Errno.EIO;
            plans.add("sync " + n + " " + errno);
        }
        plans.add("full " + (writes / 2) + " " + Errno.ENOSPC);
        // small in-place metadata updates (L1 entries, refcount table entries, the header's refcount table
        // pointer): fail the update itself, or the sync that should make it durable before anything relies on it
        List<String> targeted = new ArrayList<>();
        List<String> header = new ArrayList<>(); // the refcount table switch: always
        long w = 0;
        long y = 0;
        boolean pending = false;
        for (IoEvent ev : dry.log()) {
            if (ev instanceof IoEvent.Write wr) {
                w++;
                if (wr.length() <= 16) {
                    (wr.offset() == 48 ? header : targeted).add("write " + w + " " + Errno.EIO);
                    pending = true;
                }
            } else if (ev instanceof IoEvent.Sync) {
                y++;
                if (pending) {
                    (header.size() % 2 == 1 ? header : targeted).add("sync " + y + " " + Errno.EIO);
                    pending = false;
                }
            }
        }
        for (int i = 0; i < Math.min(4, targeted.size()); i++) {
            plans.add(targeted.get(targeted.size() * i / Math.min(4, targeted.size())));
        }
        plans.addAll(header);
        int small = targeted.size();
        for (String plan : plans) {
            String[] p = plan.split(" ");
            long n = Long.parseLong(p[1]);
            int e = Integer.parseInt(p[2]);
            RecordingFile rec = RecordingFile.inMemory(image.top(), image.topBytes());
            String fault = switch (p[0]) {
                case "write" -> {
                    rec.failWrite(n, e);
                    yield "write " + n + " of " + writes + " fails with " + Errno.name(e);
                }
                case "sync" -> {
                    rec.failSync(n, e);
                    yield "sync " + n + " of " + syncs + " fails with " + Errno.name(e);
                }
                default -> {
                    rec.failWritesFrom(n, e);
                    yield "every write from " + n + " of " + writes + " on fails with " + Errno.name(e)
                            + " until the close";
                }
            };
            Qcow2Image img = image.open(rec, TINY);
            List<Workload.Executed> run;
            try {
                run = Workload.run(img, rec, ops, p[0].equals("full") ? rec::clearFaults : () -> { });
            } catch (RuntimeException | Error x) {
                throw new AssertionError(s.name() + ", " + fault + ": the engine threw " + x, x);
            }
            String context = s.name() + ", " + fault;
            assertThat(rec.faultCount()).as("%s: the fault fired", context).isPositive();
            Workload.Executed first = run.stream().filter(Workload.Executed::failed).findFirst().orElse(null);
            if (first != null) {
                assertThat(EveryCallFaultTest.errnoOf(first.error())).as("%s: %s names the injected error", context, first)
                        .isEqualTo(e);
            }
            failedRequests += (int) run.stream().filter(x -> x.failed() && !x.close()).count();
            failedCloses += (int) run.stream().filter(x -> x.failed() && x.close()).count();
            byte[] end = rec.content();
            Path file = Files.write(dir.resolve("end.qcow2"), end);
            Qemu.requireConsistent(file, context + ", the file as it ended");
            try (Qcow2Image after = image.openFile(file, ImageOptions.defaults())) {
                assertThat(after.header().isCorrupt()).as("%s: marked corrupt", context).isFalse();
            }
            // the crash states just after the fault, and at the end
            CrashSimulator sim = rec.crashSimulator();
            int at = 0;
            while (!(sim.log().get(at) instanceof IoEvent.Fault)) {
                at++;
            }
            TreeSet<Integer> points = new TreeSet<>();
            for (int k = at; k <= Math.min(at + 6, sim.points() - 1); k++) {
                points.add(k);
            }
            for (int k = Math.max(at, sim.points() - 3); k < sim.points(); k++) {
                points.add(k);
            }
            try {
                CrashChecker.Stats st = new CrashChecker(dir, image, context).check(sim, run,
                        points.stream().mapToInt(Integer::intValue).toArray(), s.seed() + runs,
                        new CrashChecker.Sampling(2, 2, 0));
                states += st.states();
                qemuChecks += st.qemuChecks();
            } catch (AssertionError x) {
                throw new AssertionError(x.getMessage() + "\nWorkload:\n" + CrashChecker.describe(run), x);
            }
            runs++;
        }
        System.out.printf("fault injection, %s: %d runs (%d writes, %d syncs each without faults; faults at writes %s,"
                + " syncs %s, disk full from write %d, %d of the %d writes and syncs of small metadata updates, %d of the refcount table switch): %d requests and %d closes failed with the injected error,"
                + " every end state consistent; %d crash states after the faults checked, %d with qemu-img check;"
                + " %d ms%n", s.name(), runs, writes, syncs, writeFaults, syncFaults, writes / 2, Math.min(4, small), small, header.size(), failedRequests,
                failedCloses, states, qemuChecks, (System.nanoTime() - t0) / 1_000_000);
        assertThat(failedRequests).isPositive();
    }

    /** About {@code n} distinct call numbers in 1..total, one per stratum. */
    private static TreeSet<Long> spread(long total, int n, Random rnd) {
        TreeSet<Long> out = new TreeSet<>();
        for (int i = 0; i < n; i++) {
            long from = 1 + total * i / n;
            long to = Math.max(from + 1, 1 + total * (i + 1) / n);
            out.add(from + (long) (rnd.nextDouble() * (to - from)));
        }
        return out;
    }
}
