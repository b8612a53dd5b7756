package io.qcow2j.engine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Optional;
import java.util.Set;

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
