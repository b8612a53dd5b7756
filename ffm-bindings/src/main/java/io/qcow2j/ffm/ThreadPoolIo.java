package io.qcow2j.ffm;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The fallback {@link AsyncIo}: a small fixed pool of platform threads running the blocking libc calls.
 * Chosen where io_uring is unavailable. Submitters park on a bounded queue (no allocation per request: an
 * {@link ArrayBlockingQueue} has no nodes); a linked chain runs on one worker, in order.
 *
 * <p>Concurrency is the pool size, not {@link #depth()}: a device that would do better with more requests in
 * flight does not get them here. That is the price of the fallback.
 */
public final class ThreadPoolIo implements AsyncIo {
    private static final int MAX_THREADS = 4;

    private final int depth;
    private final String reason;
    private final ArrayBlockingQueue<IoRequest> queue;
    private final Thread[] workers;
    private volatile boolean closed;
    private volatile MemorySegment[] registered = new MemorySegment[0];

    ThreadPoolIo(int depth, String reason) {
        if (depth < 1) {
            throw new IllegalArgumentException("depth must be at least 1: " + depth);
        }
        this.depth = depth;
        this.reason = reason;
        this.queue = new ArrayBlockingQueue<>(depth);
        this.workers = new Thread[Math.min(MAX_THREADS, depth)];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = Thread.ofPlatform().daemon().name("qcow2j-aio-" + i).start(this::work);
        }
    }

    @Override
    public String name() {
        return "threads";
    }

    @Override
    public String description() {
        return "I/O backend: threads (" + workers.length + " platform threads; " + reason + ")";
    }

    @Override
    public int depth() {
        return depth;
    }

    @Override
    public void submit(IoRequest request) throws IOException {
        request.next = null;
        request.linked = false;
        enqueue(request);
    }

    @Override
    public boolean trySubmit(IoRequest request) throws IOException {
        if (closed) {
            throw new IOException("I/O backend is closed");
        }
        request.next = null;
        request.linked = false;
        request.started();
        if (!queue.offer(request)) {
            request.finishUnsubmitted();
            return false;
        }
        return true;
    }

    @Override
    public void submitLinked(IoRequest... chain) throws IOException {
        IoRequest.link(chain);
        putHead(chain[0]);
    }

    private void enqueue(IoRequest request) throws IOException {
        request.started();
        putHead(request);
    }

    private void putHead(IoRequest head) throws IOException {
        if (closed) {
            throw new IOException("I/O backend is closed");
        }
        try {
            queue.put(head);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while submitting " + head, e);
        }
    }

    @Override
    public void registerBuffers(MemorySegment... buffers) {
        registered = buffers.clone();
    }

    private void work() {
        while (true) {
            IoRequest r;
            try {
                r = queue.poll(100, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                return;
            }
            if (r == null) {
                if (closed) {
                    return;
                }
                continue;
            }
            boolean cancel = false;
            while (r != null) {
                IoRequest next = r.next;
                r.next = null;
                long res = cancel ? -125 /* ECANCELED */ : run(r);
                cancel = cancel || res < 0 || (isTransfer(r) && res < r.length);
                r.finish(res);
                r = next;
            }
        }
    }

    private static boolean isTransfer(IoRequest r) {
        return r.buffer != null;
    }

    /**
     * The buffer as the kernel sees it: an address and a length, usable from this worker whatever arena (a
     * confined one included) owns it; the owner keeps it alive until completion, as io_uring requires too.
     */
    @SuppressWarnings("restricted")
    private static MemorySegment kernelView(IoRequest r) {
        return MemorySegment.ofAddress(r.buffer.address()).reinterpret(r.length);
    }

    /** The blocking call for one request: bytes moved or -errno. */
    private long run(IoRequest r) {
        try {
            switch (r.opcode) {
                case IoRequest.OP_READ, IoRequest.OP_READ_FIXED -> {
                    checkFixed(r);
                    return LibC.pread(r.fd, kernelView(r), r.offset);
                }
                case IoRequest.OP_WRITE, IoRequest.OP_WRITE_FIXED -> {
                    checkFixed(r);
                    LibC.pwrite(r.fd, kernelView(r), r.offset);
                    return r.length;
                }
                case IoRequest.OP_FSYNC -> {
                    LibC.fdatasync(r.fd);
                    return 0;
                }
                case IoRequest.OP_FALLOCATE -> {
                    LibC.fallocate(r.fd, r.mode, r.offset, r.length);
                    return 0;
                }
                default -> {
                    return 0;
                }
            }
        } catch (ErrnoException e) {
            return -e.errno();
        } catch (RuntimeException e) {
            return -Errno.EINVAL;
        }
    }

    /** Fixed transfers must lie inside their registered buffer, as the kernel checks (EFAULT). */
    private void checkFixed(IoRequest r) throws ErrnoException {
        if (r.opcode != IoRequest.OP_READ_FIXED && r.opcode != IoRequest.OP_WRITE_FIXED) {
            return;
        }
        MemorySegment[] regs = registered;
        if (r.bufferIndex < 0 || r.bufferIndex >= regs.length) {
            throw new ErrnoException(r.describe(), Errno.EFAULT);
        }
        MemorySegment b = regs[r.bufferIndex];
        long start = r.buffer.address();
        if (start < b.address() || start + r.length > b.address() + b.byteSize()) {
            throw new ErrnoException(r.describe(), Errno.EFAULT);
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
