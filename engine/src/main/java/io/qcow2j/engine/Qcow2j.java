package io.qcow2j.engine;

/** Facts about this build of the engine. */
public final class Qcow2j {
    private Qcow2j() {}

    /** The engine's module version, or "dev" when run from classes without a module version. */
    public static String version() {
        return Qcow2j.class.getModule().getDescriptor() != null
                ? Qcow2j.class.getModule().getDescriptor().rawVersion().orElse("dev")
                : "dev";
    }

    /**
     * One line naming the I/O backend the engine's files use for virtual threads' requests, e.g.
     * {@code I/O backend: io_uring (256 entries)}, or the thread-pool fallback and why io_uring is not used.
     */
    public static String ioBackend() {
        return io.qcow2j.ffm.AsyncIo.shared().description();
    }

    /**
     * Releases the process-wide I/O backend the engine's files share, if it was opened: the last step of a
     * command-line tool before it exits, once every image is closed (a JVM exits up to 300 ms late while the
     * backend's io_uring reaper waits in a native call). Opening an image afterwards opens a new backend.
     */
    public static void releaseSharedIo() {
        io.qcow2j.ffm.AsyncIo.closeShared();
    }
}
