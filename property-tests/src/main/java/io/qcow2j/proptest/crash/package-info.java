/**
 * Crash simulation and fault injection for the engine's files.
 *
 * <ul>
 *   <li>{@link io.qcow2j.proptest.crash.RecordingFile}: a {@link io.qcow2j.ffm.PositionalFile} (in memory, or
 *       wrapping a real file) that logs every write and sync in order ({@link io.qcow2j.proptest.crash.IoEvent})
 *       and fails the n-th write or sync on purpose ({@code EIO}, {@code ENOSPC}, …). Hand it to the engine with
 *       {@code ChainOpener.openQcow2(path, options, opener)}.</li>
 *   <li>{@link io.qcow2j.proptest.crash.CrashSimulator}: for every crash point (prefix of the log), the files a
 *       crash could leave: the synced part plus none, all, a random subset of the unsynced writes, or a torn
 *       write ({@link io.qcow2j.proptest.crash.Unsynced}, {@link io.qcow2j.proptest.crash.CrashState}), as
 *       read-only in-memory {@link io.qcow2j.proptest.crash.CrashImage}s the engine can open and
 *       {@code qemu-img check} can read once written out.</li>
 *   <li>{@link io.qcow2j.proptest.crash.FaultyFile}: a real engine file (or any) whose I/O calls are counted and
 *       the n-th of which fails once ({@code EIO}, {@code ENOSPC}, a short write or a short read), or whose
 *       writes past a byte budget fail as on a full disk.</li>
 *   <li>{@link io.qcow2j.proptest.crash.MemoryFile}, {@link io.qcow2j.proptest.crash.ByteStore}: files held in
 *       memory.</li>
 * </ul>
 */
package io.qcow2j.proptest.crash;
