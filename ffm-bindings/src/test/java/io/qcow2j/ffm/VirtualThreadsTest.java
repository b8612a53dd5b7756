package io.qcow2j.ffm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.FileOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * Virtual threads doing file I/O through {@link AsyncFile} never hold their carriers for an I/O: 1,000 of
 * them at once, with JFR recording {@code jdk.VirtualThreadPinned} (none may appear), and a FIFO read that
 * cannot complete until every one of the 1,000 has started (with blocking downcalls, only as many as there
 * are carriers would ever start).
 */
class VirtualThreadsTest {
    private static final int THREADS = 1000;

    /**
     * On tmpfs, through either backend (the ring forced: detection would take the direct route there) and
     * on the direct route that files in memory take (writes in FIFO order under the file's fair lock).
     */
    @ParameterizedTest(name = "{0}, {1}")
    @CsvSource({"io_uring, RING", "threads, RING", "io_uring, DETECT"})
    void thousandVirtualThreadsDoFileIoWithoutPinning(String backend, AsyncFile.Route route) throws Exception {
        Path jfr;
        try (TestDirs dirs = TestDirs.shm(); AsyncIo io = AsyncIo.open(backend, 64);
                AsyncFile f = new AsyncFile(AlignedFile.open(dirs.file("vt"), IoMode.BUFFERED,
                        StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE), io, route);
                Recording rec = new Recording()) {
            assertEquals(route == AsyncFile.Route.DETECT, f.isInMemory(), "a regular file on tmpfs is in memory");
            rec.enable("jdk.VirtualThreadPinned").withThreshold(Duration.ZERO).withStackTrace();
            rec.start();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < THREADS; i++) {
                int id = i;
                threads.add(Thread.ofVirtual().start(() -> {
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment out = arena.allocate(4096);
                        MemorySegment in = arena.allocate(4096);
                        for (int round = 0; round < 4; round++) {
                            out.fill((byte) (id * 7 + round));
                            f.write(4096L * id, out);
                            f.readFully(4096L * id, in);
                            if (in.mismatch(out) != -1) {
                                throw new AssertionError("thread " + id + " read back other bytes");
                            }
                        }
                        f.dataSync();
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                }));
            }
            for (Thread t : threads) {
                t.join(Duration.ofSeconds(60));
            }
            rec.stop();
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
            jfr = dirs.file("rec.jfr");
            rec.dump(jfr);
            List<RecordedEvent> pinned = new ArrayList<>();
            for (RecordedEvent e : RecordingFile.readAllEvents(jfr)) {
                if (e.getEventType().getName().equals("jdk.VirtualThreadPinned")) {
                    pinned.add(e);
                }
            }
            assertEquals(List.of(), pinned, "virtual threads pinned while waiting for I/O");
        }
    }

    /**
     * Each of 1,000 virtual threads reads one byte of a FIFO, which has no bytes until all 1,000 have started.
     * A virtual thread blocked in a {@code read} downcall would keep its carrier: the rest would never start.
     */
    @Test
    void readsWaitingOnAFifoDoNotHoldCarriers() throws Exception {
        try (TestDirs dirs = TestDirs.shm(); AsyncIo io = AsyncIo.open("io_uring", THREADS)) {
            Path fifo = dirs.file("fifo");
            Process p = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start();
            assertEquals(0, p.waitFor());
            // O_RDWR on a FIFO opens at once (no writer to wait for) and keeps it from signalling end of file.
            try (AsyncFile f = new AsyncFile(AlignedFile.open(fifo, IoMode.BUFFERED, StandardOpenOption.READ,
                    StandardOpenOption.WRITE), io); FileOutputStream writer = new FileOutputStream(fifo.toFile())) {
                AtomicInteger started = new AtomicInteger();
                AtomicInteger bytes = new AtomicInteger();
                List<Thread> threads = new ArrayList<>();
                for (int i = 0; i < THREADS; i++) {
                    threads.add(Thread.ofVirtual().start(() -> {
                        try (Arena arena = Arena.ofConfined()) {
                            started.incrementAndGet();
                            bytes.addAndGet((int) f.read(0, arena.allocate(1)));
                        } catch (Exception e) {
                            throw new RuntimeException(e);
                        }
                    }));
                }
                long deadline = System.nanoTime() + 20_000_000_000L;
                while (started.get() < THREADS && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                int n = started.get();
                writer.write(new byte[THREADS]); // release them all (also the stuck ones, should the check fail)
                writer.flush();
                for (Thread t : threads) {
                    t.join(Duration.ofSeconds(20));
                }
                if (n < THREADS) {
                    fail("only " + n + " of " + THREADS + " virtual threads started: the others' carriers were held");
                }
                assertEquals(THREADS, bytes.get());
                assertTrue(threads.stream().noneMatch(Thread::isAlive));
            }
        }
    }
}
