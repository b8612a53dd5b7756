package io.qcow2j.ffm;

/** Holder of {@link AsyncIo#shared()}: opened when first asked for (class initialisation is lazy). */
final class SharedIo {
    static final AsyncIo INSTANCE = AsyncIo.open(Integer.getInteger("qcow2j.aio.depth", 256));

    private SharedIo() {}
}
