/**
 * Fixtures for properties of the metadata cache ({@link io.qcow2j.engine.cache.MetadataCache}):
 * <ul>
 *   <li>{@link io.qcow2j.proptest.cache.RecordingTableFile}: an in-memory table file that logs every read, write
 *       and sync in order (with sequence numbers and the bytes written), injects EIO/ENOSPC failures, and rebuilds
 *       the content after any prefix of its log (for crash-consistency tests);</li>
 *   <li>{@link io.qcow2j.proptest.cache.RecordingTableStore}: a table store that records release requests;</li>
 *   <li>{@link io.qcow2j.proptest.cache.CacheModel}: the reference model of an L2 and a refcount cache over one
 *       file (QEMU's Qcow2Cache semantics and qcow2j's documented deviations);</li>
 *   <li>{@link io.qcow2j.proptest.cache.CacheUnderTest}, {@link io.qcow2j.proptest.cache.MetadataCacheUnderTest},
 *       {@link io.qcow2j.proptest.cache.ForwardingCache}: the cache as driven by the properties, so that broken
 *       variants can be substituted;</li>
 *   <li>{@link io.qcow2j.proptest.cache.CacheSystem} and {@link io.qcow2j.proptest.cache.CacheWorkload}: the system
 *       under test and the actions that drive it and the model side by side.</li>
 * </ul>
 * The properties themselves are in the tests ({@code CacheProperties}, {@code BrokenCacheTest}).
 */
package io.qcow2j.proptest.cache;
