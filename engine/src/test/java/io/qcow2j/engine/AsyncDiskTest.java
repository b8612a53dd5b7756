package io.qcow2j.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The asynchronous requests of {@link Disk}: thousands in flight at once from one thread, among them 16
 * allocating writes into each fresh cluster at the same time, zeroes and discards, then a flush; the result is
 * read back through the async API and checked by qemu (the guest bytes by {@code qemu-img convert}, the
 * metadata by {@code qemu-img check}). Failures complete the future exceptionally.
 */
class AsyncDiskTest {
    private static final int BLOCK = 4096;
    private static final int BLOCKS = 2048; // 8 MiB: 128 clusters of 64 KiB, 16 blocks each

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"qcow2", "raw"})
    void thousandsOfRequestsInFlightFromOneThread(String format) throws Exception {
        Path p = dir.resolve("a." + format);
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", format, p.getFileName().toString(), "16M");
        byte[] model = new byte[16 << 20];
        Random rnd = new Random(12);
        try (Disk d = Images.open(p, ImageOptions.defaults()); Arena arena = Arena.ofShared()) {
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < BLOCKS; i++) {
                order.add(i);
            }
            Collections.shuffle(order, rnd);
            List<CompletableFuture<Void>> inFlight = new ArrayList<>();
            for (int i : order) {
                MemorySegment src = arena.allocate(BLOCK);
                byte[] data = new byte[BLOCK];
                rnd.nextBytes(data);
                src.copyFrom(MemorySegment.ofArray(data));
                System.arraycopy(data, 0, model, i * BLOCK, BLOCK);
                inFlight.add(d.writeAsync((long) i * BLOCK, src));
            }
            CompletableFuture.allOf(inFlight.toArray(CompletableFuture[]::new)).join();
            // Zeroes over written clusters and a discard of untouched ones, in flight together.
            CompletableFuture<Void> z = d.writeZeroesAsync(1 << 20, 3 << 16, ZeroFlag.unmapIf(true));
            Arrays.fill(model, 1 << 20, (1 << 20) + (3 << 16), (byte) 0);
            CompletableFuture<Void> t = d.discardAsync(12 << 20, 1 << 20);
            CompletableFuture.allOf(z, t).join();
            d.flushAsync().join();
            assertThat(Arrays.mismatch(ModelWrites.readBackAsync(d, arena, 16 << 20), model)).isEqualTo(-1);
        }
        byte[] guest = format.equals("qcow2") ? Qemu.guestContent(p) : Files.readAllBytes(p);
        assertThat(Arrays.mismatch(guest, model)).as("first difference as qemu reads it").isEqualTo(-1);
        if (format.equals("qcow2")) {
            Qemu.requireClean(p, "after async writes");
        }
    }

    /**
     * Allocating writes at depth 16 as a guest's sequential writer makes them (64 KiB, and runs of four
     * clusters that allocate contiguous host clusters at once, the file growing ahead), with pairs of
     * partial writes into the same fresh cluster in flight together (the second waits for the first's link,
     * QEMU's handle_dependencies): {@code qemu-img check} is clean and {@code qemu-img compare}
     * finds the image equal to a raw file of the expected bytes.
     */
    @Test
    void allocatingWritesAtDepthSixteenCompareEqualAndCheckClean() throws Exception {
        Path p = Qemu.create(dir, "d.qcow2", "", "32M");
        int cluster = 64 << 10;
        byte[] model = new byte[32 << 20];
        Random rnd = new Random(16);
        try (Disk d = Images.open(p, ImageOptions.defaults()); Arena arena = Arena.ofShared()) {
            ModelWrites writes = new ModelWrites(d, arena, rnd, 16, model);
            long at = 0;
            while (at < (24 << 20)) {
                int len = rnd.nextInt(4) == 0 ? 4 * cluster : cluster;
                if (rnd.nextInt(8) == 0) {
                    // two partial writes into one fresh cluster in flight together: whichever plans second waits
                    // for the first's link and writes in place, or one would lose the other's bytes (disjoint:
                    // the order of two overlapping writes in flight is undefined, for QEMU too)
                    writes.write(at + 4096, 8192);
                    writes.write(at + 16384, 16384);
                    len = cluster;
                } else {
                    writes.write(at, len);
                }
                at += len;
            }
            writes.drain();
        }
        Qemu.requireClean(p, "after allocating writes at depth 16");
        Path raw = dir.resolve("expected.raw");
        Files.write(raw, model);
        Qemu.run(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", "d.qcow2", "expected.raw");
    }

    @Test
    void failuresCompleteTheFutureExceptionally() throws IOException {
        Path p = Qemu.create(dir, "f.qcow2", "", "1M");
        try (Disk d = Images.open(p, ImageOptions.builder().readOnly(true).build()); Arena arena = Arena.ofShared()) {
            MemorySegment buf = arena.allocate(512);
            CompletableFuture<Void> w = d.writeAsync(0, buf);
            assertThatThrownBy(w::join).isInstanceOf(CompletionException.class).cause()
                    .isInstanceOf(IOException.class);
            assertThatThrownBy(() -> d.readAsync(1 << 20, buf).join()).cause()
                    .isInstanceOf(IllegalArgumentException.class);
            d.readAsync(0, buf).join();
            assertThat(buf.mismatch(arena.allocate(512))).isEqualTo(-1);
        }
    }

    @Test
    void theBackendInUseIsNamedInOneLine() {
        assertThat(Qcow2j.ioBackend()).matches("I/O backend: (io_uring \\(\\d+ entries\\)|threads \\(.*\\))");
    }
}
