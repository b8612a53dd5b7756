package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.SubclusterBitmap;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Gives every guest cluster of a grown range a host cluster without writing guest data, as QEMU's qcow2
 * truncate does with {@code preallocation=metadata|falloc|full}:
 *
 * <ul>
 *   <li>metadata: the L2 entries and refcounts only; the host clusters stay holes in the file (punched where
 *       reused, the file extended sparsely past its end), so they read as zeros and the file stays sparse.
 *       With extended L2 the subcluster bitmap stays 0 (the subclusters read the backing file, or zeros);</li>
 *   <li>falloc: the same, and the file system allocates the host range ({@code fallocate} keeping the size,
 *       zeros written where it cannot);</li>
 *   <li>full: zeros written into the host range.</li>
 * </ul>
 *
 * <p>{@code zeroFlag} (QEMU's {@code BDRV_REQ_ZERO_WRITE}, when a backing file reaches into the new range):
 * the new space must not read the backing file. Metadata writes preallocated zero clusters (offset kept, zero
 * flag; with extended L2 all subclusters zero); falloc and full, whose host clusters hold zeros, plain data
 * clusters (with extended L2 all subclusters allocated, as QEMU's {@code subclusters_need_allocation}).
 *
 * <p>Layout, as QEMU's {@code preallocate_co}: per L2 table, the table first (allocated when missing), then
 * the data clusters it maps, contiguous. Crash safety, per L2 table: the refcounts of the new clusters are
 * synced, then the host range made to read zeros and synced, and only then the L2 entries written and synced;
 * a crash leaves at most leaked clusters. Entries already in use (the cluster holding the old end) are kept.
 */
public final class ClusterPreallocation {
    /** What the preallocated clusters get in the file. */
    public enum Mode { METADATA, FALLOC, FULL }

    private final ImageState s;
    private final Mode mode;
    private final boolean zeroFlag;

    private ClusterPreallocation(ImageState s, Mode mode, boolean zeroFlag) {
        this.s = s;
        this.mode = mode;
        this.zeroFlag = zeroFlag;
    }

    /**
     * Preallocates the guest clusters from {@code firstCluster} up to the one holding byte {@code end - 1}
     * of {@code image}, whose virtual size must already cover them. Run as the last operation on the image.
     */
    public static void preallocate(Qcow2Image image, long firstCluster, long end, Mode mode, boolean zeroFlag)
            throws IOException {
        ImageState s = image.state();
        ClusterPreallocation p = new ClusterPreallocation(s, mode, zeroFlag);
        TableSurgery.run(s, () -> {
            p.run(firstCluster, (end + s.clusterSize - 1) >>> s.g.clusterBits());
            return null;
        });
    }

    private void run(long from, long to) throws IOException {
        int l2Bits = Integer.numberOfTrailingZeros(s.g.l2Entries());
        for (long c = from; c < to; ) {
            int l1Index = (int) (c >>> l2Bits);
            long tableEnd = Math.min(to, ((long) l1Index + 1) << l2Bits);
            fillTable(l1Index, c, tableEnd);
            c = tableEnd;
        }
    }

    /** Preallocates the free entries of guest clusters {@code [from, to)}, all mapped by L2 table {@code l1Index}. */
    private void fillTable(int l1Index, long from, long to) throws IOException {
        long l2 = s.l1.ensureL2Table(l1Index);
        int mask = s.g.l2Entries() - 1;
        // entries in use (only the one holding the old end can be) split the range into runs of free ones
        for (long c = from; c < to; ) {
            while (c < to && inUse(l2, (int) (c & mask))) {
                c++;
            }
            long runEnd = c;
            while (runEnd < to && !inUse(l2, (int) (runEnd & mask))) {
                runEnd++;
            }
            if (runEnd > c) {
                fillRun(l2, (int) (c & mask), (int) (runEnd - c));
            }
            c = runEnd;
        }
    }

    private boolean inUse(long l2, int index) throws IOException {
        int slot = s.l2Cache.get(s.sliceOffset(l2, index));
        try {
            int w = (index & (s.sliceEntries - 1)) * s.wordsPerEntry;
            return s.l2Cache.word(slot, w) != 0 || (s.g.extendedL2() && s.l2Cache.word(slot, w + 1) != 0);
        } finally {
            s.l2Cache.put(slot);
        }
    }

    private void fillRun(long l2, int index, int n) throws IOException {
        long bytes = (long) n << s.g.clusterBits();
        long host = s.allocate(n);
        s.refcountCache.flush(); // counted before anything points at them
        prepareHostRange(host, bytes);
        long entry = L2Entry.COPIED | (zeroFlag && mode == Mode.METADATA && !s.g.extendedL2() ? L2Entry.ZERO : 0);
        long bitmap = !zeroFlag ? 0 : mode == Mode.METADATA ? SubclusterBitmap.ALL_ZERO : SubclusterBitmap.ALL_ALLOCATED;
        for (int i = 0; i < n; ) {
            int slot = s.l2Cache.get(s.sliceOffset(l2, index + i));
            try {
                do {
                    int w = ((index + i) & (s.sliceEntries - 1)) * s.wordsPerEntry;
                    s.l2Cache.setWord(slot, w, entry | (host + ((long) i << s.g.clusterBits())));
                    if (s.g.extendedL2()) {
                        s.l2Cache.setWord(slot, w + 1, bitmap);
                    }
                    i++;
                } while (i < n && ((index + i) & (s.sliceEntries - 1)) != 0);
                s.l2Cache.markDirty(slot);
            } finally {
                s.l2Cache.put(slot);
            }
        }
        s.l2Cache.flush();
    }

    /**
     * Makes {@code [host, host + bytes)} read as zeros, durably, before an entry points at it: clusters reused
     * inside the file are punched out (full: overwritten), the file is extended over the rest; falloc then has
     * the file system allocate the range, full writes its zeros.
     */
    private void prepareHostRange(long host, long bytes) throws IOException {
        long size = s.file.size();
        long end = host + bytes;
        if (mode == Mode.FULL) {
            writeZeros(host, end);
        } else {
            if (host < size) {
                s.file.punchHole(host, Math.min(end, size) - host);
            }
            if (end > size) {
                s.file.truncate(end);
            }
            if (mode == Mode.FALLOC && !s.file.reserve(host, bytes)) {
                writeZeros(host, end); // the file system cannot allocate without writing
            }
        }
        s.tableFile.flush();
    }

    private void writeZeros(long from, long to) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment zeros = arena.allocate(Math.min(1 << 20, to - from), 4096);
            for (long pos = from; pos < to; pos += zeros.byteSize()) {
                s.file.write(pos, zeros.asSlice(0, Math.min(zeros.byteSize(), to - pos)));
            }
        }
    }
}
