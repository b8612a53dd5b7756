package io.qcow2j.engine.check;

import io.qcow2j.engine.CheckResult;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.format.RefcountTableEntry;
import io.qcow2j.engine.format.SnapshotTable;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Random byte flips in the metadata of a small image (header, L1 tables, L2 tables, refcount table and
 * blocks, snapshot table), a few at a time: the check must always end, within a time limit, either with a
 * result or with a one-line {@link IOException} (a refused image or a check that cannot be completed),
 * never with another exception, and without allocating much (however large the offsets the flips make).
 * Where qemu-img's check gives a result, ours must give the same numbers.
 */
class ImageCheckFuzzTest {
    static final long SEED = Long.getLong("qcow2j.fuzz.seed", 0x5eed_c4ec_0001L);
    static final int ROUNDS = Integer.getInteger("qcow2j.fuzz.rounds", 300);
    /** The check of a ~200 KiB image allocates little; 64 MiB means something is sized by a bad offset. */
    static final long MAX_ALLOCATION = 64L << 20;

    @TempDir
    Path dir;

    /** Byte ranges of the image that hold metadata: where the flips go. */
    record Region(String name, long offset, long length) {}

    @Test
    void byteFlipsInMetadataEndInAResultOrOneLine() throws Exception {
        Path pristine = Qemu.create(dir, "p.qcow2", "cluster_size=4096,refcount_bits=16", "4M");
        Qemu.io(pristine, "write -P 0x11 0 64k", "write -c -P 0x22 128k 16k", "write -z 256k 8k",
                "write -P 0x33 1M 4k", "write -P 0x34 3M 8k");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "s1", "p.qcow2");
        Qemu.io(pristine, "write -P 0x44 0 8k", "write -P 0x45 2M 4k");
        List<Region> regions = metadataRegions(pristine);
        byte[] original = Files.readAllBytes(pristine);
        Path img = dir.resolve("f.qcow2");

        SplittableRandom rnd = new SplittableRandom(SEED);
        long maxAllocated = 0;
        Map<String, Integer> outcomes = new LinkedHashMap<>();
        List<String> disagreements = new ArrayList<>();
        ExecutorService exec = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "fuzz-check");
            t.setDaemon(true);
            return t;
        });
        try {
            for (int round = 0; round < ROUNDS; round++) {
                byte[] bytes = original.clone();
                int flips = 1 + rnd.nextInt(4);
                StringBuilder what = new StringBuilder("seed 0x" + Long.toHexString(SEED) + " round " + round + ":");
                for (int f = 0; f < flips; f++) {
                    Region r = regions.get(rnd.nextInt(regions.size()));
                    long off = r.offset() + rnd.nextLong(r.length());
                    int mask = 1 << rnd.nextInt(8);
                    if (rnd.nextInt(4) == 0) {
                        mask = 1 + rnd.nextInt(255);
                    }
                    bytes[(int) off] ^= (byte) mask;
                    what.append(' ').append(r.name()).append("@0x").append(Long.toHexString(off)).append("^0x")
                            .append(Integer.toHexString(mask));
                }
                Files.write(img, bytes);
                Future<Object> fut = exec.submit(() -> checkOnce(img));
                Object outcome;
                try {
                    outcome = fut.get(20, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    fut.cancel(true);
                    throw new AssertionError(what + ": the check did not end within 20 s");
                }
                if (outcome instanceof Throwable t) {
                    throw new AssertionError(what + ": unexpected " + t, t);
                }
                Outcome o = (Outcome) outcome;
                assertThat(o.allocated()).as("%s: bytes allocated by the check", what).isLessThan(MAX_ALLOCATION);
                outcomes.merge(o.kind(), 1, Integer::sum);
                maxAllocated = Math.max(maxAllocated, o.allocated());
                QemuCheck q = QemuCheck.run(img);
                if (o.result() != null && q.json() != null) {
                    if (!QemuCheck.numbers(o.result()).equals(q.numbers()) || o.result().exitCode() != q.exit()) {
                        disagreements.add(what + ": qemu-img " + q.numbers() + " exit " + q.exit() + ", ours "
                                + QemuCheck.numbers(o.result()) + " exit " + o.result().exitCode());
                    }
                } else if (o.result() != null) {
                    disagreements.add(what + ": qemu-img failed (" + q.stderr().strip().replace('\n', '|')
                            + "), ours " + QemuCheck.numbers(o.result()));
                } else if (q.json() != null) {
                    outcomes.merge("refused where qemu-img checks", 1, Integer::sum);
                    System.out.println("REFUSED " + what + ": " + o.kind() + " " + o.message() + " | qemu " + q.numbers());
                }
            }
        } finally {
            exec.shutdownNow();
        }
        System.out.println("check fuzz outcomes: " + outcomes + "; most bytes allocated by one check: " + maxAllocated);
        disagreements.forEach(System.out::println);
        assertThat(outcomes.getOrDefault("result", 0)).as("most flipped images can still be checked")
                .isGreaterThan(ROUNDS / 3);
        assertThat(disagreements).isEmpty();
    }

    record Outcome(String kind, CheckResult result, long allocated, String message) {}

    /** Opens and checks; returns an {@link Outcome}, or the unexpected throwable. */
    static Object checkOnce(Path img) {
        long before = allocatedBytes();
        try (Qcow2Image image = ChainOpener.openQcow2(img, ImageOptions.builder().cacheCleanInterval(0).build())) {
            List<String> lines = new ArrayList<>();
            CheckResult r = ImageCheck.check(image, lines::add);
            for (String l : lines) {
                if (l.contains("\n")) {
                    return new AssertionError("problem line with a line break: " + l);
                }
            }
            return new Outcome("result", r, allocatedBytes() - before, null);
        } catch (IOException e) {
            String m = e.getMessage();
            if (m == null || m.isBlank() || m.contains("\n") || m.contains("\r")) {
                return new AssertionError("not a one-line message: " + m, e);
            }
            return new Outcome("refused: " + e.getClass().getSimpleName(), null, allocatedBytes() - before, m);
        } catch (Throwable t) {
            return t;
        }
    }

    /** Bytes this thread has allocated so far (HotSpot's per-thread counter), or 0 where unavailable. */
    static long allocatedBytes() {
        try {
            Object bean = Class.forName("java.lang.management.ManagementFactory").getMethod("getThreadMXBean")
                    .invoke(null);
            Method m = Class.forName("com.sun.management.ThreadMXBean").getMethod("getCurrentThreadAllocatedBytes");
            return (long) m.invoke(bean);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return 0;
        }
    }

    /**
     * Every entry of an L2 table, every refcount table entry and a 4-million-entry snapshot L1 table point
     * far past the end of a 1 MiB file: the check reports them (as qemu-img does) without sizing anything
     * by those offsets.
     */
    @Test
    void hugeOffsetsEverywhereAllocateLittle() throws Exception {
        Path img = Qemu.create(dir, "h.qcow2", "cluster_size=65536", "1G");
        Qemu.io(img, "write -P 1 0 512k");
        Qemu.run(dir, "qemu-img", "snapshot", "-c", "s", "h.qcow2");
        ImagePatcher p = ImagePatcher.of(img);
        SplittableRandom rnd = new SplittableRandom(7);
        long l2 = p.l2TableOffset(0);
        byte[] table = new byte[p.clusterSize];
        ByteBuffer t = ByteBuffer.wrap(table);
        for (int i = 0; i < p.clusterSize / 8; i++) {
            long huge = (rnd.nextLong(1L << 55) + (1L << 40)) & L2Entry.OFFSET_MASK & -65536L;
            t.putLong(huge | (rnd.nextBoolean() ? 1L << 63 : 0) | (rnd.nextInt(8) == 0 ? 1L << 62 : 0));
        }
        p.write(l2, table);
        for (int i = 1; i < p.clusterSize / 8; i++) {
            p.setRefcountTableEntry(i, (rnd.nextLong(1L << 62) + (1L << 40)) & -65536L);
        }
        p.put32(p.header.snapshotsOffset() + 8, (int) (Qcow2Header.MAX_L1_BYTES / 8 - 1));

        long before = allocatedBytes();
        long start = System.nanoTime();
        CheckResult r = QemuCheck.ours(img, ImageOptions.defaults(), new ArrayList<>());
        long allocated = allocatedBytes() - before;
        assertThat(allocated).as("bytes allocated by the check").isLessThan(32L << 20);
        assertThat(System.nanoTime() - start).as("nanoseconds").isLessThan(TimeUnit.SECONDS.toNanos(30));
        assertThat(r.corruptions()).isGreaterThan(8000);
        QemuCheck q = QemuCheck.run(img);
        assertThat(QemuCheck.numbers(r)).isEqualTo(q.numbers());
        assertThat(r.exitCode()).isEqualTo(q.exit());
    }

    @Test
    void allocationCounterWorks() {
        long before = allocatedBytes();
        byte[] b = new byte[8 << 20];
        assertThat(b).hasSize(8 << 20);
        assertThat(allocatedBytes() - before).as("the per-thread allocation counter").isGreaterThanOrEqualTo(8 << 20);
    }

    /** Header fields, every L1 and L2 table in use, the refcount table and blocks, the snapshot table. */
    static List<Region> metadataRegions(Path img) throws IOException {
        ImagePatcher p = ImagePatcher.of(img);
        int cs = p.clusterSize;
        List<Region> out = new ArrayList<>();
        out.add(new Region("header", 0, p.header.headerLength()));
        out.add(new Region("active L1", p.header.l1TableOffset(), p.header.l1Size() * 8));
        out.add(new Region("refcount table", p.header.refcountTableOffset(), 64));
        for (int i = 0; i < 8; i++) {
            long block = RefcountTableEntry.blockOffset(p.refcountTableEntry(i));
            if (block != 0) {
                out.add(new Region("refcount block", block, Math.min(cs, p.size() / cs * 2 + 16)));
            }
        }
        List<long[]> l1s = new ArrayList<>();
        l1s.add(new long[] {p.header.l1TableOffset(), p.header.l1Size()});
        try (AlignedFile f = AlignedFile.open(img, IoMode.BUFFERED, StandardOpenOption.READ)) {
            List<Qcow2Snapshot> snaps = SnapshotTable.read(f, p.header);
            if (!snaps.isEmpty()) {
                out.add(new Region("snapshot table", p.header.snapshotsOffset(), 40 + 24 + 8));
            }
            for (Qcow2Snapshot s : snaps) {
                out.add(new Region("snapshot L1", s.l1TableOffset(), s.l1Size() * 8));
                l1s.add(new long[] {s.l1TableOffset(), s.l1Size()});
            }
        }
        for (long[] l1 : l1s) {
            for (int i = 0; i < l1[1]; i++) {
                long l2 = L1Entry.l2Offset(p.u64(l1[0] + 8L * i));
                if (l2 != 0) {
                    out.add(new Region("L2 table", l2, cs));
                }
            }
        }
        return out;
    }
}
