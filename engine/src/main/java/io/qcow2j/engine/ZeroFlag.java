package io.qcow2j.engine;

import java.util.Set;

/** How {@link Disk#writeZeroes} may make a range read as zeros (QEMU's request flags for write zeroes). */
public enum ZeroFlag {
    /** The disk may deallocate the range (NBD's write zeroes without {@code NO_HOLE}; {@code qemu-io write -z -u}). */
    MAY_UNMAP,
    /**
     * Fail instead of writing buffers of zeros when the range cannot be zeroed through metadata or the file
     * system alone (NBD's {@code FAST_ZERO}; QEMU's {@code BDRV_REQ_NO_FALLBACK}).
     */
    NO_FALLBACK;

    private static final Set<ZeroFlag> UNMAP = Set.of(MAY_UNMAP);

    /** {@code {MAY_UNMAP}} if {@code mayUnmap}, else no flags: for callers holding the choice as a boolean. */
    public static Set<ZeroFlag> unmapIf(boolean mayUnmap) {
        return mayUnmap ? UNMAP : Set.of();
    }
}
