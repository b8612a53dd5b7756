package io.qcow2j.engine.format;

/**
 * One internal snapshot, as its snapshot table entry describes it. Parsed by {@link SnapshotTable}.
 *
 * @param id the unique ID string (QEMU numbers them "1", "2", ...)
 * @param name the user-visible name
 * @param l1TableOffset offset of the snapshot's L1 table (not checked at parse time, as in QEMU: see
 *     {@link #checkL1Table})
 * @param l1Size entries in the snapshot's L1 table
 * @param vmStateSize bytes of saved VM state (the 64-bit extra-data field when present), 0 if none
 * @param dateSeconds wall-clock time the snapshot was taken, seconds since the epoch
 * @param dateNanos sub-second part of that time
 * @param vmClockNanos guest run time when the snapshot was taken
 * @param diskSize virtual disk size at the snapshot (the image's virtual size if the entry predates it)
 * @param icount guest instruction count at the snapshot, or {@link #NO_ICOUNT} if not recorded
 * @param extraDataSize bytes of extra data in the entry (known fields plus any unknown tail)
 */
public record Qcow2Snapshot(String id, String name, long l1TableOffset, long l1Size, long vmStateSize,
        long dateSeconds, long dateNanos, long vmClockNanos, long diskSize, long icount, long extraDataSize) {

    /** Fixed part of a snapshot table entry, before extra data, ID and name. */
    public static final int HEADER_SIZE = 40;
    /** QEMU refuses entries with more extra data than this. */
    public static final int MAX_EXTRA_DATA = 1024;
    /** QEMU's limit on the whole table: 1 KiB per snapshot on average. */
    public static final long MAX_TABLE_SIZE = 1024L * Qcow2Header.MAX_SNAPSHOTS;
    /** {@link #icount()} of an entry that does not record it. */
    public static final long NO_ICOUNT = -1L;

    public boolean hasIcount() {
        return icount != NO_ICOUNT;
    }

    /**
     * Checks the snapshot's L1 table as QEMU does before using it (loading or reverting to the snapshot):
     * cluster-aligned, at most 32 MiB, inside the file.
     *
     * @throws Qcow2FormatException naming the snapshot and the field
     */
    public void checkL1Table(Qcow2Header header, long fileSize) throws Qcow2FormatException {
        Qcow2Header.checkTable("qcow2 snapshot " + Be.quote(id) + ": ", "L1 table", "l1_table_offset", l1TableOffset,
                "l1_size", l1Size, 8, Qcow2Header.MAX_L1_BYTES, header.clusterSize(), fileSize);
    }
}
