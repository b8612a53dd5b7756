package io.qcow2j.ffm;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Linux io_uring through FFM: {@code io_uring_setup}, {@code io_uring_enter} and {@code io_uring_register}
 * as {@code syscall(2)} downcalls, the submission and completion rings and the SQE array {@code mmap}'d.
 *
 * <p>Design. Submitters (any thread, virtual ones included) take {@link #lock}, claim an in-flight slot,
 * fill an SQE, publish the SQ tail with a release store and call {@code io_uring_enter(n, 0, 0)}, which
 * only submits: it never waits for a completion, so it never holds a carrier for the duration of an I/O
 * (buffered I/O that the kernel can do at once is copied in that call, as a {@code pwrite} would). One
 * platform reaper thread blocks in {@code io_uring_enter(0, 1, GETEVENTS)}, reads CQEs after an acquire
 * load of the CQ tail, continues short transfers, frees their slots and completes the requests (waking the
 * parked owner or running its callback); the CQ head is published with a release store. One reaper rather
 * than submitter-reaps: a submitter that reaped would have to wait in the kernel, pinning a virtual thread.
 * But a submitter does consume, without waiting, the CQEs already there after its submit when no one else
 * is (buffered I/O the kernel completes inside the submit call): that saves a reaper wake-up and an unpark.
 *
 * <p>The number in flight is bounded by the SQ size (a submitter parks on {@link #slotFree} when all slots
 * are taken), and the CQ is twice as large, so neither ring can overflow. {@code user_data} is the slot
 * index; {@link #SHUTDOWN} marks the NOP that stops the reaper.
 */
@SuppressWarnings("restricted") // this module is the one granted native access
public final class IoUring implements AsyncIo {
    private static final long SYS_IO_URING_SETUP = 425;
    private static final long SYS_IO_URING_ENTER = 426;
    private static final long SYS_IO_URING_REGISTER = 427;
    private static final long OFF_SQ_RING = 0L;
    private static final long OFF_CQ_RING = 0x8000000L;
    private static final long OFF_SQES = 0x10000000L;
    private static final int ENTER_GETEVENTS = 1;
    private static final int REGISTER_BUFFERS = 0;
    private static final int UNREGISTER_BUFFERS = 1;
    private static final byte SQE_IO_LINK = 4;
    private static final int SQE_SIZE = 64;
    private static final int CQE_SIZE = 16;
    private static final int MAP_SHARED = 0x01;
    private static final int MAP_POPULATE = 0x8000;
    private static final long SHUTDOWN = -1L;
    private static final int MAX_ENTRIES = 4096;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    /** {@code long syscall(long nr, ...)} with six long arguments (unused ones are ignored by the kernel). */
    private static final MethodHandle SYSCALL;
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;
    /** Ring indices are u32 shared with the kernel: acquire to read its side, release to publish ours. */
    private static final VarHandle U32 = JAVA_INT.varHandle();

    static {
        Platform.requireSupported();
        Linker.Option errno = Linker.Option.captureCallState("errno");
        SYSCALL = LINKER.downcallHandle(LINKER.defaultLookup().find("syscall").orElseThrow(),
                FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                        JAVA_LONG), errno, Linker.Option.firstVariadicArg(1));
        MMAP = LINKER.downcallHandle(LINKER.defaultLookup().find("mmap").orElseThrow(),
                FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG), errno);
        MUNMAP = LINKER.downcallHandle(LINKER.defaultLookup().find("munmap").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
    }

    private final int ringFd;
    private final int entries;
    private final MemorySegment sqRing;
    private final MemorySegment cqRing;
    private final MemorySegment sqes;
    private final long sqTailOff;
    private final int sqMask;
    private final long cqHeadOff;
    private final long cqTailOff;
    private final int cqMask;
    private final long cqesOff;
    private final Arena arena = Arena.ofShared();
    private final Thread reaper;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition slotFree = lock.newCondition();
    // Guarded by lock: the SQ tail we publish, the requests in flight by slot, the stack of free slots.
    private int sqTail;
    private final IoRequest[] inflight;
    private final int[] freeSlots;
    private int freeCount;
    private boolean closed;
    /** Errno capture for submissions made under the lock (close, the reaper's continuations). */
    private final MemorySegment submitState;

    /** Held while consuming CQEs: by the reaper, or by a submitter that finds it free (see reapIfFree). */
    private final ReentrantLock reapLock = new ReentrantLock();
    // Guarded by reapLock: the requests a batch of CQEs finished, completed after the slots are freed.
    private final IoRequest[] finishedRequests;
    private final long[] finishedResults;

    private IoUring(int ringFd, int entries, int cqEntries, MemorySegment params, MemorySegment sqRing,
            MemorySegment cqRing, MemorySegment sqes) {
        this.ringFd = ringFd;
        this.entries = entries;
        this.sqRing = sqRing;
        this.cqRing = cqRing;
        this.sqes = sqes;
        this.sqTailOff = params.get(JAVA_INT, 44) & 0xffffffffL;
        this.sqMask = sqRing.get(JAVA_INT, params.get(JAVA_INT, 48) & 0xffffffffL);
        this.cqHeadOff = params.get(JAVA_INT, 80) & 0xffffffffL;
        this.cqTailOff = params.get(JAVA_INT, 84) & 0xffffffffL;
        this.cqMask = cqRing.get(JAVA_INT, params.get(JAVA_INT, 88) & 0xffffffffL);
        this.cqesOff = params.get(JAVA_INT, 100) & 0xffffffffL;
        long arrayOff = params.get(JAVA_INT, 64) & 0xffffffffL;
        for (int i = 0; i < entries; i++) {
            sqRing.set(JAVA_INT, arrayOff + 4L * i, i); // SQE i sits at array slot i: identity, set once
        }
        this.sqTail = (int) U32.getAcquire(sqRing, sqTailOff);
        this.inflight = new IoRequest[entries];
        this.freeSlots = new int[entries];
        for (int i = 0; i < entries; i++) {
            freeSlots[i] = entries - 1 - i;
        }
        this.freeCount = entries;
        this.submitState = arena.allocate(CAPTURE_LAYOUT);
        this.finishedRequests = new IoRequest[cqEntries];
        this.finishedResults = new long[cqEntries];
        this.reaper = Thread.ofPlatform().daemon().name("qcow2j-io_uring-reaper").start(this::reap);
    }

    /**
     * A ring with room for {@code depth} requests in flight (rounded up to a power of two, at most 4096).
     * Fails with {@code ENOSYS} where the kernel has no io_uring (or seccomp hides it) and {@code EPERM}
     * where {@code kernel.io_uring_disabled} refuses it.
     */
    public static IoUring open(int depth) throws ErrnoException {
        if (depth < 1) {
            throw new IllegalArgumentException("depth must be at least 1: " + depth);
        }
        int entries = Integer.highestOneBit(Math.min(depth, MAX_ENTRIES) * 2 - 1);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(120, 8);
            MemorySegment st = a.allocate(CAPTURE_LAYOUT);
            long fd = syscall(st, SYS_IO_URING_SETUP, entries, params.address(), 0, 0, 0, 0);
            if (fd < 0) {
                throw new ErrnoException("io_uring_setup(" + entries + ")", errno(st));
            }
            int sqEntries = params.get(JAVA_INT, 0);
            int cqEntries = params.get(JAVA_INT, 4);
            MemorySegment sq = MemorySegment.NULL;
            MemorySegment cq = MemorySegment.NULL;
            try {
                long sqSize = (params.get(JAVA_INT, 64) & 0xffffffffL) + 4L * sqEntries;
                long cqSize = (params.get(JAVA_INT, 100) & 0xffffffffL) + (long) CQE_SIZE * cqEntries;
                sq = map(st, (int) fd, sqSize, OFF_SQ_RING);
                cq = map(st, (int) fd, cqSize, OFF_CQ_RING);
                MemorySegment sqes = map(st, (int) fd, (long) SQE_SIZE * sqEntries, OFF_SQES);
                return new IoUring((int) fd, sqEntries, cqEntries, params, sq, cq, sqes);
            } catch (ErrnoException | RuntimeException e) {
                unmap(sq);
                unmap(cq);
                LibC.close((int) fd);
                throw e;
            }
        }
    }

    private static MemorySegment map(MemorySegment st, int fd, long size, long offset) throws ErrnoException {
        MemorySegment addr;
        try {
            addr = (MemorySegment) MMAP.invokeExact(st, MemorySegment.NULL, size,
                    Platform.PROT_READ | Platform.PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
        } catch (Throwable t) {
            throw new IllegalStateException("mmap downcall failed", t);
        }
        if (addr.address() == -1L) {
            throw new ErrnoException("mmap(io_uring fd=" + fd + ", " + size + " bytes at 0x"
                    + Long.toHexString(offset) + ")", errno(st));
        }
        return addr.reinterpret(size);
    }

    private static void unmap(MemorySegment s) {
        if (s.address() != 0) {
            try {
                int r = (int) MUNMAP.invokeExact(s, s.byteSize());
            } catch (Throwable ignored) {
                // nothing to do: the process keeps a stray mapping
            }
        }
    }

    private static long syscall(MemorySegment st, long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
        try {
            return (long) SYSCALL.invokeExact(st, nr, a1, a2, a3, a4, a5, a6);
        } catch (Throwable t) {
            throw new IllegalStateException("syscall downcall failed", t);
        }
    }

    /** The capture layout, for {@link IoRequest}'s own errno segment. */
    static MemorySegment newCallState() {
        return Arena.ofAuto().allocate(CAPTURE_LAYOUT);
    }

    private static int errno(MemorySegment st) {
        return (int) ERRNO.get(st, 0L);
    }

    @Override
    public String name() {
        return "io_uring";
    }

    @Override
    public String description() {
        return "I/O backend: io_uring (" + entries + " entries)";
    }

    @Override
    public int depth() {
        return entries;
    }

    @Override
    public void submit(IoRequest request) throws IOException {
        request.next = null;
        request.linked = false;
        request.started();
        submitAll(request, 1, true);
    }

    @Override
    public boolean trySubmit(IoRequest request) throws IOException {
        request.next = null;
        request.linked = false;
        request.started();
        if (!submitAll(request, 1, false)) {
            request.finishUnsubmitted();
            return false;
        }
        return true;
    }

    @Override
    public void submitLinked(IoRequest... chain) throws IOException {
        if (chain.length > entries) {
            throw new IllegalArgumentException("a chain of " + chain.length + " exceeds the ring (" + entries + ")");
        }
        IoRequest.link(chain);
        submitAll(chain[0], chain.length, true);
    }

    /**
     * Puts {@code n} requests, {@code first} and its {@code next}s, in the ring and submits them; waits for
     * free slots, or ({@code !wait}) returns false at once when there are too few.
     */
    private boolean submitAll(IoRequest first, int n, boolean wait) throws IOException {
        lock.lock();
        try {
            while (freeCount < n && !closed) {
                if (!wait) {
                    return false;
                }
                slotFree.awaitUninterruptibly();
            }
            if (closed) {
                throw new IOException("I/O backend is closed");
            }
            for (IoRequest r = first; r != null; r = r.next) {
                int slot = freeSlots[--freeCount];
                inflight[slot] = r;
                writeSqe(slot, r);
            }
            U32.setRelease(sqRing, sqTailOff, sqTail);
        } finally {
            lock.unlock();
        }
        // Submitted outside the lock: buffered I/O the kernel can do at once is done inside this call, and
        // other submitters must not queue behind that copy. Each call consumes n SQEs, so every published SQE
        // is consumed by exactly one call, whoever's it is; the SQE array cannot be overwritten before the
        // kernel consumed an entry because unconsumed entries each hold an in-flight slot (at most entries).
        enter(first.callState(), n);
        reapIfFree();
        return true;
    }

    /** Fills the next SQE for {@code r} (continuing after {@code r.done} bytes). Caller holds the lock. */
    private void writeSqe(long userData, IoRequest r) {
        long base = (long) (sqTail & sqMask) * SQE_SIZE;
        for (long o = 0; o < SQE_SIZE; o += 8) {
            sqes.set(JAVA_LONG, base + o, 0L);
        }
        sqes.set(JAVA_BYTE, base, r.opcode);
        sqes.set(JAVA_BYTE, base + 1, r.linked ? SQE_IO_LINK : 0);
        sqes.set(JAVA_INT, base + 4, r.fd);
        sqes.set(JAVA_LONG, base + 8, r.offset + r.done);
        if (r.opcode == IoRequest.OP_FALLOCATE) {
            sqes.set(JAVA_LONG, base + 16, r.length); // fallocate's length travels in addr, its mode in len
            sqes.set(JAVA_INT, base + 24, r.mode);
        } else if (r.buffer != null) {
            sqes.set(JAVA_LONG, base + 16, r.buffer.address() + r.done);
            sqes.set(JAVA_INT, base + 24, (int) Math.min(r.length - r.done, 0x7ffff000L));
        }
        if (r.opcode == IoRequest.OP_FSYNC) {
            sqes.set(JAVA_INT, base + 28, r.mode);
        }
        sqes.set(JAVA_LONG, base + 32, userData);
        sqes.set(JAVA_SHORT, base + 40, (short) r.bufferIndex);
        sqTail++;
    }

    /** Publishes the SQ tail and submits {@code n} SQEs; the caller holds the lock. */
    private void enter(int n) throws ErrnoException {
        U32.setRelease(sqRing, sqTailOff, sqTail);
        enter(submitState, n);
    }

    /** Submits {@code n} published SQEs, with {@code st} for errno; retries EINTR/EAGAIN. */
    private void enter(MemorySegment st, int n) throws ErrnoException {
        int left = n;
        while (left > 0) {
            long r = syscall(st, SYS_IO_URING_ENTER, ringFd, left, 0, 0, 0, 0);
            if (r >= 0) {
                left -= (int) r;
                continue;
            }
            int e = errno(st);
            if (e != Errno.EINTR && e != Errno.EAGAIN) {
                throw new ErrnoException("io_uring_enter(submit " + left + ")", e);
            }
            Thread.onSpinWait();
        }
    }

    private void reap() {
        MemorySegment st = Arena.global().allocate(CAPTURE_LAYOUT);
        while (true) {
            if ((int) U32.getAcquire(cqRing, cqTailOff) == (int) U32.getAcquire(cqRing, cqHeadOff)) {
                long r = syscall(st, SYS_IO_URING_ENTER, ringFd, 0, 1, ENTER_GETEVENTS, 0, 0);
                if (r < 0 && errno(st) != Errno.EINTR && errno(st) != Errno.EAGAIN) {
                    // Nothing sensible remains: the ring is broken. Fail everything in flight.
                    failAll(-errno(st));
                    return;
                }
                continue;
            }
            reapLock.lock();
            try {
                if (drain(true)) {
                    return;
                }
            } finally {
                reapLock.unlock();
            }
        }
    }

    /**
     * A submitter's chance to reap: buffered I/O the kernel did inside the submitting call has its CQE
     * already, and completing it here saves the reaper's wake-up and the park/unpark. Never waits: if the
     * reaper (or another submitter) is draining, it will see these CQEs.
     */
    private void reapIfFree() {
        if (!reapLock.isHeldByCurrentThread() && reapLock.tryLock()) {
            try {
                drain(false);
            } finally {
                reapLock.unlock();
            }
        }
    }

    /**
     * Consumes the CQEs there are: continues short transfers, frees the slots of the finished requests
     * (under {@link #lock}), publishes the CQ head, then completes them. Only the reaper consumes the
     * shutdown NOP (a submitter stops before it, so the reaper, waiting for a CQE, sees it). Returns whether
     * it did. Caller holds {@link #reapLock}.
     */
    private boolean drain(boolean reaper) {
        int head = (int) U32.getAcquire(cqRing, cqHeadOff);
        int tail = (int) U32.getAcquire(cqRing, cqTailOff);
        boolean stopping = false;
        int finished = 0;
        lock.lock();
        try {
            for (; head != tail; head++) {
                long cqe = cqesOff + (long) (head & cqMask) * CQE_SIZE;
                long userData = cqRing.get(JAVA_LONG, cqe);
                long res = cqRing.get(JAVA_INT, cqe + 8);
                if (userData == SHUTDOWN) {
                    if (!reaper) {
                        break;
                    }
                    stopping = true;
                    continue;
                }
                int slot = (int) userData;
                IoRequest r = inflight[slot];
                if (res >= 0 && r.continueAfter(res)) {
                    writeSqe(slot, r); // a short transfer goes on from where it stopped
                    enterUnderLock();
                    continue;
                }
                if (res == 0 && r.buffer != null && (r.opcode == IoRequest.OP_WRITE
                        || r.opcode == IoRequest.OP_WRITE_FIXED) && r.done < r.length) {
                    res = -Errno.EIO; // a regular file never writes nothing; refuse to spin
                } else if (res >= 0 && r.buffer != null) {
                    res = r.done;
                }
                inflight[slot] = null;
                freeSlots[freeCount++] = slot;
                finishedRequests[finished] = r;
                finishedResults[finished++] = res;
            }
            U32.setRelease(cqRing, cqHeadOff, head);
            if (finished > 0) {
                slotFree.signalAll();
            }
        } finally {
            lock.unlock();
        }
        for (int i = 0; i < finished; i++) {
            IoRequest r = finishedRequests[i];
            finishedRequests[i] = null;
            r.next = null;
            r.finish(finishedResults[i]);
        }
        return stopping;
    }

    private void enterUnderLock() {
        try {
            enter(1);
        } catch (ErrnoException e) {
            throw new IllegalStateException("io_uring_enter failed while continuing a short transfer", e);
        }
    }

    private void failAll(long res) {
        lock.lock();
        try {
            closed = true;
            for (int i = 0; i < inflight.length; i++) {
                IoRequest r = inflight[i];
                if (r != null) {
                    inflight[i] = null;
                    r.finish(res);
                }
            }
            slotFree.signalAll();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void registerBuffers(MemorySegment... buffers) throws IOException {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment st = a.allocate(CAPTURE_LAYOUT);
            syscall(st, SYS_IO_URING_REGISTER, ringFd, UNREGISTER_BUFFERS, 0, 0, 0, 0); // ENXIO if none: fine
            if (buffers.length == 0) {
                return;
            }
            MemorySegment iov = a.allocate(16L * buffers.length, 8);
            for (int i = 0; i < buffers.length; i++) {
                if (!buffers[i].isNative()) {
                    throw new IllegalArgumentException("registered buffers must be native segments");
                }
                iov.set(JAVA_LONG, 16L * i, buffers[i].address());
                iov.set(JAVA_LONG, 16L * i + 8, buffers[i].byteSize());
            }
            long r = syscall(st, SYS_IO_URING_REGISTER, ringFd, REGISTER_BUFFERS, iov.address(), buffers.length,
                    0, 0);
            if (r < 0) {
                throw new ErrnoException("io_uring_register(REGISTER_BUFFERS, " + buffers.length + ")", errno(st));
            }
        }
    }

    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            while (freeCount < entries) {
                slotFree.awaitUninterruptibly(); // the requests in flight complete first
            }
            closed = true;
            slotFree.signalAll();
            long base = (long) (sqTail & sqMask) * SQE_SIZE;
            for (long o = 0; o < SQE_SIZE; o += 8) {
                sqes.set(JAVA_LONG, base + o, 0L);
            }
            sqes.set(JAVA_LONG, base + 32, SHUTDOWN); // a NOP whose completion stops the reaper
            sqTail++;
            enter(1);
        } catch (ErrnoException e) {
            reaper.interrupt();
        } finally {
            lock.unlock();
        }
        try {
            reaper.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        unmap(sqes);
        unmap(sqRing);
        unmap(cqRing);
        try {
            LibC.close(ringFd);
        } catch (ErrnoException ignored) {
            // the ring is gone either way
        }
        arena.close();
    }
}
