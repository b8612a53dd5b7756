/** JMH benchmarks of the metadata cache and the driver; side-by-side comparisons with QEMU and raw I/O. */
module io.qcow2j.bench {
    requires io.qcow2j.engine;
    requires jmh.core;
    requires org.knowm.xchart;
    requires java.desktop;
    opens io.qcow2j.bench;
}
