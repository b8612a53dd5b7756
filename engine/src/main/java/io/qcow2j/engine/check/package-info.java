/**
 * Check and repair ({@code qemu-img check [-r leaks|all]}, QEMU's {@code qcow2_check_refcounts} and what is
 * around it): {@link io.qcow2j.engine.check.ImageCheck} runs the passes over a
 * {@link io.qcow2j.engine.check.CheckState}: {@link io.qcow2j.engine.check.ReferenceWalk} counts every
 * reference the metadata makes into {@link io.qcow2j.engine.check.ClusterCounts} (an L2 table shared by
 * entries of one L1 table is walked once for all, {@link io.qcow2j.engine.check.SharedL2}; the snapshots' L1
 * tables are counted in one sweep, each L1 entry of the file and each L2 table once for all the references,
 * {@link io.qcow2j.engine.check.SnapshotReferences}),
 * {@link io.qcow2j.engine.check.BitmapReferences} adds the persistent bitmaps',
 * {@link io.qcow2j.engine.check.RefcountComparison} compares with the stored refcounts and the COPIED flags,
 * and {@link io.qcow2j.engine.check.RefcountRebuild} rebuilds a refcount structure beyond repair.
 *
 * <p>Owns: nothing between calls. May use: the driver's accessors for check and repair (its metadata lock,
 * request lock, caches, refcounts, L1 table, header writer), the format, {@code io.qcow2j.ffm}. Memory is
 * bounded by the image file's size, whatever offsets the metadata holds, and so is time: every L1 entry of the
 * file is read at most once per pass and every L2 table walked at most twice, however many tables and
 * snapshots name them.
 */
package io.qcow2j.engine.check;
