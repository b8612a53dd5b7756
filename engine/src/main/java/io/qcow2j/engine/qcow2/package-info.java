/**
 * The qcow2 image driver, split as QEMU splits {@code block/qcow2*.c}:
 *
 * <ul>
 *   <li>{@code qcow2.c}: {@link io.qcow2j.engine.qcow2.Qcow2Image} (open, close, the request entry points,
 *       facts), {@link io.qcow2j.engine.qcow2.ImageState} (what the parts share, QEMU's {@code BDRVQcow2State}),
 *       {@link io.qcow2j.engine.qcow2.MetadataFlush} (flush ordering, the dirty bit of lazy refcounts),
 *       {@link io.qcow2j.engine.qcow2.HeaderWriter}, {@link io.qcow2j.engine.qcow2.ClusterReader},
 *       {@link io.qcow2j.engine.qcow2.ClusterDecompressor};</li>
 *   <li>{@code qcow2-cluster.c}: {@link io.qcow2j.engine.qcow2.L1Table} (the active L1 table and L2 table
 *       allocation), {@link io.qcow2j.engine.qcow2.ClusterMap} (guest to host mapping),
 *       {@link io.qcow2j.engine.qcow2.ClusterWriter} (allocation and copy-on-write),
 *       {@link io.qcow2j.engine.qcow2.ZeroAndDiscard};</li>
 *   <li>{@code qcow2-refcount.c}: {@link io.qcow2j.engine.qcow2.Refcounts},
 *       {@link io.qcow2j.engine.qcow2.OverlapChecker};</li>
 *   <li>{@code qcow2-snapshot.c}: {@link io.qcow2j.engine.qcow2.InternalSnapshots},
 *       {@link io.qcow2j.engine.qcow2.SnapshotRefcounts}, {@link io.qcow2j.engine.qcow2.SnapshotTableWriter};
 *       truncate, make empty and backing file change: {@link io.qcow2j.engine.qcow2.ImageResize},
 *       {@link io.qcow2j.engine.qcow2.ClusterPreallocation} (truncate's and create's preallocation),
 *       {@link io.qcow2j.engine.qcow2.MakeEmpty}, {@link io.qcow2j.engine.qcow2.BackingFileChange} (each the
 *       last operation on an open image before it is closed);</li>
 *   <li>concurrency: {@link io.qcow2j.engine.qcow2.RequestLock} (requests in flight),
 *       {@link io.qcow2j.engine.qcow2.MetadataLock} (the metadata lock with a seqlock version for lock-free
 *       lookups), {@link io.qcow2j.engine.qcow2.WrittenExtent}.</li>
 * </ul>
 *
 * <p>Owns: the image file while it is open, the active L1 table, the two metadata caches, the refcounts.
 * May use: the API's value types ({@code io.qcow2j.engine}), the format, the cache, {@code io.qcow2j.ffm};
 * check and repair ({@code io.qcow2j.engine.check}) are reached through {@code Qcow2Image.check/repair}.
 * Internal: exported only to the benchmark and property-test modules.
 */
package io.qcow2j.engine.qcow2;
