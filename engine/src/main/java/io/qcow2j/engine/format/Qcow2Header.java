package io.qcow2j.engine.format;

import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The qcow2 header (the start of the first cluster) with its extensions and backing file name, parsed and
 * validated. Immutable.
 *
 * <p>Validation mirrors QEMU's {@code qcow2_do_open}, so that what QEMU opens parses and what it refuses is
 * refused: magic and version (2 or 3); {@code cluster_bits} 9..21; {@code header_length} (72 for version
 * 2; for version 3 at least 104, a multiple of 8, within the cluster and the file); compression type and
 * its feature bit; unknown incompatible features (named from the feature name table when it has them);
 * subcluster size for extended L2; {@code refcount_order} 0..6; encryption (refused); the refcount table,
 * snapshot table and L1 table (cluster-aligned, not on the header, inside the file, at most 8 MiB, 65536
 * snapshots and 32 MiB); an L1 table large enough for the virtual size; the header extensions; the
 * backing file name (at most 1023 bytes, inside the first cluster). Each failure is a
 * {@link Qcow2FormatException} with a one-line message naming the field and its value.
 *
 * <p>The dirty and corrupt bits are reported, not refused: whether to repair, or to open read-only, is the
 * driver's decision.
 */
public final class Qcow2Header {
    /** {@code "QFI\xfb"}. */
    public static final int MAGIC = 0x514649fb;
    /** The fixed length of a version 2 header. */
    public static final int V2_HEADER_LENGTH = 72;
    /** The shortest version 3 header (through {@code header_length}). */
    public static final int V3_MIN_HEADER_LENGTH = 104;
    /** Offset of the {@code compression_type} byte, present when {@code header_length > 104}. */
    public static final int COMPRESSION_TYPE_OFFSET = 104;
    /** QEMU's limit on the active L1 table. */
    public static final long MAX_L1_BYTES = 32L << 20;
    /** QEMU's limit on the refcount table. */
    public static final long MAX_REFCOUNT_TABLE_BYTES = 8L << 20;
    /** QEMU's limit on internal snapshots. */
    public static final int MAX_SNAPSHOTS = 65536;
    /** The spec's limit on the backing file name. */
    public static final int MAX_BACKING_FILE_NAME = 1023;

    public static final int CRYPT_NONE = 0;
    public static final int CRYPT_AES = 1;
    public static final int CRYPT_LUKS = 2;

    /** Incompatible bit 0: refcounts may be stale (lazy refcounts in use); repair before trusting them. */
    public static final long INCOMPAT_DIRTY = 1L;
    /** Incompatible bit 1: metadata may be corrupt; do not write except to repair. */
    public static final long INCOMPAT_CORRUPT = 1L << 1;
    /** Incompatible bit 2: guest data lives in an external data file. */
    public static final long INCOMPAT_DATA_FILE = 1L << 2;
    /** Incompatible bit 3: {@code compression_type} is not zlib. */
    public static final long INCOMPAT_COMPRESSION = 1L << 3;
    /** Incompatible bit 4: L2 entries are 128-bit with subcluster bitmaps. */
    public static final long INCOMPAT_EXTL2 = 1L << 4;
    /** Every incompatible bit this engine understands. */
    public static final long INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE
            | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
    /** Compatible bit 0: lazy refcount updates may be used. */
    public static final long COMPAT_LAZY_REFCOUNTS = 1L;
    /** Autoclear bit 0: the bitmaps extension is consistent. */
    public static final long AUTOCLEAR_BITMAPS = 1L;
    /** Autoclear bit 1: the external data file is a valid raw image by itself. */
    public static final long AUTOCLEAR_DATA_FILE_RAW = 1L << 1;

    private static final String[] INCOMPAT_NAMES = {
        "dirty", "corrupt", "external data file", "compression type", "extended L2 entries"};

    private final int version;
    private final long backingFileOffset;
    private final long backingFileSize;
    private final int clusterBits;
    private final long size;
    private final int cryptMethod;
    private final long l1Size;
    private final long l1TableOffset;
    private final long refcountTableOffset;
    private final long refcountTableClusters;
    private final long nbSnapshots;
    private final long snapshotsOffset;
    private final long incompatibleFeatures;
    private final long compatibleFeatures;
    private final long autoclearFeatures;
    private final int refcountOrder;
    private final int headerLength;
    private final CompressionType compressionType;
    private final String backingFileName;
    private final HeaderExtensions extensions;
    private final Geometry geometry;

    private Qcow2Header(Fields f, String backingFileName, HeaderExtensions extensions, Geometry geometry) {
        this.version = f.version;
        this.backingFileOffset = f.backingFileOffset;
        this.backingFileSize = f.backingFileSize;
        this.clusterBits = f.clusterBits;
        this.size = f.size;
        this.cryptMethod = f.cryptMethod;
        this.l1Size = f.l1Size;
        this.l1TableOffset = f.l1TableOffset;
        this.refcountTableOffset = f.refcountTableOffset;
        this.refcountTableClusters = f.refcountTableClusters;
        this.nbSnapshots = f.nbSnapshots;
        this.snapshotsOffset = f.snapshotsOffset;
        this.incompatibleFeatures = f.incompatibleFeatures;
        this.compatibleFeatures = f.compatibleFeatures;
        this.autoclearFeatures = f.autoclearFeatures;
        this.refcountOrder = (int) f.refcountOrder;
        this.headerLength = f.headerLength;
        this.compressionType = f.compressionType;
        this.backingFileName = backingFileName;
        this.extensions = extensions;
        this.geometry = geometry;
    }

    /** The raw header fields while parsing; only ever seen by {@link #parse}. */
    private static final class Fields {
        int version;
        long backingFileOffset;
        long backingFileSize;
        int clusterBits;
        long size;
        int cryptMethod;
        long l1Size;
        long l1TableOffset;
        long refcountTableOffset;
        long refcountTableClusters;
        long nbSnapshots;
        long snapshotsOffset;
        long incompatibleFeatures;
        long compatibleFeatures;
        long autoclearFeatures;
        long refcountOrder; // unsigned 32-bit until checked
        int headerLength;
        CompressionType compressionType;
    }

    /**
     * Reads and parses the header of an open image: the first 512 bytes, then the whole first cluster
     * once its size is known.
     *
     * @throws Qcow2FormatException if the image is invalid or refused
     * @throws IOException if reading fails
     */
    public static Qcow2Header read(PositionalFile file) throws IOException {
        long fileSize = file.size();
        try (Arena arena = Arena.ofConfined()) {
            long probe = Math.min(fileSize, 1L << Geometry.MIN_CLUSTER_BITS);
            MemorySegment head = arena.allocate(Math.max(probe, 1)).asSlice(0, probe);
            file.readFully(0, head);
            if (probe >= 24) {
                int bits = (int) Be.u32(head, 20);
                if (bits >= Geometry.MIN_CLUSTER_BITS && bits <= Geometry.MAX_CLUSTER_BITS) {
                    long want = Math.min(fileSize, 1L << bits);
                    if (want > probe) {
                        head = arena.allocate(want);
                        file.readFully(0, head);
                    }
                }
            }
            return parse(head, fileSize);
        }
    }

    /** {@link #parse(MemorySegment, long)} of a byte array. */
    public static Qcow2Header parse(byte[] head, long fileSize) throws Qcow2FormatException {
        return parse(MemorySegment.ofArray(head), fileSize);
    }

    /**
     * Parses and validates a header.
     *
     * @param head the first bytes of the image file: at least {@code min(fileSize, cluster size)} of them
     *     (the first 2 MiB always suffice); bytes past the first cluster are ignored
     * @param fileSize the size of the image file, against which table positions are checked
     * @throws Qcow2FormatException if the image is invalid or uses a refused feature
     * @throws IllegalArgumentException if {@code head} holds fewer bytes than described above
     */
    public static Qcow2Header parse(MemorySegment head, long fileSize) throws Qcow2FormatException {
        if (fileSize < 0) {
            throw new IllegalArgumentException("file size " + fileSize);
        }
        long avail = Math.min(head.byteSize(), fileSize);
        Fields f = new Fields();
        if (avail < 8) {
            requireHead(head, fileSize, 8);
            throw new Qcow2FormatException("qcow2 header: file size " + fileSize
                    + " too small for a qcow2 header (at least " + V2_HEADER_LENGTH + " bytes)");
        }
        long magic = Be.u32(head, 0);
        if (magic != (MAGIC & 0xffff_ffffL)) {
            throw new Qcow2FormatException("qcow2 header: magic " + Be.hex(magic)
                    + " is not \"QFI\\xfb\" (0x514649fb): not a qcow2 image");
        }
        long version = Be.u32(head, 4);
        if (version != 2 && version != 3) {
            throw new Qcow2FormatException("qcow2 header: version " + version + " unsupported (2 or 3)");
        }
        f.version = (int) version;
        int fixedLength = f.version == 2 ? V2_HEADER_LENGTH : V3_MIN_HEADER_LENGTH;
        if (avail < fixedLength) {
            requireHead(head, fileSize, fixedLength);
            throw new Qcow2FormatException("qcow2 header: file size " + fileSize + " shorter than the "
                    + fixedLength + "-byte version " + f.version + " header");
        }
        long clusterBits = Be.u32(head, 20);
        if (clusterBits < Geometry.MIN_CLUSTER_BITS || clusterBits > Geometry.MAX_CLUSTER_BITS) {
            throw new Qcow2FormatException("qcow2 header: cluster_bits " + clusterBits + " out of range ("
                    + Geometry.MIN_CLUSTER_BITS + ".." + Geometry.MAX_CLUSTER_BITS + ")");
        }
        f.clusterBits = (int) clusterBits;
        int clusterSize = 1 << f.clusterBits;
        requireHead(head, fileSize, clusterSize);

        if (f.version == 2) {
            f.headerLength = V2_HEADER_LENGTH;
            f.refcountOrder = 4;
        } else {
            long headerLength = Be.u32(head, 100);
            if (headerLength < V3_MIN_HEADER_LENGTH) {
                throw new Qcow2FormatException("qcow2 header: header_length " + headerLength
                        + " too small (at least " + V3_MIN_HEADER_LENGTH + " for version 3)");
            }
            if (headerLength % 8 != 0) {
                throw new Qcow2FormatException("qcow2 header: header_length " + headerLength + " not a multiple of 8");
            }
            if (headerLength > clusterSize) {
                throw new Qcow2FormatException("qcow2 header: header_length " + headerLength
                        + " exceeds the cluster size " + clusterSize);
            }
            if (headerLength > fileSize) {
                throw new Qcow2FormatException("qcow2 header: header_length " + headerLength
                        + " extends past end of file (size " + fileSize + ")");
            }
            f.headerLength = (int) headerLength;
            f.incompatibleFeatures = Be.u64(head, 72);
            f.compatibleFeatures = Be.u64(head, 80);
            f.autoclearFeatures = Be.u64(head, 88);
            f.refcountOrder = Be.u32(head, 96);
        }
        MemorySegment cluster = firstCluster(head, avail, clusterSize);

        f.backingFileOffset = Be.u64(cluster, 8);
        f.backingFileSize = Be.u32(cluster, 16);
        f.size = Be.u64(cluster, 24);
        f.cryptMethod = (int) Be.u32(cluster, 32);
        f.l1Size = Be.u32(cluster, 36);
        f.l1TableOffset = Be.u64(cluster, 40);
        f.refcountTableOffset = Be.u64(cluster, 48);
        f.refcountTableClusters = Be.u32(cluster, 56);
        f.nbSnapshots = Be.u32(cluster, 60);
        f.snapshotsOffset = Be.u64(cluster, 64);

        if (Long.compareUnsigned(f.backingFileOffset, clusterSize) > 0) {
            throw new Qcow2FormatException("qcow2 header: backing_file_offset " + Be.hex(f.backingFileOffset)
                    + " beyond the first cluster (cluster size " + clusterSize + ")");
        }
        if (f.backingFileOffset != 0 && f.backingFileOffset < f.headerLength) {
            throw new Qcow2FormatException("qcow2 header: backing_file_offset " + Be.hex(f.backingFileOffset)
                    + " overlaps the header (header_length " + f.headerLength + ")");
        }
        int extensionsEnd = f.backingFileOffset != 0 ? (int) f.backingFileOffset : clusterSize;

        f.compressionType = compressionType(cluster, f);

        long unknownIncompat = f.incompatibleFeatures & ~INCOMPAT_KNOWN;
        if (unknownIncompat != 0) {
            List<FeatureName> names = HeaderExtensions.scanFeatureNames(cluster, f.headerLength, extensionsEnd);
            throw new Qcow2FormatException("qcow2 header: incompatible_features " + Be.hex(f.incompatibleFeatures)
                    + " has unknown " + describeBits(unknownIncompat, names)
                    + ": the image needs features this engine does not support");
        }
        boolean extendedL2 = (f.incompatibleFeatures & INCOMPAT_EXTL2) != 0;
        if (extendedL2 && f.clusterBits < Geometry.MIN_EXTENDED_L2_CLUSTER_BITS) {
            throw new Qcow2FormatException("qcow2 header: cluster_bits " + f.clusterBits
                    + " too small for extended L2 entries (subclusters of " + (clusterSize / 32)
                    + " bytes; needs at least " + Geometry.MIN_EXTENDED_L2_CLUSTER_BITS + ")");
        }
        if (f.refcountOrder > Geometry.MAX_REFCOUNT_ORDER) {
            throw new Qcow2FormatException("qcow2 header: refcount_order " + f.refcountOrder
                    + " out of range (0.." + Geometry.MAX_REFCOUNT_ORDER + ")");
        }
        if (f.cryptMethod != CRYPT_NONE) {
            String method = switch (f.cryptMethod) {
                case CRYPT_AES -> " (AES)";
                case CRYPT_LUKS -> " (LUKS)";
                default -> " (unknown method)";
            };
            throw new Qcow2FormatException("qcow2 header: crypt_method " + Integer.toUnsignedString(f.cryptMethod)
                    + method + ": encrypted images are not supported");
        }

        if (f.refcountTableClusters == 0) {
            throw new Qcow2FormatException("qcow2 header: refcount_table_clusters 0: the image has no refcount table");
        }
        checkTable("refcount table", "refcount_table_offset", f.refcountTableOffset, "refcount_table_clusters",
                f.refcountTableClusters, clusterSize, MAX_REFCOUNT_TABLE_BYTES, clusterSize, fileSize);
        checkTable("snapshot table", "snapshots_offset", f.snapshotsOffset, "nb_snapshots", f.nbSnapshots,
                Qcow2Snapshot.HEADER_SIZE, (long) Qcow2Snapshot.HEADER_SIZE * MAX_SNAPSHOTS, clusterSize, fileSize);
        checkTable("L1 table", "l1_table_offset", f.l1TableOffset, "l1_size", f.l1Size, 8, MAX_L1_BYTES,
                clusterSize, fileSize);

        if (f.size < 0) {
            throw new Qcow2FormatException("qcow2 header: size " + Be.udec(f.size) + " too large (max 2^63-1)");
        }
        Geometry geometry = new Geometry(f.version, f.clusterBits, (int) f.refcountOrder, extendedL2,
                (f.incompatibleFeatures & INCOMPAT_DATA_FILE) != 0);
        long l1Needed = geometry.l1EntriesFor(f.size);
        if (l1Needed > Integer.MAX_VALUE) {
            throw new Qcow2FormatException("qcow2 header: size " + f.size + " too large: it needs " + l1Needed
                    + " L1 entries");
        }
        if (f.l1Size < l1Needed) {
            throw new Qcow2FormatException("qcow2 header: l1_size " + f.l1Size + " too small for size " + f.size
                    + " (needs " + l1Needed + " entries)");
        }

        HeaderExtensions extensions = HeaderExtensions.parse(cluster, f.headerLength, extensionsEnd, clusterSize,
                f.autoclearFeatures);
        if ((f.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) != 0 && !geometry.externalDataFile()) {
            throw new Qcow2FormatException("qcow2 header: autoclear_features " + Be.hex(f.autoclearFeatures)
                    + " has bit 1 (raw external data) without incompatible bit 2 (external data file)");
        }

        String backingFileName = null;
        if (f.backingFileOffset != 0) {
            long max = Math.min(MAX_BACKING_FILE_NAME, clusterSize - f.backingFileOffset);
            if (f.backingFileSize > max) {
                throw new Qcow2FormatException("qcow2 header: backing_file_size " + f.backingFileSize
                        + " too long (max " + max + ": 1023 bytes and inside the first cluster)");
            }
            if (f.backingFileOffset + f.backingFileSize > fileSize) {
                throw new Qcow2FormatException("qcow2 header: backing_file_offset " + Be.hex(f.backingFileOffset)
                        + " with backing_file_size " + f.backingFileSize + " runs past end of file (size "
                        + fileSize + ")");
            }
            backingFileName = Be.string(cluster, f.backingFileOffset, (int) f.backingFileSize);
        }
        return new Qcow2Header(f, backingFileName, extensions, geometry);
    }

    private static void requireHead(MemorySegment head, long fileSize, long needed) {
        if (head.byteSize() < Math.min(fileSize, needed)) {
            throw new IllegalArgumentException("the header needs the first " + Math.min(fileSize, needed)
                    + " bytes of the file; given " + head.byteSize());
        }
    }

    /**
     * The first cluster as a segment of exactly {@code clusterSize} bytes. A file shorter than one cluster
     * reads as zeros past its end (as a read past end of file does in QEMU); such a file fails the table
     * checks anyway, but every later bounds check can rely on the full cluster.
     */
    private static MemorySegment firstCluster(MemorySegment head, long avail, int clusterSize) {
        if (avail >= clusterSize) {
            return head.asSlice(0, clusterSize);
        }
        MemorySegment copy = MemorySegment.ofArray(new byte[clusterSize]);
        MemorySegment.copy(head, 0, copy, 0, avail);
        return copy;
    }

    private static CompressionType compressionType(MemorySegment cluster, Fields f) throws Qcow2FormatException {
        int code = f.headerLength > COMPRESSION_TYPE_OFFSET ? Be.u8(cluster, COMPRESSION_TYPE_OFFSET) : 0;
        CompressionType type = switch (code) {
            case 0 -> CompressionType.ZLIB;
            case 1 -> CompressionType.ZSTD;
            default -> throw new Qcow2FormatException("qcow2 header: compression_type " + code
                    + " unknown (0 zlib, 1 zstd)");
        };
        boolean bit = (f.incompatibleFeatures & INCOMPAT_COMPRESSION) != 0;
        if (type == CompressionType.ZLIB && bit) {
            throw new Qcow2FormatException("qcow2 header: incompatible_features bit 3 (compression type) set with"
                    + " compression_type 0 (zlib)");
        }
        if (type != CompressionType.ZLIB && !bit) {
            throw new Qcow2FormatException("qcow2 header: compression_type " + code + " (" + type.qemuName()
                    + ") without incompatible_features bit 3 (compression type)");
        }
        return type;
    }

    /** QEMU's {@code qcow2_validate_table}, plus the two checks it leaves to later reads. */
    private static void checkTable(String table, String offsetField, long offset, String countField, long count,
            long entrySize, long maxBytes, int clusterSize, long fileSize) throws Qcow2FormatException {
        checkTable("qcow2 header: ", table, offsetField, offset, countField, count, entrySize, maxBytes, clusterSize,
                fileSize);
    }

    static void checkTable(String prefix, String table, String offsetField, long offset, String countField,
            long count, long entrySize, long maxBytes, int clusterSize, long fileSize) throws Qcow2FormatException {
        long maxCount = maxBytes / entrySize;
        if (count > maxCount) {
            throw new Qcow2FormatException(prefix + countField + " " + count + " too large (the " + table
                    + " may have at most " + maxCount + ")");
        }
        long bytes = count * entrySize;
        if (offset < 0 || Long.MAX_VALUE - bytes < offset) {
            throw new Qcow2FormatException(prefix + offsetField + " " + Be.hex(offset) + " invalid");
        }
        if ((offset & (clusterSize - 1)) != 0) {
            throw new Qcow2FormatException(prefix + offsetField + " " + Be.hex(offset)
                    + " not aligned to the cluster size " + clusterSize);
        }
        if (count == 0) {
            return;
        }
        if (offset == 0) {
            throw new Qcow2FormatException(prefix + offsetField + " 0 puts the " + table
                    + " on top of the header");
        }
        if (offset + bytes > fileSize) {
            throw new Qcow2FormatException(prefix + offsetField + " " + Be.hex(offset) + ": the " + table
                    + " (" + bytes + " bytes) extends past end of file (size " + fileSize + ")");
        }
    }

    private static String describeBits(long bits, List<FeatureName> names) {
        List<String> parts = new ArrayList<>();
        for (long rest = bits; rest != 0; rest &= rest - 1) {
            int bit = Long.numberOfTrailingZeros(rest);
            parts.add(HeaderExtensions.lookup(names, FeatureName.Type.INCOMPATIBLE, bit)
                    .map(n -> bit + " (" + Be.quote(n) + ")").orElse(Integer.toString(bit)));
        }
        return (parts.size() == 1 ? "bit " : "bits ") + String.join(", ", parts);
    }

    /** 2 or 3 (QEMU's {@code compat=0.10} and {@code compat=1.1}). */
    public int version() {
        return version;
    }

    /** Offset of the backing file name in the first cluster, 0 if there is no backing file. */
    public long backingFileOffset() {
        return backingFileOffset;
    }

    /** Length of the backing file name (meaningless without a backing file). */
    public long backingFileSize() {
        return backingFileSize;
    }

    public int clusterBits() {
        return clusterBits;
    }

    public int clusterSize() {
        return 1 << clusterBits;
    }

    /** The {@code size} field: the virtual disk size in bytes (at most 2^63-1). */
    public long size() {
        return size;
    }

    /**
     * The virtual size as QEMU presents it: {@link #size()} rounded down to whole 512-byte sectors (QEMU
     * keeps sizes in sectors; {@code qemu-img create} only makes sector multiples).
     */
    public long virtualSize() {
        return size & ~511L;
    }

    /** Always {@link #CRYPT_NONE}: encrypted images are refused. */
    public int cryptMethod() {
        return cryptMethod;
    }

    /** Entries in the active L1 table. */
    public long l1Size() {
        return l1Size;
    }

    public long l1TableOffset() {
        return l1TableOffset;
    }

    public long refcountTableOffset() {
        return refcountTableOffset;
    }

    public long refcountTableClusters() {
        return refcountTableClusters;
    }

    /** Entries the refcount table can hold. */
    public long refcountTableEntries() {
        return refcountTableClusters << (clusterBits - 3);
    }

    public long nbSnapshots() {
        return nbSnapshots;
    }

    public long snapshotsOffset() {
        return snapshotsOffset;
    }

    public long incompatibleFeatures() {
        return incompatibleFeatures;
    }

    public long compatibleFeatures() {
        return compatibleFeatures;
    }

    public long autoclearFeatures() {
        return autoclearFeatures;
    }

    /** log2 of the refcount width; 4 (16 bits) for version 2. */
    public int refcountOrder() {
        return refcountOrder;
    }

    public int refcountBits() {
        return 1 << refcountOrder;
    }

    /** Bytes of header before the extensions; 72 for version 2. */
    public int headerLength() {
        return headerLength;
    }

    public CompressionType compressionType() {
        return compressionType;
    }

    /** Refcounts may be out of date: they must be rebuilt from the L1/L2 tables before being trusted. */
    public boolean isDirty() {
        return (incompatibleFeatures & INCOMPAT_DIRTY) != 0;
    }

    /** The image was marked corrupt; it must not be written except to repair it. */
    public boolean isCorrupt() {
        return (incompatibleFeatures & INCOMPAT_CORRUPT) != 0;
    }

    public boolean hasExternalDataFile() {
        return (incompatibleFeatures & INCOMPAT_DATA_FILE) != 0;
    }

    public boolean hasExtendedL2() {
        return (incompatibleFeatures & INCOMPAT_EXTL2) != 0;
    }

    public boolean lazyRefcounts() {
        return (compatibleFeatures & COMPAT_LAZY_REFCOUNTS) != 0;
    }

    /** Autoclear bit 0: the bitmaps extension can be trusted. */
    public boolean bitmapsConsistent() {
        return (autoclearFeatures & AUTOCLEAR_BITMAPS) != 0;
    }

    /** Autoclear bit 1: the external data file is a valid raw image by itself. */
    public boolean dataFileRaw() {
        return (autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) != 0;
    }

    /** The backing file name as stored, if the image has a backing file. */
    public Optional<String> backingFileName() {
        return Optional.ofNullable(backingFileName);
    }

    public HeaderExtensions extensions() {
        return extensions;
    }

    /** The layout numbers for the entry codecs. */
    public Geometry geometry() {
        return geometry;
    }

    /** The name of a known incompatible feature bit (0..4), for messages. */
    public static String incompatibleFeatureName(int bit) {
        return bit >= 0 && bit < INCOMPAT_NAMES.length ? INCOMPAT_NAMES[bit] : "bit " + bit;
    }

    @Override
    public String toString() {
        return "Qcow2Header[version=" + version + ", cluster_bits=" + clusterBits + ", size=" + size
                + ", l1_size=" + l1Size + ", l1_table_offset=" + Be.hex(l1TableOffset) + ", refcount_table_offset="
                + Be.hex(refcountTableOffset) + ", refcount_table_clusters=" + refcountTableClusters
                + ", nb_snapshots=" + nbSnapshots + ", snapshots_offset=" + Be.hex(snapshotsOffset)
                + ", incompatible=" + Be.hex(incompatibleFeatures) + ", compatible=" + Be.hex(compatibleFeatures)
                + ", autoclear=" + Be.hex(autoclearFeatures) + ", refcount_order=" + refcountOrder
                + ", header_length=" + headerLength + ", compression=" + compressionType.qemuName()
                + (backingFileName != null ? ", backing=" + backingFileName : "") + "]";
    }
}
