package io.qcow2j.ffm;

/** How an {@link AlignedFile} reaches the disk. */
public enum IoMode {
    /** Through the page cache. Any offset, length and buffer. */
    BUFFERED,
    /**
     * {@code O_DIRECT}, bypassing the page cache. If the filesystem refuses {@code O_DIRECT} the open fails
     * with a clear error.
     */
    DIRECT,
    /**
     * {@code O_DIRECT} where the filesystem accepts it, else buffered I/O; the fallback is reported through
     * {@link AlignedFile#fallbackReason()}, never silent.
     */
    DIRECT_OR_BUFFERED
}
