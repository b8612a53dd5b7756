package io.qcow2j.engine;

/** What {@link Qcow2Disk#repair} repairs: {@code qemu-img check -r leaks} or {@code -r all}. */
public enum RepairMode {
    /** Leaked clusters only (refcounts higher than the references), and COPIED flags once nothing else is wrong. */
    LEAKS,
    /** Everything that can be: leaks, refcounts too low, COPIED flags, the refcount structure itself. */
    ALL
}
