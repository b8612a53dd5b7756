/**
 * The qcow2 on-disk format, read side: the header and its extensions, the snapshot table, and
 * allocation-free codecs for L1, L2 (standard and extended), compressed-cluster, refcount-table and
 * refcount-block entries.
 *
 * <p>Everything here is a pure function of bytes the caller has read: nothing caches, nothing writes. The
 * validation rules follow QEMU's {@code block/qcow2.c} (which is what decides, in practice, which images
 * are valid), so an image QEMU opens parses here and a hostile one fails with a single
 * {@link io.qcow2j.engine.format.Qcow2FormatException} whose message is one line naming the field and the
 * value, never with an arbitrary runtime exception.
 */
package io.qcow2j.engine.format;
