package io.qcow2j.engine.format;

/**
 * One entry of the feature name table header extension: a human-readable name for a feature bit, so that
 * an image using a feature this engine does not know can be refused with a useful message.
 *
 * @param type which feature bitmap the bit belongs to
 * @param bit the bit number, 0..63
 * @param name the name as stored (up to 46 bytes; ends at the first NUL)
 */
public record FeatureName(Type type, int bit, String name) {
    /** The feature bitmaps of the header, numbered as in the table's type byte. */
    public enum Type {
        INCOMPATIBLE, COMPATIBLE, AUTOCLEAR
    }

    /** Size of one table entry on disk: type byte, bit byte, 46 name bytes. */
    public static final int ENTRY_SIZE = 48;
    /** Bytes reserved for the name. */
    public static final int NAME_SIZE = 46;

    /** The feature name table QEMU writes into version 3 headers, in its order. */
    public static final java.util.List<FeatureName> QEMU_TABLE = java.util.List.of(
            new FeatureName(Type.INCOMPATIBLE, bit(Qcow2Header.INCOMPAT_DIRTY), "dirty bit"),
            new FeatureName(Type.INCOMPATIBLE, bit(Qcow2Header.INCOMPAT_CORRUPT), "corrupt bit"),
            new FeatureName(Type.INCOMPATIBLE, bit(Qcow2Header.INCOMPAT_DATA_FILE), "external data file"),
            new FeatureName(Type.INCOMPATIBLE, bit(Qcow2Header.INCOMPAT_COMPRESSION), "compression type"),
            new FeatureName(Type.INCOMPATIBLE, bit(Qcow2Header.INCOMPAT_EXTL2), "extended L2 entries"),
            new FeatureName(Type.COMPATIBLE, bit(Qcow2Header.COMPAT_LAZY_REFCOUNTS), "lazy refcounts"),
            new FeatureName(Type.AUTOCLEAR, bit(Qcow2Header.AUTOCLEAR_BITMAPS), "bitmaps"),
            new FeatureName(Type.AUTOCLEAR, bit(Qcow2Header.AUTOCLEAR_DATA_FILE_RAW), "raw external data"));

    /** {@code table} as the data of a feature name table extension (48 bytes per entry). */
    public static byte[] encode(java.util.List<FeatureName> table) {
        byte[] out = new byte[table.size() * ENTRY_SIZE];
        for (int i = 0; i < table.size(); i++) {
            FeatureName f = table.get(i);
            int e = i * ENTRY_SIZE;
            out[e] = (byte) f.type().ordinal();
            out[e + 1] = (byte) f.bit();
            byte[] name = f.name().getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            System.arraycopy(name, 0, out, e + 2, Math.min(name.length, NAME_SIZE));
        }
        return out;
    }

    private static int bit(long mask) {
        return Long.numberOfTrailingZeros(mask);
    }
}
