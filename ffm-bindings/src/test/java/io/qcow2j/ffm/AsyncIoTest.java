package io.qcow2j.ffm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Both {@link AsyncIo} backends against the blocking calls: bytes written asynchronously read back by
 * {@code pread} and the reverse, short reads at end of file, errors as typed exceptions, linked chains,
 * registered buffers, fallocate, O_DIRECT alignment, and the automatic and forced choice of backend.
 */
class AsyncIoTest {

    private static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void writesAndReadsMatchPreadAndPwrite(String backend) throws Exception {
        for (TestDirs dirs : new TestDirs[] {TestDirs.disk(), TestDirs.shm()}) {
            try (dirs; AsyncIo io = AsyncIo.open(backend, 32); Arena arena = Arena.ofConfined();
                    AlignedFile f = AlignedFile.open(dirs.file("a"), IoMode.BUFFERED, StandardOpenOption.CREATE,
                            StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                assertEquals(backend, io.name());
                int n = 64;
                IoRequest[] reqs = new IoRequest[n];
                MemorySegment[] bufs = new MemorySegment[n];
                for (int i = 0; i < n; i++) {
                    bufs[i] = arena.allocate(4096 + 512 * i, 4096);
                    bufs[i].copyFrom(MemorySegment.ofArray(random(4096 + 512 * i, i)));
                    reqs[i] = new IoRequest().write(f.fd(), 100_000L * i + 7, bufs[i]);
                }
                for (IoRequest r : reqs) {
                    io.submit(r); // 64 in flight: half of them wait for a slot on a ring of 32
                }
                for (int i = 0; i < n; i++) {
                    assertEquals(bufs[i].byteSize(), reqs[i].await());
                    MemorySegment back = arena.allocate(bufs[i].byteSize());
                    assertEquals(back.byteSize(), LibC.pread(f.fd(), back, 100_000L * i + 7));
                    assertEquals(-1, back.mismatch(bufs[i]), "write " + i);
                }
                // The other way: pwrite, then asynchronous reads.
                MemorySegment src = arena.allocate(1 << 20);
                src.copyFrom(MemorySegment.ofArray(random(1 << 20, 99)));
                LibC.pwrite(f.fd(), src, 3 << 20);
                MemorySegment dst = arena.allocate(1 << 20);
                IoRequest r = new IoRequest().read(f.fd(), 3 << 20, dst);
                io.submit(r);
                assertEquals(1 << 20, r.await());
                assertEquals(-1, dst.mismatch(src));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void readAtEndOfFileIsShortAndPastItEmpty(String backend) throws Exception {
        try (TestDirs dirs = TestDirs.shm(); AsyncIo io = AsyncIo.open(backend, 4); Arena arena = Arena.ofConfined()) {
            Path p = dirs.file("five");
            Files.write(p, random(5000, 1));
            try (AlignedFile f = AlignedFile.open(p, IoMode.BUFFERED, StandardOpenOption.READ)) {
                MemorySegment dst = arena.allocate(8192);
                IoRequest r = new IoRequest().read(f.fd(), 4096, dst);
                io.submit(r);
                assertEquals(904, r.await());
                io.submit(r.read(f.fd(), 6000, dst));
                assertEquals(0, r.await());
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void errorsAreErrnoExceptionsNamingTheCall(String backend) throws Exception {
        try (TestDirs dirs = TestDirs.shm(); AsyncIo io = AsyncIo.open(backend, 4); Arena arena = Arena.ofConfined()) {
            Path p = dirs.file("ro");
            Files.write(p, random(4096, 2));
            try (AlignedFile f = AlignedFile.open(p, IoMode.BUFFERED, StandardOpenOption.READ)) {
                IoRequest w = new IoRequest().write(f.fd(), 0, arena.allocate(512));
                io.submit(w);
                ErrnoException e = assertThrows(ErrnoException.class, w::await);
                assertEquals(Errno.EBADF, e.errno());
                assertTrue(e.getMessage().startsWith("write(fd=" + f.fd() + ", 512 bytes at 0): EBADF"),
                        e.getMessage());
                // A linked chain stops at the failure: the rest is cancelled, not run.
                MemorySegment dst = arena.allocate(512);
                IoRequest bad = new IoRequest().write(f.fd(), 0, arena.allocate(512));
                IoRequest after = new IoRequest().read(f.fd(), 0, dst);
                io.submitLinked(bad, after);
                assertEquals(Errno.EBADF, assertThrows(ErrnoException.class, bad::await).errno());
                assertEquals(125 /* ECANCELED */, assertThrows(ErrnoException.class, after::await).errno());
            }
            IoRequest r = new IoRequest();
            assertThrows(IllegalArgumentException.class,
                    () -> r.read(0, 0, MemorySegment.ofArray(new byte[16])), "heap segments refused");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void linkedWriteThenDataSyncAndFallocate(String backend) throws Exception {
        try (TestDirs dirs = TestDirs.disk(); AsyncIo io = AsyncIo.open(backend, 8); Arena arena = Arena.ofConfined();
                AlignedFile f = AlignedFile.open(dirs.file("l"), IoMode.BUFFERED, StandardOpenOption.CREATE,
                        StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment data = arena.allocate(65536);
            data.fill((byte) 0x5a);
            IoRequest grow = new IoRequest().fallocate(f.fd(), 0, 0, 1 << 20);
            IoRequest write = new IoRequest().write(f.fd(), 0, data);
            IoRequest punch = new IoRequest().fallocate(f.fd(),
                    Platform.FALLOC_FL_PUNCH_HOLE | Platform.FALLOC_FL_KEEP_SIZE, 4096, 8192);
            IoRequest sync = new IoRequest().dataSync(f.fd());
            io.submitLinked(grow, write, punch, sync);
            for (IoRequest r : new IoRequest[] {grow, write, punch, sync}) {
                r.await();
            }
            assertEquals(1 << 20, f.size());
            byte[] back = new byte[65536];
            assertEquals(65536, LibC.pread(f.fd(), MemorySegment.ofArray(back), 0));
            for (int i = 0; i < back.length; i++) {
                byte want = i >= 4096 && i < 12288 ? 0 : (byte) 0x5a;
                assertEquals(want, back[i], "byte " + i);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void registeredBuffers(String backend) throws Exception {
        try (TestDirs dirs = TestDirs.shm(); AsyncIo io = AsyncIo.open(backend, 8); Arena arena = Arena.ofShared();
                AlignedFile f = AlignedFile.open(dirs.file("fixed"), IoMode.BUFFERED, StandardOpenOption.CREATE,
                        StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment arenaBuf = arena.allocate(1 << 16, 4096);
            io.registerBuffers(arenaBuf);
            MemorySegment src = arenaBuf.asSlice(4096, 8192);
            src.copyFrom(MemorySegment.ofArray(random(8192, 3)));
            IoRequest w = new IoRequest().writeFixed(f.fd(), 12345, src, 0);
            io.submit(w);
            assertEquals(8192, w.await());
            MemorySegment dst = arenaBuf.asSlice(32768, 8192);
            IoRequest r = new IoRequest().readFixed(f.fd(), 12345, dst, 0);
            io.submit(r);
            assertEquals(8192, r.await());
            assertEquals(-1, dst.mismatch(src));
            // A fixed transfer outside the registered buffer is refused by the kernel.
            IoRequest outside = new IoRequest().writeFixed(f.fd(), 0, arena.allocate(512), 0);
            io.submit(outside);
            assertEquals(Errno.EFAULT, assertThrows(ErrnoException.class, outside::await).errno());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void directIoNeedsAlignedBuffers(String backend) throws Exception {
        try (TestDirs dirs = TestDirs.disk(); AsyncIo io = AsyncIo.open(backend, 4); Arena arena = Arena.ofConfined()) {
            Path p = dirs.file("d");
            Files.write(p, random(1 << 16, 4));
            try (AlignedFile f = AlignedFile.open(p, IoMode.DIRECT_OR_BUFFERED, StandardOpenOption.READ)) {
                assumeTrue(f.isDirect(), "the disk filesystem refuses O_DIRECT");
                MemorySegment aligned = arena.allocate(8192, 4096);
                IoRequest r = new IoRequest().read(f.fd(), 4096, aligned);
                io.submit(r);
                assertEquals(4096 * 2, r.await());
                assertArrayEquals(java.util.Arrays.copyOfRange(Files.readAllBytes(p), 4096, 12288),
                        aligned.toArray(ValueLayout.JAVA_BYTE));
                IoRequest odd = new IoRequest().read(f.fd(), 4096, aligned.asSlice(1, 4096));
                io.submit(odd);
                assertEquals(Errno.EINVAL, assertThrows(ErrnoException.class, odd::await).errno());
            }
        }
    }

    /**
     * Completion racing the owner's {@code await}: tiny requests from platform and virtual threads, whose
     * completions often arrive just as the owner starts to wait. A lost wake-up hangs a thread (caught by the
     * join's deadline).
     */
    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void manyShortRequestsNeverLoseACompletion(String backend) throws Exception {
        try (TestDirs dirs = TestDirs.shm(); AsyncIo io = AsyncIo.open(backend, 16); Arena arena = Arena.ofShared();
                AlignedFile f = AlignedFile.open(dirs.file("race"), IoMode.BUFFERED, StandardOpenOption.CREATE,
                        StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
            java.util.List<Thread> threads = new java.util.ArrayList<>();
            for (int t = 0; t < 6; t++) {
                int id = t;
                Thread.Builder b = t % 2 == 0 ? Thread.ofPlatform() : Thread.ofVirtual();
                threads.add(b.start(() -> {
                    MemorySegment buf = arena.allocate(512);
                    IoRequest r = new IoRequest();
                    try {
                        for (int i = 0; i < 15_000; i++) {
                            io.submit(i % 2 == 0 ? r.write(f.fd(), 512L * id, buf) : r.read(f.fd(), 512L * id, buf));
                            r.await();
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            for (Thread t : threads) {
                t.join(java.time.Duration.ofSeconds(30));
                assertTrue(!t.isAlive(), "a thread still waits: a completion was lost");
            }
            if (failure.get() != null) {
                throw new AssertionError(failure.get());
            }
        }
    }

    /**
     * Requests submitted from completion callbacks, as an event-driven embedder's lanes do: on io_uring the
     * reaper runs them and defers their {@code io_uring_enter} to one call per batch. Eight lanes of O_DIRECT
     * reads (completions that really arrive later) each start the next read from the last one's completion;
     * every read must complete with the file's bytes (a deferred SQE never submitted hangs a lane: the latch's
     * deadline).
     */
    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void requestsSubmittedFromCompletionsAllComplete(String backend) throws Exception {
        try (TestDirs dirs = TestDirs.disk(); AsyncIo io = AsyncIo.open(backend, 16); Arena arena = Arena.ofShared()) {
            Path p = dirs.file("lanes");
            byte[] content = random(64 * 4096, 6);
            Files.write(p, content);
            try (AlignedFile f = AlignedFile.open(p, IoMode.DIRECT_OR_BUFFERED, StandardOpenOption.READ)) {
                int lanes = 8;
                int perLane = 2_000;
                java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(lanes);
                java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
                for (int l = 0; l < lanes; l++) {
                    MemorySegment buf = arena.allocate(4096, 4096);
                    IoRequest r = new IoRequest();
                    int lane = l;
                    int[] left = {perLane};
                    Runnable[] next = new Runnable[1];
                    next[0] = () -> {
                        int block = (lane * 7 + left[0] * 13) % 64;
                        r.read(f.fd(), 4096L * block, buf).onCompletion(q -> {
                            try {
                                assertEquals(4096, q.check());
                                assertArrayEquals(java.util.Arrays.copyOfRange(content, 4096 * block, 4096 * block + 4096),
                                        buf.toArray(ValueLayout.JAVA_BYTE));
                            } catch (Throwable e) {
                                failure.compareAndSet(null, e);
                            }
                            if (--left[0] == 0 || failure.get() != null) {
                                done.countDown();
                            } else {
                                next[0].run();
                            }
                        });
                        try {
                            io.submit(r);
                        } catch (Throwable e) {
                            failure.compareAndSet(null, e);
                            done.countDown();
                        }
                    };
                    next[0].run();
                }
                assertTrue(done.await(60, java.util.concurrent.TimeUnit.SECONDS), "a lane's read never completed");
                if (failure.get() != null) {
                    throw new AssertionError(failure.get());
                }
            }
        }
    }

    @Test
    void automaticChoiceIsIoUringHereAndTheFallbackCanBeForced() {
        assumeTrue(readDisabledSysctl() == 0, "io_uring is disabled on this machine");
        String old = System.getProperty(AsyncIo.BACKEND_PROPERTY);
        try {
            System.clearProperty(AsyncIo.BACKEND_PROPERTY);
            try (AsyncIo io = AsyncIo.open(4)) {
                assertEquals("io_uring", io.name());
                assertEquals("I/O backend: io_uring (4 entries)", io.description());
            }
            System.setProperty(AsyncIo.BACKEND_PROPERTY, "threads");
            try (AsyncIo io = AsyncIo.open(4)) {
                assertEquals("threads", io.name());
                assertTrue(io.description().contains("forced by qcow2j.aio=threads"), io.description());
            }
            IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                    () -> AsyncIo.open("posix-aio", 4));
            assertEquals("unknown I/O backend 'posix-aio' (expected io_uring, threads or auto)", bad.getMessage());
        } finally {
            if (old == null) {
                System.clearProperty(AsyncIo.BACKEND_PROPERTY);
            } else {
                System.setProperty(AsyncIo.BACKEND_PROPERTY, old);
            }
        }
    }

    static int readDisabledSysctl() {
        try {
            return Integer.parseInt(Files.readString(Path.of("/proc/sys/kernel/io_uring_disabled")).trim());
        } catch (Exception e) {
            return 0;
        }
    }

    /**
     * A backend with no room refuses {@code trySubmit} at once (the thread pool's workers held in completions
     * and its queue full; io_uring's slots all taken by reads of a FIFO), and {@link AsyncReads} then reads
     * the part itself instead of waiting: its future completes, with the file's bytes.
     */
    @ParameterizedTest
    @ValueSource(strings = {"io_uring", "threads"})
    void aFullBackendRefusesTrySubmitAndAsyncReadsReadThemselves(String backend) throws Exception {
        try (TestDirs dirs = TestDirs.disk(); AsyncIo io = AsyncIo.open(backend, 4); Arena arena = Arena.ofShared()) {
            Path data = dirs.file("data");
            byte[] content = random(8192, 5);
            Files.write(data, content);
            Path fifo = dirs.file("fifo");
            assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start().waitFor());
            java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
            try (AlignedFile d = AlignedFile.open(data, IoMode.BUFFERED, StandardOpenOption.READ);
                    AlignedFile p = AlignedFile.open(fifo, IoMode.BUFFERED, StandardOpenOption.READ,
                            StandardOpenOption.WRITE);
                    java.io.FileOutputStream unblock = new java.io.FileOutputStream(fifo.toFile())) {
                java.util.concurrent.CountDownLatch workersHeld = new java.util.concurrent.CountDownLatch(4);
                int held = 0;
                while (true) { // fill the backend: requests that do not complete until released
                    IoRequest r = backend.equals("io_uring") ? new IoRequest().read(p.fd(), 0, arena.allocate(1))
                            : new IoRequest().read(d.fd(), 0, arena.allocate(1)).onCompletion(q -> {
                                workersHeld.countDown();
                                try {
                                    release.await();
                                } catch (InterruptedException e) {
                                    Thread.currentThread().interrupt();
                                }
                            });
                    if (!io.trySubmit(r)) {
                        break;
                    }
                    if (++held == 4 && backend.equals("threads")) {
                        workersHeld.await(); // all four workers are in a completion: the queue fills from here
                    }
                    assertTrue(held <= 64, "the backend never filled up");
                }
                AsyncFile f = new AsyncFile(d, io);
                AsyncReads<Void> reads = new AsyncReads<>(f, 1, 2, () -> null, () -> { });
                AsyncReads.Group<Void> g = reads.begin();
                MemorySegment a = arena.allocate(4096, 4096);
                MemorySegment b = arena.allocate(4096, 4096);
                assertTrue(g.add(0, a) && g.add(4096, b));
                g.submit().get(10, java.util.concurrent.TimeUnit.SECONDS); // not waiting for the backend
                assertArrayEquals(java.util.Arrays.copyOfRange(content, 0, 4096), a.toArray(ValueLayout.JAVA_BYTE));
                assertArrayEquals(java.util.Arrays.copyOfRange(content, 4096, 8192), b.toArray(ValueLayout.JAVA_BYTE));
                release.countDown();
                unblock.write(new byte[held]);
                unblock.flush();
            } finally {
                release.countDown();
            }
        }
    }
}
