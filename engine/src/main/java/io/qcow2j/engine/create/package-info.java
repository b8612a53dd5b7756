/**
 * Image creation ({@code qemu-img create -f qcow2}): {@link io.qcow2j.engine.create.Layout} decides where the
 * header, refcount table and blocks, L1 table and (preallocated) L2 tables go;
 * {@link io.qcow2j.engine.create.ImageCreator} checks the options as QEMU does and writes the file, header
 * last. Byte for byte QEMU's layout wherever its metadata fits in one refcount block.
 *
 * <p>Owns: the new file until it is complete. May use: the API's {@code CreateOptions}, the format, the chain
 * opener (to size from a backing file), {@code io.qcow2j.ffm}.
 */
package io.qcow2j.engine.create;
