/**
 * Fixtures for the engine's properties: the guest-disk reference model ({@link io.qcow2j.proptest.driver.GuestModel}),
 * requests that apply to an image and to the model alike ({@link io.qcow2j.proptest.driver.GuestOp}), byte-range
 * sets ({@link io.qcow2j.proptest.driver.IntervalSet}) and the qemu-img / qemu-io oracle
 * ({@link io.qcow2j.proptest.driver.QemuImg}).
 */
package io.qcow2j.proptest.driver;
