/**
 * What the tests of every module share: {@link io.qcow2j.testsupport.Qemu}, the runner of qemu-img and qemu-io
 * (the oracle the tests compare against), and {@link io.qcow2j.testsupport.Json}, a reader for what they
 * print. Depends on nothing of qcow2j, so any module's tests may use it.
 */
module io.qcow2j.testsupport {
    exports io.qcow2j.testsupport;
}
