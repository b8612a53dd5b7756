package io.qcow2j.engine;

import io.qcow2j.engine.format.Qcow2Header;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.Consumer;

/**
 * An open qcow2 image: a {@link Disk} with what {@code qemu-img info}, {@code check} and {@code map} show of
 * it. Open one with {@link Images#openQcow2} (or {@link Images#open}, which returns one for a qcow2 file).
 *
 * <p>A corruption found while the image is in use (a table offset that is not aligned, a write that would
 * land on metadata) is QEMU's corruption event: the header is marked corrupt, the image becomes read-only
 * ({@link #isReadOnly()} turns true), and {@link #warnings()} says why.
 */
public interface Qcow2Disk extends Disk {

    /**
     * Writes whole clusters compressed ({@code qemu-io write -c}, what {@code qemu-img convert -c} writes):
     * zlib or zstd as the header's compression type says. {@code offset} must be cluster-aligned and the
     * length a multiple of the cluster size, except that the request may end at the end of the disk (the last
     * cluster is padded with zeros). Each cluster must have no host cluster yet (unallocated or a zero cluster
     * without one): compression never overwrites, as in QEMU. A cluster that does not shrink is written
     * uncompressed.
     *
     * @throws IOException for a misaligned request or an allocated cluster (one line, as QEMU's EINVAL/EIO)
     */
    void writeCompressed(long offset, MemorySegment src) throws IOException;

    /**
     * {@link #writeCompressed} in two steps: this call compresses {@code src} (checking the request as
     * {@code writeCompressed} does) and changes nothing; {@link CompressedWrite#commit()} writes the result
     * then. A copy tool compresses many requests at once on several threads and commits them one after the
     * other in guest order, so the compressed clusters lie in guest order in the file ({@code qemu-img
     * convert -c} without {@code -W}). {@code src} must stay unchanged until the commit (clusters that do not
     * shrink are written from it).
     */
    CompressedWrite prepareCompressed(long offset, MemorySegment src) throws IOException;

    /** A compressed write whose compression is done; see {@link #prepareCompressed}. */
    interface CompressedWrite {
        /** Writes the compressed clusters, as {@link #writeCompressed} would have; at most once. */
        void commit() throws IOException;
    }

    /** The parsed, validated header as it was at open (the dirty and corrupt bits may have changed since). */
    Qcow2Header header();

    /** Size of the image file in bytes when it was opened. */
    long fileSize();

    /** Bytes the image file occupies on disk (allocated blocks), as {@code qemu-img info}'s "disk size". */
    long allocatedBytes() throws IOException;

    /** Things a user should be told: a corrupt flag, a corruption found while in use, an I/O fallback, a repair at open. */
    List<String> warnings();

    /** How the image file is accessed: {@code O_DIRECT} or buffered, and why a fallback happened. */
    String ioDescription();

    /** The options the image was opened with. */
    ImageOptions options();

    /** {@code fdatasync} calls made on the image file so far (by flushes, the caches, metadata updates). */
    long syncCount();

    /** The L2 cache's size and statistics. */
    CacheStats l2CacheStatistics();

    /** The refcount cache's size and statistics. */
    CacheStats refcountCacheStatistics();

    /**
     * Checks the image as {@code qemu-img check} does, without changing it; each problem is one line to
     * {@code problems}, in qemu-img's words, as it is found. Reads of the image from other threads wait while
     * the check runs.
     *
     * @throws io.qcow2j.engine.format.Qcow2FormatException if the metadata is too broken to be followed to the end
     */
    CheckResult check(Consumer<String> problems) throws IOException;

    /**
     * Repairs the image as {@code qemu-img check -r leaks|all} does; every problem and repair is one line to
     * {@code messages}. The image must have been opened by {@link Images#openForRepair}. Requests in flight are
     * waited for, new ones held off until the repair is done.
     *
     * @throws RepairFailedException if the repair cannot be done in {@code mode} or could not be completed
     */
    RepairResult repair(RepairMode mode, Consumer<String> messages) throws IOException;
}
