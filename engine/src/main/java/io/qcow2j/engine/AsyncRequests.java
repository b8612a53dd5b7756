package io.qcow2j.engine;

import java.util.concurrent.CompletableFuture;

/**
 * How {@link Disk}'s asynchronous methods run a request: the blocking method, on a virtual thread of its own.
 *
 * <p>This is the role QEMU gives coroutines: a request is straight-line code (look up the mapping, allocate,
 * write the data, update L2) that waits at each I/O. Its waits park the virtual thread (the engine's files
 * complete virtual threads' I/O through io_uring, see {@link io.qcow2j.ffm.AsyncFile}), so thousands can be in
 * flight on two carriers, and every ordering rule the blocking code keeps holds for asynchronous requests
 * unchanged. The future completes when the blocking call returns, on the request's virtual thread.
 */
final class AsyncRequests {
    /** A blocking request body. */
    @FunctionalInterface
    interface Body {
        void run() throws Exception;
    }

    private static final Thread.Builder VIRTUAL = Thread.ofVirtual().name("qcow2j-request");

    private AsyncRequests() {}

    /** Starts {@code body} on a new virtual thread; the future carries its failure, if any. */
    static CompletableFuture<Void> start(Body body) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        VIRTUAL.start(() -> {
            try {
                body.run();
                done.complete(null);
            } catch (Throwable t) {
                done.completeExceptionally(t);
            }
        });
        return done;
    }
}
