/**
 * The qcow2 engine. Exports its API ({@code io.qcow2j.engine}: opening and creating images, the disk
 * interface, options, results, errors) and the on-disk format records ({@code io.qcow2j.engine.format}); the
 * metadata cache, the driver and the chain opener are internal, open only to the benchmark and property-test
 * modules, which measure and model them. See docs/ARCHITECTURE.md for the layers.
 */
module io.qcow2j.engine {
    requires transitive io.qcow2j.ffm; // the format records read from a PositionalFile
    requires aircompressor.v3;
    // aircompressor's pure-Java zstd decoder uses sun.misc.Unsafe; as an automatic module it cannot say so,
    // and an application started with -m (like the qcow2j command) would not resolve the module otherwise.
    requires jdk.unsupported;
    exports io.qcow2j.engine;
    exports io.qcow2j.engine.format;
    exports io.qcow2j.engine.cache to io.qcow2j.bench, io.qcow2j.proptest;
    exports io.qcow2j.engine.qcow2 to io.qcow2j.proptest;
    exports io.qcow2j.engine.chain to io.qcow2j.proptest;
}
