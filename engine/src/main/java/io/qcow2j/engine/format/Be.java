package io.qcow2j.engine.format;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Big-endian field access (qcow2 stores every number big-endian) and message formatting helpers. */
final class Be {
    static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private Be() {}

    static int u8(MemorySegment s, long off) {
        return s.get(ValueLayout.JAVA_BYTE, off) & 0xff;
    }

    static int u16(MemorySegment s, long off) {
        return s.get(U16, off) & 0xffff;
    }

    /** An unsigned 32-bit field, widened so that values above 2^31 compare correctly. */
    static long u32(MemorySegment s, long off) {
        return s.get(U32, off) & 0xffff_ffffL;
    }

    /** A 64-bit field as stored; callers treat it as unsigned where the spec does. */
    static long u64(MemorySegment s, long off) {
        return s.get(U64, off);
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    /** A 64-bit entry as QEMU prints it in corruption messages (fixed width, so bit positions line up). */
    static String entry(long v) {
        return String.format("0x%016x", v);
    }

    /** Unsigned decimal, for header fields that are unsigned 64-bit on disk. */
    static String udec(long v) {
        return Long.toUnsignedString(v);
    }

    /**
     * A string stored without a terminator; QEMU handles these as C strings, so the name ends at the first
     * NUL if there is one. Invalid UTF-8 becomes U+FFFD rather than failing: names are for display and
     * for opening files, and refusing the image over an odd byte would help nobody.
     */
    static String string(MemorySegment s, long off, int len) {
        byte[] b = new byte[len];
        MemorySegment.copy(s, ValueLayout.JAVA_BYTE, off, b, 0, len);
        int n = 0;
        while (n < len && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }

    /** Quotes text that came from the image for use in a one-line message. */
    static String quote(String s) {
        return "\"" + Qcow2FormatException.oneLine(s).replace("\"", "\\\"") + "\"";
    }
}
