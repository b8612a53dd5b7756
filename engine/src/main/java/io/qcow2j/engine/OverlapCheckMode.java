package io.qcow2j.engine;

import java.util.Locale;

/**
 * Which metadata the pre-write overlap check guards (QEMU's {@code overlap-check}). Each mode includes the
 * previous one's structures: {@code constant} checks what is cheap to know (header, L1 table, refcount
 * table, snapshot table); {@code cached} adds the L2 tables and refcount blocks found through cached
 * tables; {@code all} adds the inactive L2 tables of snapshots (which costs reads).
 */
public enum OverlapCheckMode {
    NONE, CONSTANT, CACHED, ALL;

    public static OverlapCheckMode parse(String name) {
        for (OverlapCheckMode m : values()) {
            if (m.name().toLowerCase(Locale.ROOT).equals(name)) {
                return m;
            }
        }
        throw new IllegalArgumentException("Unsupported value '" + name + "' for qcow2 option 'overlap-check'."
                + " Allowed are any of the following: none, constant, cached, all");
    }
}
