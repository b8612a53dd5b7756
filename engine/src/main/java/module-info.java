/** The qcow2 format, the metadata cache (L2 slices and refcount blocks) and the image driver. */
module io.qcow2j.engine {
    requires transitive io.qcow2j.ffm;
    requires aircompressor.v3;
    exports io.qcow2j.engine;
    exports io.qcow2j.engine.cache;
    exports io.qcow2j.engine.format;
}
