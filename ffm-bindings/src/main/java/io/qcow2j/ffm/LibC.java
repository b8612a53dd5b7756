package io.qcow2j.ffm;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The libc calls qcow2j needs, each a downcall linked once, on first use, and invoked with exact types.
 *
 * <p>Every call that can fail captures {@code errno} through {@link Linker.Option#captureCallState} into a
 * per-thread state segment (never one shared static segment: two threads failing at once would read each
 * other's errno) and throws an {@link ErrnoException} naming the call, its arguments and the error.
 * {@code EINTR} is retried. Methods taking a {@link MemorySegment} accept native segments and, for
 * {@code pread}/{@code pwrite}, heap segments too (passed through a critical downcall, without a copy).
 */
@SuppressWarnings("restricted") // this module is the one granted native access: restricted calls are its job
public final class LibC {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    /** Per-thread errno capture state; freed with the thread (auto arena). */
    private static final ThreadLocal<MemorySegment> CALL_STATE =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CAPTURE_LAYOUT));

    /** The largest transfer Linux performs in one read/write call; bigger requests are split anyway. */
    private static final long MAX_TRANSFER = 0x7ffff000L;
    /** Heap transfers go through critical downcalls, which hold off GC; keep each one short. */
    private static final long MAX_HEAP_TRANSFER = 1L << 20;

    static {
        Platform.requireSupported();
    }

    /*
     * The downcalls, each linked on first use: a holder class per function (its static final field is a
     * constant to the JIT, as a field of LibC was), so that a command pays only for the calls it makes.
     * Linking one costs a symbol lookup and the generation of its stub classes; linking all twenty up front
     * was a measurable part of every command's start-up.
     */
    private static final class Open {
        static final MethodHandle H = handle("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
                CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
    }

    private static final class Close {
        static final MethodHandle H = handle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    }

    /** pread and pwrite: {@code ssize_t (int fd, void *buf, size_t count, off_t offset)}. */
    private static final FunctionDescriptor RW =
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG);

    private static final class Pread {
        static final MethodHandle H = handle("pread", RW, CAPTURE_ERRNO);
    }

    private static final class PreadHeap {
        static final MethodHandle H = handle("pread", RW, CAPTURE_ERRNO, Linker.Option.critical(true));
    }

    private static final class Pwrite {
        static final MethodHandle H = handle("pwrite", RW, CAPTURE_ERRNO);
    }

    private static final class PwriteHeap {
        static final MethodHandle H = handle("pwrite", RW, CAPTURE_ERRNO, Linker.Option.critical(true));
    }

    private static final class Fdatasync {
        static final MethodHandle H = handle("fdatasync", FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    }

    private static final class Fsync {
        static final MethodHandle H = handle("fsync", FunctionDescriptor.of(JAVA_INT, JAVA_INT), CAPTURE_ERRNO);
    }

    private static final class Ftruncate {
        static final MethodHandle H =
                handle("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG), CAPTURE_ERRNO);
    }

    private static final class Fallocate {
        static final MethodHandle H = handle("fallocate",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG), CAPTURE_ERRNO);
    }

    private static final class Lseek {
        static final MethodHandle H =
                handle("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    }

    private static final class Fstat {
        static final MethodHandle H =
                handle("fstat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), CAPTURE_ERRNO);
    }

    private static final class Fstatfs {
        static final MethodHandle H =
                handle("fstatfs", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), CAPTURE_ERRNO);
    }

    private static final class Statx {
        static final MethodHandle H = handle("statx",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS), CAPTURE_ERRNO);
    }

    private static final class Mmap {
        static final MethodHandle H = handle("mmap",
                FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG),
                CAPTURE_ERRNO);
    }

    private static final class Munmap {
        static final MethodHandle H =
                handle("munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), CAPTURE_ERRNO);
    }

    private static final class Madvise {
        static final MethodHandle H =
                handle("madvise", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
    }

    private static final class Sysconf {
        static final MethodHandle H = handle("sysconf", FunctionDescriptor.of(JAVA_LONG, JAVA_INT), CAPTURE_ERRNO);
        static final MethodHandle ERRNO_LOCATION = handle("__errno_location", FunctionDescriptor.of(ADDRESS));
    }

    private static final class Strerror {
        static final MethodHandle H = handle("strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    /** The page size, asked once, when first needed. */
    private static final class PageSize {
        static final long VALUE;

        static {
            try {
                VALUE = sysconf(Platform.SC_PAGESIZE);
            } catch (ErrnoException e) {
                throw new ExceptionInInitializerError(e);
            }
        }
    }

    private LibC() {}

    static MethodHandle handle(String name, FunctionDescriptor fd, Linker.Option... options) {
        MemorySegment symbol = LIBC.find(name)
                .orElseThrow(() -> new UnsupportedOperationException("libc has no symbol '" + name + "'"));
        return LINKER.downcallHandle(symbol, fd, options);
    }

    static MemorySegment state() {
        return CALL_STATE.get();
    }

    static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    /** Wraps a Throwable escaping invokeExact; only Errors and RuntimeExceptions can, by signature. */
    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException("unexpected checked exception from a downcall", t);
    }

    /** The host page size, from {@code sysconf(_SC_PAGESIZE)}. */
    public static long pageSize() {
        return PageSize.VALUE;
    }

    /**
     * {@code sysconf(name)}. Returns -1 for a limit that is indeterminate, as sysconf does; only an invalid
     * name is an error.
     */
    public static long sysconf(int name) throws ErrnoException {
        MemorySegment st = state();
        long r;
        try {
            // sysconf leaves errno alone when it answers -1 for "no limit", so the thread's real errno must
            // be 0 before the call: zeroing the capture segment would not do, it is only written after it.
            // Nothing between these two downcalls touches errno, and a virtual thread cannot move to
            // another carrier between them.
            MemorySegment errnoLocation = (MemorySegment) Sysconf.ERRNO_LOCATION.invokeExact();
            errnoLocation.reinterpret(JAVA_INT.byteSize()).set(JAVA_INT, 0, 0);
            r = (long) Sysconf.H.invokeExact(st, name);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (r == -1 && errno(st) != 0) {
            throw new ErrnoException("sysconf(" + name + ")", errno(st));
        }
        return r;
    }

    /** libc's text for an errno value, e.g. "Invalid argument". */
    public static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) Strerror.H.invokeExact(errno);
            return s.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }

    /** {@code open(path, flags, mode)}; returns the file descriptor. */
    public static int open(String path, int flags, int mode) throws ErrnoException {
        if (path.indexOf('\0') >= 0) {
            // C would stop at the NUL and open a different, shorter path.
            throw new IllegalArgumentException("path contains a NUL character: " + path.replace('\0', '?'));
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment cpath = arena.allocateFrom(path);
            MemorySegment st = state();
            while (true) {
                int fd = (int) Open.H.invokeExact(st, cpath, flags, mode);
                if (fd >= 0) {
                    return fd;
                }
                int e = errno(st);
                if (e != Errno.EINTR) {
                    throw new ErrnoException("open(" + path + ", flags=0" + Integer.toOctalString(flags) + ")", e);
                }
            }
        } catch (ErrnoException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {@code close(fd)}. Not retried on EINTR: on Linux the descriptor is gone either way. */
    public static void close(int fd) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) Close.H.invokeExact(st, fd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (r != 0) {
            throw new ErrnoException("close(fd=" + fd + ")", errno(st));
        }
    }

    /**
     * Reads {@code dst.byteSize()} bytes at {@code offset}, looping over short reads and EINTR. Returns the
     * number of bytes read: fewer than asked only at end of file.
     */
    public static long pread(int fd, MemorySegment dst, long offset) throws ErrnoException {
        if (dst.isReadOnly()) {
            // The kernel writes through the raw address and would ignore the segment's read-only view.
            throw new IllegalArgumentException("pread into a read-only segment");
        }
        return transfer("pread", fd, dst, offset, true);
    }

    /** Writes all of {@code src} at {@code offset}, looping over short writes and EINTR. */
    public static void pwrite(int fd, MemorySegment src, long offset) throws ErrnoException {
        transfer("pwrite", fd, src, offset, false);
    }

    /**
     * The loop of pread and pwrite: chunks no bigger than one call may move, EINTR retried, a short read ends
     * at end of file, a write of nothing is an error (a regular file never does that; refuse to spin).
     */
    private static long transfer(String name, int fd, MemorySegment seg, long offset, boolean read)
            throws ErrnoException {
        long done = 0;
        long size = seg.byteSize();
        boolean heap = !seg.isNative();
        MemorySegment st = state();
        while (done < size) {
            long chunk = Math.min(size - done, heap ? MAX_HEAP_TRANSFER : MAX_TRANSFER);
            MemorySegment part = done == 0 && chunk == size ? seg : seg.asSlice(done, chunk); // no view in one go
            long n;
            try {
                // each holder is touched only on its own path: a heap transfer links the critical downcall
                n = read ? (heap ? (long) PreadHeap.H.invokeExact(st, fd, part, chunk, offset + done)
                                 : (long) Pread.H.invokeExact(st, fd, part, chunk, offset + done))
                         : (heap ? (long) PwriteHeap.H.invokeExact(st, fd, part, chunk, offset + done)
                                 : (long) Pwrite.H.invokeExact(st, fd, part, chunk, offset + done));
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (n < 0) {
                int e = errno(st);
                if (e == Errno.EINTR) {
                    continue;
                }
                throw new ErrnoException(name + "(fd=" + fd + ", " + chunk + " bytes at " + (offset + done) + ")", e);
            }
            if (n == 0) {
                if (read) {
                    break;
                }
                throw new ErrnoException(name + "(fd=" + fd + ", " + chunk + " bytes at " + (offset + done)
                        + ") wrote 0 bytes", Errno.EIO);
            }
            done += n;
        }
        return done;
    }

    /** {@code fdatasync(fd)}: file data and the metadata needed to read it back are on stable storage. */
    public static void fdatasync(int fd) throws ErrnoException {
        intCall(true, fd);
    }

    /** {@code fsync(fd)}. */
    public static void fsync(int fd) throws ErrnoException {
        intCall(false, fd);
    }

    /** fdatasync ({@code data}) or fsync, retried on EINTR. */
    private static void intCall(boolean data, int fd) throws ErrnoException {
        String name = data ? "fdatasync" : "fsync";
        MemorySegment st = state();
        while (true) {
            int r;
            try {
                r = data ? (int) Fdatasync.H.invokeExact(st, fd) : (int) Fsync.H.invokeExact(st, fd);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (r == 0) {
                return;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException(name + "(fd=" + fd + ")", e);
            }
        }
    }

    /** {@code ftruncate(fd, length)}. */
    public static void ftruncate(int fd, long length) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            int r;
            try {
                r = (int) Ftruncate.H.invokeExact(st, fd, length);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (r == 0) {
                return;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("ftruncate(fd=" + fd + ", " + length + ")", e);
            }
        }
    }

    /**
     * {@code fallocate(fd, mode, offset, length)}: with {@link Platform#FALLOC_FL_PUNCH_HOLE} |
     * {@link Platform#FALLOC_FL_KEEP_SIZE} deallocates the range (reads back zeros), with
     * {@link Platform#FALLOC_FL_ZERO_RANGE} zeroes it. {@code EOPNOTSUPP} means the filesystem cannot.
     */
    public static void fallocate(int fd, int mode, long offset, long length) throws ErrnoException {
        MemorySegment st = state();
        while (true) {
            int r;
            try {
                r = (int) Fallocate.H.invokeExact(st, fd, mode, offset, length);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (r == 0) {
                return;
            }
            int e = errno(st);
            if (e != Errno.EINTR) {
                throw new ErrnoException("fallocate(fd=" + fd + ", mode=0x" + Integer.toHexString(mode)
                        + ", " + length + " bytes at " + offset + ")", e);
            }
        }
    }

    /**
     * {@code lseek(fd, offset, whence)}. With {@link Platform#SEEK_DATA} / {@link Platform#SEEK_HOLE} an
     * offset at or past the last data answers {@code ENXIO}; {@link #seekData} and {@link #seekHole} turn
     * that into a value.
     */
    public static long lseek(int fd, long offset, int whence) throws ErrnoException {
        MemorySegment st = state();
        long r;
        try {
            r = (long) Lseek.H.invokeExact(st, fd, offset, whence);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (r < 0) {
            throw new ErrnoException("lseek(fd=" + fd + ", " + offset + ", whence=" + whence + ")", errno(st));
        }
        return r;
    }

    /** The first offset ≥ {@code offset} holding data, or -1 if there is none before end of file. */
    public static long seekData(int fd, long offset) throws ErrnoException {
        requireNonNegativeSeek(offset);
        try {
            return lseek(fd, offset, Platform.SEEK_DATA);
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ENXIO) {
                return -1;
            }
            throw e;
        }
    }

    /** The first offset ≥ {@code offset} in a hole (end of file counts as a hole), or -1 past the end. */
    public static long seekHole(int fd, long offset) throws ErrnoException {
        requireNonNegativeSeek(offset);
        try {
            return lseek(fd, offset, Platform.SEEK_HOLE);
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ENXIO) {
                return -1;
            }
            throw e;
        }
    }

    private static void requireNonNegativeSeek(long offset) {
        // Linux answers ENXIO for a negative offset, which would read as "no data/hole after it".
        if (offset < 0) {
            throw new IllegalArgumentException("negative seek offset: " + offset);
        }
    }

    /** Size and allocation facts of an open file, from {@code fstat}. */
    public record FileStat(long size, long blockSize, long allocatedBytes, int mode) {
        /** True for a regular file ({@code S_ISREG}). */
        public boolean isRegularFile() {
            return (mode & 0170000) == 0100000;
        }

        /** True for a block device ({@code S_ISBLK}). */
        public boolean isBlockDevice() {
            return (mode & 0170000) == 0060000;
        }
    }

    /**
     * {@code fstat(fd)}. The offsets of {@code st_mode}, {@code st_size}, {@code st_blksize} and
     * {@code st_blocks} are those of x86-64's and aarch64's {@code struct stat}; {@code st_blksize} is a
     * long on x86-64 and an int (followed by padding) on aarch64, read here as its low 32 bits on both.
     */
    /**
     * The file system type of an open file: {@code f_type} of {@code fstatfs} (a magic number such as
     * {@link Platform#TMPFS_MAGIC}; the first, word-sized field of {@code struct statfs} on 64-bit Linux).
     */
    public static long fileSystemType(int fd) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(256, 16); // struct statfs is 120 bytes on x86-64 and aarch64
            MemorySegment st = state();
            int r = (int) Fstatfs.H.invokeExact(st, fd, buf);
            if (r != 0) {
                throw new ErrnoException("fstatfs(fd=" + fd + ")", errno(st));
            }
            return buf.get(JAVA_LONG, 0);
        } catch (ErrnoException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static FileStat fstat(int fd) throws ErrnoException {
        boolean x86 = Platform.O_DIRECT == 040000;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(256, 16);
            MemorySegment st = state();
            int r = (int) Fstat.H.invokeExact(st, fd, buf);
            if (r != 0) {
                throw new ErrnoException("fstat(fd=" + fd + ")", errno(st));
            }
            int mode = buf.get(JAVA_INT, x86 ? 24 : 16);
            long size = buf.get(JAVA_LONG, 48);
            long blksize = buf.get(JAVA_INT, 56) & 0xffffffffL;
            long blocks = buf.get(JAVA_LONG, 64);
            return new FileStat(size, blksize, blocks * 512, mode);
        } catch (ErrnoException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * The direct-I/O alignment Linux reports for an open file ({@code statx} with {@code STATX_DIOALIGN},
     * Linux 6.1+): {@code {memoryAlignment, offsetAlignment}}, or {@code null} when the kernel or the
     * filesystem does not say (then probe, as QEMU does).
     */
    public static int[] directIoAlignment(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(256, 16);
            MemorySegment empty = arena.allocateFrom("");
            MemorySegment st = state();
            int r = (int) Statx.H.invokeExact(st, fd, empty, Platform.AT_EMPTY_PATH, Platform.STATX_DIOALIGN, buf);
            if (r != 0) {
                return null;
            }
            int mask = buf.get(JAVA_INT, 0);
            int mem = buf.get(JAVA_INT, 0x98);
            int off = buf.get(JAVA_INT, 0x9c);
            if ((mask & Platform.STATX_DIOALIGN) == 0 || mem == 0 || off == 0) {
                return null;
            }
            return new int[] {mem, off};
        } catch (Throwable t) {
            return null;
        }
    }

    /**
     * An anonymous private mapping of {@code length} bytes ({@code MAP_NORESERVE}: pages are committed
     * when first touched). Returns the zero-length address segment; callers give it a size and lifetime.
     */
    public static MemorySegment mmapAnonymous(long length) throws ErrnoException {
        MemorySegment st = state();
        MemorySegment addr;
        try {
            addr = (MemorySegment) Mmap.H.invokeExact(st, MemorySegment.NULL, length,
                    Platform.PROT_READ | Platform.PROT_WRITE,
                    Platform.MAP_PRIVATE | Platform.MAP_ANONYMOUS | Platform.MAP_NORESERVE, -1, 0L);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (addr.address() == -1L) {
            throw new ErrnoException("mmap(anonymous, " + length + " bytes)", errno(st));
        }
        return addr;
    }

    /** {@code munmap(address, length)}. */
    public static void munmap(MemorySegment address, long length) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) Munmap.H.invokeExact(st, address, length);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (r != 0) {
            throw new ErrnoException("munmap(0x" + Long.toHexString(address.address()) + ", " + length + ")",
                    errno(st));
        }
    }

    /** {@code madvise(address, length, advice)}; {@code address} must be page-aligned. */
    public static void madvise(MemorySegment address, long length, int advice) throws ErrnoException {
        MemorySegment st = state();
        int r;
        try {
            r = (int) Madvise.H.invokeExact(st, address, length, advice);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (r != 0) {
            throw new ErrnoException("madvise(0x" + Long.toHexString(address.address()) + ", " + length
                    + ", advice=" + advice + ")", errno(st));
        }
    }
}
