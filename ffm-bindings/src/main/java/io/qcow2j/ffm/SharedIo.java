package io.qcow2j.ffm;

/**
 * Holder of {@link AsyncIo#shared()}: opened when first asked for, closed by {@link AsyncIo#closeShared()}
 * (then opened again if asked for again).
 */
final class SharedIo {
    /** The open backend, or null before the first use and after closeShared. Guarded by the class lock. */
    private static AsyncIo instance;

    private SharedIo() {}

    static synchronized AsyncIo get() {
        if (instance == null) {
            instance = AsyncIo.open(Integer.getInteger("qcow2j.aio.depth", 256));
        }
        return instance;
    }

    static synchronized void closeIfOpen() {
        if (instance != null) {
            instance.close();
            instance = null;
        }
    }
}
