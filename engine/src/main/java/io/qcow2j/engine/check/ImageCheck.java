package io.qcow2j.engine.check;

import io.qcow2j.engine.CheckResult;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.RepairFailedException;
import io.qcow2j.engine.RepairMode;
import io.qcow2j.engine.RepairResult;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.engine.qcow2.Refcounts;
import java.io.IOException;
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
 * work is bounded by the file too: an L2 table named by many entries of the active L1 table is walked once
 * for all of them ({@link SharedL2}), and the snapshots' L1 tables are counted in one sweep in which every
 * L1 entry of the file is read once and every L2 table walked once, whatever the snapshot table claims
 * ({@link SnapshotReferences}); the counts are QEMU's, which walks each of them once per reference.
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
    private final CheckState st;
    private final ReferenceWalk walk;
    private final RefcountComparison comparison;
    private final BitmapReferences bitmapRefs;
    private final SnapshotReferences snapshotRefs;
    /** The work of the last check or repair on this thread (L2 entries visited, snapshot L1 entries read): for tests. */
    static final ThreadLocal<long[]> LAST_WORK = new ThreadLocal<>();

    private ImageCheck(Qcow2Image image, Consumer<String> problems) {
        this.st = new CheckState(image, problems);
        this.walk = new ReferenceWalk(st);
        this.comparison = new RefcountComparison(st, walk);
        this.bitmapRefs = new BitmapReferences(st);
        this.snapshotRefs = new SnapshotReferences(st, walk);
    }


    /**
     * Checks {@code image}; problems are passed to {@code problems} one line at a time, as they are found.
     *
     * @throws Qcow2FormatException if the check cannot be completed because the metadata is too broken to
     *     follow (QEMU's "Check failed": an unreadable snapshot table or bitmap directory, a file too large);
     *     one line
     * @throws IOException if reading the image fails
     */
    public static CheckResult check(Qcow2Image image, Consumer<String> problems) throws IOException {
        Objects.requireNonNull(problems);
        image.metadataLock().lock();
        try {
            ImageCheck c = new ImageCheck(image, problems);
            try {
                return c.run();
            } finally {
                LAST_WORK.set(new long[] {c.st.l2EntriesVisited, c.st.l1EntriesRead});
                c.st.arena.close();
            }
        } finally {
            image.metadataLock().unlock();
        }
    }

    /** {@link #check(Qcow2Image, Consumer)}, dropping the problem lines. */
    public static CheckResult check(Qcow2Image image) throws IOException {
        return check(image, line -> { });
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
        image.requestLock().lockExclusive();
        try {
            image.metadataLock().lock();
            try {
                ImageCheck c = new ImageCheck(image, messages);
                try {
                    return c.runRepair(mode == RepairMode.ALL ? CheckState.FIX_LEAKS | CheckState.FIX_ERRORS : CheckState.FIX_LEAKS);
                } finally {
                    LAST_WORK.set(new long[] {c.st.l2EntriesVisited, c.st.l1EntriesRead});
                    c.st.arena.close();
                }
            } finally {
                image.metadataLock().unlock();
            }
        } finally {
            image.requestLock().unlockExclusive();
        }
    }

    private CheckResult run() throws IOException {
        prepare();
        calculateRefcounts();
        comparison.compareRefcounts();
        comparison.checkCopiedFlags();
        return result();
    }

    /** The counts of QEMU's BdrvCheckResult, saved and restored between the passes of a repair. */
    private record Counters(long checkErrors, long corruptions, long leaks, long allocated, long fragmented,
            long compressed, long leaksFixed, long corruptionsFixed) {}

    private Counters counters() {
        return new Counters(st.checkErrors, st.corruptions, st.leaks, st.allocated, st.fragmented, st.compressed, st.leaksFixed,
                st.corruptionsFixed);
    }

    private void restore(Counters c) {
        st.checkErrors = c.checkErrors();
        st.corruptions = c.corruptions();
        st.leaks = c.leaks();
        st.allocated = c.allocated();
        st.fragmented = c.fragmented();
        st.compressed = c.compressed();
        st.leaksFixed = c.leaksFixed();
        st.corruptionsFixed = c.corruptionsFixed();
    }

    /** QEMU's qcow2_check_refcounts with a repair mode, then the header bits (qcow2_co_check_locked). */
    private RepairResult runRepair(int mode) throws IOException {
        st.repairing = true;
        prepare();
        Refcounts rc = st.image.refcounts();
        rc.setAllocationFloor(st.fileClusters());
        st.fix = mode;
        calculateRefcounts();
        // compared once without repairing: the repair pass follows unless the structure must be rebuilt
        Counters preCompare = counters();
        st.fix = 0;
        comparison.compareRefcounts();
        st.fix = mode;
        if (st.rebuild && (mode & CheckState.FIX_ERRORS) != 0) {
            Counters old = counters();
            st.problems.accept("Rebuilding refcount structure");
            rebuildRefcountStructure();
            st.corruptions = 0;
            st.leaks = 0;
            // the old structure's check errors (refcounts that could not be read) went with it
            st.checkErrors = preCompare.checkErrors();
            st.rebuild = false;
            st.fix = 0;
            st.counts.clear();
            calculateRefcounts();
            long freshLeaks = 0;
            if ((mode & CheckState.FIX_LEAKS) != 0) {
                // the old structure is leaked now: repair that; what remains was leaked by the rebuild
                Counters saved = counters();
                restore(new Counters(0, 0, 0, 0, 0, 0, 0, 0));
                st.fix = CheckState.FIX_LEAKS;
                comparison.compareRefcounts();
                if (st.rebuild) {
                    st.problems.accept("ERROR rebuilt refcount structure is still broken");
                }
                freshLeaks = st.leaks;
                restore(saved);
            }
            st.fix = mode;
            if (st.corruptions < old.corruptions()) {
                st.corruptionsFixed += old.corruptions() - st.corruptions;
            }
            if (st.leaks < old.leaks()) {
                st.leaksFixed += old.leaks() - st.leaks;
            }
            st.leaks += freshLeaks;
        } else if (st.rebuild) {
            st.problems.accept("ERROR need to rebuild refcount structures");
            st.checkErrors++;
            st.image.flush();
            throw new RepairFailedException(st.image.filename() + ": the refcount structure must be rebuilt,"
                    + " which only a repair of everything does (check -r all)");
        } else if (st.leaks != 0 || st.corruptions != 0) {
            restore(preCompare);
            comparison.compareRefcounts();
        }
        comparison.checkCopiedFlags();
        st.image.flush();
        if (st.checkErrors == 0 && st.corruptions + st.snapshotCorruptions == 0) {
            // QEMU's qcow2_mark_clean and qcow2_mark_consistent: the refcounts can be trusted again
            st.image.headerWriter().setIncompatible(Qcow2Header.INCOMPAT_DIRTY | Qcow2Header.INCOMPAT_CORRUPT, false);
            rc.setAllocationFloor(0);
        }
        return new RepairResult(result(), st.leaksFixed, st.corruptionsFixed);
    }

    /**
     * QEMU's {@code rebuild_refcount_structure}: new refcount blocks and table from the computed counts
     * ({@link RefcountRebuild}), switched in; the check then goes on with them.
     */
    private void rebuildRefcountStructure() throws IOException {
        RefcountRebuild r = new RefcountRebuild(st.image, st.counts, st.nbClusters);
        r.run();
        st.nbClusters = r.nbClusters();
        st.refcountTable = r.table();
        st.reftableOffset = r.tableOffset();
        st.reftableClusters = r.tableClusters();
        st.refblockCorruptionSignalled = false;
        st.fileSize = st.file.size();
        st.counts.ensureCapacity(Math.max(st.nbClusters, st.fileClusters() + 1));
    }

    /** Reads what every pass needs: the file size, the snapshot table, the refcount table. */
    private void prepare() throws IOException {
        st.fileSize = st.file.size();
        long fileClusters = st.fileClusters();
        if (fileClusters > Integer.MAX_VALUE) {
            throw new Qcow2FormatException(st.image.filename() + ": the image file (" + st.fileSize
                    + " bytes) has more than 2^31-1 clusters: too large to check");
        }
        st.nbClusters = fileClusters;
        // A reference may run into the cluster after the end of the file (never further): one more.
        st.counts = new ClusterCounts(fileClusters + 1);

        st.snapshots = walk.readSnapshots();
        st.snapshotsSize = walk.snapshotTableSize(st.snapshots.size());
        if (st.g.version() >= 3) {
            for (int i = 0; i < st.snapshots.size(); i++) {
                if (st.snapshots.get(i).extraDataSize() < 16) {
                    // qemu-img -r all rewrites the snapshot table here; qcow2j does not (the entry stays)
                    st.snapshotCorruptions++;
                    st.problems.accept("ERROR snapshot table entry " + i + " is incomplete");
                }
            }
        }
        Refcounts rc = st.image.refcounts();
        st.reftableOffset = rc.tableOffset();
        st.reftableClusters = rc.tableClusters();
        st.refcountTable = walk.readRefcountTable();
    }

    /** QEMU's {@code calculate_refcounts}: the reference count of every cluster, from the metadata. */
    private void calculateRefcounts() throws IOException {
        st.inc(0, st.cs);
        long[] l1 = st.image.activeL1();
        if (l1.length > 0) {
            st.inc(st.header.l1TableOffset(), (long) l1.length * 8);
            walk.l1Table(l1, true);
        }
        if (st.l2Repaired) {
            // Snapshot L2 tables are read from the file, and may be active tables repaired in the cache.
            st.l2Cache.flush();
            st.l2Repaired = false;
        }
        snapshotRefs.count(st.snapshots);
        st.inc(st.header.snapshotsOffset(), st.snapshotsSize);
        st.inc(st.reftableOffset, (long) st.refcountTable.length * 8);
        bitmapRefs.count();
        walk.checkRefblocks();
    }

    private CheckResult result() {
        long total = st.g.clustersFor(st.header.virtualSize());
        return new CheckResult(st.image.filename(), "qcow2", st.checkErrors, st.corruptions + st.snapshotCorruptions, st.leaks,
                (st.highestCluster + 1) << st.cb, total, st.allocated, st.fragmented, st.compressed);
    }
}
