package io.qcow2j.ffm;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An {@link AlignedFile} whose reads, writes, syncs and hole punches from <em>virtual</em> threads go through
 * an {@link AsyncIo} backend: the virtual thread submits, then parks until the completion, so its carrier
 * runs other virtual threads meanwhile (a blocking downcall would hold the carrier for the whole I/O, and
 * then no more requests are in flight than there are carriers).
 *
 * <p>Platform threads keep the direct {@code pread}/{@code pwrite}: for them a blocking call is one syscall
 * where the ring is a submit, a reaper wake-up and an unpark. Heap segments (which the kernel cannot be given
 * for an asynchronous transfer: the array may move) and direct-I/O requests that need the delegate's bounce
 * buffer also take the direct path.
 *
 * <p>A file in memory ({@link #isInMemory}: a regular file on tmpfs or ramfs) takes the direct path from every
 * thread: the kernel cannot read or write shmem without blocking (no {@code RWF_NOWAIT}), so io_uring hands
 * each request to an io-wq worker thread, two thread hand-offs for a memory copy, and io-wq runs the buffered
 * writes of one file one after the other on one worker (measured in docs/BENCHMARKS.md, issue 12: 4 KiB
 * writes each in a new cluster at depth 16 take 1.8 s through the ring, 1.0 s direct). A memory copy never
 * waits for a device, so it holds a virtual thread's carrier only as long as any computation would. Writes
 * from virtual threads take {@link #memoryWrites} first: tmpfs lets one write of a file run at a time (the
 * inode lock) and that lock is not fair, so without ours a waiting virtual thread would sleep in the kernel
 * holding its carrier, and writes would overtake each other (measured: p99 5.4 ms direct without the lock,
 * 3.4 ms with it, 64 KiB at depth 16). {@value #IN_MEMORY_PROPERTY} ({@code auto}, {@code direct},
 * {@code ring}) overrides the detection.
 *
 * <p>Requests come from a fixed pool of {@link IoRequest}s as large as the backend's depth: nothing is
 * allocated per request, and a virtual thread that finds the pool empty parks until one is returned.
 */
public final class AsyncFile extends ForwardingFile {
    private final AlignedFile file;
    private final AsyncIo io;
    private final ArrayBlockingQueue<IoRequest> pool;
    /** Whether requests are copied on the calling thread ({@link #isInMemory}). */
    private final boolean inMemory;
    /**
     * Taken, fairly, by a virtual thread around its write of a file in memory: waiters park in FIFO order
     * instead of queueing unfairly on the kernel's inode lock with their carriers held (see the class comment).
     */
    private final ReentrantLock memoryWrites = new ReentrantLock(true);

    /** The system property that overrides the in-memory detection: {@code auto} (default), {@code direct}, {@code ring}. */
    public static final String IN_MEMORY_PROPERTY = "qcow2j.aio.inmemory";

    /** How a file's requests from virtual threads are done. */
    public enum Route {
        /** Direct for a buffered regular file on tmpfs or ramfs, else through the backend. */
        DETECT,
        /** Always direct, on the calling thread, as for a file in memory. */
        DIRECT,
        /** Always through the backend. */
        RING
    }

    /** A file whose route follows {@value #IN_MEMORY_PROPERTY}. */
    public AsyncFile(AlignedFile file, AsyncIo io) {
        this(file, io, switch (System.getProperty(IN_MEMORY_PROPERTY, "auto")) {
            case "direct" -> Route.DIRECT;
            case "ring" -> Route.RING;
            default -> Route.DETECT;
        });
    }

    /** A file whose requests from virtual threads take {@code route}. */
    public AsyncFile(AlignedFile file, AsyncIo io, Route route) {
        super(file);
        this.file = file;
        this.io = io;
        this.inMemory = switch (route) {
            case DIRECT -> true;
            case RING -> false;
            case DETECT -> !file.isDirect() && inMemory(file.path());
        };
        this.pool = new ArrayBlockingQueue<>(io.depth());
        for (int i = 0; i < io.depth(); i++) {
            pool.add(new IoRequest());
        }
    }

    /**
     * Whether the file's requests take the direct route (see the class comment): a buffered regular file on
     * tmpfs or ramfs (unless {@link Route#RING} was asked for), or any file with {@link Route#DIRECT}. A read of
     * memory never waits for a device; io_uring could not complete it in the submitting call either (shmem has
     * no non-blocking reads: measured, {@code preadv2(RWF_NOWAIT)} fails with EOPNOTSUPP on Linux 6.18), so
     * {@link AsyncReads} copies these on the submitting thread too.
     */
    public boolean isInMemory() {
        return inMemory;
    }

    private static boolean inMemory(Path path) {
        try {
            if (!Files.isRegularFile(path)) {
                return false; // a FIFO or device on tmpfs is not memory: its reads may wait for ever
            }
            String type = Files.getFileStore(path).type();
            return type.equals("tmpfs") || type.equals("ramfs");
        } catch (IOException | RuntimeException e) {
            return false; // unknown: the ring, which is right everywhere
        }
    }

    /** The file underneath. */
    public AlignedFile file() {
        return file;
    }

    /** The backend requests from virtual threads go through. */
    public AsyncIo io() {
        return io;
    }

    private boolean viaRing(MemorySegment seg, long offset) {
        if (inMemory || !Thread.currentThread().isVirtual() || (seg != null && !seg.isNative()) || file.isClosed()) {
            return false;
        }
        return seg == null || aligned(offset, seg);
    }

    private boolean aligned(long offset, MemorySegment seg) {
        if (!file.isDirect()) {
            return true;
        }
        int a = file.alignment();
        return offset % a == 0 && seg.byteSize() % a == 0 && seg.address() % file.memoryAlignment() == 0;
    }

    /**
     * Whether a read into {@code dst} at {@code offset} can be handed to the backend as it is, from any thread
     * ({@link AsyncReads}): a native, writable segment, the file open, and for direct I/O the offset, length
     * and address aligned (else the delegate's bounce buffer is needed).
     */
    public boolean canQueue(long offset, MemorySegment dst) {
        return dst.isNative() && !dst.isReadOnly() && !file.isClosed() && aligned(offset, dst);
    }

    private IoRequest take() throws IOException {
        try {
            return pool.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for an I/O slot on " + file.path(), e);
        }
    }

    /** Submits {@code r} and parks until it completes; names the file in a failure. */
    private long run(IoRequest r) throws IOException {
        try {
            io.submit(r);
            return r.await();
        } catch (ErrnoException e) {
            throw new ErrnoException(file.path() + ": " + e.call(), e.errno());
        } finally {
            pool.add(r);
        }
    }

    @Override
    public long read(long offset, MemorySegment dst) throws IOException {
        if (!viaRing(dst, offset)) {
            return file.read(offset, dst);
        }
        if (dst.isReadOnly()) {
            throw new IllegalArgumentException("read into a read-only segment");
        }
        return run(take().read(file.fd(), offset, dst));
    }

    @Override
    public void readFully(long offset, MemorySegment dst) throws IOException {
        if (!viaRing(dst, offset)) {
            file.readFully(offset, dst);
            return;
        }
        long n = read(offset, dst);
        if (n != dst.byteSize()) {
            throw new java.io.EOFException(path() + ": read of " + dst.byteSize() + " bytes at " + offset
                    + " ended after " + n + " bytes (end of file)");
        }
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        if (inMemory && Thread.currentThread().isVirtual()) {
            memoryWrites.lock();
            try {
                file.write(offset, src);
            } finally {
                memoryWrites.unlock();
            }
            return;
        }
        if (!viaRing(src, offset)) {
            file.write(offset, src);
            return;
        }
        if (!file.isWritable()) {
            file.write(offset, src); // the delegate names the refusal
            return;
        }
        run(take().write(file.fd(), offset, src));
    }

    @Override
    public void dataSync() throws IOException {
        if (!viaRing(null, 0) || !file.isWritable()) {
            file.dataSync();
            return;
        }
        run(take().dataSync(file.fd()));
    }

    @Override
    public void punchHole(long offset, long length) throws IOException {
        if (!viaRing(null, 0) || !file.isWritable() || length <= 0) {
            file.punchHole(offset, length);
            return;
        }
        run(take().fallocate(file.fd(), Platform.FALLOC_FL_PUNCH_HOLE | Platform.FALLOC_FL_KEEP_SIZE, offset,
                length));
    }
}
