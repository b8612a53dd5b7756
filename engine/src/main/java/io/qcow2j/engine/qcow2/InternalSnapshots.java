package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.SnapshotNotFoundException;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.format.SnapshotTable;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Internal snapshots of an open qcow2 image (QEMU's {@code qcow2-snapshot.c}): create, apply (goto), delete
 * and list. Each operation holds the request lock exclusively and the metadata lock for its whole duration,
 * and is meant to be the last thing done with the {@link Qcow2Image} before it is closed, as {@code qemu-img
 * snapshot} does: the image's header and overlap checker keep what they read at open.
 *
 * <p>Write order (each step durable before the next), so that a crash at any point leaves an image whose
 * {@code qemu-img check} finds at most leaked clusters and refcount-1 clusters without COPIED:
 * <ul>
 *   <li>create: the L1 copy is written; the active tables lose their COPIED flags (L2 slices, then the L1
 *       table); the refcounts of everything the active L1 reaches are raised and flushed; the new snapshot
 *       table is written and the header points at it; the old table is freed.</li>
 *   <li>delete: the table without the snapshot is written and the header points at it; the refcounts of
 *       what the snapshot's L1 reaches are lowered and flushed (freed clusters punched); its L1 table is
 *       freed; the active tables get their COPIED flags back where a refcount dropped to 1.</li>
 *   <li>apply: the refcounts of what the snapshot reaches are raised and flushed; the active L1 table is
 *       overwritten with the snapshot's (without COPIED); the old active tree's refcounts are lowered and
 *       flushed; COPIED flags are fixed.</li>
 * </ul>
 */
public final class InternalSnapshots {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final ImageState s;
    private final SnapshotRefcounts refs;

    private InternalSnapshots(ImageState s) {
        this.s = s;
        this.refs = new SnapshotRefcounts(s);
    }

    /** The snapshots of {@code image}, as in its snapshot table. */
    public static List<Qcow2Snapshot> list(Qcow2Image image) throws IOException {
        ImageState s = image.state();
        return SnapshotTable.read(s.file, s.header);
    }

    /** The snapshot whose ID is {@code idOrName}, else the first whose name is (QEMU's find_snapshot_by_id_or_name). */
    public static Optional<Qcow2Snapshot> find(List<Qcow2Snapshot> snapshots, String idOrName) {
        for (Qcow2Snapshot sn : snapshots) {
            if (sn.id().equals(idOrName)) {
                return Optional.of(sn);
            }
        }
        return findByName(snapshots, idOrName);
    }

    private static Optional<Qcow2Snapshot> findByName(List<Qcow2Snapshot> snapshots, String name) {
        return snapshots.stream().filter(sn -> sn.name().equals(name)).findFirst();
    }

    /**
     * Creates snapshot {@code name} of the image's current state (QEMU's {@code qcow2_snapshot_create}, as
     * {@code qemu-img snapshot -c}: no VM state, VM clock 0, icount 0). The ID is one more than the largest
     * numeric ID. Names need not be unique (QEMU does not require it).
     */
    public static Qcow2Snapshot create(Qcow2Image image, String name, long dateSeconds, long dateNanos)
            throws IOException {
        return new InternalSnapshots(image.state()).locked(ops -> ops.create(name, dateSeconds, dateNanos));
    }

    /** Reverts the image to the snapshot {@code idOrName} (ID first, then name); returns it. */
    public static Qcow2Snapshot apply(Qcow2Image image, String idOrName) throws IOException {
        return new InternalSnapshots(image.state()).locked(ops -> ops.apply(idOrName));
    }

    /** Deletes the first snapshot named {@code name} (qemu-img snapshot -d looks up names only); returns it. */
    public static Qcow2Snapshot delete(Qcow2Image image, String name) throws IOException {
        return new InternalSnapshots(image.state()).locked(ops -> ops.delete(name));
    }

    private interface Operation {
        Qcow2Snapshot run(InternalSnapshots ops) throws IOException;
    }

    private Qcow2Snapshot locked(Operation op) throws IOException {
        return TableSurgery.run(s, () -> op.run(this));
    }

    private Qcow2Snapshot create(String name, long dateSeconds, long dateNanos) throws IOException {
        List<Qcow2Snapshot> old = SnapshotTable.read(s.file, s.header);
        if (old.size() >= 65536) {
            throw new IOException(s.filename + ": too many snapshots (at most 65536)");
        }
        if (name.getBytes(StandardCharsets.UTF_8).length > 0xffff) {
            throw new IOException(s.filename + ": snapshot name too long");
        }
        long[] active = s.l1.entries().clone();
        if (!refs.fitsOneMore(active)) {
            throw new IOException(s.filename + ": a cluster's refcount would exceed the maximum of refcount_bits="
                    + s.g.refcountBits());
        }
        long l1Offset = 0;
        if (active.length > 0) {
            long bytes = 8L * active.length;
            l1Offset = s.allocate((int) ((bytes + s.clusterSize - 1) / s.clusterSize));
            long[] copy = active.clone();
            for (int i = 0; i < copy.length; i++) {
                copy[i] &= ~L1Entry.COPIED;
            }
            writeL1(l1Offset, copy, s.clusterSize);
        }
        long[] cleared = refs.clearCopiedFlags(active);
        s.l2Cache.flush();
        writeActiveL1(cleared);
        refs.change(active, 1);
        s.refcountCache.flush();
        Qcow2Snapshot sn = new Qcow2Snapshot(nextId(old), name, l1Offset, active.length, 0, dateSeconds, dateNanos, 0,
                s.header.size(), 0, SnapshotTableWriter.EXTRA_DATA);
        List<Qcow2Snapshot> table = new ArrayList<>(old);
        table.add(sn);
        SnapshotTableWriter.replace(s, table, s.header.snapshotsOffset(), SnapshotTableWriter.storedSize(old));
        return sn;
    }

    private Qcow2Snapshot delete(String name) throws IOException {
        List<Qcow2Snapshot> old = SnapshotTable.read(s.file, s.header);
        Qcow2Snapshot sn = findByName(old, name).orElseThrow(() -> new SnapshotNotFoundException("snapshot not found"));
        sn.checkL1Table(s.header, s.file.size());
        long[] snL1 = readL1(sn);
        List<Qcow2Snapshot> table = new ArrayList<>(old);
        table.remove(sn);
        SnapshotTableWriter.replace(s, table, s.header.snapshotsOffset(), SnapshotTableWriter.storedSize(old));
        refs.change(snL1, -1);
        if (snL1.length > 0) {
            s.refcounts.free(sn.l1TableOffset(), 8L * snL1.length);
        }
        s.refcountCache.flush();
        long[] fixed = refs.fixCopiedFlags(s.l1.entries().clone());
        s.l2Cache.flush();
        writeActiveL1(fixed);
        return sn;
    }

    private Qcow2Snapshot apply(String idOrName) throws IOException {
        List<Qcow2Snapshot> snapshots = SnapshotTable.read(s.file, s.header);
        Qcow2Snapshot sn = find(snapshots, idOrName)
                .orElseThrow(() -> new SnapshotNotFoundException("Failed to load snapshot: No such file or directory"));
        sn.checkL1Table(s.header, s.file.size());
        if (sn.l1Size() > s.l1.size()) {
            // Snapshots.apply grows the image first; a caller that did not is refused
            throw new IOException(s.filename + ": snapshot " + sn.id() + " has a larger L1 table than the image: grow"
                    + " the image to " + sn.diskSize() + " bytes first");
        }
        long[] snL1 = readL1(sn);
        long[] next = new long[s.l1.size()];
        for (int i = 0; i < snL1.length; i++) {
            next[i] = snL1[i] & ~L1Entry.COPIED;
        }
        long[] current = s.l1.entries().clone();
        refs.change(next, 1);
        s.refcountCache.flush();
        writeActiveL1(next);
        refs.change(current, -1);
        s.refcountCache.flush();
        long[] fixed = refs.fixCopiedFlags(next);
        s.l2Cache.flush();
        writeActiveL1(fixed);
        if (sn.diskSize() != s.header.size()) {
            ImageResize.writeSize(s, sn.diskSize()); // the size the snapshot was taken at (QEMU truncates to it)
        }
        return sn;
    }

    /** QEMU's find_new_snapshot_id: one more than the largest numeric ID. */
    private static String nextId(List<Qcow2Snapshot> snapshots) {
        long max = 0;
        for (Qcow2Snapshot sn : snapshots) {
            try {
                max = Math.max(max, Long.parseLong(sn.id()));
            } catch (NumberFormatException e) {
                // not a number: does not count, as strtoul gives 0 for it
            }
        }
        return Long.toString(max + 1);
    }

    private long[] readL1(Qcow2Snapshot sn) throws IOException {
        long[] l1 = new long[(int) sn.l1Size()];
        if (l1.length == 0) {
            return l1;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(8L * l1.length);
            s.file.readFully(sn.l1TableOffset(), buf);
            for (int i = 0; i < l1.length; i++) {
                l1[i] = buf.getAtIndex(BE64, i);
            }
        }
        return l1;
    }

    /** Writes {@code l1} at {@code offset}, padded with zeros to a multiple of {@code align}, and syncs. */
    private void writeL1(long offset, long[] l1, int align) throws IOException {
        long bytes = 8L * l1.length;
        long padded = (bytes + align - 1) / align * align;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(padded);
            for (int i = 0; i < l1.length; i++) {
                buf.setAtIndex(BE64, i, l1[i]);
            }
            s.file.write(offset, buf);
        }
        s.tableFile.flush();
    }

    /** Overwrites the active L1 table in place (one write, synced), then its entries in memory. */
    private void writeActiveL1(long[] l1) throws IOException {
        if (l1.length == 0) {
            return;
        }
        writeL1(s.header.l1TableOffset(), l1, 8);
        System.arraycopy(l1, 0, s.l1.entries(), 0, l1.length);
    }
}
