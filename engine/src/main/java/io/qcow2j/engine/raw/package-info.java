/**
 * The raw format driver ({@link io.qcow2j.engine.raw.RawImage}): guest offset = file offset; holes reported as
 * zero extents. A top-level disk or a backing file. Owns: its file. May use: the API's value types and
 * {@code io.qcow2j.ffm}.
 */
package io.qcow2j.engine.raw;
