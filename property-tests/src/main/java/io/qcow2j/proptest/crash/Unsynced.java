package io.qcow2j.proptest.crash;

/** What became of the changes made since the last sync when the simulated crash happened. */
public enum Unsynced {
    /** None reached the disk: the file is what the last sync made durable. */
    DROPPED,
    /** All reached the disk. */
    KEPT,
    /** Some did, in any order (each change independently). */
    RANDOM_SUBSET,
    /**
     * The crash happened while the last write that spans a 512-byte boundary was reaching the disk: the changes
     * before it reached the disk, it was cut at a 512-byte boundary (only its head, or only its tail, made it),
     * the changes after it did not.
     */
    TORN
}
