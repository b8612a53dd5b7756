package io.qcow2j.proptest.crash;

import io.qcow2j.ffm.ErrnoException;
import io.qcow2j.ffm.ForwardingFile;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link PositionalFile} that records every write, truncation, hole punch and {@code dataSync} in one ordered
 * log ({@link IoEvent}), to simulate crashes afterwards ({@link #crashSimulator()}), and that fails chosen
 * calls on purpose (fault injection).
 *
 * <p>It wraps another file: a real one ({@link #wrapping}), whose content at that moment becomes the initial
 * content of the crash simulation, or an in-memory one ({@link #inMemory}), which makes no system calls at all.
 * Calls are serialized, so the log order is the order in which the changes reached the file.
 *
 * <p>Faults: {@link #failWrite} fails the n-th write ({@code pwrite}), {@link #failSync} the n-th sync, with
 * an {@link ErrnoException} such as {@code EIO} or {@code ENOSPC} (counting every attempt from 1, failed ones
 * too); {@link #failWritesFrom} fails every write from the n-th on (a full disk). A failed call changes nothing
 * and is logged as an {@link IoEvent.Fault}.
 */
public final class RecordingFile extends ForwardingFile {
    private final byte[] initial;
    private final List<IoEvent> log = new ArrayList<>();
    private long writes;
    private long syncs;
    private long reserves;
    private long failWrite;
    private int failWriteErrno;
    private boolean failWritesOnward;
    private long failSync;
    private int failSyncErrno;
    private int faults;

    private RecordingFile(PositionalFile delegate, byte[] initial) {
        super(delegate);
        this.initial = initial;
    }

    /** Records the calls made on {@code delegate}; its current content is the initial content. */
    public static RecordingFile wrapping(PositionalFile delegate) throws IOException {
        long size = delegate.size();
        if (size > Integer.MAX_VALUE - 64) {
            throw new IOException(delegate.path() + ": too large to record (" + size + " bytes)");
        }
        byte[] content = new byte[(int) size];
        delegate.readFully(0, MemorySegment.ofArray(content));
        return new RecordingFile(delegate, content);
    }

    /** A writable in-memory file named {@code path} (never opened) holding {@code content}, recorded. */
    public static RecordingFile inMemory(Path path, byte[] content) {
        return new RecordingFile(new MemoryFile(path, new ByteStore(content), true), content.clone());
    }

    // ------------------------------------------------------------------------------------ faults

    /** Fails the {@code n}-th write (1-based, counting every write attempt) with {@code errno}; 0 clears. */
    public synchronized RecordingFile failWrite(long n, int errno) {
        this.failWrite = n;
        this.failWriteErrno = errno;
        this.failWritesOnward = false;
        return this;
    }

    /** Fails every write from the {@code n}-th on with {@code errno} (e.g. ENOSPC: the disk is full). */
    public synchronized RecordingFile failWritesFrom(long n, int errno) {
        failWrite(n, errno);
        this.failWritesOnward = true;
        return this;
    }

    /** Fails the {@code n}-th sync (1-based) with {@code errno}; 0 clears. */
    public synchronized RecordingFile failSync(long n, int errno) {
        this.failSync = n;
        this.failSyncErrno = errno;
        return this;
    }

    /** Removes every planned fault. */
    public synchronized RecordingFile clearFaults() {
        failWrite = 0;
        failWritesOnward = false;
        failSync = 0;
        return this;
    }

    /** Write attempts so far (failed ones included). */
    public synchronized long writeCount() {
        return writes;
    }

    /** Sync attempts so far (failed ones included). */
    public synchronized long syncCount() {
        return syncs;
    }

    /** How many calls failed on purpose. */
    public synchronized int faultCount() {
        return faults;
    }

    // ------------------------------------------------------------------------------------ the log

    /** A copy of the log. */
    public synchronized List<IoEvent> log() {
        return List.copyOf(log);
    }

    /** Entries in the log so far: a position in the log, e.g. to note when a request started or returned. */
    public synchronized int logSize() {
        return log.size();
    }

    /** The content the file had when recording started. */
    public byte[] initialContent() {
        return initial.clone();
    }

    /** The content now: the initial content with every logged change applied. */
    public synchronized byte[] content() {
        ByteStore s = new ByteStore(initial);
        for (IoEvent e : log) {
            CrashSimulator.apply(s, e);
        }
        return s.toArray();
    }

    /** A crash simulator over the log so far. */
    public synchronized CrashSimulator crashSimulator() {
        return new CrashSimulator(initial, log);
    }

    // ------------------------------------------------------------------------------------ the file

    @Override
    public synchronized void write(long offset, MemorySegment src) throws IOException {
        long n = ++writes;
        if (failWrite > 0 && (n == failWrite || (failWritesOnward && n > failWrite))) {
            faults++;
            log.add(new IoEvent.Fault("pwrite", failWriteErrno, offset, src.byteSize()));
            throw new ErrnoException("pwrite", failWriteErrno);
        }
        delegate.write(offset, src);
        log.add(new IoEvent.Write(offset, src.toArray(ValueLayout.JAVA_BYTE)));
    }

    @Override
    public synchronized long size() throws IOException {
        return delegate.size();
    }

    @Override
    public synchronized void truncate(long length) throws IOException {
        delegate.truncate(length);
        log.add(new IoEvent.Truncate(length));
    }

    @Override
    public synchronized void dataSync() throws IOException {
        long n = ++syncs;
        if (failSync > 0 && n == failSync) {
            faults++;
            log.add(new IoEvent.Fault("fdatasync", failSyncErrno, 0, 0));
            throw new ErrnoException("fdatasync", failSyncErrno);
        }
        delegate.dataSync();
        log.add(new IoEvent.Sync());
    }

    /**
     * Counted, not logged: a reservation ({@code fallocate} keeping the size) changes neither the size nor the
     * content, so no crash state differs by it.
     */
    @Override
    public synchronized boolean reserve(long offset, long length) throws IOException {
        reserves++;
        return delegate.reserve(offset, length);
    }

    /** Calls of {@link #reserve} so far. */
    public synchronized long reserveCount() {
        return reserves;
    }

    @Override
    public synchronized void punchHole(long offset, long length) throws IOException {
        delegate.punchHole(offset, length);
        log.add(new IoEvent.PunchHole(offset, length));
    }

    @Override
    public String toString() {
        return "recording " + delegate;
    }
}
