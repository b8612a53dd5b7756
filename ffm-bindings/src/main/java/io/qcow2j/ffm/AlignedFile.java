package io.qcow2j.ffm;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * A file opened for positional I/O, buffered or with {@code O_DIRECT}.
 *
 * <p>With {@code O_DIRECT} the kernel needs the file offset, the length and the buffer address aligned. The
 * offset alignment is probed at open the way QEMU does (read 512 bytes at offset 0, then 4096); on an
 * empty file, where a read proves nothing, Linux's {@code statx(STATX_DIOALIGN)} answers, else 4096 is
 * assumed. Aligned requests on native segments go straight to the kernel; any other request goes through a
 * page-aligned bounce buffer (read-modify-write for writes, and a file that a rounded-up write would have
 * lengthened is cut back to its true end).
 *
 * <p>Thread safety: reads and writes from many threads at once are safe (positional calls on one
 * descriptor). Unaligned direct writes are read-modify-write of whole alignment blocks: concurrent
 * writes that touch the same block must be serialized by the caller, as a block driver does anyway.
 * {@link #close} must not race with I/O in flight.
 */
public final class AlignedFile implements PositionalFile {

    /** Opens a path; tests substitute one that refuses {@code O_DIRECT} like some filesystems do. */
    @FunctionalInterface
    public interface Opener {
        int open(String path, int flags, int mode) throws ErrnoException;
    }

    private final Path path;
    private final int fd;
    private final boolean writable;
    private final boolean direct;
    /** Offset and length alignment in bytes; 1 for buffered files. */
    private final int alignment;
    /** Buffer address alignment for direct I/O; 1 for buffered files. */
    private final int memoryAlignment;
    private final String fallbackReason;
    private volatile boolean closed;

    private AlignedFile(Path path, int fd, boolean writable, boolean direct, int alignment, int memoryAlignment,
            String fallbackReason) {
        this.path = path;
        this.fd = fd;
        this.writable = writable;
        this.direct = direct;
        this.alignment = alignment;
        this.memoryAlignment = memoryAlignment;
        this.fallbackReason = fallbackReason;
    }

    /** Opens {@code path} with the given mode; options as for {@link java.nio.file.Files#newByteChannel}. */
    public static AlignedFile open(Path path, IoMode mode, OpenOption... options) throws IOException {
        return open(path, mode, LibC::open, options);
    }

    /** As {@link #open(Path, IoMode, OpenOption...)}, with the open call supplied (for fault injection). */
    public static AlignedFile open(Path path, IoMode mode, Opener opener, OpenOption... options)
            throws IOException {
        Set<OpenOption> opts = new HashSet<>(Arrays.asList(options)); // Set.of would reject repeated options
        boolean write = opts.contains(StandardOpenOption.WRITE);
        int flags = (write ? Platform.O_RDWR : Platform.O_RDONLY) | Platform.O_CLOEXEC;
        if (opts.contains(StandardOpenOption.CREATE_NEW)) {
            flags |= Platform.O_CREAT | Platform.O_EXCL;
        } else if (opts.contains(StandardOpenOption.CREATE)) {
            flags |= Platform.O_CREAT;
        }
        if (opts.contains(StandardOpenOption.TRUNCATE_EXISTING)) {
            flags |= Platform.O_TRUNC;
        }
        String name = path.toString();
        if (mode == IoMode.BUFFERED) {
            return new AlignedFile(path, opener.open(name, flags, 0644), write, false, 1, 1, null);
        }
        int fd;
        try {
            fd = opener.open(name, flags | Platform.O_DIRECT, 0644);
        } catch (ErrnoException e) {
            if (e.errno() != Errno.EINVAL) {
                throw e;
            }
            if (mode == IoMode.DIRECT) {
                throw new ErrnoException(
                        "open(" + name + ", O_DIRECT): the filesystem does not support direct I/O", e.errno());
            }
            String reason = "O_DIRECT refused by the filesystem of " + name + " (EINVAL); using buffered I/O";
            // Linux creates the file before it checks O_DIRECT support, so with O_EXCL the retry would fail
            // with EEXIST on the file the refused call just made. The refusal came after the existence check
            // (which would have answered EEXIST), so the file is ours and O_EXCL has done its job.
            int retry = flags & ~Platform.O_EXCL;
            return new AlignedFile(path, opener.open(name, retry, 0644), write, false, 1, 1, reason);
        }
        try {
            int[] statx = LibC.directIoAlignment(fd);
            int offsetAlign = probeAlignment(fd, statx);
            int memAlign = statx != null ? Math.max(statx[0], 1) : (int) LibC.pageSize();
            return new AlignedFile(path, fd, write, true, offsetAlign, memAlign, null);
        } catch (IOException | RuntimeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    /** QEMU's probe: the smallest of 512 and 4096 that a direct read at offset 0 accepts. */
    private static int probeAlignment(int fd, int[] statx) throws IOException {
        int page = (int) LibC.pageSize();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(Math.max(4096, page), Math.max(4096, page));
            for (int align = 512; align <= 4096; align <<= 1) {
                long n;
                try {
                    n = LibC.pread(fd, buf.asSlice(0, align), 0);
                } catch (ErrnoException e) {
                    if (e.errno() == Errno.EINVAL) {
                        continue;
                    }
                    throw e;
                }
                if (n > 0) {
                    return align;
                }
                // An empty file accepts any read: it proves nothing. Ask the kernel, else be safe.
                return statx != null ? Math.max(statx[1], 1) : 4096;
            }
        }
        throw new IOException("direct I/O on " + "file descriptor " + fd
                + ": neither 512- nor 4096-byte aligned reads are accepted");
    }

    @Override
    public Path path() {
        return path;
    }

    /** The file descriptor, for calls this class does not wrap. Invalid after {@link #close}. */
    public int fd() {
        return fd;
    }

    public boolean isDirect() {
        return direct;
    }

    public boolean isWritable() {
        return writable;
    }

    /** Offset and length alignment that direct requests need to skip the bounce buffer; 1 if buffered. */
    public int alignment() {
        return alignment;
    }

    /** Buffer address alignment for direct I/O; 1 if buffered. */
    public int memoryAlignment() {
        return memoryAlignment;
    }

    /** Why a {@link IoMode#DIRECT_OR_BUFFERED} open fell back to buffered I/O, or null if it did not. */
    @Override
    public String fallbackReason() {
        return fallbackReason;
    }

    private void ensureOpen() throws IOException {
        if (closed) {
            throw new IOException(path + ": file is closed");
        }
    }

    private boolean passesStraight(long offset, MemorySegment seg) {
        if (!direct) {
            return true;
        }
        long mask = alignment - 1;
        return seg.isNative() && (offset & mask) == 0 && (seg.byteSize() & mask) == 0
                && (seg.address() & (memoryAlignment - 1)) == 0;
    }

    /**
     * Reads up to {@code dst.byteSize()} bytes at {@code offset}; returns how many were read (fewer only at
     * end of file).
     */
    @Override
    public long read(long offset, MemorySegment dst) throws IOException {
        ensureOpen();
        checkRange(offset, dst.byteSize());
        if (passesStraight(offset, dst)) {
            return LibC.pread(fd, dst, offset);
        }
        long len = dst.byteSize();
        long start = offset & -alignment;
        long end = alignUp(offset + len);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bounce = arena.allocate(end - start, bounceAlignment());
            long n = LibC.pread(fd, bounce, start);
            long head = offset - start;
            long got = Math.max(0, Math.min(len, n - head));
            MemorySegment.copy(bounce, head, dst, 0, got);
            return got;
        }
    }

    /** Reads exactly {@code dst.byteSize()} bytes at {@code offset}, or fails with {@link EOFException}. */
    @Override
    public void readFully(long offset, MemorySegment dst) throws IOException {
        long n = read(offset, dst);
        if (n != dst.byteSize()) {
            throw new EOFException(path + ": read of " + dst.byteSize() + " bytes at " + offset
                    + " ended after " + n + " bytes (end of file)");
        }
    }

    /** Writes all of {@code src} at {@code offset}. */
    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        ensureOpen();
        requireWritable();
        checkRange(offset, src.byteSize());
        if (src.byteSize() == 0) {
            return; // a rounded-out empty write would rewrite a block and could lengthen the file
        }
        if (passesStraight(offset, src)) {
            LibC.pwrite(fd, src, offset);
            return;
        }
        long len = src.byteSize();
        long start = offset & -alignment;
        long end = alignUp(offset + len);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bounce = arena.allocate(end - start, bounceAlignment());
            long n = 0;
            if (start < offset || end > offset + len) {
                n = LibC.pread(fd, bounce, start); // keep the bytes around the write
            }
            MemorySegment.copy(src, 0, bounce, offset - start, len);
            LibC.pwrite(fd, bounce, start);
            long oldEnd = start + n;
            if (oldEnd < end && end > offset + len) {
                // The rounded-up write lengthened the file past both its old end and the write's end.
                LibC.ftruncate(fd, Math.max(oldEnd, offset + len));
            }
        }
    }

    private long bounceAlignment() {
        return Math.max(memoryAlignment, LibC.pageSize());
    }

    private long alignUp(long v) {
        return (v + alignment - 1) & -alignment;
    }

    private static void checkRange(long offset, long length) {
        if (offset < 0 || offset > Long.MAX_VALUE - length - 4096 * 2) {
            throw new IllegalArgumentException("bad file range: " + length + " bytes at " + offset);
        }
    }

    private void requireWritable() throws IOException {
        if (!writable) {
            throw new IOException(path + ": file is open read-only");
        }
    }

    /** Current file size in bytes. */
    @Override
    public long size() throws IOException {
        ensureOpen();
        return LibC.fstat(fd).size();
    }

    @Override
    public long allocatedBytes() throws IOException {
        return stat().allocatedBytes();
    }

    /** {@code fstat} of the open file. */
    public LibC.FileStat stat() throws IOException {
        ensureOpen();
        return LibC.fstat(fd);
    }

    /** Sets the file size; growing leaves a hole that reads back zeros. */
    @Override
    public void truncate(long length) throws IOException {
        ensureOpen();
        requireWritable();
        LibC.ftruncate(fd, length);
    }

    /** {@code fdatasync}: what was written is on stable storage and can be read back after a crash. */
    @Override
    public void dataSync() throws IOException {
        ensureOpen();
        LibC.fdatasync(fd);
    }

    /** {@code fsync}. */
    public void sync() throws IOException {
        ensureOpen();
        LibC.fsync(fd);
    }

    /**
     * Deallocates a range; it reads back zeros and the file size is unchanged. {@code EOPNOTSUPP} if the
     * filesystem cannot. An empty range does nothing.
     */
    @Override
    public void punchHole(long offset, long length) throws IOException {
        ensureOpen();
        requireWritable();
        if (length == 0) {
            return; // fallocate answers EINVAL for length 0
        }
        LibC.fallocate(fd, Platform.FALLOC_FL_PUNCH_HOLE | Platform.FALLOC_FL_KEEP_SIZE, offset, length);
    }

    /**
     * Zeroes a range, preferring the filesystem's cheap zeroing; a range past the end extends the file to
     * {@code offset + length}. Where {@code FALLOC_FL_ZERO_RANGE} is not supported (tmpfs, for one) the part
     * inside the file is punched out, or written with zeros where holes cannot be punched either. Like an
     * unaligned direct write, the fallback must not race with writes to the same range or past the end.
     */
    @Override
    public void zeroRange(long offset, long length) throws IOException {
        ensureOpen();
        requireWritable();
        if (length == 0) {
            return;
        }
        try {
            LibC.fallocate(fd, Platform.FALLOC_FL_ZERO_RANGE, offset, length);
            return;
        } catch (ErrnoException e) {
            if (e.errno() != Errno.EOPNOTSUPP) {
                throw e;
            }
        }
        checkRange(offset, length);
        long size = size();
        long inside = Math.min(length, Math.max(0, size - offset));
        if (inside > 0) {
            try {
                punchHole(offset, inside);
            } catch (ErrnoException e) {
                if (e.errno() != Errno.EOPNOTSUPP) {
                    throw e;
                }
                writeZeros(offset, inside);
            }
        }
        if (offset + length > size) {
            LibC.ftruncate(fd, offset + length);
        }
    }

    /**
     * {@code FALLOC_FL_ZERO_RANGE} (keeps the blocks allocated), else a punched hole; false where the file
     * system supports neither. The range must lie inside the file.
     */
    @Override
    public boolean zeroRangeFast(long offset, long length) throws IOException {
        ensureOpen();
        requireWritable();
        if (length == 0) {
            return true;
        }
        checkRange(offset, length);
        for (int mode : new int[] {Platform.FALLOC_FL_ZERO_RANGE | Platform.FALLOC_FL_KEEP_SIZE,
                Platform.FALLOC_FL_PUNCH_HOLE | Platform.FALLOC_FL_KEEP_SIZE}) {
            if (fallocateIfSupported(mode, offset, length)) {
                return true;
            }
        }
        return false;
    }

    /** {@code fallocate(mode)}; false (nothing done) where the file system does not support the mode. */
    private boolean fallocateIfSupported(int mode, long offset, long length) throws IOException {
        try {
            LibC.fallocate(fd, mode, offset, length);
            return true;
        } catch (ErrnoException e) {
            if (e.errno() != Errno.EOPNOTSUPP) {
                throw e;
            }
            return false;
        }
    }

    /** {@code fallocate(FALLOC_FL_KEEP_SIZE)}; false where the file system does not support it. */
    @Override
    public boolean reserve(long offset, long length) throws IOException {
        ensureOpen();
        requireWritable();
        if (length <= 0) {
            return true;
        }
        checkRange(offset, length);
        return fallocateIfSupported(Platform.FALLOC_FL_KEEP_SIZE, offset, length);
    }

    /** False on file systems in memory (tmpfs, ramfs, hugetlbfs), by {@code fstatfs}; true elsewhere. */
    @Override
    public boolean reservesCheaply() throws IOException {
        ensureOpen();
        long type = LibC.fileSystemType(fd);
        return type != Platform.TMPFS_MAGIC && type != Platform.RAMFS_MAGIC && type != Platform.HUGETLBFS_MAGIC;
    }

    private void writeZeros(long offset, long length) throws IOException {
        long chunk = Math.min(length, 1 << 20);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment zeros = arena.allocate(chunk, bounceAlignment()); // allocate() zeroes
            for (long done = 0; done < length; done += chunk) {
                write(offset + done, zeros.asSlice(0, Math.min(chunk, length - done)));
            }
        }
    }

    /** See {@link LibC#seekData}. */
    @Override
    public long seekData(long offset) throws IOException {
        ensureOpen();
        return LibC.seekData(fd, offset);
    }

    /** See {@link LibC#seekHole}. */
    @Override
    public long seekHole(long offset) throws IOException {
        ensureOpen();
        return LibC.seekHole(fd, offset);
    }

    public boolean isClosed() {
        return closed;
    }

    /** Closes the descriptor. Idempotent, also when called from several threads at once. */
    @Override
    public synchronized void close() throws IOException {
        // Serialized: two racing closes could both see closed == false, and the second close(fd) would then
        // close whatever file the descriptor number had been reused for in between.
        if (closed) {
            return;
        }
        closed = true;
        LibC.close(fd);
    }

    @Override
    public String toString() {
        return path + (direct ? " (O_DIRECT, " + alignment + "-byte aligned)" : " (buffered)");
    }
}
