package io.qcow2j.engine;

import java.util.Locale;

/** How image I/O meets the host's page cache, with the names of QEMU's {@code cache=} / {@code -t}. */
public enum CacheMode {
    /** Buffered I/O; writes are durable after a flush. The default. */
    WRITEBACK,
    /** {@code O_DIRECT}: no host page cache; writes are durable after a flush. */
    NONE,
    /** Buffered I/O, and every write is followed by a flush before it completes. */
    WRITETHROUGH,
    /** Buffered I/O, and flushes do nothing: fast, and nothing survives a host crash. */
    UNSAFE;

    /** Parses QEMU's name ({@code writeback}, {@code none}, {@code writethrough}, {@code unsafe}). */
    public static CacheMode parse(String name) {
        for (CacheMode m : values()) {
            if (m.name().toLowerCase(Locale.ROOT).equals(name)) {
                return m;
            }
        }
        throw new IllegalArgumentException("Invalid cache mode '" + name
                + "' (expected none, writeback, writethrough or unsafe)");
    }

    public String qemuName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
