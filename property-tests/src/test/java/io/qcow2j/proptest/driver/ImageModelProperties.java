package io.qcow2j.proptest.driver;

import io.qcow2j.proptest.Action;
import io.qcow2j.proptest.Context;
import io.qcow2j.proptest.Instance;
import io.qcow2j.proptest.Result;
import io.qcow2j.proptest.StatefulProperty;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine behaves like a flat disk: random sequences of write, write zeroes (with and without unmap),
 * discard, flush, read and close-and-reopen, over random geometries (clusters of 512 bytes to 64 KiB, refcount
 * widths 1 to 64 bits, version 2 and 3, extended L2 on and off, raw, qcow2 or no backing file, pre-existing
 * plain, compressed and zero clusters) and cache sizes (two 512-byte L2 slices up to the default, and
 * writethrough), against a byte array. After every action the range it touched (and one cluster around it) and
 * a random range read back as the model; at the end {@code qemu-img check} finds no corruption and no leaks, and
 * qemu reads the model's content. Discard follows the engine's documented rule ({@link GuestModel#discard}).
 */
class ImageModelProperties {
    @TempDir
    static Path templateDir;
    @TempDir
    Path dir;

    private static Templates templates;

    @BeforeAll
    static void templates() {
        templates = new Templates(templateDir);
    }

    /** A guest request as an action: applied to the image and the model. */
    record Request(GuestOp op) implements Action<DiskUnderTest, DiskState> {
        @Override
        public boolean precondition(DiskState model) {
            long[] r = op.range();
            return r == null || r[1] <= model.size();
        }

        @Override
        public void run(DiskUnderTest disk, DiskState model, Context ctx) throws Exception {
            op.apply(disk.image);
            op.apply(model.guest);
            long[] r = op.range();
            if (r != null) {
                model.lastStart = r[0];
                model.lastEnd = r[1];
            }
            switch (op) {
                case GuestOp.Discard d -> ctx.count(model.guest.discardedRange(d.offset(), d.length()) == null
                        ? "discard of no whole cluster" : "discard of whole clusters");
                case GuestOp.WriteZeroes z -> ctx.count(z.unmap() ? "write zeroes, unmap" : "write zeroes, no unmap");
                case GuestOp.Write w -> ctx.count(w.offset() % model.config.clusterSize() == 0
                        && w.length() % model.config.clusterSize() == 0 ? "write of whole clusters" : "unaligned write");
                default -> { }
            }
        }

        @Override
        public String toString() {
            return op.toString();
        }
    }

    record Read(long offset, long length) implements Action<DiskUnderTest, DiskState> {
        @Override
        public boolean precondition(DiskState model) {
            return offset + length <= model.size();
        }

        @Override
        public void run(DiskUnderTest disk, DiskState model, Context ctx) throws Exception {
            model.guest.verify(disk.image, offset, length, null, disk.config + ": " + this);
        }

        @Override
        public String toString() {
            return "read(0x" + Long.toHexString(offset) + ", " + length + ")";
        }
    }

    record Reopen(String cache) implements Action<DiskUnderTest, DiskState> {
        @Override
        public void run(DiskUnderTest disk, DiskState model, Context ctx) throws Exception {
            disk.reopen(disk.config.withCache(cache).options());
        }

        @Override
        public String toString() {
            return "closeAndReopen(" + cache + " cache)";
        }
    }

    /** A length: tiny and unaligned, whole clusters, a few clusters unaligned, or up to 256 KiB. */
    private static long length(Random rnd, DiskState m) {
        int cs = m.config.clusterSize();
        long len = switch (rnd.nextInt(4)) {
            case 0 -> 1 + rnd.nextInt(700);
            case 1 -> (long) cs * (1 + rnd.nextInt(4));
            case 2 -> 1 + rnd.nextInt(3 * cs);
            default -> 1 + rnd.nextInt(256 << 10);
        };
        return Math.min(len, m.size());
    }

    /** An offset for {@code len} bytes: next to the last request, cluster-aligned, at the very end, or anywhere. */
    private static long offset(Random rnd, DiskState m, long len) {
        int cs = m.config.clusterSize();
        long max = m.size() - len;
        long off = switch (rnd.nextInt(6)) {
            case 0, 1 -> m.lastStart + rnd.nextLong(-2L * cs, 2L * cs + 1);
            case 2 -> rnd.nextLong(max + 1) & -(long) cs;
            case 3 -> max - (rnd.nextBoolean() ? 0 : rnd.nextInt(cs));
            default -> rnd.nextLong(max + 1);
        };
        return Math.max(0, Math.min(max, off));
    }

    @Test
    void theEngineBehavesLikeAFlatDisk() {
        Result r = StatefulProperty.<DiskUnderTest, DiskState>builder("image behaves like a flat disk")
                .setup(rnd -> {
                    DiskConfig c = DiskConfig.random(rnd);
                    Templates.Template t = templates.get(c);
                    DiskState model = new DiskState(c, new GuestModel(c.size(), c.clusterSize(), c.version(),
                            !c.backing().equals("none"), t.guest()));
                    return new Instance<>(DiskUnderTest.create(templates, dir, c, model), model);
                })
                .action(8, "write", (rnd, m) -> {
                    long len = length(rnd, m);
                    return new Request(new GuestOp.Write(offset(rnd, m, len), (int) len, rnd.nextLong()));
                })
                .action(3, "write zeroes", (rnd, m) -> {
                    long len = length(rnd, m);
                    return new Request(new GuestOp.WriteZeroes(offset(rnd, m, len), len, rnd.nextBoolean()));
                })
                .action(3, "discard", (rnd, m) -> {
                    long len = length(rnd, m);
                    return new Request(new GuestOp.Discard(offset(rnd, m, len), len));
                })
                .action(1, "flush", (rnd, m) -> new Request(new GuestOp.Flush()))
                .action(2, "read", (rnd, m) -> {
                    long len = length(rnd, m);
                    return new Read(offset(rnd, m, len), len);
                })
                .action(1, "close and reopen", (rnd, m) -> new Reopen(
                        java.util.List.of("default", "tiny", "small", "writethrough").get(rnd.nextInt(4))))
                .invariant("reads equal the model", (disk, m, ctx) -> {
                    if (ctx.step() == 0) {
                        DiskConfig c = m.config;
                        ctx.count("geometry: " + c.clusterSize() + "-byte clusters");
                        ctx.count("geometry: refcount_bits=" + c.refcountBits());
                        ctx.count("geometry: " + (c.version() == 2 ? "v2" : c.extendedL2() ? "v3, extended L2" : "v3"));
                        ctx.count("geometry: backing " + c.backing());
                        ctx.count("geometry: cache " + c.cache());
                        ctx.count(c.prefill() ? "geometry: pre-filled" : "geometry: empty");
                        return;
                    }
                    long cs = m.config.clusterSize();
                    long a = Math.max(0, m.lastStart - cs);
                    long b = Math.min(m.size(), m.lastEnd + cs);
                    m.guest.verify(disk.image, a, b - a, null, disk.config + ": after step " + ctx.step());
                    Random rnd = new Random(ctx.seed() * 31 + ctx.step());
                    long len = 1 + rnd.nextInt(128 << 10);
                    len = Math.min(len, m.size());
                    long off = rnd.nextLong(m.size() - len + 1);
                    m.guest.verify(disk.image, off, len, null, disk.config + ": random read after step " + ctx.step());
                })
                .tries(90).maxActions(40)
                .check();
        if (r.tries() >= 50) { // not when replaying one seed
            assertThat(r.count("discard of whole clusters")).isPositive();
            assertThat(r.count("write zeroes, unmap")).isPositive();
            assertThat(r.count("geometry: v3, extended L2")).isPositive();
            assertThat(r.actionCount("close and reopen")).isPositive();
        }
    }

}
