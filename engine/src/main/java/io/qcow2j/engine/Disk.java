package io.qcow2j.engine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * A guest disk: what a hypervisor's block device model, an NBD export or a copy tool holds. Implemented by
 * qcow2 images ({@link Qcow2Disk}) and raw files alike, each possibly the backing file of another; open one
 * with {@link Images#open}.
 *
 * <p>Offsets and lengths are guest bytes; a request must lie inside {@link #size()} (else
 * {@link IllegalArgumentException}). Buffers are {@link MemorySegment}s: native memory (guest RAM mapped by
 * the hypervisor, an arena) is used as it is, heap segments work too. The scatter-gather forms
 * ({@link #readv}, {@link #writev}) take the buffers of one request in order, so a virtio device model can
 * pass a descriptor chain's guest memory without copying it.
 *
 * <p>Thread-safe: any number of threads may issue requests at once, including virtual threads. A request that
 * returned is visible to every later read; it is durable once a {@link #flush()} that started after it
 * returned has returned (QEMU's rule). Errors are {@link IOException}s with a one-line message naming the
 * file; corrupt or unsupported metadata is a {@link io.qcow2j.engine.format.Qcow2FormatException}.
 *
 * <p>Asynchronous requests ({@link #readAsync}, {@link #writeAsync}, {@link #writeZeroesAsync},
 * {@link #discardAsync}, {@link #flushAsync}) return at once with a {@link CompletableFuture} that completes
 * when the request has, in the order the requests finish (not the order they were submitted); a failure
 * completes it exceptionally with the exception the blocking method would throw. The rules are QEMU's: a
 * write is visible to every request submitted after its future completed; a flush makes durable every write
 * whose future completed before the flush was submitted (not those still in flight); overlapping requests in
 * flight together complete in some order, with the bytes of one or the other. Buffers must stay alive and
 * unchanged until the future completes, and be accessible from any thread (a shared, global or auto arena,
 * not a confined one). Each runs the blocking method on a virtual thread, whose file I/O
 * parks instead of holding a carrier: see docs/ARCHITECTURE.md, "Asynchronous requests". Reads whose
 * mapping the disk has at hand skip the virtual thread: their file reads are queued from the calling
 * thread and the future completes on the engine's I/O completion thread (or on the calling thread, when the
 * bytes were at hand at once). Actions attached with the non-{@code Async} methods of
 * {@link CompletableFuture} then run on that thread and must not block (use the {@code …Async} forms, or
 * hand the work to a thread of your own).
 *
 * <p>Owns its file (and its backing chain): {@link #close()} flushes a writable disk and releases everything.
 */
public interface Disk extends AutoCloseable {

    /** The virtual (guest-visible) size in bytes. */
    long size();

    /** Whether the disk was opened without write access; then every write request fails. */
    boolean isReadOnly();

    /** Fills {@code dst} with the guest bytes at {@code offset}. */
    void read(long offset, MemorySegment dst) throws IOException;

    /** Fills {@code buffers}, one after the other, with the guest bytes from {@code offset} on. */
    default void readv(long offset, MemorySegment... buffers) throws IOException {
        long pos = offset;
        for (MemorySegment b : buffers) {
            read(pos, b);
            pos += b.byteSize();
        }
    }

    /** Writes {@code src} at guest offset {@code offset}. */
    void write(long offset, MemorySegment src) throws IOException;

    /** Writes {@code buffers}, one after the other, from guest offset {@code offset} on. */
    default void writev(long offset, MemorySegment... buffers) throws IOException {
        long pos = offset;
        for (MemorySegment b : buffers) {
            write(pos, b);
            pos += b.byteSize();
        }
    }

    /**
     * Makes {@code [offset, offset + length)} read as zeros (QEMU's write zeroes). Without
     * {@link ZeroFlag#MAY_UNMAP} the range stays allocated; with {@link ZeroFlag#NO_FALLBACK} the request fails
     * with {@link FastZeroUnsupportedException}, changing nothing, if it cannot be done without writing
     * buffers of zeros.
     */
    void writeZeroes(long offset, long length, Set<ZeroFlag> flags) throws IOException;

    /** {@link #writeZeroes(long, long, Set)} without flags: the range reads as zeros and stays allocated. */
    default void writeZeroes(long offset, long length) throws IOException {
        writeZeroes(offset, length, Set.of());
    }

    /**
     * Tells the disk the guest no longer needs {@code [offset, offset + length)} (TRIM): space may be freed and
     * the range reads as zeros where it was freed, as QEMU's discard does (whole clusters only, for qcow2).
     * Advisory: a disk may keep the bytes.
     */
    void discard(long offset, long length) throws IOException;

    /** Makes every request that returned before this call durable. A no-op on a read-only disk. */
    void flush() throws IOException;

    /** Starts {@link #read(long, MemorySegment)}; completes when {@code dst} holds the guest bytes. */
    default CompletableFuture<Void> readAsync(long offset, MemorySegment dst) {
        return AsyncRequests.start(() -> read(offset, dst));
    }

    /** Starts {@link #readv(long, MemorySegment...)}. */
    default CompletableFuture<Void> readvAsync(long offset, MemorySegment... buffers) {
        return AsyncRequests.start(() -> readv(offset, buffers));
    }

    /** Starts {@link #write(long, MemorySegment)}; completes when the write would have returned. */
    default CompletableFuture<Void> writeAsync(long offset, MemorySegment src) {
        return AsyncRequests.start(() -> write(offset, src));
    }

    /** Starts {@link #writev(long, MemorySegment...)}. */
    default CompletableFuture<Void> writevAsync(long offset, MemorySegment... buffers) {
        return AsyncRequests.start(() -> writev(offset, buffers));
    }

    /** Starts {@link #writeZeroes(long, long, Set)}. */
    default CompletableFuture<Void> writeZeroesAsync(long offset, long length, Set<ZeroFlag> flags) {
        return AsyncRequests.start(() -> writeZeroes(offset, length, flags));
    }

    /** Starts {@link #discard(long, long)}. */
    default CompletableFuture<Void> discardAsync(long offset, long length) {
        return AsyncRequests.start(() -> discard(offset, length));
    }

    /** Starts {@link #flush()}: covers every write whose future completed before this call. */
    default CompletableFuture<Void> flushAsync() {
        return AsyncRequests.start(this::flush);
    }

    /**
     * What this disk's own metadata says of {@code offset}: one extent of uniform status, at most
     * {@code maxLength} bytes long, starting at {@code offset} (QEMU's block status). Unallocated extents are not
     * looked up in the backing chain: {@link ChainStatus} does that.
     */
    BlockStatus blockStatus(long offset, long maxLength) throws IOException;

    /** The backing disk, if any. */
    Optional<Disk> backing();

    /** The format name as {@code qemu-img} prints it: {@code qcow2} or {@code raw}. */
    String format();

    /** The file name the disk was opened with. */
    String filename();

    /** Flushes a writable disk and releases it and its backing chain; later requests fail. Idempotent. */
    @Override
    void close() throws IOException;
}
