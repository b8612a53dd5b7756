package io.qcow2j.proptest.cache;

import io.qcow2j.engine.cache.TableFile;
import io.qcow2j.ffm.Errno;
import io.qcow2j.ffm.ErrnoException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * An in-memory {@link TableFile} that records every operation in one ordered log and can be told to fail.
 *
 * <ul>
 *   <li><b>Content</b>: a sparse map of 512-byte blocks; bytes never written read as zeros. Writes and reads may
 *       have any offset and length. {@link #preload} seeds content without logging (the image as it was before
 *       the test); {@link #bytes}/{@link #words} inspect it without logging and without failing.</li>
 *   <li><b>Log</b>: every read, write and sync the code under test issues, successful or failed, as an
 *       {@link Op} with a sequence number (its index in the log), the region it falls in ({@link #region}),
 *       and for writes a copy of the bytes. {@link #blocksAfter(int)} rebuilds the content after any prefix of
 *       the log, and {@link #lastSync()} tells which writes a sync made durable: enough to enumerate crash
 *       states later.</li>
 *   <li><b>Failures</b>: the next {@code n} reads, writes or syncs fail with an {@link ErrnoException} of a
 *       chosen errno ({@code EIO}, {@code ENOSPC}, ...). A failed write changes nothing.</li>
 * </ul>
 * Not thread-safe (the caches under test are single-owner).
 */
public final class RecordingTableFile implements TableFile {
    /** Granularity of the content map (the smallest table size). */
    public static final int BLOCK = 512;

    public enum Type { READ, WRITE, SYNC }

    /**
     * One operation as issued.
     *
     * @param seq    its index in the log
     * @param type   read, write or sync
     * @param offset file offset (0 for a sync)
     * @param length bytes (0 for a sync)
     * @param region name of the region the offset falls in ({@link #region}), or "-" for none and for syncs
     * @param data   for a write, a copy of the bytes it carried (also when it failed); null otherwise
     * @param errno  0 when it succeeded, else the errno it failed with
     */
    public record Op(int seq, Type type, long offset, long length, String region, byte[] data, int errno) {
        public boolean ok() {
            return errno == 0;
        }

        public boolean isWrite() {
            return type == Type.WRITE;
        }

        public boolean isSync() {
            return type == Type.SYNC;
        }

        /** A successful write of {@code region}. */
        public boolean isWriteOf(String region) {
            return type == Type.WRITE && this.region.equals(region);
        }

        @Override
        public String toString() {
            String s = "#" + seq + " " + switch (type) {
                case READ -> "read " + region + " 0x" + Long.toHexString(offset) + "+" + length;
                case WRITE -> "write " + region + " 0x" + Long.toHexString(offset) + "+" + length;
                case SYNC -> "sync";
            };
            return ok() ? s : s + " FAILED " + Errno.name(errno);
        }
    }

    private record Region(String name, long start, long end) {}

    private static final VarHandle BE_LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);

    private static final byte[] ZERO_BLOCK = new byte[BLOCK];

    /** Content by block number (offset / {@value #BLOCK}). */
    private final HashMap<Long, byte[]> blocks = new HashMap<>();
    private final HashMap<Long, byte[]> initial = new HashMap<>();
    private final List<Op> log = new ArrayList<>();
    private final List<Op> logView = Collections.unmodifiableList(log);
    private final List<Region> regions = new ArrayList<>();
    private int failReads;
    private int readErrno = Errno.EIO;
    private int failWrites;
    private int writeErrno = Errno.EIO;
    private int failSyncs;
    private int syncErrno = Errno.EIO;

    /** Names {@code [start, start + length)} (e.g. "L2", "refcount") in the log; first match wins. */
    public RecordingTableFile region(String name, long start, long length) {
        Objects.requireNonNull(name);
        if (start < 0 || length <= 0 || start > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException("bad region " + name + ": " + length + " bytes at " + start);
        }
        regions.add(new Region(name, start, start + length));
        return this;
    }

    /** The name of the region holding {@code offset}, or "-". */
    public String regionOf(long offset) {
        for (Region r : regions) {
            if (offset >= r.start && offset < r.end) {
                return r.name;
            }
        }
        return "-";
    }

    // ------------------------------------------------------------------------------------------ failures

    /** The next {@code n} reads fail with {@code errno} (replaces any pending read failures). */
    public void failNextReads(int n, int errno) {
        failReads = requireCount(n);
        readErrno = errno;
    }

    /** The next {@code n} writes fail with {@code errno} (e.g. {@link Errno#EIO}, {@link Errno#ENOSPC}). */
    public void failNextWrites(int n, int errno) {
        failWrites = requireCount(n);
        writeErrno = errno;
    }

    /** The next {@code n} syncs ({@link #flush}) fail with {@code errno}. */
    public void failNextSyncs(int n, int errno) {
        failSyncs = requireCount(n);
        syncErrno = errno;
    }

    public int pendingReadFailures() {
        return failReads;
    }

    public int pendingWriteFailures() {
        return failWrites;
    }

    public int pendingSyncFailures() {
        return failSyncs;
    }

    private static int requireCount(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("failure count must be >= 0: " + n);
        }
        return n;
    }

    // ------------------------------------------------------------------------------------------ TableFile

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        long length = dst.byteSize();
        if (failReads > 0) {
            failReads--;
            append(Type.READ, offset, length, null, readErrno);
            throw new ErrnoException("pread(" + length + " bytes at " + offset + ")", readErrno);
        }
        append(Type.READ, offset, length, null, 0);
        MemorySegment.copy(bytes(offset, Math.toIntExact(length)), 0, dst, ValueLayout.JAVA_BYTE, 0,
                Math.toIntExact(length));
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        byte[] data = src.toArray(ValueLayout.JAVA_BYTE);
        if (failWrites > 0) {
            failWrites--;
            append(Type.WRITE, offset, data.length, data, writeErrno);
            throw new ErrnoException("pwrite(" + data.length + " bytes at " + offset + ")", writeErrno);
        }
        append(Type.WRITE, offset, data.length, data, 0);
        store(blocks, offset, data);
    }

    @Override
    public void flush() throws IOException {
        if (failSyncs > 0) {
            failSyncs--;
            append(Type.SYNC, 0, 0, null, syncErrno);
            throw new ErrnoException("fdatasync", syncErrno);
        }
        append(Type.SYNC, 0, 0, null, 0);
    }

    private void append(Type type, long offset, long length, byte[] data, int errno) {
        log.add(new Op(log.size(), type, offset, length, type == Type.SYNC ? "-" : regionOf(offset), data, errno));
    }

    // ------------------------------------------------------------------------------------------ content

    /** Sets content as if it had always been there: no log entry, no failure, and part of {@link #blocksAfter}(0). */
    public void preload(long offset, byte[] data) {
        store(blocks, offset, data);
        store(initial, offset, data);
    }

    /** The current content of {@code [offset, offset + length)}; zeros where never written. Not logged. */
    public byte[] bytes(long offset, int length) {
        return load(blocks, offset, length);
    }

    /** {@code count} big-endian 64-bit words from {@code offset} (how the caches store table entries). */
    public long[] words(long offset, int count) {
        long[] w = new long[count];
        int length = Math.multiplyExact(count, 8);
        byte[] src;
        int from;
        if (offset >= 0 && offset % BLOCK == 0 && length <= BLOCK) { // one block: no copy
            src = blocks.get(offset / BLOCK);
            from = 0;
            if (src == null) {
                return w;
            }
        } else {
            src = bytes(offset, length);
            from = 0;
        }
        for (int i = 0; i < count; i++) {
            w[i] = (long) BE_LONG.get(src, from + 8 * i);
        }
        return w;
    }

    /**
     * Whether the content of {@code [offset, offset + expected.length)} equals {@code expected} (zeros where never
     * written). Not logged; copies nothing.
     */
    public boolean holds(long offset, byte[] expected) {
        int done = 0;
        while (done < expected.length) {
            long pos = offset + done;
            long block = Math.floorDiv(pos, BLOCK);
            int in = (int) (pos - block * BLOCK);
            int n = Math.min(BLOCK - in, expected.length - done);
            byte[] b = blocks.get(block);
            if (Arrays.mismatch(b != null ? b : ZERO_BLOCK, in, in + n, expected, done, done + n) >= 0) {
                return false;
            }
            done += n;
        }
        return true;
    }

    /**
     * The content after the first {@code ops} operations of the log (the preload, then the successful writes among
     * them), as {@value #BLOCK}-byte blocks by offset.
     */
    public TreeMap<Long, byte[]> blocksAfter(int ops) {
        HashMap<Long, byte[]> m = new HashMap<>();
        initial.forEach((k, v) -> m.put(k, v.clone()));
        for (int i = 0; i < ops && i < log.size(); i++) {
            Op op = log.get(i);
            if (op.isWrite() && op.ok()) {
                store(m, op.offset(), op.data());
            }
        }
        TreeMap<Long, byte[]> byOffset = new TreeMap<>();
        m.forEach((k, v) -> byOffset.put(k * BLOCK, v));
        return byOffset;
    }

    private static void store(Map<Long, byte[]> m, long offset, byte[] data) {
        if (offset < 0) {
            throw new IllegalArgumentException("negative offset " + offset);
        }
        int done = 0;
        while (done < data.length) {
            long pos = offset + done;
            long block = Math.floorDiv(pos, BLOCK);
            int in = (int) (pos - block * BLOCK);
            int n = Math.min(BLOCK - in, data.length - done);
            byte[] b = m.computeIfAbsent(block, k -> new byte[BLOCK]);
            System.arraycopy(data, done, b, in, n);
            done += n;
        }
    }

    private static byte[] load(Map<Long, byte[]> m, long offset, int length) {
        if (offset < 0 || length < 0) {
            throw new IllegalArgumentException("bad range: " + length + " bytes at " + offset);
        }
        byte[] out = new byte[length];
        int done = 0;
        while (done < length) {
            long pos = offset + done;
            long block = Math.floorDiv(pos, BLOCK);
            int in = (int) (pos - block * BLOCK);
            int n = Math.min(BLOCK - in, length - done);
            byte[] b = m.get(block);
            if (b != null) {
                System.arraycopy(b, in, out, done, n);
            }
            done += n;
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------ log

    /** Every operation so far, in order (a live, unmodifiable view). */
    public List<Op> log() {
        return logView;
    }

    public int logSize() {
        return log.size();
    }

    /** The operations from index {@code from} on (a copy). */
    public List<Op> since(int from) {
        return List.copyOf(log.subList(from, log.size()));
    }

    /** The sequence number of the last successful sync, or -1: every successful write before it is durable. */
    public int lastSync() {
        for (int i = log.size() - 1; i >= 0; i--) {
            if (log.get(i).isSync() && log.get(i).ok()) {
                return i;
            }
        }
        return -1;
    }

    /** The log, one operation a line (for failure messages). */
    public String describeLog(int from) {
        StringBuilder b = new StringBuilder();
        for (int i = Math.max(0, from); i < log.size(); i++) {
            b.append("\n  ").append(log.get(i));
        }
        return b.toString();
    }
}
