package io.qcow2j.engine.format;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The header extensions: the chain of {@code (type, length, data, padding to 8)} records between the end
 * of the header ({@code header_length}) and the backing file name, or the end of the first cluster if
 * there is none. The chain ends with a type 0 record or at that limit.
 *
 * <p>Known extensions are decoded; unknown ones are skipped (the spec makes them safe to ignore) but
 * remembered by position so a writer can preserve them. Every length is checked against the area before
 * anything is read, so a hostile length yields a {@link Qcow2FormatException}, never an out-of-bounds
 * access. As in QEMU, a repeated extension overrides the earlier one.
 */
public final class HeaderExtensions {
    /** End of the extension area. */
    public static final int END = 0;
    /** Backing file format name string. */
    public static final int BACKING_FILE_FORMAT = 0xe2792aca;
    /** Feature name table. */
    public static final int FEATURE_NAME_TABLE = 0x6803f857;
    /** Bitmaps extension. */
    public static final int BITMAPS = 0x23852875;
    /** Full disk encryption header pointer. */
    public static final int FULL_DISK_ENCRYPTION = 0x0537be77;
    /** External data file name string. */
    public static final int EXTERNAL_DATA_FILE = 0x44415441;

    /** QEMU keeps the backing format in a 16-byte C string, so a longer name cannot be opened there. */
    public static final int MAX_BACKING_FORMAT_LENGTH = 15;

    /**
     * At most this many header extensions are read (QEMU has no limit; it writes at most five): the area is
     * inside the first cluster, so this only bounds how many records a hostile 2 MiB header cluster makes.
     */
    public static final int MAX_EXTENSIONS = 1024;

    /** An extension this engine does not interpret: its type and where its data is in the file. */
    public record Unknown(int type, long offset, int length) {}

    private static final HeaderExtensions NONE = new HeaderExtensions(null, List.of(), null, null, List.of());

    private final String backingFormat;
    private final List<FeatureName> featureNames;
    private final BitmapsExtension bitmaps;
    private final String externalDataFile;
    private final List<Unknown> unknown;

    private HeaderExtensions(String backingFormat, List<FeatureName> featureNames, BitmapsExtension bitmaps,
            String externalDataFile, List<Unknown> unknown) {
        this.backingFormat = backingFormat;
        this.featureNames = List.copyOf(featureNames);
        this.bitmaps = bitmaps;
        this.externalDataFile = externalDataFile;
        this.unknown = List.copyOf(unknown);
    }

    /** No extensions at all. */
    public static HeaderExtensions none() {
        return NONE;
    }

    /** The backing file format name ({@code qcow2}, {@code raw}, ...), if the image names one. */
    public Optional<String> backingFormat() {
        return Optional.ofNullable(backingFormat);
    }

    /** The feature name table, in table order; empty if the image has none. */
    public List<FeatureName> featureNames() {
        return featureNames;
    }

    /** The name the table gives to {@code bit} of the {@code type} bitmap, if any. */
    public Optional<String> featureName(FeatureName.Type type, int bit) {
        return lookup(featureNames, type, bit);
    }

    public Optional<BitmapsExtension> bitmaps() {
        return Optional.ofNullable(bitmaps);
    }

    /** The external data file name stored in the image, if any. */
    public Optional<String> externalDataFile() {
        return Optional.ofNullable(externalDataFile);
    }

    /** Extensions of unknown type, in file order. */
    public List<Unknown> unknown() {
        return unknown;
    }

    /**
     * Parses the extension area {@code [start, end)} of {@code cluster} (the first cluster of the image).
     *
     * @param autoclear the header's autoclear features (bit 0 decides whether the bitmaps extension is
     *     consistent and therefore validated)
     * @throws Qcow2FormatException on a record that runs past {@code end} or an invalid known extension
     */
    static HeaderExtensions parse(MemorySegment cluster, int start, int end, int clusterSize, long autoclear)
            throws Qcow2FormatException {
        String backingFormat = null;
        List<FeatureName> names = new ArrayList<>();
        BitmapsExtension bitmaps = null;
        String dataFile = null;
        List<Unknown> unknown = new ArrayList<>();
        long off = start;
        int count = 0;
        while (off < end) {
            if (++count > MAX_EXTENSIONS) {
                throw new Qcow2FormatException("qcow2 header: more than " + MAX_EXTENSIONS
                        + " header extensions (at offset " + Be.hex(off) + ")");
            }
            if (end - off < 8) {
                throw new Qcow2FormatException("qcow2 header extension at offset " + Be.hex(off)
                        + ": its 8-byte type and length run past the end of the extension area at " + Be.hex(end));
            }
            int type = (int) Be.u32(cluster, off);
            long len = Be.u32(cluster, off + 4);
            long data = off + 8;
            if (len > end - data) {
                throw new Qcow2FormatException("qcow2 header extension " + typeName(type) + " at offset "
                        + Be.hex(off) + ": length " + len + " runs past the end of the extension area at "
                        + Be.hex(end));
            }
            int n = (int) len;
            switch (type) {
                case END -> {
                    return new HeaderExtensions(backingFormat, names, bitmaps, dataFile, unknown);
                }
                case BACKING_FILE_FORMAT -> {
                    if (n > MAX_BACKING_FORMAT_LENGTH) {
                        throw new Qcow2FormatException("qcow2 backing file format extension: length " + n
                                + " too long (max " + MAX_BACKING_FORMAT_LENGTH + ")");
                    }
                    backingFormat = Be.string(cluster, data, n);
                }
                case FEATURE_NAME_TABLE -> {
                    names.clear();
                    readFeatureNames(cluster, data, n, names);
                }
                case FULL_DISK_ENCRYPTION -> throw new Qcow2FormatException(
                        "qcow2 header extension " + typeName(type) + " (full disk encryption header) at offset "
                                + Be.hex(off) + ": encrypted images are not supported");
                case BITMAPS -> bitmaps = bitmaps(cluster, data, n, clusterSize, autoclear);
                case EXTERNAL_DATA_FILE -> dataFile = Be.string(cluster, data, n);
                default -> unknown.add(new Unknown(type, data, n));
            }
            off = data + ((len + 7) & ~7L);
        }
        return new HeaderExtensions(backingFormat, names, bitmaps, dataFile, unknown);
    }

    /**
     * The feature names of the area, for the message that refuses unknown incompatible features. QEMU
     * reads the table there ignoring any error in the chain; so does this: it stops quietly at the first
     * record it cannot follow.
     */
    static List<FeatureName> scanFeatureNames(MemorySegment cluster, int start, int end) {
        List<FeatureName> names = new ArrayList<>();
        long off = start;
        while (off < end && end - off >= 8) {
            int type = (int) Be.u32(cluster, off);
            long len = Be.u32(cluster, off + 4);
            long data = off + 8;
            if (type == END || len > end - data) {
                break;
            }
            if (type == FEATURE_NAME_TABLE) {
                names.clear();
                readFeatureNames(cluster, data, (int) len, names);
            }
            off = data + ((len + 7) & ~7L);
        }
        return names;
    }

    static Optional<String> lookup(List<FeatureName> names, FeatureName.Type type, int bit) {
        for (FeatureName f : names) {
            if (f.type() == type && f.bit() == bit) {
                return Optional.of(f.name());
            }
        }
        return Optional.empty();
    }

    /**
     * Entries with a type or bit number outside the spec, or an empty name, say nothing useful and are
     * skipped; a trailing partial entry is ignored as QEMU does.
     */
    private static void readFeatureNames(MemorySegment cluster, long data, int len, List<FeatureName> out) {
        FeatureName.Type[] types = FeatureName.Type.values();
        for (long e = data; e + FeatureName.ENTRY_SIZE <= data + len; e += FeatureName.ENTRY_SIZE) {
            int type = Be.u8(cluster, e);
            int bit = Be.u8(cluster, e + 1);
            if (type >= types.length || bit > 63) {
                continue;
            }
            String name = Be.string(cluster, e + 2, FeatureName.NAME_SIZE);
            if (!name.isEmpty()) {
                out.add(new FeatureName(types[type], bit, name));
            }
        }
    }

    private static BitmapsExtension bitmaps(MemorySegment cluster, long data, int len, int clusterSize, long autoclear)
            throws Qcow2FormatException {
        if (len != BitmapsExtension.LENGTH) {
            throw new Qcow2FormatException("qcow2 bitmaps extension: length " + len + " invalid (must be "
                    + BitmapsExtension.LENGTH + ")");
        }
        long count = Be.u32(cluster, data);
        long reserved = Be.u32(cluster, data + 4);
        long dirSize = Be.u64(cluster, data + 8);
        long dirOffset = Be.u64(cluster, data + 16);
        if ((autoclear & Qcow2Header.AUTOCLEAR_BITMAPS) == 0) {
            return new BitmapsExtension(count, dirSize, dirOffset, false);
        }
        if (reserved != 0) {
            throw new Qcow2FormatException("qcow2 bitmaps extension: reserved field " + Be.hex(reserved) + " not zero");
        }
        if (count == 0) {
            throw new Qcow2FormatException("qcow2 bitmaps extension: nb_bitmaps 0 (must be at least 1)");
        }
        if (count > BitmapsExtension.MAX_BITMAPS) {
            throw new Qcow2FormatException("qcow2 bitmaps extension: nb_bitmaps " + count + " too large (max "
                    + BitmapsExtension.MAX_BITMAPS + ")");
        }
        if ((dirOffset & (clusterSize - 1)) != 0) {
            throw new Qcow2FormatException("qcow2 bitmaps extension: bitmap_directory_offset " + Be.hex(dirOffset)
                    + " not aligned to the cluster size " + clusterSize);
        }
        if (Long.compareUnsigned(dirSize, BitmapsExtension.MAX_DIRECTORY_SIZE) > 0) {
            throw new Qcow2FormatException("qcow2 bitmaps extension: bitmap_directory_size " + Be.udec(dirSize)
                    + " too large (max " + BitmapsExtension.MAX_DIRECTORY_SIZE + ")");
        }
        return new BitmapsExtension(count, dirSize, dirOffset, true);
    }

    private static String typeName(int type) {
        return String.format("0x%08x", type);
    }

    @Override
    public String toString() {
        return "HeaderExtensions[backingFormat=" + backingFormat + ", featureNames=" + featureNames.size()
                + ", bitmaps=" + bitmaps + ", externalDataFile=" + externalDataFile + ", unknown=" + unknown + "]";
    }
}
