package io.qcow2j.engine.raw;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.AsyncFile;
import io.qcow2j.ffm.AsyncIo;
import io.qcow2j.ffm.IoMode;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A raw disk's {@code readAsync} goes straight to the I/O backend (no virtual thread) for native buffers, and
 * to the general path for heap ones; the bytes are the file's, on both backends, buffered and O_DIRECT; close
 * waits for the reads in flight.
 */
class RawFastReadsTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"io_uring, BUFFERED", "io_uring, DIRECT", "threads, BUFFERED", "threads, DIRECT"})
    void nativeBuffersAreReadStraightHeapOnesOnAVirtualThread(String backend, IoMode mode) throws Exception {
        byte[] content = new byte[4 << 20];
        new Random(7).nextBytes(content);
        Path p = dir.resolve("d.raw");
        Files.write(p, content);
        Random rnd = new Random(8);
        try (AsyncIo io = AsyncIo.open(backend, 32); Arena arena = Arena.ofShared()) {
            RawImage d = RawImage.open(new AsyncFile(AlignedFile.open(p, mode, StandardOpenOption.READ), io),
                    p.toString(), true, mode == IoMode.DIRECT ? CacheMode.NONE : CacheMode.WRITEBACK);
            // more than the 128 fast reads at once (the rest go the general way), and a heap buffer
            List<CompletableFuture<Void>> fs = new ArrayList<>();
            List<MemorySegment> bufs = new ArrayList<>();
            List<Long> offs = new ArrayList<>();
            submit(d, arena, rnd, content.length, 200, fs, bufs, offs);
            byte[] heap = new byte[10000];
            long f0 = d.fastReads();
            CompletableFuture.allOf(fs.toArray(CompletableFuture[]::new)).join();
            d.readAsync(12345, MemorySegment.ofArray(heap)).join();
            assertThat(d.fastReads()).as("a heap buffer is not read on the fast path").isEqualTo(f0);
            // then 100 at once (all fast), and close at once: it waits for them
            submit(d, arena, rnd, content.length, 100, fs, bufs, offs);
            long fast = d.fastReads();
            d.close();
            CompletableFuture.allOf(fs.toArray(CompletableFuture[]::new)).join();
            for (int i = 0; i < bufs.size(); i++) {
                int off = (int) (long) offs.get(i);
                assertThat(bufs.get(i).toArray(ValueLayout.JAVA_BYTE)).as("read %d", i)
                        .isEqualTo(Arrays.copyOfRange(content, off, off + (int) bufs.get(i).byteSize()));
            }
            assertThat(heap).isEqualTo(Arrays.copyOfRange(content, 12345, 22345));
            assertThat(fast - f0).as("the second batch on the fast path").isEqualTo(100);
            assertThat(f0).as("reads of the first batch on the fast path").isBetween(1L, 200L);
        }
    }

    private static void submit(RawImage d, Arena arena, Random rnd, int size, int n, List<CompletableFuture<Void>> fs,
            List<MemorySegment> bufs, List<Long> offs) {
        for (int i = 0; i < n; i++) {
            int len = 4096 * (1 + rnd.nextInt(16));
            long off = 4096L * rnd.nextInt((size - len) / 4096);
            MemorySegment b = arena.allocate(len, 4096);
            bufs.add(b);
            offs.add(off);
            fs.add(d.readAsync(off, b));
        }
    }
}
