/**
 * Opening images with their backing chains ({@link io.qcow2j.engine.chain.ChainOpener}): format probing,
 * QEMU's backing file name resolution, chain depth and loop limits, the repair at a writable open of an
 * image left dirty by lazy refcounts, and the {@link io.qcow2j.engine.chain.ChainOpener.FileOpener} through
 * which every file of a chain is opened (tests substitute files that record writes or inject faults).
 *
 * <p>Owns: nothing after an open returns (the disk it made owns its files). May use: the drivers ({@code
 * qcow2}, {@code raw}), check (the repair at open), the format,
 * {@code io.qcow2j.ffm}. Internal: exported only to the property-test module (crash simulation).
 */
package io.qcow2j.engine.chain;
