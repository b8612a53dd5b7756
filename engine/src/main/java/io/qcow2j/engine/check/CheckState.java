package io.qcow2j.engine.check;

import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.function.Consumer;

/**
 * What the passes of one check or repair share (QEMU's {@code BdrvCheckResult} and the state of
 * {@code qcow2_check_refcounts}): the image and its geometry, the computed counts, the counters of what was
 * found and fixed, the repair mode, and the buffers the passes read tables into. Used under the image's
 * metadata lock, by one thread.
 */
final class CheckState {

    static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** Tables other than L2 tables are read in pieces of this many bytes. */
    static final int PIECE = 64 * 1024;
    /**
     * QEMU's {@code BDRV_MAX_LENGTH} (2^63 - 2^30): a read that reaches past it fails with an I/O error
     * there, wherever the file ends.
     */
    static final long MAX_READ_END = Long.MAX_VALUE & -(1L << 30);

    final Qcow2Image image;
    final Qcow2Header header;
    final Geometry g;
    final PositionalFile file;
    final MetadataCache l2Cache;
    final MetadataCache refcountCache;
    final Consumer<String> problems;
    final int cb;
    final int cs;
    final int order;
    /** The largest refcount the image can store; computed counts stop there (QEMU's overflow error). */
    final long refcountMax;
    final Arena arena = Arena.ofConfined();
    final MemorySegment tableBuf;
    final MemorySegment pieceBuf;

    long fileSize;
    /** Clusters compared: those of the file, plus one if a reference runs into the cluster after its end. */
    long nbClusters;
    ClusterCounts counts;
    long[] refcountTable;

    long corruptions;
    long leaks;
    long checkErrors;
    long allocated;
    long fragmented;
    long compressed;
    long highestCluster;
    boolean refblockCorruptionSignalled;
    /** Set by {@link #storedRefcount} when the refcount block could not be read. */
    boolean unreadable;

    // Repair (QEMU's BdrvCheckMode and the repair side of BdrvCheckResult).
    static final int FIX_LEAKS = 1;
    static final int FIX_ERRORS = 2;
    /** The image is being repaired (opened writable for it), whatever the current pass fixes. */
    boolean repairing;
    /** What the current pass fixes: 0, {@link #FIX_LEAKS}, or both bits. */
    int fix;
    /** The refcount structure must be rebuilt: a refcount block is unusable, or a used cluster has refcount 0. */
    boolean rebuild;
    long leaksFixed;
    long corruptionsFixed;
    /**
     * Corruptions of the snapshot table: kept apart from the refcount check's counts, as QEMU keeps them in
     * a result of their own that is added at the end (they do not hold back the COPIED repair of -r leaks).
     */
    long snapshotCorruptions;
    List<Qcow2Snapshot> snapshots;
    long snapshotsSize;
    /** The refcount table in use (the header's, or the one a rebuild made). */
    long reftableOffset;
    long reftableClusters;
    /** Set by an L2 visitor to replace the entry it was given (a repair). */
    boolean replace;
    long replaceEntry;
    long replaceBitmap;
    /** A repair changed L2 entries of active tables in the L2 cache. */
    boolean l2Repaired;
    /**
     * How many references the walk in progress stands for: 1, or the other references to a shared L2 table
     * ({@link SharedL2}) counted in one walk. Every count, corruption included, is multiplied by it.
     */
    long times = 1;
    /** Work done, for tests that bound it: L2 entries visited, snapshot L1 entries read. */
    long l2EntriesVisited;
    long l1EntriesRead;
    /** Lines of a repeated walk are counted, not printed: they are the lines its first walk printed. */
    boolean quiet;
    /** Lines not printed while {@link #quiet}. */
    long unprinted;
    /** The lines printed while {@link #quiet}: at most two per entry of the table walked. */
    final java.util.Set<String> quietLines = new java.util.HashSet<>();

    CheckState(Qcow2Image image, Consumer<String> problems) {
        this.image = image;
        this.header = image.header();
        this.g = header.geometry();
        this.file = image.file();
        this.l2Cache = image.l2Cache();
        this.refcountCache = image.refcountCache();
        this.problems = problems;
        this.cb = g.clusterBits();
        this.cs = g.clusterSize();
        this.order = g.refcountOrder();
        long max = g.maxRefcount();
        this.refcountMax = max < 0 ? Long.MAX_VALUE : max;
        this.tableBuf = arena.allocate(cs, 4096);
        this.pieceBuf = arena.allocate(PIECE, 4096);
    }

    long fileClusters() {
        return (fileSize >>> cb) + ((fileSize & (cs - 1)) != 0 ? 1 : 0);
    }

    // ---------------------------------------------------------------- reporting

    void corruption(String line) {
        corruptions += times;
        print(line);
    }

    /**
     * Reports {@code line}; while {@link #quiet}, only the first time the repeated walk meets it (the walk
     * stands for {@link #times} walks: the other times are counted).
     */
    void print(String line) {
        if (!quiet) {
            problems.accept(line);
            return;
        }
        long repeats = times;
        if (quietLines.add(line)) {
            problems.accept(line);
            repeats--;
        }
        unprinted += repeats;
    }

    /**
     * Runs {@code walk} again for {@code times} more references to what it walked, quietly; then says in one
     * line how many lines that did not print, if any.
     */
    void repeatQuietly(long times, String what, ThrowingRunnable walk) throws IOException {
        long was = this.times;
        this.times = times;
        quiet = true;
        unprinted = 0;
        try {
            walk.run();
        } finally {
            this.times = was;
            quiet = false;
            quietLines.clear();
        }
        if (unprinted > 0) {
            problems.accept("(the " + udec(times) + " other references to " + what + " repeat what is reported"
                    + " for it: " + udec(unprinted) + " more lines, counted but not printed)");
        }
    }

    /** A walk that may fail with an I/O error. */
    @FunctionalInterface
    interface ThrowingRunnable {
        void run() throws IOException;
    }

    static String hex(long v) {
        return Long.toHexString(v);
    }

    static String udec(long v) {
        return Long.toUnsignedString(v);
    }

    // ---------------------------------------------------------------- counting

    /**
     * Counts one reference to every cluster {@code [offset, offset + size)} touches (QEMU's
     * {@code qcow2_inc_refcounts_imrt}). A range that runs a cluster or more past the end of the file is a
     * corruption and counts nothing, so the counts never reach past the cluster after the end of the file.
     */
    void inc(long offset, long size) {
        if (size <= 0) {
            return;
        }
        // offset < 0 is an unsigned offset of 2^63 or more: far past any file.
        long excess = offset - fileSize;
        if (offset < 0 || excess >= cs || excess + size >= cs) {
            corruption("ERROR: counting reference for region exceeding the end of the file by one cluster or more:"
                    + " offset 0x" + hex(offset) + " size 0x" + hex(size));
            return;
        }
        long first = offset >>> cb;
        long last = (offset + size - 1) >>> cb;
        for (long k = first; k <= last; k++) {
            if (k >= nbClusters) {
                nbClusters = k + 1;
            }
            long c = counts.get(k);
            long add = Math.min(times, refcountMax - c);
            counts.set(k, c + add);
            if (add < times) {
                long was = times;
                times -= add; // the references that found the count at its maximum
                corruption("ERROR: overflow cluster offset=0x" + hex(k << cb));
                print("Use qemu-img amend to increase the refcount entry width or qemu-img convert to"
                        + " create a clean copy if the image cannot be opened for writing");
                times = was;
            }
        }
    }

    /** Whether QEMU can read {@code len} bytes at {@code offset} (unsigned) at all. */
    static boolean readable(long offset, long len) {
        return offset >= 0 && offset <= MAX_READ_END && len <= MAX_READ_END - offset;
    }

    // ---------------------------------------------------------------- I/O

    /**
     * Deallocates a cluster a repair freed (QEMU discards it, QCOW2_DISCARD_ALWAYS): it reads back zeros.
     * Advisory: a file system that cannot punch holes keeps the bytes.
     */
    void punchHole(long offset) {
        try {
            file.punchHole(offset, cs);
        } catch (IOException e) {
            // nothing references the cluster: its bytes do not matter
        }
    }

    /** Fills {@code dst} from the file at {@code offset}; what lies past the end of the file reads as zeros. */
    void readZeroPadded(long offset, MemorySegment dst) throws IOException {
        long n = 0;
        if (offset < fileSize) {
            long want = Math.min(dst.byteSize(), fileSize - offset);
            n = file.read(offset, dst.asSlice(0, want));
        }
        if (n < dst.byteSize()) {
            dst.asSlice(n).fill((byte) 0);
        }
    }
}
