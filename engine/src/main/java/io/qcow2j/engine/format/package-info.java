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
 *
 * <p>Owns: the spec's layouts and QEMU's validation rules. May use: {@code io.qcow2j.ffm} (to read a header
 * from a {@code PositionalFile}) and nothing else of qcow2j: every other layer builds on it. Exported: these
 * records are API (the CLI's {@code info} reads them without opening an image).
 */
package io.qcow2j.engine.format;
