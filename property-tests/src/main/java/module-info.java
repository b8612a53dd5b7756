/** A small model-based property testing harness (seeded, shrinking) and the engine's properties. */
module io.qcow2j.proptest {
    requires transitive io.qcow2j.engine;
    requires transitive io.qcow2j.testsupport;
    exports io.qcow2j.proptest;
    exports io.qcow2j.proptest.cache;
    exports io.qcow2j.proptest.crash;
    exports io.qcow2j.proptest.driver;
}
