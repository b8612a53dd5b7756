/**
 * The engine's API: everything an embedder (a hypervisor, an NBD server, a copy tool) uses.
 *
 * <ul>
 *   <li>{@link io.qcow2j.engine.Images}: open a disk ({@code open}, {@code openQcow2}, {@code openForRepair})
 *       or create a qcow2 image ({@code create}). Opening is read/write unless the options say read-only.</li>
 *   <li>{@link io.qcow2j.engine.Disk}: the one disk interface (read, write, write zeroes, discard, flush,
 *       block status, scatter-gather), implemented by qcow2 images and raw files alike;
 *       {@link io.qcow2j.engine.Qcow2Disk} adds what qemu-img shows of a qcow2 image (header, caches,
 *       check and repair).</li>
 *   <li>Options: {@link io.qcow2j.engine.ImageOptions} (QEMU's runtime options), {@link io.qcow2j.engine.CreateOptions}
 *       (qemu-img create's {@code -o}), with QEMU's names, defaults and messages.</li>
 *   <li>Results and errors: {@link io.qcow2j.engine.BlockStatus}, {@link io.qcow2j.engine.ChainStatus},
 *       {@link io.qcow2j.engine.CacheStats}, {@link io.qcow2j.engine.CheckResult},
 *       {@link io.qcow2j.engine.RepairResult}, {@link io.qcow2j.engine.CreatedImage}; every failure is an
 *       {@link java.io.IOException} with a one-line message ({@link io.qcow2j.engine.format.Qcow2FormatException}
 *       for corrupt or unsupported images, {@link io.qcow2j.engine.RepairFailedException},
 *       {@link io.qcow2j.engine.FastZeroUnsupportedException}), bad arguments an
 *       {@link java.lang.IllegalArgumentException}.</li>
 * </ul>
 *
 * <p>Owns: the contracts. May use: every package of the engine ({@code Images} and {@code ChainStatus} reach
 * into the driver to open and inspect images); the value types and interfaces here use nothing internal.
 * Used by: everything outside the engine (the CLI, the NBD server, embedders), which use nothing else of it
 * but the format records ({@code io.qcow2j.engine.format}).
 */
package io.qcow2j.engine;
