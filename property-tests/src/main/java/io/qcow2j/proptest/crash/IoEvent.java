package io.qcow2j.proptest.crash;

import io.qcow2j.ffm.Errno;








/**
 * One entry of a {@link RecordingFile}'s log, in the order the calls completed. Writes, truncations and hole
 * punches change the file; a {@link Sync} makes every change before it durable; a {@link Fault} is a call that
 * failed on purpose and changed nothing.
 */
public sealed interface IoEvent {

    /** Whether this event changes the file's content or size (and so may or may not survive a crash). */
    default boolean mutates() {
        return false;
    }

    /** A completed {@code pwrite} of {@code data} at {@code offset}. */
    record Write(long offset, byte[] data) implements IoEvent {
        public long length() {
            return data.length;
        }

        public long end() {
            return offset + data.length;
        }

        /** Whether a 512-byte boundary lies strictly inside the write, so that a crash can tear it. */
        public boolean tearable() {
            return ((offset + 512) & -512L) < end();
        }

        @Override
        public boolean mutates() {
            return true;
        }

        @Override
        public String toString() {
            return "write(" + data.length + " bytes at 0x" + Long.toHexString(offset) + ")";
        }
    }

    /** A completed {@code fdatasync}. */
    record Sync() implements IoEvent {
        @Override
        public String toString() {
            return "sync";
        }
    }

    /** A completed {@code ftruncate}. */
    record Truncate(long length) implements IoEvent {
        @Override
        public boolean mutates() {
            return true;
        }
    }

    /** A completed hole punch: the range reads zeros. */
    record PunchHole(long offset, long length) implements IoEvent {
        @Override
        public boolean mutates() {
            return true;
        }
    }

    /**
     * A call that failed because a fault was injected ({@code call} is {@code pwrite} or {@code fdatasync});
     * nothing was written or synced.
     */
    record Fault(String call, int errno, long offset, long length) implements IoEvent {
        @Override
        public String toString() {
            return "fault(" + call + ", " + io.qcow2j.ffm.Errno.name(errno)
                    + (call.equals("pwrite") ? ", " + length + " bytes at 0x" + Long.toHexString(offset) : "") + ")";
        }
    }
}
