package io.qcow2j.nbd;

import io.qcow2j.engine.Disk;
import java.util.Objects;

/**
 * What a server exports: one disk under one name, and how requests may change it.
 *
 * @param name         the export name clients ask for ({@code -x}; "" by default, as qemu-nbd)
 * @param description  shown by {@code nbdinfo} ({@code -D}), or null
 * @param disk         the disk; the caller owns it (opens, flushes and closes it)
 * @param readOnly     refuse every write ({@code -r}); also true when the disk itself is read-only
 * @param discard      TRIM frees space ({@code --discard=unmap}); false ignores it, as qemu-nbd's default
 * @param detectZeroes writes of zeros become write zeroes ({@code --detect-zeroes})
 * @param multiConn    advertise {@code CAN_MULTI_CONN}: true only when more than one client may connect; it
 *                     holds because every connection shares the one disk, whose flush covers every request
 *                     that returned, whichever connection sent it
 */
public record Export(String name, String description, Disk disk, boolean readOnly, boolean discard,
        DetectZeroes detectZeroes, boolean multiConn) {

    /** {@code --detect-zeroes}: off, on (write zeroes, allocated), unmap (may deallocate if discard is on). */
    public enum DetectZeroes {
        OFF, ON, UNMAP;

        /** Parses qemu-nbd's value; one-line error otherwise. */
        public static DetectZeroes parse(String v) {
            return switch (v) {
                case "off" -> OFF;
                case "on" -> ON;
                case "unmap" -> UNMAP;
                default -> throw new IllegalArgumentException(
                        "Invalid detect-zeroes value '" + v + "' (expected off, on or unmap)");
            };
        }
    }

    public Export {
        Objects.requireNonNull(name);
        Objects.requireNonNull(disk);
        Objects.requireNonNull(detectZeroes);
        if (name.length() > 4096 || (description != null && description.length() > 4096)) {
            throw new IllegalArgumentException("export name and description are limited to 4096 bytes");
        }
        readOnly = readOnly || disk.isReadOnly();
    }

    /** The transmission flags, advertised truthfully: only what {@link RequestDispatcher} does. */
    int transmissionFlags() {
        int f = NbdProtocol.FLAG_HAS_FLAGS | NbdProtocol.FLAG_SEND_FLUSH | NbdProtocol.FLAG_SEND_FUA
                | NbdProtocol.FLAG_SEND_DF | NbdProtocol.FLAG_SEND_CACHE;
        if (readOnly) {
            f |= NbdProtocol.FLAG_READ_ONLY;
        } else {
            f |= NbdProtocol.FLAG_SEND_TRIM | NbdProtocol.FLAG_SEND_WRITE_ZEROES | NbdProtocol.FLAG_SEND_FAST_ZERO;
        }
        if (multiConn) {
            f |= NbdProtocol.FLAG_CAN_MULTI_CONN;
        }
        return f;
    }
}
