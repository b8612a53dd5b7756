package io.qcow2j.ffm;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.locks.LockSupport;

/**
 * One asynchronous file operation, owned and reused by its caller: prepare it ({@link #read}, {@link #write},
 * {@link #readFixed}, {@link #writeFixed}, {@link #dataSync}, {@link #fallocate}), hand it to an
 * {@link AsyncIo}, then {@link #await} it (the waiting thread parks: a virtual thread frees its carrier) or
 * let its {@link Completion} run. Nothing is allocated per request on the submission or completion path.
 *
 * <p>Reads and writes move every byte: a short transfer is continued from where it stopped by the backend,
 * and only a read that reaches end of file ends short. The result is the number of bytes moved (0 for
 * fsync and fallocate); a failure is the negative errno, thrown by {@link #await} as an
 * {@link ErrnoException} naming the operation.
 *
 * <p>A request must not be prepared again or resubmitted before it has completed.
 */
public final class IoRequest {
    /** Runs on the backend's completion thread: keep it short and never block in it. */
    @FunctionalInterface
    public interface Completion {
        void completed(IoRequest request);
    }

    static final byte OP_NOP = 0;
    static final byte OP_FSYNC = 3;
    static final byte OP_READ_FIXED = 4;
    static final byte OP_WRITE_FIXED = 5;
    static final byte OP_FALLOCATE = 17;
    static final byte OP_READ = 22;
    static final byte OP_WRITE = 23;
    static final int FSYNC_DATASYNC = 1;

    // The operation, as prepared. Guarded by the ownership rule above: written by the owner before submit,
    // read by the backend after (the submit's lock or queue gives the happens-before).
    byte opcode;
    int fd;
    long offset;
    MemorySegment buffer;
    long length;
    int mode;
    int bufferIndex;
    Completion completion;

    /** Bytes moved so far (short transfers are continued from here). */
    long done;
    /** The next request of a linked chain, or null; set by {@link AsyncIo#submitLinked}. */
    IoRequest next;
    /** Whether this request is linked to the next (IOSQE_IO_LINK). */
    boolean linked;

    /** Errno capture for the submitting call, allocated once per request object (not per request). */
    private MemorySegment callState;

    /** The thread parked in {@link #await}; volatile for the handshake with {@link #finish}. */
    private volatile Thread waiter;
    /** Bytes moved, or -errno; valid once {@link #finished} is true. */
    private long result;
    /** Written last by the completing thread (release), read first by the waiter (acquire). */
    private volatile boolean finished = true;

    /** Reads {@code dst.byteSize()} bytes at {@code offset} of {@code fd} (fewer only at end of file). */
    public IoRequest read(int fd, long offset, MemorySegment dst) {
        return prepare(OP_READ, fd, offset, dst, dst.byteSize(), 0, 0);
    }

    /** Writes all of {@code src} at {@code offset} of {@code fd}. */
    public IoRequest write(int fd, long offset, MemorySegment src) {
        return prepare(OP_WRITE, fd, offset, src, src.byteSize(), 0, 0);
    }

    /** As {@link #read}, into a slice of the buffer registered at {@code index} (READ_FIXED). */
    public IoRequest readFixed(int fd, long offset, MemorySegment dst, int index) {
        return prepare(OP_READ_FIXED, fd, offset, dst, dst.byteSize(), 0, index);
    }

    /** As {@link #write}, from a slice of the buffer registered at {@code index} (WRITE_FIXED). */
    public IoRequest writeFixed(int fd, long offset, MemorySegment src, int index) {
        return prepare(OP_WRITE_FIXED, fd, offset, src, src.byteSize(), 0, index);
    }

    /** {@code fdatasync(fd)}: every write that completed before this request was submitted is durable. */
    public IoRequest dataSync(int fd) {
        return prepare(OP_FSYNC, fd, 0, null, 0, FSYNC_DATASYNC, 0);
    }

    /** {@code fallocate(fd, mode, offset, length)}. */
    public IoRequest fallocate(int fd, int mode, long offset, long length) {
        return prepare(OP_FALLOCATE, fd, offset, null, length, mode, 0);
    }

    /** Does nothing (a completion to wait for; used to wake the reaper). */
    IoRequest nop() {
        return prepare(OP_NOP, -1, 0, null, 0, 0, 0);
    }

    private IoRequest prepare(byte op, int fd, long offset, MemorySegment buf, long length, int mode, int index) {
        if (!finished) {
            throw new IllegalStateException("request prepared again while in flight: " + this);
        }
        if (buf != null && !buf.isNative()) {
            // The kernel works on the address after the call returns: a heap array may move meanwhile.
            throw new IllegalArgumentException("asynchronous I/O needs a native segment, not a heap one");
        }
        if (buf != null && buf.isReadOnly() && (op == OP_READ || op == OP_READ_FIXED)) {
            throw new IllegalArgumentException("read into a read-only segment");
        }
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("negative offset or length: " + offset + ", " + length);
        }
        this.opcode = op;
        this.fd = fd;
        this.offset = offset;
        this.buffer = buf;
        this.length = length;
        this.mode = mode;
        this.bufferIndex = index;
        this.completion = null;
        return this;
    }

    /** Runs {@code c} on completion instead of (or as well as) a thread waiting in {@link #await}. */
    public IoRequest onCompletion(Completion c) {
        this.completion = c;
        return this;
    }

    MemorySegment callState() {
        MemorySegment st = callState;
        if (st == null) {
            st = IoUring.newCallState();
            callState = st;
        }
        return st;
    }

    /** Links each request of {@code chain} to the next and hands them all over ({@link #started}). */
    static void link(IoRequest[] chain) {
        if (chain.length == 0) {
            throw new IllegalArgumentException("an empty chain");
        }
        for (int i = 0; i < chain.length; i++) {
            chain[i].linked = i + 1 < chain.length;
            chain[i].next = chain[i].linked ? chain[i + 1] : null;
            chain[i].started();
        }
    }

    /** Called by the backend as the request is handed over. */
    void started() {
        if (!finished) {
            throw new IllegalStateException("request submitted while in flight: " + this);
        }
        done = 0;
        result = 0;
        waiter = null;
        finished = false;
    }

    /** Undoes {@link #started} for a request the backend did not take after all (no completion runs). */
    void finishUnsubmitted() {
        finished = true;
    }

    /** Called by the backend once, with bytes moved or -errno. */
    void finish(long res) {
        result = res;
        Completion c = completion; // read before finished: the owner may prepare the request again after it
        finished = true;
        // Read after finished (both volatile): either the waiter saw finished, or this sees the waiter.
        // Reading it first lost wake-ups: a waiter that registered between the read and finished parked forever.
        Thread w = waiter;
        if (w != null) {
            LockSupport.unpark(w);
        }
        if (c != null) {
            c.completed(this);
        }
    }

    /** Whether the request has completed (or was never submitted). */
    public boolean isDone() {
        return finished;
    }

    /** Bytes moved, or a negative errno; meaningful once {@link #isDone}. */
    public long result() {
        return result;
    }

    /**
     * Parks until the request completes; returns the bytes moved (0 for fsync and fallocate). A virtual
     * thread unmounts while it waits.
     */
    public long await() throws ErrnoException {
        if (!finished) {
            waiter = Thread.currentThread();
            while (!finished) {
                LockSupport.park(this);
            }
            waiter = null;
        }
        return check();
    }

    /** The result, or the failure as an {@link ErrnoException}; for completion callbacks. */
    public long check() throws ErrnoException {
        if (result < 0) {
            throw new ErrnoException(describe(), (int) -result);
        }
        return result;
    }

    /** The operation as a call, e.g. {@code io_uring READ(fd=7, 4096 bytes at 1048576)}. */
    public String describe() {
        return switch (opcode) {
            case OP_READ, OP_READ_FIXED -> (opcode == OP_READ ? "read" : "read_fixed") + "(fd=" + fd + ", "
                    + length + " bytes at " + offset + ")";
            case OP_WRITE, OP_WRITE_FIXED -> (opcode == OP_WRITE ? "write" : "write_fixed") + "(fd=" + fd + ", "
                    + length + " bytes at " + offset + ")";
            case OP_FSYNC -> "fdatasync(fd=" + fd + ")";
            case OP_FALLOCATE -> "fallocate(fd=" + fd + ", mode=0x" + Integer.toHexString(mode) + ", " + offset
                    + ", " + length + ")";
            default -> "nop";
        };
    }

    @Override
    public String toString() {
        return describe();
    }

    /** Whether a transfer that moved {@code n} more bytes is to be continued (short read or write). */
    boolean continueAfter(long n) {
        if (opcode != OP_READ && opcode != OP_WRITE && opcode != OP_READ_FIXED && opcode != OP_WRITE_FIXED) {
            return false;
        }
        done += n;
        return n > 0 && done < length;
    }
}
