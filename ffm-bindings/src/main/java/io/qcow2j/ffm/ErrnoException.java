package io.qcow2j.ffm;

import java.io.IOException;

/**
 * A libc call failed. The message names the call with its arguments, the errno name and libc's text, e.g.
 * {@code pread(fd=7, 4096 bytes at 1048576): EINVAL (Invalid argument)}.
 */
public class ErrnoException extends IOException {
    private static final long serialVersionUID = 1L;

    private final int errno;
    private final String call;

    public ErrnoException(String call, int errno) {
        super(call + ": " + Errno.name(errno) + " (" + LibC.strerror(errno) + ")");
        this.call = call;
        this.errno = errno;
    }

    /** The errno value, e.g. {@link Errno#EINVAL}. */
    public int errno() {
        return errno;
    }

    /** The symbolic errno name, e.g. {@code "EINVAL"}. */
    public String errnoName() {
        return Errno.name(errno);
    }

    /** The call and its arguments, e.g. {@code pread(fd=7, 4096 bytes at 1048576)}. */
    public String call() {
        return call;
    }
}
