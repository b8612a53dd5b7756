package io.qcow2j.ffm;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;

/**
 * Reads of one {@link AsyncFile} that no thread waits for: the caller adds the parts of one request to a
 * {@link Group} (one part per run of contiguous file bytes), submits them to the file's backend, and gets a
 * {@link CompletableFuture} that the backend's completion of the last part completes. This is the fast path
 * of the engine's {@code readAsync}: no virtual thread, no park and unpark, nothing allocated per request but
 * the future.
 *
 * <p>Groups come from a fixed pool ({@link #begin} returns null when all are in flight: the caller then takes
 * its general path). Each group owns its {@link IoRequest}s and one completion callback, created once. A part
 * that reaches end of file reads the rest as zeros (as {@code pread} past the end does for the engine); a part
 * that fails completes the future exceptionally with an {@link ErrnoException} naming the file and the call.
 *
 * <p>A file in memory ({@link AsyncFile#isInMemory}: tmpfs) is the exception: its parts are copied by
 * {@code pread} in {@link Group#submit}, on the caller's thread, because the kernel would only hand them to a
 * worker thread of its own (a read of memory never waits for a device, so nothing is lost by not queueing it).
 *
 * <p>Threads: {@link Group#add} and {@link Group#submit} run on the caller's thread; the future completes on
 * whichever thread completes the last part: the backend's completion thread (io_uring's reaper, a fallback
 * worker), or the submitting thread itself when the kernel finished the read inside the submit (or the file
 * is in memory). Actions
 * attached to the future with the non-{@code Async} methods run there, so they must not block.
 *
 * @param <A> what the caller keeps per group (e.g. a reusable mapping record), created once per group
 */
public final class AsyncReads<A> {
    private final AsyncFile file;
    private final ArrayBlockingQueue<Group<A>> free;
    private final Runnable release;

    /**
     * {@code groups} groups of at most {@code maxParts} parts each. {@code release} runs once per submitted
     * group after its last part completed and before its future completes (the engine gives back the request
     * lock there, so that an action on the future may close the disk).
     */
    public AsyncReads(AsyncFile file, int groups, int maxParts, Supplier<A> attachments, Runnable release) {
        if (groups < 1 || maxParts < 1) {
            throw new IllegalArgumentException("groups and parts must be positive: " + groups + ", " + maxParts);
        }
        this.file = file;
        this.release = release;
        this.free = new ArrayBlockingQueue<>(groups);
        for (int i = 0; i < groups; i++) {
            free.add(new Group<>(this, maxParts, attachments.get()));
        }
    }

    /** A free group, or null when every group is in flight. */
    public Group<A> begin() {
        return free.poll();
    }

    /** One request's reads; owned by the caller from {@link #begin} to {@link #submit} or {@link #abandon}. */
    public static final class Group<A> {
        private static final VarHandle PENDING;
        private static final VarHandle FAILURE;

        static {
            try {
                MethodHandles.Lookup l = MethodHandles.lookup();
                PENDING = l.findVarHandle(Group.class, "pending", int.class);
                FAILURE = l.findVarHandle(Group.class, "failure", Throwable.class);
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        private final AsyncReads<A> owner;
        private final IoRequest[] parts;
        private final A attachment;
        private final IoRequest.Completion onPart = this::partDone;
        // Written by the owning caller before the submit (whose lock or queue publishes them to the backend),
        // read by the thread that completes the last part (after the volatile countdown), reset by it.
        private int count;
        private CompletableFuture<Void> future;
        /** Parts not yet completed, plus one held by the submitter until every part is submitted. */
        @SuppressWarnings("unused") // through PENDING
        private volatile int pending;
        /** The first failure of a part, or null. */
        @SuppressWarnings("unused") // through FAILURE
        private volatile Throwable failure;

        private Group(AsyncReads<A> owner, int maxParts, A attachment) {
            this.owner = owner;
            this.parts = new IoRequest[maxParts];
            for (int i = 0; i < maxParts; i++) {
                parts[i] = new IoRequest();
            }
            this.attachment = attachment;
        }

        /** What the caller keeps with this group. */
        public A attachment() {
            return attachment;
        }

        /**
         * Adds a read of {@code dst.byteSize()} bytes at file offset {@code offset}. Returns false, adding
         * nothing, when the group is full or the backend cannot take this read ({@link AsyncFile#canQueue}:
         * a heap or read-only segment, direct I/O that would need the bounce buffer, a closed file).
         */
        public boolean add(long offset, MemorySegment dst) {
            if (count == parts.length || dst.byteSize() == 0 || !owner.file.canQueue(offset, dst)) {
                return false;
            }
            parts[count++].read(owner.file.file().fd(), offset, dst).onCompletion(onPart);
            return true;
        }

        /** Gives the group back unsubmitted (the caller takes its general path). */
        public void abandon() {
            reset();
            owner.free.offer(this);
        }

        /**
         * Submits the parts added; the future completes once all have (at once, on this thread, when there are
         * none). The group goes back to the pool before the future completes: do not touch it after this call.
         */
        public CompletableFuture<Void> submit() {
            CompletableFuture<Void> f = new CompletableFuture<>();
            future = f;
            int n = count;
            PENDING.setVolatile(this, n + 1);
            AsyncIo io = owner.file.io();
            boolean now = owner.file.isInMemory();
            for (int i = 0; i < n; i++) {
                IoRequest r = parts[i];
                if (now) {
                    copyNow(r);
                    continue;
                }
                try {
                    if (!io.trySubmit(r)) {
                        copyNow(r); // the backend is full: never wait for it here (this may be its own thread)
                    }
                } catch (IOException | RuntimeException e) {
                    fail(e); // a closed backend: this part will never complete, so count it here
                    countDown();
                }
            }
            countDown(); // the submitter's own count: the future cannot complete before every part went out
            return f;
        }

        /**
         * The read done here, by {@code pread}: for a file in memory ({@link AsyncFile#isInMemory}) rather than
         * by a kernel worker thread, and when the backend has no room (rare: waiting would block the caller,
         * which may be the backend's completion thread).
         */
        private void copyNow(IoRequest r) {
            try {
                long res = LibC.pread(r.fd, r.buffer, r.offset);
                if (res < r.length) {
                    r.buffer.asSlice(res).fill((byte) 0); // past the end of the file reads as zeros
                }
            } catch (ErrnoException e) {
                fail(new ErrnoException(owner.file.path() + ": " + e.call(), e.errno()));
            }
            countDown();
        }

        private void partDone(IoRequest r) {
            long res = r.result();
            if (res < 0) {
                fail(new ErrnoException(owner.file.path() + ": " + r.describe(), (int) -res));
            } else if (res < r.length) {
                r.buffer.asSlice(res).fill((byte) 0); // past the end of the file reads as zeros
            }
            countDown();
        }

        private void fail(Throwable t) {
            FAILURE.compareAndSet(this, null, t);
        }

        private void countDown() {
            if ((int) PENDING.getAndAdd(this, -1) != 1) {
                return;
            }
            CompletableFuture<Void> f = future;
            Throwable t = (Throwable) FAILURE.getAndSet(this, null);
            reset();
            owner.release.run();
            owner.free.offer(this);
            if (t == null) {
                f.complete(null);
            } else {
                f.completeExceptionally(t);
            }
        }

        private void reset() {
            for (int i = 0; i < count; i++) {
                parts[i].buffer = null; // keep no reference to the caller's memory while pooled
            }
            count = 0;
            future = null;
        }
    }
}
