/** The qcow2 format, the metadata cache (L2 slices and refcount blocks) and the image driver. */
module io.qcow2j.engine {
    requires transitive io.qcow2j.ffm;
    requires aircompressor.v3;
    // aircompressor's pure-Java zstd decoder uses sun.misc.Unsafe; as an automatic module it cannot say so,
    // and an application started with -m (like the qcow2j command) would not resolve the module otherwise.
    requires jdk.unsupported;
    exports io.qcow2j.engine;
    exports io.qcow2j.engine.cache;
    exports io.qcow2j.engine.format;
}
