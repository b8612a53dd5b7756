package io.qcow2j.engine;

import io.qcow2j.engine.cache.MetadataCache;
import io.qcow2j.engine.format.BitmapsExtension;
import io.qcow2j.engine.format.ClusterType;
import io.qcow2j.engine.format.CompressedCluster;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.format.RefcountBlock;
import io.qcow2j.engine.format.RefcountTableEntry;
import io.qcow2j.engine.format.SnapshotTable;
import io.qcow2j.engine.format.SubclusterBitmap;
import io.qcow2j.ffm.ErrnoException;
import io.qcow2j.ffm.LibC;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Checks the consistency of a qcow2 image as {@code qemu-img check} does ({@code qcow2_check_refcounts} in
 * QEMU's {@code block/qcow2-refcount.c}, with the snapshot table and bitmap checks around it): it rebuilds
 * the reference count of every host cluster from the metadata and compares it with the refcounts stored
 * in the image. {@link #check} repairs nothing; {@link #repair} is {@code qemu-img check -r leaks|all}.
 *
 * <h2>What is counted</h2>
 * The header cluster; the active L1 table, its L2 tables (through the image's L2 cache) and the clusters
 * they map (normal, preallocated zero, and every cluster a compressed cluster's byte range touches, each
 * range counted once per cluster as QEMU does); every internal snapshot's L1 table, L2 tables and clusters
 * (read directly from the file); the snapshot table; the refcount table and the refcount blocks; the
 * bitmap directory, the bitmap tables and the bitmap data clusters when the bitmaps extension is
 * consistent (autoclear bit 0: an inconsistent extension is ignored, as in QEMU, and its clusters show up
 * as leaks). Encrypted images and external data files cannot be opened by this engine, so there is
 * nothing of theirs to count.
 *
 * <h2>What is reported</h2>
 * Every problem as one line to the {@code problems} sink, with QEMU's wording: stored refcount below the
 * computed one ({@code ERROR cluster N refcount=S reference=C}, a corruption), above it ({@code Leaked
 * cluster …}, a leak), COPIED flags that disagree with a refcount of exactly one, L1/L2 entries with
 * reserved bits, unaligned L2 tables and data clusters, references that run a cluster or more past the end
 * of the file, invalid subcluster bitmaps, refcount blocks outside the image or unaligned, and clusters used
 * twice by metadata (they count 2 where the image stores 1). The {@link Result} holds the same numbers as
 * {@code qemu-img check --output=json}.
 *
 * <h2>Bounds</h2>
 * The computed refcounts are kept in {@link ClusterCounts}, sized by the file (QEMU's rule: a reference
 * running a cluster or more past the end of the file is an error, never a count), so a hostile offset cannot
 * make the check allocate more than about one byte per cluster of the real file. Tables are read in
 * bounded pieces; tables and parts of tables past the end of the file read as zeros without any I/O. The
 * work is that of QEMU's check: an L2 table inside the file is walked once per L1 entry naming it (as
 * snapshots need), so an image whose millions of L1 entries all name one L2 table takes as long here as in
 * qemu-img; everything ends.
 *
 * <h2>Repair</h2>
 * {@link #repair} follows QEMU's repairing check step by step: the counts are computed (fixing what
 * {@code -r all} fixes on the way), compared once without repairing, then either compared again repairing
 * (refcounts set to the references) or, when the refcount structure is beyond that, rebuilt
 * ({@link RefcountRebuild}) and counted again; then the COPIED flags. Its lines and counts are
 * qemu-img's, so {@code qcow2j check -r} prints what {@code qemu-img check -r} prints.
 *
 * <p>The check holds the image's metadata lock from start to end (as QEMU holds the image lock): reads of
 * the image from other threads wait until it is done.
 */
public final class ImageCheck {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfShort BE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** Tables other than L2 tables are read in pieces of this many bytes. */
    private static final int PIECE = 64 * 1024;
    /** QEMU's limits on bitmap directory entries ({@code block/qcow2-bitmap.c}). */
    private static final long BME_MAX_TABLE_SIZE = 0x8000000L;
    private static final long BME_MAX_PHYS_SIZE = 0x20000000L;
    private static final int BME_MAX_GRANULARITY_BITS = 31;
    private static final int BME_MIN_GRANULARITY_BITS = 9;
    private static final int BME_MAX_NAME_SIZE = 1023;
    private static final long BME_RESERVED_FLAGS = 0xfffffffcL;
    private static final long BME_TABLE_ENTRY_RESERVED_MASK = 0xff00_0000_0000_01feL;
    private static final long BME_TABLE_ENTRY_OFFSET_MASK = 0x00ff_ffff_ffff_fe00L;
    private static final int BME_DIR_ENTRY_SIZE = 24;
    /**
     * QEMU's {@code BDRV_MAX_LENGTH} (2^63 - 2^30): a read that reaches past it fails with an I/O error
     * there, wherever the file ends.
     */
    static final long MAX_READ_END = Long.MAX_VALUE & -(1L << 30);

    /**
     * The outcome of a check: what {@code qemu-img check --output=json} reports.
     *
     * @param filename the image's name as it was opened
     * @param format always {@code qcow2}
     * @param checkErrors problems that kept parts of the check from being made (a refcount that could not be read)
     * @param corruptions inconsistencies that can lose data (refcounts too low, bad entries, …)
     * @param leaks clusters whose stored refcount is higher than their references (space wasted, data safe)
     * @param imageEndOffset the end of the last cluster that is referenced or has a refcount
     * @param totalClusters clusters of the virtual disk
     * @param allocatedClusters guest clusters the active L1 table maps to host clusters (or compressed data)
     * @param fragmentedClusters of these, the ones not right after the previous one of their L2 table, and
     *     every compressed one
     * @param compressedClusters guest clusters stored compressed
     */
    public record Result(String filename, String format, long checkErrors, long corruptions, long leaks,
            long imageEndOffset, long totalClusters, long allocatedClusters, long fragmentedClusters,
            long compressedClusters) {

        /** Neither corruptions, leaks nor check errors. */
        public boolean isClean() {
            return checkErrors == 0 && corruptions == 0 && leaks == 0;
        }

        /** {@code qemu-img check}'s exit status: 1 check errors, 2 corruptions, 3 leaks only, 0 clean. */
        public int exitCode() {
            return checkErrors != 0 ? 1 : corruptions != 0 ? 2 : leaks != 0 ? 3 : 0;
        }
    }

    private final Qcow2Image image;
    private final Qcow2Header header;
    private final Geometry g;
    private final PositionalFile file;
    private final MetadataCache l2Cache;
    private final MetadataCache refcountCache;
    private final Consumer<String> problems;
    private final int cb;
    private final int cs;
    private final int order;
    /** The largest refcount the image can store; computed counts stop there (QEMU's overflow error). */
    private final long refcountMax;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment tableBuf;
    private final MemorySegment pieceBuf;

    private long fileSize;
    /** Clusters compared: those of the file, plus one if a reference runs into the cluster after its end. */
    private long nbClusters;
    private ClusterCounts counts;
    private long[] refcountTable;

    private long corruptions;
    private long leaks;
    private long checkErrors;
    private long allocated;
    private long fragmented;
    private long compressed;
    private long highestCluster;
    private boolean refblockCorruptionSignalled;
    /** Set by {@link #storedRefcount} when the refcount block could not be read. */
    private boolean unreadable;

    // Repair (QEMU's BdrvCheckMode and the repair side of BdrvCheckResult).
    private static final int FIX_LEAKS = 1;
    private static final int FIX_ERRORS = 2;
    /** The image is being repaired (opened writable for it), whatever the current pass fixes. */
    private boolean repairing;
    /** What the current pass fixes: 0, {@link #FIX_LEAKS}, or both bits. */
    private int fix;
    /** The refcount structure must be rebuilt: a refcount block is unusable, or a used cluster has refcount 0. */
    private boolean rebuild;
    private long leaksFixed;
    private long corruptionsFixed;
    /**
     * Corruptions of the snapshot table: kept apart from the refcount check's counts, as QEMU keeps them in
     * a result of their own that is added at the end (they do not hold back the COPIED repair of -r leaks).
     */
    private long snapshotCorruptions;
    private List<Qcow2Snapshot> snapshots;
    private long snapshotsSize;
    /** The refcount table in use (the header's, or the one a rebuild made). */
    private long reftableOffset;
    private long reftableClusters;
    /** Set by an L2 visitor to replace the entry it was given (a repair). */
    private boolean replace;
    private long replaceEntry;
    private long replaceBitmap;
    /** A repair changed L2 entries of active tables in the L2 cache. */
    private boolean l2Repaired;

    private ImageCheck(Qcow2Image image, Consumer<String> problems) {
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

    /**
     * Checks {@code image}; problems are passed to {@code problems} one line at a time, as they are found.
     *
     * @throws Qcow2FormatException if the check cannot be completed because the metadata is too broken to
     *     follow (QEMU's "Check failed": an unreadable snapshot table or bitmap directory, a file too large);
     *     one line
     * @throws IOException if reading the image fails
     */
    public static Result check(Qcow2Image image, Consumer<String> problems) throws IOException {
        Objects.requireNonNull(problems);
        image.metadataLock().lock();
        try {
            ImageCheck c = new ImageCheck(image, problems);
            try {
                return c.run();
            } finally {
                c.arena.close();
            }
        } finally {
            image.metadataLock().unlock();
        }
    }

    /** {@link #check(Qcow2Image, Consumer)}, dropping the problem lines. */
    public static Result check(Qcow2Image image) throws IOException {
        return check(image, line -> { });
    }

    /** What {@link #repair} repairs: {@code qemu-img check -r leaks} or {@code -r all}. */
    public enum RepairMode {
        /** Leaked clusters only (refcounts higher than the references), and COPIED flags once nothing else is wrong. */
        LEAKS,
        /** Everything that can be: leaks, refcounts too low, COPIED flags, the refcount structure itself. */
        ALL
    }

    /**
     * The outcome of a repair: the state the repair pass left ({@code result}: what is still wrong, as that
     * pass counted it) and what it repaired. {@code qemu-img check -r} checks the image again when anything
     * was repaired and reports that check instead.
     */
    public record RepairResult(Result result, long leaksFixed, long corruptionsFixed) {
        /** Whether anything was repaired (qemu-img then prints what, and checks the image again). */
        public boolean repairedAnything() {
            return leaksFixed != 0 || corruptionsFixed != 0;
        }
    }

    /**
     * A repair that cannot be done in the mode asked for ({@code -r leaks} when the refcount structure must be
     * rebuilt), or that could not be completed; qemu-img reports these as "Check failed: Input/output error".
     */
    public static final class RepairFailedException extends IOException {
        private static final long serialVersionUID = 1L;

        RepairFailedException(String message) {
            super(message);
        }
    }

    /**
     * Repairs {@code image} as {@code qemu-img check -r leaks|all} does ({@code qcow2_check_refcounts} with a
     * repair mode): it checks the image, and repairs what {@code mode} covers; every problem and every repair
     * is one line to {@code messages}, in QEMU's words ({@code Repairing cluster N refcount=A reference=B},
     * …). The image must have been opened by {@link Images#openForRepair}.
     *
     * <p>What is repaired: stored refcounts higher than the references are lowered to them (leaks, both
     * modes; clusters that drop to 0 are free again). With {@link RepairMode#ALL} also: refcounts too low
     * are raised; COPIED flags in the active L1 and L2 tables are set exactly where the refcount is 1 (also
     * with {@code LEAKS} once no other problem is left, as QEMU does); unaligned preallocated zero clusters
     * become plain zero clusters; a refcount block past the end of the file is brought inside it by growing
     * the file; and when the refcount structure itself is damaged (a refcount block unaligned, with reserved
     * bits, used twice, or a cluster in use with refcount 0) it is rebuilt from the computed refcounts as
     * QEMU's {@code rebuild_refcount_structure} does: new refcount blocks and a new table, in clusters no
     * metadata uses or past the end of the file, written and synced, then switched in the header in one
     * synced write, the old structure then repaired as leaked. With {@code LEAKS} a structure that needs a
     * rebuild fails the repair ({@link RepairFailedException}, after the line "ERROR need to rebuild
     * refcount structures"), as in QEMU. Snapshot table entries without their 16 bytes of extra data are
     * reported, not repaired (qemu-img rewrites the table). Where QEMU differs, on purpose: refcounts that
     * could not be read from a structure that was then rebuilt no longer count as check errors (QEMU keeps
     * them, and so leaves the corrupt bit set after a successful rebuild), and the blocks of a rebuild are
     * not checked against the old refcount structure (qemu-img 7.2 refuses to write them over a cluster an
     * unaligned old block offset points into, and fails).
     *
     * <p>While repairing, new clusters are never taken below the end of the file (stored refcounts there
     * may be too low). Everything is flushed at the end; when no corruption or check error is left, the
     * header's dirty and corrupt bits are cleared (synced), and the image can be used read/write. The
     * repair waits for the requests in flight and holds off new ones until it is done.
     *
     * @throws RepairFailedException if the repair could not be done (see above)
     * @throws Qcow2FormatException if the image cannot be checked at all
     * @throws IOException if reading or writing the image fails
     */
    public static RepairResult repair(Qcow2Image image, RepairMode mode, Consumer<String> messages)
            throws IOException {
        Objects.requireNonNull(mode);
        Objects.requireNonNull(messages);
        if (!image.isWritable()) {
            throw new IOException(image.filename() + ": the image is not writable (open it with"
                    + " Images.openForRepair to repair it; a corruption found since it was opened makes it read-only)");
        }
        // no request in flight: an allocation between its refcount and its L2 entry would look like a leak
        image.ioLock().lockExclusive();
        try {
            image.metadataLock().lock();
            try {
                ImageCheck c = new ImageCheck(image, messages);
                try {
                    return c.runRepair(mode == RepairMode.ALL ? FIX_LEAKS | FIX_ERRORS : FIX_LEAKS);
                } finally {
                    c.arena.close();
                }
            } finally {
                image.metadataLock().unlock();
            }
        } finally {
            image.ioLock().unlockExclusive();
        }
    }

    private Result run() throws IOException {
        prepare();
        calculateRefcounts();
        compareRefcounts();
        checkCopiedFlags();
        return result();
    }

    /** The counts of QEMU's BdrvCheckResult, saved and restored between the passes of a repair. */
    private record Counters(long checkErrors, long corruptions, long leaks, long allocated, long fragmented,
            long compressed, long leaksFixed, long corruptionsFixed) {}

    private Counters counters() {
        return new Counters(checkErrors, corruptions, leaks, allocated, fragmented, compressed, leaksFixed,
                corruptionsFixed);
    }

    private void restore(Counters c) {
        checkErrors = c.checkErrors();
        corruptions = c.corruptions();
        leaks = c.leaks();
        allocated = c.allocated();
        fragmented = c.fragmented();
        compressed = c.compressed();
        leaksFixed = c.leaksFixed();
        corruptionsFixed = c.corruptionsFixed();
    }

    /** QEMU's qcow2_check_refcounts with a repair mode, then the header bits (qcow2_co_check_locked). */
    private RepairResult runRepair(int mode) throws IOException {
        repairing = true;
        prepare();
        Refcounts rc = image.refcounts();
        rc.setAllocationFloor(fileClusters());
        fix = mode;
        calculateRefcounts();
        // compared once without repairing: the repair pass follows unless the structure must be rebuilt
        Counters preCompare = counters();
        fix = 0;
        compareRefcounts();
        fix = mode;
        if (rebuild && (mode & FIX_ERRORS) != 0) {
            Counters old = counters();
            problems.accept("Rebuilding refcount structure");
            rebuildRefcountStructure();
            corruptions = 0;
            leaks = 0;
            // the old structure's check errors (refcounts that could not be read) went with it
            checkErrors = preCompare.checkErrors();
            rebuild = false;
            fix = 0;
            counts.clear();
            calculateRefcounts();
            long freshLeaks = 0;
            if ((mode & FIX_LEAKS) != 0) {
                // the old structure is leaked now: repair that; what remains was leaked by the rebuild
                Counters saved = counters();
                restore(new Counters(0, 0, 0, 0, 0, 0, 0, 0));
                fix = FIX_LEAKS;
                compareRefcounts();
                if (rebuild) {
                    problems.accept("ERROR rebuilt refcount structure is still broken");
                }
                freshLeaks = leaks;
                restore(saved);
            }
            fix = mode;
            if (corruptions < old.corruptions()) {
                corruptionsFixed += old.corruptions() - corruptions;
            }
            if (leaks < old.leaks()) {
                leaksFixed += old.leaks() - leaks;
            }
            leaks += freshLeaks;
        } else if (rebuild) {
            problems.accept("ERROR need to rebuild refcount structures");
            checkErrors++;
            image.flush();
            throw new RepairFailedException(image.filename() + ": the refcount structure must be rebuilt,"
                    + " which only a repair of everything does (check -r all)");
        } else if (leaks != 0 || corruptions != 0) {
            restore(preCompare);
            compareRefcounts();
        }
        checkCopiedFlags();
        image.flush();
        if (checkErrors == 0 && corruptions + snapshotCorruptions == 0) {
            // QEMU's qcow2_mark_clean and qcow2_mark_consistent: the refcounts can be trusted again
            image.headerWriter().setIncompatible(Qcow2Header.INCOMPAT_DIRTY | Qcow2Header.INCOMPAT_CORRUPT, false);
            rc.setAllocationFloor(0);
        }
        return new RepairResult(result(), leaksFixed, corruptionsFixed);
    }

    /**
     * QEMU's {@code rebuild_refcount_structure}: new refcount blocks and table from the computed counts
     * ({@link RefcountRebuild}), switched in; the check then goes on with them.
     */
    private void rebuildRefcountStructure() throws IOException {
        RefcountRebuild r = new RefcountRebuild(image, counts, nbClusters);
        r.run();
        nbClusters = r.nbClusters();
        refcountTable = r.table();
        reftableOffset = r.tableOffset();
        reftableClusters = r.tableClusters();
        refblockCorruptionSignalled = false;
        fileSize = file.size();
        counts.ensureCapacity(Math.max(nbClusters, fileClusters() + 1));
    }

    /** Reads what every pass needs: the file size, the snapshot table, the refcount table. */
    private void prepare() throws IOException {
        fileSize = file.size();
        long fileClusters = fileClusters();
        if (fileClusters > Integer.MAX_VALUE) {
            throw new Qcow2FormatException(image.filename() + ": the image file (" + fileSize
                    + " bytes) has more than 2^31-1 clusters: too large to check");
        }
        nbClusters = fileClusters;
        // A reference may run into the cluster after the end of the file (never further): one more.
        counts = new ClusterCounts(fileClusters + 1);

        snapshots = readSnapshots();
        snapshotsSize = snapshotTableSize(snapshots.size());
        if (g.version() >= 3) {
            for (int i = 0; i < snapshots.size(); i++) {
                if (snapshots.get(i).extraDataSize() < 16) {
                    // qemu-img -r all rewrites the snapshot table here; qcow2j does not (the entry stays)
                    snapshotCorruptions++;
                    problems.accept("ERROR snapshot table entry " + i + " is incomplete");
                }
            }
        }
        Refcounts rc = image.refcounts();
        reftableOffset = rc.tableOffset();
        reftableClusters = rc.tableClusters();
        refcountTable = readRefcountTable();
    }

    private long fileClusters() {
        return (fileSize >>> cb) + ((fileSize & (cs - 1)) != 0 ? 1 : 0);
    }

    /** QEMU's {@code calculate_refcounts}: the reference count of every cluster, from the metadata. */
    private void calculateRefcounts() throws IOException {
        inc(0, cs);
        long[] l1 = image.activeL1();
        if (l1.length > 0) {
            inc(header.l1TableOffset(), (long) l1.length * 8);
            for (int i = 0; i < l1.length; i++) {
                l1Entry(l1[i], true);
            }
        }
        if (l2Repaired) {
            // Snapshot L2 tables are read from the file, and may be active tables repaired in the cache.
            l2Cache.flush();
            l2Repaired = false;
        }
        for (Qcow2Snapshot sn : snapshots) {
            snapshotL1(sn);
        }
        inc(header.snapshotsOffset(), snapshotsSize);
        inc(reftableOffset, (long) refcountTable.length * 8);
        bitmaps();
        checkRefblocks();
    }

    private Result result() {
        long total = g.clustersFor(header.virtualSize());
        return new Result(image.filename(), "qcow2", checkErrors, corruptions + snapshotCorruptions, leaks,
                (highestCluster + 1) << cb, total, allocated, fragmented, compressed);
    }

    // ---------------------------------------------------------------- reporting

    private void corruption(String line) {
        corruptions++;
        problems.accept(line);
    }

    private static String hex(long v) {
        return Long.toHexString(v);
    }

    private static String udec(long v) {
        return Long.toUnsignedString(v);
    }

    // ---------------------------------------------------------------- counting

    /**
     * Counts one reference to every cluster {@code [offset, offset + size)} touches (QEMU's
     * {@code qcow2_inc_refcounts_imrt}). A range that runs a cluster or more past the end of the file is a
     * corruption and counts nothing, so the counts never reach past the cluster after the end of the file.
     */
    private void inc(long offset, long size) {
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
            if (c == refcountMax) {
                corruption("ERROR: overflow cluster offset=0x" + hex(k << cb));
                problems.accept("Use qemu-img amend to increase the refcount entry width or qemu-img convert to"
                        + " create a clean copy if the image cannot be opened for writing");
                continue;
            }
            counts.set(k, c + 1);
        }
    }

    // ---------------------------------------------------------------- L1 and L2 tables

    private void snapshotL1(Qcow2Snapshot sn) throws IOException {
        String who = "snapshot " + sn.id() + " (" + sn.name() + ")";
        long offset = sn.l1TableOffset();
        if ((offset & (cs - 1)) != 0) {
            corruption("ERROR " + who + " l1_offset=0x" + hex(offset)
                    + ": L1 table is not cluster aligned; snapshot table entry corrupted");
            return;
        }
        if (sn.l1Size() > Qcow2Header.MAX_L1_BYTES / 8) {
            corruption("ERROR " + who + " l1_size=0x" + hex(sn.l1Size())
                    + ": L1 table is too large; snapshot table entry corrupted");
            return;
        }
        long size = sn.l1Size();
        if (size == 0) {
            return;
        }
        long bytes = size * 8;
        inc(offset, bytes);
        if (!readable(offset, bytes)) {
            throw new Qcow2FormatException(image.filename() + ": cannot read the L1 table of " + who + " at 0x"
                    + hex(offset) + ": offset out of range");
        }
        long done = 0;
        while (done < bytes && offset + done < fileSize) {
            int n = (int) Math.min(PIECE, bytes - done);
            MemorySegment piece = pieceBuf.asSlice(0, n);
            readZeroPadded(offset + done, piece);
            for (int i = 0; i < n / 8; i++) {
                l1Entry(piece.getAtIndex(BE64, i), false);
            }
            done += n;
        }
        // The rest of the table lies past the end of the file: zeros, unallocated entries.
    }

    /** One L1 entry of the active table or of a snapshot's (QEMU's {@code check_refcounts_l1} loop). */
    private void l1Entry(long entry, boolean active) throws IOException {
        if (entry == 0) {
            return;
        }
        if ((entry & L1Entry.RESERVED_MASK) != 0) {
            corruption("ERROR found L1 entry with reserved bits set: " + hex(entry));
        }
        long l2Offset = entry & L1Entry.OFFSET_MASK;
        inc(l2Offset, cs);
        if ((l2Offset & (cs - 1)) != 0) {
            corruption("ERROR l2_offset=" + hex(l2Offset) + ": Table is not cluster aligned; L1 entry corrupted");
        }
        checkL2(l2Offset, active);
    }

    /**
     * The entries of one L2 table: counts the clusters they reference and checks them (QEMU's
     * {@code check_refcounts_l2}). Fragmentation and allocation are counted for the active table only.
     */
    private void checkL2(long l2Offset, boolean active) throws IOException {
        if (l2Offset >= fileSize) {
            return; // reads as zeros: every entry unallocated, nothing to count or check
        }
        L2Walk walk = new L2Walk(active);
        forEachL2Entry(l2Offset, active, walk);
    }

    /** Receives the entries of one L2 table in order. */
    private interface L2Visitor {
        void entry(int index, long entry, long bitmap) throws IOException;
    }

    /**
     * Reads the L2 table at {@code l2Offset}: through the L2 cache when it is an active table at an aligned
     * offset (the cache holds tables or slices aligned to their size), else directly from the file. An entry
     * the visitor replaces ({@link #replaceWith}, a repair) is changed in the cache (written back with it)
     * or, for a table read from the file, in the table, which is written back (and synced) after the walk.
     */
    private void forEachL2Entry(long l2Offset, boolean active, L2Visitor v) throws IOException {
        int wordsPerEntry = g.extendedL2() ? 2 : 1;
        if (active && l2Offset != 0 && (l2Offset & (cs - 1)) == 0) {
            int sliceBytes = l2Cache.tableSize();
            int entriesPerSlice = sliceBytes / g.l2EntrySize();
            int slices = cs / sliceBytes;
            for (int s = 0; s < slices; s++) {
                int h = l2Cache.get(l2Offset + (long) s * sliceBytes);
                try {
                    for (int j = 0; j < entriesPerSlice; j++) {
                        long e = l2Cache.word(h, j * wordsPerEntry);
                        long b = wordsPerEntry == 2 ? l2Cache.word(h, j * 2 + 1) : 0;
                        replace = false;
                        v.entry(s * entriesPerSlice + j, e, b);
                        if (replace) {
                            l2Cache.setWord(h, j * wordsPerEntry, replaceEntry);
                            if (wordsPerEntry == 2) {
                                l2Cache.setWord(h, j * 2 + 1, replaceBitmap);
                            }
                            l2Cache.markDirty(h);
                            l2Repaired = true;
                        }
                    }
                } finally {
                    l2Cache.put(h);
                }
            }
            return;
        }
        readZeroPadded(l2Offset, tableBuf);
        int n = g.l2Entries();
        boolean changed = false;
        for (int j = 0; j < n; j++) {
            long e = tableBuf.getAtIndex(BE64, (long) j * wordsPerEntry);
            long b = wordsPerEntry == 2 ? tableBuf.getAtIndex(BE64, (long) j * 2 + 1) : 0;
            replace = false;
            v.entry(j, e, b);
            if (replace) {
                tableBuf.setAtIndex(BE64, (long) j * wordsPerEntry, replaceEntry);
                if (wordsPerEntry == 2) {
                    tableBuf.setAtIndex(BE64, (long) j * 2 + 1, replaceBitmap);
                }
                changed = true;
            }
        }
        if (changed) {
            image.refuseOverlap(l2Offset, cs, active ? OverlapChecker.ACTIVE_L2 : 0);
            file.write(l2Offset, tableBuf);
            image.syncMetadata();
            image.noteFileEnd(l2Offset + cs);
        }
    }

    /** Called by an L2 visitor: the entry it is visiting becomes {@code entry} (and {@code bitmap}). */
    private void replaceWith(long entry, long bitmap) {
        replace = true;
        replaceEntry = entry;
        replaceBitmap = bitmap;
    }

    /** QEMU's checks and counts of one L2 table's entries. */
    private final class L2Walk implements L2Visitor {
        private final boolean active;
        private long nextContiguous;

        L2Walk(boolean active) {
            this.active = active;
        }

        @Override
        public void entry(int i, long entry, long bitmap) throws IOException {
            ClusterType type = L2Entry.clusterType(entry, g);
            if (type != ClusterType.COMPRESSED && (entry & L2Entry.STD_RESERVED_MASK) != 0) {
                corruption("ERROR found l2 entry with reserved bits set: " + hex(entry));
            }
            switch (type) {
                case COMPRESSED -> compressed(i, entry, bitmap);
                case NORMAL, ZERO_ALLOC -> allocated(entry, bitmap);
                case UNALLOCATED -> {
                    if ((bitmap & SubclusterBitmap.ALL_ALLOCATED) != 0) {
                        corruption("ERROR: Unallocated cluster has non-zero subcluster allocation map");
                    }
                }
                case ZERO_PLAIN -> { }
            }
        }

        private void compressed(int i, long entry, long bitmap) {
            if (L2Entry.isCopied(entry)) {
                corruption("ERROR: coffset=0x" + hex(CompressedCluster.hostOffset(entry, cb))
                        + ": copied flag must never be set for compressed clusters");
                entry &= ~L2Entry.COPIED;
            }
            if (bitmap != 0) {
                corruption("ERROR compressed cluster " + i + " with non-zero subcluster allocation bitmap, entry=0x"
                        + hex(entry));
                return;
            }
            inc(CompressedCluster.hostOffset(entry, cb), CompressedCluster.compressedSize(entry, cb));
            if (active) {
                allocated++;
                compressed++;
                // Compressed clusters are fragmented by nature: neighbours share sectors, which are re-read.
                fragmented++;
            }
        }

        private void allocated(long entry, long bitmap) {
            long offset = L2Entry.hostClusterOffset(entry);
            if (((bitmap >>> 32) & bitmap) != 0) {
                corruption("ERROR offset=" + hex(offset) + ": Allocated cluster has corrupted subcluster allocation"
                        + " bitmap");
            }
            if ((offset & (cs - 1)) != 0) {
                boolean containsData = g.extendedL2() ? (bitmap & SubclusterBitmap.ALL_ALLOCATED) != 0
                        : !L2Entry.hasZeroFlag(entry);
                boolean fixErrors = (fix & FIX_ERRORS) != 0;
                if (containsData) {
                    corruption("ERROR offset=" + hex(offset) + ": Data cluster is not properly aligned; L2 entry"
                            + " corrupted.");
                } else {
                    corruption((fixErrors ? "Repairing" : "ERROR") + " offset=" + hex(offset)
                            + ": Preallocated cluster is not properly aligned; L2 entry corrupted.");
                    if (fixErrors) {
                        // QEMU's fix_l2_entry_by_zero: the cluster reads as zeros without a host cluster
                        if (g.extendedL2()) {
                            replaceWith(0, (bitmap | bitmap << 32) & SubclusterBitmap.ALL_ZERO);
                        } else {
                            replaceWith(L2Entry.ZERO, 0);
                        }
                        corruptions--;
                        corruptionsFixed++;
                        return; // nothing is referenced any more
                    }
                }
            }
            if (active) {
                allocated++;
                if (nextContiguous != 0 && offset != nextContiguous) {
                    fragmented++;
                }
                nextContiguous = offset + cs;
            }
            inc(offset, cs);
        }
    }

    // ---------------------------------------------------------------- snapshot table

    private List<Qcow2Snapshot> readSnapshots() throws IOException {
        try {
            return SnapshotTable.read(file, header);
        } catch (Qcow2FormatException e) {
            throw new Qcow2FormatException(image.filename() + ": failed to read the snapshot table: " + e.getMessage());
        }
    }

    /** Bytes of the snapshot table, from its start to the end of its last entry (QEMU's snapshots_size). */
    private long snapshotTableSize(int count) throws IOException {
        long pos = 0;
        MemorySegment h = pieceBuf.asSlice(0, Qcow2Snapshot.HEADER_SIZE);
        for (int i = 0; i < count; i++) {
            pos = (pos + 7) & ~7L;
            readZeroPadded(header.snapshotsOffset() + pos, h);
            int idSize = h.get(BE16, 12) & 0xffff;
            int nameSize = h.get(BE16, 14) & 0xffff;
            long extraSize = h.get(BE32, 36) & 0xffff_ffffL;
            pos += Qcow2Snapshot.HEADER_SIZE + extraSize + idSize + nameSize;
        }
        return pos;
    }

    // ---------------------------------------------------------------- refcount structures

    private long[] readRefcountTable() throws IOException {
        long bytes = reftableClusters << cb; // ≤ 8 MiB by the header's validation (and a rebuild's)
        long[] table = new long[(int) (bytes / 8)];
        long done = 0;
        while (done < bytes) {
            int n = (int) Math.min(PIECE, bytes - done);
            MemorySegment piece = pieceBuf.asSlice(0, n);
            readZeroPadded(reftableOffset + done, piece);
            MemorySegment.copy(piece, BE64, 0, table, (int) (done / 8), n / 8);
            done += n;
        }
        return table;
    }

    /**
     * QEMU's {@code check_refblocks}: each refcount block must be inside the image and used once. A block
     * that is not (or whose entry is broken) means the refcount structure must be rebuilt; with
     * {@code -r all} a block past the end of the file is brought inside it by growing the file, as in QEMU.
     */
    private void checkRefblocks() throws IOException {
        for (int i = 0; i < refcountTable.length; i++) {
            long raw = refcountTable[i];
            long offset = RefcountTableEntry.blockOffset(raw);
            if ((raw & RefcountTableEntry.RESERVED_MASK) != 0) {
                corruption("ERROR refcount table entry " + i + " has reserved bits set");
                rebuild = true;
                continue;
            }
            if ((offset & (cs - 1)) != 0) {
                corruption("ERROR refcount block " + i + " is not cluster aligned; refcount table entry corrupted");
                rebuild = true;
                continue;
            }
            long cluster = offset >>> cb;
            if (Long.compareUnsigned(cluster, nbClusters) >= 0) {
                boolean fixErrors = (fix & FIX_ERRORS) != 0;
                corruption((fixErrors ? "Repairing" : "ERROR") + " refcount block " + i + " is outside image");
                if (fixErrors) {
                    String failure = growFileOver(offset);
                    if (failure == null && Long.compareUnsigned(cluster, nbClusters) < 0) {
                        corruptions--;
                        corruptionsFixed++;
                        inc(offset, cs); // a zeroed block, just allocated: refcount exactly 1
                        continue;
                    }
                    rebuild = true;
                    problems.accept("ERROR could not resize image: " + (failure != null ? failure : "Invalid argument"));
                }
                continue;
            }
            if (offset != 0) {
                inc(offset, cs);
                long c = counts.get(cluster);
                if (c != 1) {
                    corruption("ERROR refcount block " + i + " refcount=" + udec(c));
                    rebuild = true;
                }
            }
        }
    }

    /**
     * Grows the file to the end of the cluster at {@code offset} (QEMU truncates it there); returns why it
     * could not (after QEMU's "Could not resize file" line for a failed truncation), or null. The file may
     * not grow past 2^31 clusters, the most a check handles (a larger file is refused as too large, as a
     * file system refuses QEMU's truncation past its limit).
     */
    private String growFileOver(long offset) throws IOException {
        if (offset < 0 || offset > Long.MAX_VALUE - cs) {
            return "Invalid argument";
        }
        long newSize = offset + cs;
        String failure = null;
        if (((newSize + cs - 1) >>> cb) + 1 > ClusterCounts.MAX_CAPACITY) {
            failure = "File too large";
        } else {
            try {
                file.truncate(newSize);
            } catch (ErrnoException e) {
                failure = LibC.strerror(e.errno());
            } catch (IOException e) {
                failure = Objects.requireNonNullElse(e.getMessage(), "Input/output error");
            }
        }
        if (failure != null) {
            problems.accept("Could not resize file: " + failure); // qemu-img: error_report_err
            return failure;
        }
        fileSize = file.size();
        image.noteFileEnd(fileSize);
        long fileClusters = fileClusters();
        counts.ensureCapacity(fileClusters + 1);
        nbClusters = Math.max(nbClusters, fileClusters);
        return null;
    }

    /**
     * QEMU's {@code compare_refcounts}: every cluster's stored refcount (read through the refcount cache)
     * against the computed one.
     */
    private void compareRefcounts() throws IOException {
        int rbBits = g.refcountBlockBits();
        highestCluster = 0;
        for (long block = 0; (block << rbBits) < nbClusters; block++) {
            long first = block << rbBits;
            long end = Math.min(nbClusters, first + (1L << rbBits));
            long blockOffset = block < refcountTable.length ? RefcountTableEntry.blockOffset(refcountTable[(int) block])
                    : 0;
            if (blockOffset == 0) {
                for (long i = counts.nextNonZero(first, end); i < end; i = counts.nextNonZero(i + 1, end)) {
                    mismatch(i, 0, counts.get(i));
                    highestCluster = i;
                }
                continue;
            }
            if (unreadableBlock(blockOffset, block)) {
                for (long i = first; i < end; i++) {
                    checkErrors++;
                    problems.accept("Can't get refcount for cluster " + i + ": Input/output error");
                }
                continue;
            }
            int h = refcountCache.get(blockOffset);
            try {
                MemorySegment t = refcountCache.table(h);
                for (long i = first; i < end; i++) {
                    long stored = RefcountBlock.get(t, i - first, order);
                    long computed = counts.get(i);
                    if (stored != 0 || computed != 0) {
                        highestCluster = i;
                    }
                    if (stored != computed) {
                        mismatch(i, stored, computed);
                    }
                }
            } finally {
                refcountCache.put(h);
            }
        }
    }

    /**
     * One cluster whose stored refcount is not the computed one. A stored 0 cannot be repaired in place (the
     * refcount structure must be rebuilt, QEMU's rule); otherwise a leak is repaired under {@code -r leaks}
     * and a refcount too low under {@code -r all}, by setting the stored refcount to the computed one.
     */
    private void mismatch(long cluster, long stored, long computed) {
        boolean leak = Long.compareUnsigned(stored, computed) > 0;
        boolean repair = false;
        if (stored == 0) {
            rebuild = true;
        } else {
            repair = (fix & (leak ? FIX_LEAKS : FIX_ERRORS)) != 0;
        }
        problems.accept((repair ? "Repairing" : leak ? "Leaked" : "ERROR") + " cluster " + cluster + " refcount="
                + udec(stored) + " reference=" + udec(computed));
        if (repair) {
            try {
                image.refcounts().set(cluster, computed);
                if (computed == 0) {
                    punchHole(cluster << cb);
                }
                if (leak) {
                    leaksFixed++;
                } else {
                    corruptionsFixed++;
                }
                return;
            } catch (IOException e) {
                // as in QEMU: the update failed, the problem stays and is counted below
            }
        }
        if (leak) {
            leaks++;
        } else {
            corruptions++;
        }
    }

    /**
     * Whether a refcount block cannot be read: unaligned (QEMU signals a corruption and fails the lookup) or
     * beyond the offsets a read may reach (the read fails).
     */
    private boolean unreadableBlock(long blockOffset, long tableIndex) throws IOException {
        if ((blockOffset & (cs - 1)) != 0) {
            if (!refblockCorruptionSignalled) {
                refblockCorruptionSignalled = true;
                String what = "Refblock offset 0x" + hex(blockOffset) + " unaligned (reftable index: "
                        + (tableIndex == 0 ? "0" : "0x" + hex(tableIndex)) + ")";
                if (repairing) {
                    // QEMU, writing, marks the image corrupt; a repair that ends consistent clears the bit
                    problems.accept("qcow2: Marking image as corrupt: " + what
                            + "; further corruption events will be suppressed");
                    image.headerWriter().setIncompatible(Qcow2Header.INCOMPAT_CORRUPT, true);
                } else {
                    problems.accept("qcow2: Image is corrupt: " + what
                            + "; further non-fatal corruption events will be suppressed");
                }
            }
            return true;
        }
        return !readable(blockOffset, cs);
    }

    /** Whether QEMU can read {@code len} bytes at {@code offset} (unsigned) at all. */
    private static boolean readable(long offset, long len) {
        return offset >= 0 && offset <= MAX_READ_END && len <= MAX_READ_END - offset;
    }

    /** The stored refcount of a cluster; sets {@link #unreadable} if its refcount block cannot be read. */
    private long storedRefcount(long cluster) throws IOException {
        unreadable = false;
        long block = cluster >>> g.refcountBlockBits();
        if (block >= refcountTable.length) {
            return 0;
        }
        long blockOffset = RefcountTableEntry.blockOffset(refcountTable[(int) block]);
        if (blockOffset == 0) {
            return 0;
        }
        if (unreadableBlock(blockOffset, block)) {
            unreadable = true;
            return 0;
        }
        int h = refcountCache.get(blockOffset);
        try {
            return RefcountBlock.get(refcountCache.table(h), cluster & (g.refcountBlockEntries() - 1), order);
        } finally {
            refcountCache.put(h);
        }
    }

    /**
     * QEMU's {@code check_oflag_copied}: in the active tables, COPIED must be set exactly where the stored
     * refcount is 1. A refcount that cannot be read skips the entry (and, for an L2 table, the whole table)
     * silently: the comparison has already counted it as a check error. Repaired (the flag set or cleared)
     * under {@code -r all}, and under {@code -r leaks} when the refcounts are now right (no corruption, leak
     * or check error left), as in QEMU.
     */
    private void checkCopiedFlags() throws IOException {
        boolean repair = (fix & FIX_ERRORS) != 0
                || (fix & FIX_LEAKS) != 0 && checkErrors == 0 && corruptions == 0 && leaks == 0;
        long[] l1 = image.activeL1();
        for (int i = 0; i < l1.length; i++) {
            long l1e = l1[i];
            long l2Offset = l1e & L1Entry.OFFSET_MASK;
            if (l2Offset == 0) {
                continue;
            }
            long rc = storedRefcount(l2Offset >>> cb);
            if (unreadable) {
                continue;
            }
            if ((rc == 1) != L1Entry.isCopied(l1e)) {
                corruption((repair ? "Repairing" : "ERROR") + " OFLAG_COPIED L2 cluster: l1_index=" + i + " l1_entry="
                        + hex(l1e) + " refcount=" + udec(rc));
                if (repair) {
                    image.writeL1Entry(i, rc == 1 ? l1e | L1Entry.COPIED : l1e & ~L1Entry.COPIED);
                    corruptions--;
                    corruptionsFixed++;
                }
            }
            if (l2Offset >= fileSize) {
                continue;
            }
            long[] repaired = {0};
            forEachL2Entry(l2Offset, true, (j, entry, bitmap) -> {
                ClusterType t = L2Entry.clusterType(entry, g);
                if (t != ClusterType.NORMAL && t != ClusterType.ZERO_ALLOC) {
                    return;
                }
                long r = storedRefcount(L2Entry.hostClusterOffset(entry) >>> cb);
                if (!unreadable && (r == 1) != L2Entry.isCopied(entry)) {
                    corruption((repair ? "Repairing" : "ERROR") + " OFLAG_COPIED data cluster: l2_entry=" + hex(entry)
                            + " refcount=" + udec(r));
                    if (repair) {
                        replaceWith(r == 1 ? entry | L2Entry.COPIED : entry & ~L2Entry.COPIED, bitmap);
                        repaired[0]++;
                    }
                }
            });
            corruptions -= repaired[0];
            corruptionsFixed += repaired[0];
        }
    }

    // ---------------------------------------------------------------- bitmaps

    /** One bitmap of the directory: where its table is and how many entries it has. */
    private record Bitmap(long tableOffset, long tableSize) {}

    /**
     * QEMU's {@code qcow2_check_bitmaps_refcounts}: the directory, each bitmap's table and each data cluster
     * the tables point at. An inconsistent extension (autoclear bit clear) is ignored, as QEMU ignores it.
     * A directory or table that breaks the spec's constraints makes the check fail, as in QEMU.
     */
    private void bitmaps() throws IOException {
        BitmapsExtension ext = header.extensions().bitmaps().orElse(null);
        if (ext == null || !ext.consistent() || ext.count() == 0) {
            return;
        }
        inc(ext.directoryOffset(), ext.directorySize());
        List<Bitmap> list = loadBitmapDirectory(ext);
        for (Bitmap bm : list) {
            long bytes = bm.tableSize() * 8;
            inc(bm.tableOffset(), bytes);
            if (!readable(bm.tableOffset(), bytes)) {
                corruptions++;
                throw bitmapFailure("cannot read the bitmap table at 0x" + hex(bm.tableOffset()));
            }
            long done = 0;
            while (done < bytes) {
                int n = (int) Math.min(PIECE, bytes - done);
                MemorySegment piece = pieceBuf.asSlice(0, n);
                readZeroPadded(bm.tableOffset() + done, piece);
                for (int i = 0; i < n / 8; i++) {
                    long e = piece.getAtIndex(BE64, i);
                    long off = e & BME_TABLE_ENTRY_OFFSET_MASK;
                    if ((e & BME_TABLE_ENTRY_RESERVED_MASK) != 0
                            || (off != 0 && ((e & 1) != 0 || (off & (cs - 1)) != 0))) {
                        corruptions++;
                        throw bitmapFailure("bitmap table at 0x" + hex(bm.tableOffset()) + ": invalid entry 0x"
                                + hex(e));
                    }
                }
                for (int i = 0; i < n / 8; i++) {
                    long off = piece.getAtIndex(BE64, i) & BME_TABLE_ENTRY_OFFSET_MASK;
                    if (off != 0) {
                        inc(off, cs);
                    }
                }
                done += n;
            }
        }
    }

    private Qcow2FormatException bitmapFailure(String what) {
        return new Qcow2FormatException(image.filename() + ": " + what + " (Invalid argument)");
    }

    /** QEMU's {@code bitmap_list_load} with {@code check_dir_entry}. */
    private List<Bitmap> loadBitmapDirectory(BitmapsExtension ext) throws IOException {
        long size = ext.directorySize(); // ≤ 64 MiB by the header's validation
        long offset = ext.directoryOffset();
        if (size == 0 || !readable(offset, size)) {
            corruptions++;
            throw bitmapFailure("bitmap directory at 0x" + hex(offset) + " (" + udec(size) + " bytes) cannot be read");
        }
        // Only the part inside the file is read; the rest reads as zeros.
        long inFile = Math.max(0, Math.min(size, fileSize - offset));
        byte[] dir = new byte[(int) inFile];
        if (inFile > 0) {
            readZeroPadded(offset, MemorySegment.ofArray(dir));
        }
        MemorySegment d = MemorySegment.ofArray(dir);
        List<Bitmap> out = new ArrayList<>();
        long pos = 0;
        long n = 0;
        while (pos < size) {
            if (pos + BME_DIR_ENTRY_SIZE > size) {
                throw brokenDirectory();
            }
            if (++n > ext.count()) {
                corruptions++;
                throw bitmapFailure("More bitmaps found than specified in header extension");
            }
            long tableOffset = u64(d, pos);
            long tableSize = u32(d, pos + 8);
            long flags = u32(d, pos + 12);
            int type = u8(d, pos + 16);
            int granularity = u8(d, pos + 17);
            int nameSize = (int) (u32(d, pos + 16) & 0xffff); // the u16 at pos + 18
            long extra = u32(d, pos + 20);
            long entrySize = (BME_DIR_ENTRY_SIZE + nameSize + extra + 7) & ~7L;
            if (pos + entrySize > size) {
                throw brokenDirectory();
            }
            if (extra != 0) {
                corruptions++;
                throw bitmapFailure("Bitmap extra data is not supported");
            }
            if (!validDirEntry(tableOffset, tableSize, flags, type, granularity, nameSize)) {
                corruptions++;
                throw bitmapFailure("bitmap directory entry " + (n - 1) + " doesn't satisfy the constraints");
            }
            out.add(new Bitmap(tableOffset, tableSize));
            pos += entrySize;
        }
        if (n != ext.count()) {
            corruptions++;
            throw bitmapFailure("Less bitmaps found than specified in header extension");
        }
        return out;
    }

    private Qcow2FormatException brokenDirectory() {
        corruptions++;
        return bitmapFailure("Broken bitmap directory");
    }

    private boolean validDirEntry(long tableOffset, long tableSize, long flags, int type, int granularity,
            int nameSize) {
        if (tableSize == 0 || tableOffset == 0 || (tableOffset & (cs - 1)) != 0 || tableSize > BME_MAX_TABLE_SIZE
                || granularity > BME_MAX_GRANULARITY_BITS || granularity < BME_MIN_GRANULARITY_BITS
                || (flags & BME_RESERVED_FLAGS) != 0 || nameSize > BME_MAX_NAME_SIZE || type != 1) {
            return false;
        }
        long phys = tableSize * cs; // ≤ 2^27 * 2^21
        if (phys > BME_MAX_PHYS_SIZE) {
            return false;
        }
        long covered = (phys * 8) << granularity; // ≤ 2^32 << 31: fits unsigned
        return Long.compareUnsigned(header.virtualSize(), covered) <= 0;
    }

    /** Reads of the in-memory directory: bytes past what was read from the file are zeros. */
    private static long u64(MemorySegment d, long pos) {
        return pos + 8 <= d.byteSize() ? d.get(BE64, pos) : pos >= d.byteSize() ? 0 : partial(d, pos, 8);
    }

    private static long u32(MemorySegment d, long pos) {
        return pos + 4 <= d.byteSize() ? d.get(BE32, pos) & 0xffff_ffffL : pos >= d.byteSize() ? 0 : partial(d, pos, 4);
    }

    private static int u8(MemorySegment d, long pos) {
        return pos < d.byteSize() ? d.get(ValueLayout.JAVA_BYTE, pos) & 0xff : 0;
    }

    private static long partial(MemorySegment d, long pos, int len) {
        long v = 0;
        for (int i = 0; i < len; i++) {
            v = (v << 8) | u8(d, pos + i);
        }
        return v;
    }

    // ---------------------------------------------------------------- I/O

    /**
     * Deallocates a cluster a repair freed (QEMU discards it, QCOW2_DISCARD_ALWAYS): it reads back zeros.
     * Advisory: a file system that cannot punch holes keeps the bytes.
     */
    private void punchHole(long offset) {
        try {
            file.punchHole(offset, cs);
        } catch (IOException e) {
            // nothing references the cluster: its bytes do not matter
        }
    }

    /** Fills {@code dst} from the file at {@code offset}; what lies past the end of the file reads as zeros. */
    private void readZeroPadded(long offset, MemorySegment dst) throws IOException {
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
