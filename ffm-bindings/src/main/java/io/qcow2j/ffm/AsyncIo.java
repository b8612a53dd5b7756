package io.qcow2j.ffm;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Locale;

/**
 * Asynchronous file I/O: {@link IoRequest}s go in, complete later, on the backend's completion thread.
 * Two backends: {@link IoUring} (Linux io_uring, the default) and {@link ThreadPoolIo} (a small bounded pool
 * of platform threads running the blocking libc calls), chosen by {@link #open}.
 *
 * <p>Either way a thread that submits a request and waits for it parks in Java (never in a blocking
 * downcall), so virtual threads doing file I/O through this interface do not hold their carriers.
 *
 * <p>Ordering: requests complete in the order the device finishes them, not in submission order. A request
 * submitted after another completed sees its effect; {@link #submitLinked} runs a chain in order and cancels
 * ({@code ECANCELED}) the rest of a chain after a failure, as io_uring's {@code IOSQE_IO_LINK} does.
 */
public sealed interface AsyncIo extends AutoCloseable permits IoUring, ThreadPoolIo {

    /** The system property that forces a backend: {@code io_uring}, {@code threads} or {@code auto}. */
    String BACKEND_PROPERTY = "qcow2j.aio";

    /** The backend's name as qemu-img's {@code -i} spells it: {@code io_uring} or {@code threads}. */
    String name();

    /** One line: the backend in use and, for the fallback, why io_uring is not. */
    String description();

    /** Requests that may be in flight at once; {@link #submit} waits (parks) while that many are. */
    int depth();

    /** Hands {@code request} to the backend. Fails only for a closed backend. */
    void submit(IoRequest request) throws IOException;

    /**
     * Hands {@code request} to the backend if it has room at once, else returns false having done nothing:
     * for submitters that must never wait, such as a completion callback on the backend's own completion
     * thread (waiting there for a slot that only that thread can free would never end).
     */
    boolean trySubmit(IoRequest request) throws IOException;

    /** Submits {@code chain} so that each request starts after the one before it completed successfully. */
    void submitLinked(IoRequest... chain) throws IOException;

    /**
     * Registers buffers for {@link IoRequest#readFixed}/{@link IoRequest#writeFixed} (index = position);
     * replaces any registered before. The segments must stay alive until {@link #close}.
     */
    void registerBuffers(MemorySegment... buffers) throws IOException;

    /** Waits for the requests in flight, then releases the backend. */
    @Override
    void close();

    /**
     * The process-wide backend that files opened by the engine share, opened on first use with the depth of
     * the {@code qcow2j.aio.depth} system property (256 when unset); its reaper is a daemon, so it need not be
     * closed, but see {@link #closeShared}.
     */
    static AsyncIo shared() {
        return SharedIo.get();
    }

    /**
     * Closes the shared backend if it was opened (waiting for its requests in flight); a later
     * {@link #shared} opens a new one. For a command-line tool's last step before it exits: the io_uring
     * reaper waits for completions inside a native call, and a JVM exiting while a thread is in a native
     * call waits for it to return, for up to 300 ms (HotSpot's VM_Exit), which was a third of a one-shot
     * {@code qcow2j convert}'s run time.
     */
    static void closeShared() {
        SharedIo.closeIfOpen();
    }

    /**
     * The backend the {@value #BACKEND_PROPERTY} system property asks for ({@code auto} when unset): io_uring
     * where the kernel gives it, else the thread pool.
     */
    static AsyncIo open(int depth) {
        return open(System.getProperty(BACKEND_PROPERTY, "auto"), depth);
    }

    /**
     * The named backend: {@code io_uring} (fails if the kernel refuses it), {@code threads}, or {@code auto}
     * (io_uring, falling back to threads when it is unavailable: ENOSYS on old kernels or under seccomp,
     * EPERM when {@code kernel.io_uring_disabled} forbids it).
     */
    static AsyncIo open(String backend, int depth) {
        switch (backend.toLowerCase(Locale.ROOT)) {
            case "threads":
                return new ThreadPoolIo(depth, "forced by " + BACKEND_PROPERTY + "=threads");
            case "io_uring":
                try {
                    return IoUring.open(depth);
                } catch (ErrnoException e) {
                    throw new UnsupportedOperationException("io_uring is not available: " + e.getMessage(), e);
                }
            case "auto":
                try {
                    return IoUring.open(depth);
                } catch (ErrnoException | UnsupportedOperationException e) {
                    return new ThreadPoolIo(depth, "io_uring unavailable: " + e.getMessage());
                }
            default:
                throw new IllegalArgumentException("unknown I/O backend '" + backend
                        + "' (expected io_uring, threads or auto)");
        }
    }
}
