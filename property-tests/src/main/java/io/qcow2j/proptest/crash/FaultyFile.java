package io.qcow2j.proptest.crash;

import io.qcow2j.ffm.Errno;
import io.qcow2j.ffm.ErrnoException;
import io.qcow2j.ffm.ForwardingFile;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A real engine file (or any {@link PositionalFile}) whose I/O calls are counted and one of which fails on
 * purpose: the n-th call of the run, whatever kind it is. Counting a run without a fault enumerates the calls
 * of a workload ({@link #calls()}, {@link #kinds()}); running it again with a fault at each index in turn puts
 * the fault at every call.
 *
 * <p>What fails, as the layer below would fail it ({@code LibC} continues short transfers, so the engine sees a
 * short transfer only as its continuation failing):
 * <ul>
 *   <li>{@link Fault#EIO}: any call fails, changing nothing;</li>
 *   <li>{@link Fault#ENOSPC}: a write, sync, hole punch, zeroing or truncation fails, changing nothing;</li>
 *   <li>{@link Fault#SHORT_WRITE}: the part of a write up to its last page boundary reaches the file, then the
 *       rest fails with {@code ENOSPC} (the disk filled during the write; see {@link #shortWrite});</li>
 *   <li>{@link Fault#SHORT_READ}: the first half of a read arrives, then the rest fails with {@code EIO} (a bad
 *       sector); the caller must not use the buffer.</li>
 * </ul>
 * The fault fires once; later calls go through (the fault has cleared). Several files of one image (a backing
 * chain) share one {@link Plan}, so the count runs over all of them. Thread-safe.
 */
public final class FaultyFile extends ForwardingFile {

    /** The kind of an I/O call. */
    public enum Call { READ, WRITE, SYNC, PUNCH_HOLE, ZERO_RANGE, TRUNCATE }

    /** What the chosen call does. */
    public enum Fault {
        EIO, ENOSPC, SHORT_WRITE, SHORT_READ;

        /** Whether this fault can hit a call of kind {@code c}. */
        public boolean appliesTo(Call c) {
            return switch (this) {
                case EIO -> true;
                case ENOSPC -> c != Call.READ;
                case SHORT_WRITE -> c == Call.WRITE;
                case SHORT_READ -> c == Call.READ;
            };
        }

        /** The errno the failing call reports. */
        public int errno() {
            return this == EIO || this == SHORT_READ ? Errno.EIO : Errno.ENOSPC;
        }
    }

    /** The calls of one run, counted across every file it opened, and the one to fail (0: none). */
    public static final class Plan {
        private final AtomicLong calls = new AtomicLong();
        private final long failAt;
        private final Fault fault;
        private final List<Call> kinds = new ArrayList<>();
        private volatile boolean fired;
        private volatile String firedAs;
        /** Writes may not reach past this file offset (a full disk), or -1. */
        private volatile long spaceLimit = -1;
        private final AtomicLong spaceFaults = new AtomicLong();

        public Plan(long failAt, Fault fault) {
            this.failAt = failAt;
            this.fault = fault;
        }

        /** A plan that only counts. */
        public static Plan counting() {
            return new Plan(0, null);
        }

        /** I/O calls so far. */
        public long calls() {
            return calls.get();
        }

        /** The kind of each call so far, in order (call n is at index n-1). */
        public synchronized List<Call> kinds() {
            return List.copyOf(kinds);
        }

        public boolean fired() {
            return fired;
        }

        /** The failed call as it was made, e.g. {@code write of 512 bytes at 0x30000}, or null. */
        public String firedAs() {
            return firedAs;
        }

        /**
         * A disk that is full past {@code fileBytes}: a write reaching further gets the part before the limit
         * (whole pages) to the file and fails with {@code ENOSPC}, until {@link #freeSpace}. For machines where
         * a small real file system cannot be mounted.
         */
        public Plan limitSpace(long fileBytes) {
            spaceLimit = fileBytes;
            return this;
        }

        /** The disk has room again. */
        public void freeSpace() {
            spaceLimit = -1;
        }

        /** Writes refused by {@link #limitSpace}. */
        public long spaceFaults() {
            return spaceFaults.get();
        }

        /** Counts a call; the fault for it, or null. */
        private Fault next(Call c, String what) {
            long n;
            synchronized (this) {
                n = calls.incrementAndGet();
                kinds.add(c);
            }
            if (n == failAt && fault != null && fault.appliesTo(c)) {
                fired = true;
                firedAs = what;
                return fault;
            }
            return null;
        }
    }

    private final Plan plan;

    public FaultyFile(PositionalFile delegate, Plan plan) {
        super(delegate);
        this.plan = plan;
    }

    private ErrnoException error(Fault f, String call) {
        return new ErrnoException(path() + ": " + call + " (injected " + Errno.name(f.errno()) + ")", f.errno());
    }

    @Override
    public long read(long offset, MemorySegment dst) throws IOException {
        readFault(offset, dst);
        return delegate.read(offset, dst);
    }

    @Override
    public void readFully(long offset, MemorySegment dst) throws IOException {
        readFault(offset, dst);
        delegate.readFully(offset, dst);
    }

    /** Counts a read; if it is the one to fail, a short read gets half of {@code dst} first. */
    private void readFault(long offset, MemorySegment dst) throws IOException {
        Fault f = plan.next(Call.READ, "read of " + range(offset, dst.byteSize()));
        if (f != null) {
            if (f == Fault.SHORT_READ && dst.byteSize() > 1) {
                delegate.read(offset, dst.asSlice(0, dst.byteSize() / 2));
            }
            throw error(f, "pread");
        }
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        Fault f = plan.next(Call.WRITE, "write of " + range(offset, src.byteSize()));
        long limit = plan.spaceLimit;
        if (f == null && limit >= 0 && offset + src.byteSize() > limit) {
            plan.spaceFaults.incrementAndGet();
            long fits = Math.max(0, (limit & -PAGE) - offset);
            if (fits > 0) {
                delegate.write(offset, src.asSlice(0, fits));
            }
            throw error(Fault.ENOSPC, "pwrite");
        }
        if (f != null) {
            long landed = f == Fault.SHORT_WRITE ? shortWrite(offset, src.byteSize()) : 0;
            if (landed > 0) {
                delegate.write(offset, src.asSlice(0, landed));
            }
            throw error(f, "pwrite");
        }
        delegate.write(offset, src);
    }

    /**
     * The bytes a short write of {@code length} at {@code offset} gets to the file: up to the last page
     * boundary inside it (a file system allocates and copies whole pages; one that fills up stops between
     * two), so a write inside one page, such as an 8-byte table entry, is never torn: nothing of it lands.
     */
    static long shortWrite(long offset, long length) {
        long lastBoundary = (offset + length - 1) & -PAGE;
        return lastBoundary > offset ? lastBoundary - offset : 0;
    }

    private static final long PAGE = 4096;

    /** Counts a call that changes nothing when it fails, and fails it if it is the chosen one. */
    private void call(Call c, String what, String syscall) throws ErrnoException {
        Fault f = plan.next(c, what);
        if (f != null) {
            throw error(f, syscall);
        }
    }

    private static String range(long offset, long length) {
        return length + " bytes at 0x" + Long.toHexString(offset);
    }

    @Override
    public void dataSync() throws IOException {
        call(Call.SYNC, "fdatasync", "fdatasync");
        delegate.dataSync();
    }

    @Override
    public void punchHole(long offset, long length) throws IOException {
        call(Call.PUNCH_HOLE, "hole punch of " + range(offset, length), "fallocate");
        delegate.punchHole(offset, length);
    }

    @Override
    public void zeroRange(long offset, long length) throws IOException {
        call(Call.ZERO_RANGE, "zeroing of " + range(offset, length), "fallocate");
        delegate.zeroRange(offset, length);
    }

    @Override
    public boolean zeroRangeFast(long offset, long length) throws IOException {
        call(Call.ZERO_RANGE, "zeroing of " + range(offset, length), "fallocate");
        return delegate.zeroRangeFast(offset, length);
    }

    @Override
    public void truncate(long length) throws IOException {
        call(Call.TRUNCATE, "truncation to " + length, "ftruncate");
        delegate.truncate(length);
    }

    @Override
    public String toString() {
        return "faulty " + delegate;
    }
}
