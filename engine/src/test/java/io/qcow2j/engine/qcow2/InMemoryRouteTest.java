package io.qcow2j.engine.qcow2;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.AsyncFile;
import io.qcow2j.ffm.AsyncIo;
import io.qcow2j.engine.ModelWrites;
import io.qcow2j.testsupport.Qemu;
import io.qcow2j.testsupport.ScratchDirs;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The two routes of {@link AsyncFile} under the engine's asynchronous requests: the direct one (requests
 * copied on the virtual thread, writes in FIFO order under the file's fair lock: what files on tmpfs get)
 * and the ring (io_uring), each forced on both file systems and detected on both. Allocating writes at depth
 * 16 (64 KiB clusters, 4 KiB writes each in a fresh cluster, pairs of partial writes into one fresh cluster in
 * flight together), zeroes and a discard in flight with them, then a flush: {@code qemu-img check} is clean
 * and {@code qemu-img compare} finds the image equal to a raw file of the expected bytes; the async reads give
 * the same bytes.
 */
class InMemoryRouteTest {
    private static final int CLUSTER = 64 << 10;
    private static final int SIZE = 24 << 20;
    private static AsyncIo ioUring;
    private final ScratchDirs scratch = new ScratchDirs();

    @BeforeAll
    static void openBackend() {
        ioUring = AsyncIo.open("io_uring", 64);
    }

    @AfterAll
    static void closeBackend() {
        ioUring.close();
    }

    @AfterEach
    void removeScratch() throws IOException {
        scratch.deleteAll();
    }

    @ParameterizedTest(name = "{0}, {1}")
    @CsvSource({"tmpfs, DETECT, true", "tmpfs, RING, false", "ext4, DETECT, false", "ext4, DIRECT, true"})
    void allocatingWritesAtDepthSixteenCompareEqualOnEitherRoute(String fs, AsyncFile.Route route, boolean direct)
            throws Exception {
        Path dir = scratch.create(fs, "inmemory-");
        Path p = Qemu.create(dir, "r.qcow2", "", "32M");
        byte[] model = new byte[32 << 20];
        Random rnd = new Random(31);
        List<AsyncFile> opened = new ArrayList<>();
        try (Qcow2Image d = ChainOpener.openQcow2(p, ImageOptions.defaults(), (path, mode, writable) -> {
            AsyncFile f = new AsyncFile(writable
                    ? AlignedFile.open(path, mode, StandardOpenOption.READ, StandardOpenOption.WRITE)
                    : AlignedFile.open(path, mode, StandardOpenOption.READ), ioUring, route);
            opened.add(f);
            return f;
        }); Arena arena = Arena.ofShared()) {
            assertThat(opened).isNotEmpty().allMatch(f -> f.isInMemory() == direct, "the route taken");
            ModelWrites writes = new ModelWrites(d, arena, rnd, 16, model);
            long at = 0;
            while (at < SIZE) {
                switch (rnd.nextInt(6)) {
                    case 0 -> { // two partial writes into one fresh cluster in flight together
                        writes.write(at + 4096, 8192);
                        writes.write(at + 16384, 16384);
                        at += CLUSTER;
                    }
                    case 1 -> { // 4 KiB in a new cluster
                        writes.write(at + 8192, 4096);
                        at += CLUSTER;
                    }
                    case 2 -> { // a run of four clusters
                        writes.write(at, 4 * CLUSTER);
                        at += 4L * CLUSTER;
                    }
                    default -> {
                        writes.write(at, CLUSTER);
                        at += CLUSTER;
                    }
                }
            }
            writes.drain();
            // zeroes over written clusters and a discard, in flight together, then a flush
            CompletableFuture<Void> z = d.writeZeroesAsync(2L << 20, 3L * CLUSTER, ZeroFlag.unmapIf(true));
            Arrays.fill(model, 2 << 20, (2 << 20) + 3 * CLUSTER, (byte) 0);
            CompletableFuture<Void> t = d.discardAsync(20L << 20, 1 << 20);
            Arrays.fill(model, 20 << 20, 21 << 20, (byte) 0);
            CompletableFuture.allOf(z, t).join();
            d.flushAsync().join();
            assertThat(Arrays.mismatch(ModelWrites.readBackAsync(d, arena, 32 << 20), model))
                    .as("first difference read back").isEqualTo(-1);
        }
        Qemu.requireClean(p, "after allocating writes on the " + route + " route, " + fs);
        Files.write(dir.resolve("expected.raw"), model);
        Qemu.run(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", "r.qcow2", "expected.raw");
    }
}
