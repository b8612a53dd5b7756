/**
 * The qcow2 metadata cache ({@link io.qcow2j.engine.cache.MetadataCache}: QEMU's {@code Qcow2Cache} with O(1)
 * hits and misses), its table stores (heap {@code long[]} or an {@code mmap}'d arena returned to the system
 * with {@code madvise}), its sizing rules ({@link io.qcow2j.engine.cache.CacheSizes}) and the periodic
 * cleaner.
 *
 * <p>Owns: cached tables, their LRU order, dirty state, write-back ordering between two caches
 * ({@code setDependency}, {@code dependsOnFlush}), and the memory they live in. May use: the format's entry
 * codecs ({@code io.qcow2j.engine.format}) and the file and memory primitives of {@code io.qcow2j.ffm}. Knows
 * nothing of images: the driver tells it which file, which overlap check, which lock. Internal: exported
 * only to the benchmark and property-test modules.
 */
package io.qcow2j.engine.cache;
