package io.qcow2j.ffm;

import java.util.Locale;

/**
 * Linux constants whose values depend on the CPU architecture, chosen once from {@code os.arch}.
 *
 * <p>Most flags share the asm-generic values on x86-64 and aarch64, but not all: {@code O_DIRECT} is
 * {@code 040000} on x86-64 and {@code 0200000} on aarch64 (where {@code 040000} means
 * {@code O_DIRECTORY}). Getting this wrong silently opens files without direct I/O, so unknown
 * architectures are refused rather than guessed.
 */
public final class Platform {
    /** The architecture as the JVM names it ({@code amd64} or {@code aarch64}). */
    public static final String ARCH = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);

    private static final boolean X86_64 = ARCH.equals("amd64") || ARCH.equals("x86_64");
    private static final boolean AARCH64 = ARCH.equals("aarch64") || ARCH.equals("arm64");

    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    public static final int O_TRUNC = 01000;
    public static final int O_CLOEXEC = 02000000;
    /** Bypass the page cache; requires aligned buffers, offsets and lengths. Architecture-dependent. */
    public static final int O_DIRECT = X86_64 ? 040000 : 0200000;

    public static final int SEEK_SET = 0;
    public static final int SEEK_CUR = 1;
    public static final int SEEK_END = 2;
    public static final int SEEK_DATA = 3;
    public static final int SEEK_HOLE = 4;

    public static final int FALLOC_FL_KEEP_SIZE = 0x01;
    /** {@code f_type} of tmpfs, ramfs and hugetlbfs (linux/magic.h): file systems in memory. */
    public static final long TMPFS_MAGIC = 0x01021994L;
    public static final long RAMFS_MAGIC = 0x858458f6L;
    public static final long HUGETLBFS_MAGIC = 0x958458f6L;
    public static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    public static final int FALLOC_FL_ZERO_RANGE = 0x10;

    public static final int PROT_READ = 0x1;
    public static final int PROT_WRITE = 0x2;
    public static final int MAP_PRIVATE = 0x02;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MAP_NORESERVE = 0x4000;
    /** Linux semantics: the pages are dropped at once and read back as zeros (posix_madvise's is a no-op). */
    public static final int MADV_DONTNEED = 4;

    public static final int SC_PAGESIZE = 30;

    public static final int AT_EMPTY_PATH = 0x1000;
    public static final int STATX_DIOALIGN = 0x2000;

    private Platform() {}

    /** Fails with one clear line on a platform whose constants we do not know. */
    static void requireSupported() {
        String os = System.getProperty("os.name", "");
        if (!os.equals("Linux") || !(X86_64 || AARCH64)) {
            throw new UnsupportedOperationException(
                    "qcow2j's libc bindings support Linux on x86-64 and aarch64; this is " + os + " " + ARCH);
        }
    }
}
