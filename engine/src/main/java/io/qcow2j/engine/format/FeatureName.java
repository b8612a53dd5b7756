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
}
