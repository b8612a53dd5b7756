package io.qcow2j.ffm;

/**
 * Names of Linux errno values. x86-64 and aarch64 both use the asm-generic numbering, so one table serves
 * both. The human text comes from libc's {@code strerror} (see {@link ErrnoException}).
 */
public final class Errno {
    public static final int EPERM = 1;
    public static final int ENOENT = 2;
    public static final int EINTR = 4;
    public static final int EIO = 5;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    public static final int ENOMEM = 12;
    public static final int EACCES = 13;
    public static final int EFAULT = 14;
    public static final int EEXIST = 17;
    public static final int ENOTDIR = 20;
    public static final int EISDIR = 21;
    public static final int EINVAL = 22;
    public static final int EFBIG = 27;
    public static final int ENOSPC = 28;
    public static final int ESPIPE = 29;
    public static final int EROFS = 30;
    public static final int ERANGE = 34;
    public static final int ENOSYS = 38;
    public static final int ENXIO = 6;
    public static final int EOVERFLOW = 75;
    public static final int EOPNOTSUPP = 95;
    public static final int EDQUOT = 122;
    public static final int EPIPE = 32;
    public static final int EADDRINUSE = 98;
    public static final int ECONNABORTED = 103;
    public static final int ECONNRESET = 104;
    public static final int ENOTCONN = 107;
    public static final int ECONNREFUSED = 111;

    private static final String[] NAMES = new String[134];

    static {
        String[] pairs = {
            "1", "EPERM", "2", "ENOENT", "3", "ESRCH", "4", "EINTR", "5", "EIO", "6", "ENXIO", "7", "E2BIG",
            "8", "ENOEXEC", "9", "EBADF", "10", "ECHILD", "11", "EAGAIN", "12", "ENOMEM", "13", "EACCES",
            "14", "EFAULT", "15", "ENOTBLK", "16", "EBUSY", "17", "EEXIST", "18", "EXDEV", "19", "ENODEV",
            "20", "ENOTDIR", "21", "EISDIR", "22", "EINVAL", "23", "ENFILE", "24", "EMFILE", "25", "ENOTTY",
            "26", "ETXTBSY", "27", "EFBIG", "28", "ENOSPC", "29", "ESPIPE", "30", "EROFS", "31", "EMLINK",
            "32", "EPIPE", "33", "EDOM", "34", "ERANGE", "35", "EDEADLK", "36", "ENAMETOOLONG",
            "37", "ENOLCK", "38", "ENOSYS", "39", "ENOTEMPTY", "40", "ELOOP", "61", "ENODATA",
            "75", "EOVERFLOW", "95", "EOPNOTSUPP", "98", "EADDRINUSE", "103", "ECONNABORTED",
            "104", "ECONNRESET", "107", "ENOTCONN", "111", "ECONNREFUSED", "110", "ETIMEDOUT", "116", "ESTALE", "121", "EREMOTEIO",
            "122", "EDQUOT", "125", "ECANCELED", "133", "EHWPOISON"
        };
        for (int i = 0; i < pairs.length; i += 2) {
            NAMES[Integer.parseInt(pairs[i])] = pairs[i + 1];
        }
    }

    private Errno() {}

    /** The symbolic name ({@code "EINVAL"}), or {@code "errno 200"} for values without one. */
    public static String name(int errno) {
        String n = errno > 0 && errno < NAMES.length ? NAMES[errno] : null;
        return n != null ? n : "errno " + errno;
    }
}
