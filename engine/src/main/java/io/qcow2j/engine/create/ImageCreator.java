package io.qcow2j.engine.create;

import io.qcow2j.engine.CreateOptions;
import io.qcow2j.engine.CreatedImage;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.format.CompressionType;
import io.qcow2j.engine.format.FeatureName;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.HeaderExtensions;
import io.qcow2j.engine.format.L1Entry;
import io.qcow2j.engine.format.L2Entry;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.RefcountBlock;
import io.qcow2j.engine.qcow2.ClusterPreallocation;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.engine.raw.RawImage;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.ErrnoException;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.ffm.LibC;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Objects;
import java.util.function.LongUnaryOperator;
import java.util.function.UnaryOperator;

/**
 * Writes new qcow2 images, as {@code qemu-img create -f qcow2} does: the same options with QEMU's names,
 * defaults, rules and messages, and for the usual cases the same bytes.
 *
 * <p>The layout is QEMU's: the header in cluster 0 (a 72-byte version 2 header, or a 112-byte version 3
 * header with the compression type byte), then its extensions as QEMU writes them (the backing format,
 * the feature name table for version 3 with clusters above 4 KiB, the end marker) and the backing file
 * name; the refcount table in cluster 1; the refcount blocks; the L1 table (zeroed); and with
 * {@code preallocation=metadata} each L2 table followed by the data clusters it maps, every entry pointing
 * at its preallocated cluster with COPIED set, the file extended (sparse) to cover them. Every one of these
 * clusters has refcount 1. Where QEMU needs one refcount block and one refcount table cluster (every image
 * whose metadata fits in what one refcount block covers: all but very large preallocated images and
 * images with tiny clusters and wide refcounts), the file is byte for byte the one {@code qemu-img create}
 * writes. Otherwise the refcount table and blocks are sized up front (the fixed point of QEMU's
 * {@code qcow2_refcount_metadata_size}) and placed together after the header, where QEMU grows them while
 * allocating; the image is equally valid, only laid out differently.
 *
 * <p>Use: {@link #create(Path, CreateOptions)} (through {@link io.qcow2j.engine.Images#create}). A command line first calls {@link #resolveBacking} (the checks
 * {@code qemu-img} makes before it prints its "Formatting" line: the backing file opens, a backing format
 * is given, the size is known) and then {@code create}. Errors are one line: {@link IllegalArgumentException}
 * for options QEMU would refuse (with QEMU's message), {@link IOException} for files that cannot be opened
 * or written. An existing file is overwritten, as {@code qemu-img create} does; if writing fails the file is
 * removed, as QEMU does. The options are checked before the file is touched.
 */
public final class ImageCreator {
    /** Length of the version 3 header QEMU writes: 104 bytes, the compression type byte and 7 of padding. */
    public static final int V3_HEADER_LENGTH = 112;
    /** QEMU writes the feature name table only with clusters larger than this (room for a backing name). */
    public static final int FEATURE_TABLE_MIN_CLUSTER = 4096;

    public static final String TOO_LARGE = "The image size is too large for file format 'qcow2' (try using a larger"
            + " cluster size)";
    private static final String NEEDS_V3 = " (use version=v3 or greater)";
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt BE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /** Bytes written per call when writing long tables. */
    private static final int CHUNK = 1 << 20;

    private ImageCreator() {}
    /** See {@link CreateOptions#validate()}. */
    public static void validate(CreateOptions o) {
        if (o.size() == null) {
            throw new IllegalArgumentException("Image creation needs a size parameter");
        }
        if (o.size() < 0) {
            throw new IllegalArgumentException("Invalid image size specified. Must be between 0 and "
                    + Long.MAX_VALUE + ".");
        }
        if (o.version() != 2 && o.version() != 3) {
            throw new IllegalArgumentException("Parameter 'version' does not accept value '" + o.version() + "'");
        }
        if (o.extendedL2() && o.version() < 3) {
            throw new IllegalArgumentException("Extended L2 entries are only supported with compatibility level 1.1"
                    + " and above" + NEEDS_V3);
        }
        long cs = o.clusterSize();
        if (cs < 1L << Geometry.MIN_CLUSTER_BITS || cs > 1L << Geometry.MAX_CLUSTER_BITS || Long.bitCount(cs) != 1) {
            throw new IllegalArgumentException("Cluster size must be a power of two between "
                    + (1 << Geometry.MIN_CLUSTER_BITS) + " and " + (1 << (Geometry.MAX_CLUSTER_BITS - 10)) + "k");
        }
        if (o.extendedL2() && cs < 1L << Geometry.MIN_EXTENDED_L2_CLUSTER_BITS) {
            throw new IllegalArgumentException("Extended L2 entries are only supported with cluster sizes of at least "
                    + (1 << Geometry.MIN_EXTENDED_L2_CLUSTER_BITS) + " bytes");
        }
        if (o.backingFile() != null && o.preallocation() != CreateOptions.Preallocation.OFF && !o.extendedL2()) {
            throw new IllegalArgumentException("Backing file and preallocation can only be used at the same time if"
                    + " extended_l2 is on");
        }
        if (o.backingFormat() != null && o.backingFile() == null) {
            throw new IllegalArgumentException("Backing format cannot be used without backing file");
        }
        if (o.lazyRefcounts() && o.version() < 3) {
            throw new IllegalArgumentException("Lazy refcounts only supported with compatibility level 1.1 and above"
                    + NEEDS_V3);
        }
        long bits = o.refcountBits();
        if (bits < 1 || bits > 64 || Long.bitCount(bits) != 1) {
            throw new IllegalArgumentException("Refcount width must be a power of two and may not exceed 64 bits");
        }
        if (o.version() < 3 && bits != 16) {
            throw new IllegalArgumentException("Different refcount widths than 16 bits require compatibility level 1.1"
                    + " or above" + NEEDS_V3);
        }
        if (o.compressionType() != CompressionType.ZLIB && o.version() < 3) {
            throw new IllegalArgumentException("Non-zlib compression type is only supported with compatibility level"
                    + " 1.1 and above" + NEEDS_V3);
        }
        if (o.backingFile() != null) {
            if (o.backingFile().isEmpty()) {
                throw new IllegalArgumentException("Expected backing file name, got empty string");
            }
            if (o.backingFormat() == null) {
                throw new IllegalArgumentException("Backing file specified without backing format");
            }
            checkBackingFormat(o.backingFormat());
        }
        Layout.of(o); // the size limits
        headerSpace(o);
    }

    private static void checkBackingFormat(String format) {
        if (!format.equals("qcow2") && !format.equals("raw")) {
            throw new IllegalArgumentException("Backing format '" + format
                    + "' is not supported by qcow2j (qcow2 or raw)");
        }
    }

    /** See {@link CreateOptions#resolveBacking(Path)}. */
    public static CreateOptions resolveBacking(Path image, CreateOptions o) throws IOException {
        String name = o.backingFile();
        if (name == null) {
            if (o.size() == null) {
                throw new IllegalArgumentException("Image creation needs a size parameter");
            }
            return o;
        }
        if (name.equals(image.toString())) {
            throw new IllegalArgumentException("Error: Trying to create an image with the same filename as the backing"
                    + " file");
        }
        if (name.isEmpty()) {
            throw new IllegalArgumentException("Expected backing file name, got empty string");
        }
        if (o.unsafe()) {
            if (o.backingFormat() == null) {
                throw new IllegalArgumentException("Backing file specified without backing format");
            }
            if (o.size() == null) {
                throw new IllegalArgumentException("Image creation needs a size parameter");
            }
            return o;
        }
        Path parent = image.getParent();
        String shown = parent == null || Path.of(name).isAbsolute() ? name : parent.resolve(name).toString();
        Path path = ChainOpener.resolveBacking(image.toAbsolutePath(), name, image.toString());
        String format = o.backingFormat();
        if (format == null) {
            String detected = probeBacking(path, shown);
            throw new IllegalArgumentException("Backing file specified without backing format (detected format of "
                    + detected + ")");
        }
        checkBackingFormat(format);
        long size = backingSize(path, shown, format);
        return o.size() == null ? o.toBuilder().size(size).build() : o;
    }

    private static long backingSize(Path path, String shown, String format) throws IOException {
        try {
            if (format.equals("raw")) {
                if (Files.isDirectory(path)) {
                    throw new IOException("Is a directory");
                }
                try (RawImage raw = RawImage.open(AlignedFile.open(path, IoMode.BUFFERED, StandardOpenOption.READ),
                        shown)) {
                    return roundUp(raw.size(), 512);
                }
            }
            ImageOptions readOnly = ImageOptions.builder().readOnly(true).cacheCleanInterval(0).build();
            try (Qcow2Image img = ChainOpener.openQcow2(path, readOnly)) {
                return img.size();
            }
        } catch (IOException e) {
            throw couldNotOpenBacking(shown, e);
        }
    }

    /** The format of a backing file probed as QEMU does (qcow2 magic, else raw). */
    private static String probeBacking(Path path, String shown) throws IOException {
        try {
            if (Files.isDirectory(path)) {
                throw new IOException("Is a directory");
            }
            try (AlignedFile f = AlignedFile.open(path, IoMode.BUFFERED, StandardOpenOption.READ)) {
                MemorySegment m = MemorySegment.ofArray(new byte[4]);
                return f.read(0, m) == 4 && m.get(BE32, 0) == Qcow2Header.MAGIC ? "qcow2" : "raw";
            }
        } catch (IOException e) {
            throw couldNotOpenBacking(shown, e);
        }
    }

    private static IOException couldNotOpenBacking(String shown, IOException e) {
        String why;
        if (e instanceof NoSuchFileException) {
            why = "No such file or directory";
        } else if (e instanceof AccessDeniedException) {
            why = "Permission denied";
        } else if (e instanceof ErrnoException x) {
            why = LibC.strerror(x.errno());
        } else {
            why = Objects.requireNonNullElse(e.getMessage(), e.getClass().getSimpleName());
        }
        return new IOException("Could not open backing image '" + shown + "': " + why.replace('\n', ' '), e);
    }
    /**
     * Creates (or overwrites) the qcow2 image {@code path}: {@link #resolveBacking}, {@link #validate}, then
     * writes the image and syncs it ({@code fdatasync}). The header is written last, so an interrupted
     * creation never leaves a file that looks like a valid image; a failed one is removed. See
     * {@link io.qcow2j.engine.Images#create}.
     */
    public static CreatedImage create(Path path, CreateOptions options) throws IOException {
        return create(path, options, UnaryOperator.identity());
    }

    /** As {@link #create(Path, CreateOptions)}, writing through {@code wrap} of the file (tests inject failures). */
    public static CreatedImage create(Path path, CreateOptions options, UnaryOperator<PositionalFile> wrap) throws IOException {
        CreateOptions o = resolveBacking(path, options);
        validate(o);
        Layout l = Layout.of(o);
        PositionalFile opened;
        try {
            opened = AlignedFile.open(path, IoMode.BUFFERED, StandardOpenOption.CREATE,
                    StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.READ, StandardOpenOption.WRITE);
        } catch (ErrnoException e) {
            throw new IOException("Could not create '" + path + "': " + LibC.strerror(e.errno()), e);
        }
        PositionalFile file = wrap.apply(opened);
        boolean done = false;
        try (file; Arena arena = Arena.ofConfined()) {
            write(file, arena, o, l);
            file.dataSync();
            if (o.preallocation() == CreateOptions.Preallocation.FALLOC
                    || o.preallocation() == CreateOptions.Preallocation.FULL) {
                preallocate(path, o);
            }
            done = true;
        } finally {
            if (!done) {
                try {
                    Files.deleteIfExists(path);
                } catch (IOException ignored) {
                    // the first failure is the one to report
                }
            }
        }
        return new CreatedImage(l.size, l.cs, l.l1Offset, l.l1Entries, l.rtOffset, l.rtClusters, l.rbCount, l.clusters,
                l.fileSize);
    }
    /**
     * falloc and full, as QEMU's create does them (a truncate of the empty image with that preallocation): every
     * guest cluster linked to a host cluster the file system allocated (falloc) or that holds written zeros
     * (full), through the driver's crash-safe preallocation. The backing file is not consulted (QEMU opens the
     * new image without it): with extended L2 the subclusters stay unallocated and read the backing file.
     */
    private static void preallocate(Path path, CreateOptions o) throws IOException {
        try (Qcow2Image img = (Qcow2Image) Images.openQcow2(path, ImageOptions.builder().readOnly(false).build())) {
            ClusterPreallocation.preallocate(img, 0, o.size(), o.preallocation() == CreateOptions.Preallocation.FULL
                    ? ClusterPreallocation.Mode.FULL : ClusterPreallocation.Mode.FALLOC, false);
        }
    }
    // ------------------------------------------------------------------------------------------- writing

    private static void write(PositionalFile file, Arena arena, CreateOptions o, Layout l) throws IOException {
        writeRefcountTable(file, arena, l);
        writeRefcountBlocks(file, arena, l);
        writeL1(file, arena, l);
        if (l.prealloc) {
            writeL2Tables(file, arena, l);
        }
        file.truncate(l.fileSize);
        file.write(0, header(arena, o, l));
    }

    private static void writeRefcountTable(PositionalFile file, Arena arena, Layout l) throws IOException {
        writeTable(file, arena, l.rtOffset, l.rtClusters * (l.cs / 8), i -> i < l.rbCount ? l.rbOffset + i * l.cs : 0);
    }

    /** Writes {@code count} big-endian 64-bit entries at {@code offset}, in chunks. */
    private static void writeTable(PositionalFile file, Arena arena, long offset, long count,
            LongUnaryOperator entry) throws IOException {
        long perChunk = CHUNK / 8;
        MemorySegment buf = arena.allocate(Math.min(count, perChunk) * 8 + 8);
        for (long start = 0; start < count; start += perChunk) {
            long n = Math.min(perChunk, count - start);
            MemorySegment s = buf.asSlice(0, n * 8);
            for (long i = 0; i < n; i++) {
                s.set(BE64, i * 8, entry.applyAsLong(start + i));
            }
            file.write(offset + start * 8, s);
        }
    }

    /** Every refcount block: refcount 1 for clusters {@code [0, clusters)}, 0 past them. */
    private static void writeRefcountBlocks(PositionalFile file, Arena arena, Layout l) throws IOException {
        int order = l.g.refcountOrder();
        long perBlock = l.g.refcountBlockEntries();
        // Eight bytes of refcounts of 1, the same pattern for every width, replicated over whole blocks.
        MemorySegment pattern = arena.allocate(8);
        for (long i = 0; i < 64 >> order; i++) {
            RefcountBlock.set(pattern, i, order, 1);
        }
        long pat = pattern.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
        long blocksPerChunk = Math.max(1, CHUNK / l.cs);
        MemorySegment buf = arena.allocate(Math.min(blocksPerChunk, l.rbCount) * l.cs);
        for (long first = 0; first < l.rbCount; first += blocksPerChunk) {
            long n = Math.min(blocksPerChunk, l.rbCount - first);
            MemorySegment s = buf.asSlice(0, n * l.cs);
            for (long b = 0; b < n * l.cs; b += 8) {
                s.set(ValueLayout.JAVA_LONG_UNALIGNED, b, pat);
            }
            long last = first + n - 1;
            long inLast = l.clusters - last * perBlock; // refcounts of 1 in the last block of this chunk
            if (inLast < perBlock) {
                MemorySegment block = s.asSlice((n - 1) * l.cs, l.cs);
                block.fill((byte) 0);
                for (long i = 0; i < inLast; i++) {
                    RefcountBlock.set(block, i, order, 1);
                }
            }
            file.write(l.rbOffset + first * l.cs, s);
        }
    }

    private static void writeL1(PositionalFile file, Arena arena, Layout l) throws IOException {
        if (l.l1Entries == 0) {
            return;
        }
        if (l.prealloc) {
            writeTable(file, arena, l.l1Offset, l.l1Entries, k -> L1Entry.of(l.l2Offset(k), true));
        } else {
            writeTable(file, arena, l.l1Offset, l.l1Entries, k -> 0);
        }
    }

    /**
     * Every L2 table, each mapping its guest clusters to the data clusters right after it (COPIED, refcount
     * 1). The data clusters are not written: the file is extended over them and they read as zeros. With
     * extended L2 the subcluster bitmaps stay 0, as QEMU leaves them for preallocation: the subclusters read
     * from the backing file, or as zeros.
     */
    private static void writeL2Tables(PositionalFile file, Arena arena, Layout l) throws IOException {
        MemorySegment table = arena.allocate(l.cs);
        int step = l.g.l2EntrySize();
        for (long k = 0; k < l.l1Entries; k++) {
            long at = l.l2Offset(k);
            long n = l.dataClustersOf(k);
            table.fill((byte) 0);
            for (long i = 0; i < n; i++) {
                table.set(BE64, i * step, L2Entry.of(at + (1 + i) * l.cs, true, false));
            }
            file.write(at, table);
        }
    }

    /** Bytes left in the first cluster for the backing file name, after header and extensions. */
    private static void headerSpace(CreateOptions o) {
        if (o.backingFile() == null) {
            return;
        }
        int nameLength = o.backingFile().getBytes(StandardCharsets.UTF_8).length;
        int used = extensionsEnd(o);
        String what = "Could not assign backing file '" + o.backingFile() + "' with format '" + o.backingFormat()
                + "': ";
        if (nameLength > Qcow2Header.MAX_BACKING_FILE_NAME) {
            throw new IllegalArgumentException(what + "Invalid argument (the name is longer than "
                    + Qcow2Header.MAX_BACKING_FILE_NAME + " bytes)");
        }
        if (nameLength > o.clusterSize() - used) {
            throw new IllegalArgumentException(what + "No space left on device (" + (o.clusterSize() - used)
                    + " bytes left in the first cluster)");
        }
    }

    /** Offset in the first cluster just after the end-of-extensions marker. */
    private static int extensionsEnd(CreateOptions o) {
        int at = o.version() == 2 ? Qcow2Header.V2_HEADER_LENGTH : V3_HEADER_LENGTH;
        if (o.backingFormat() != null) {
            at += 8 + pad8(o.backingFormat().getBytes(StandardCharsets.UTF_8).length);
        }
        if (hasFeatureTable(o)) {
            at += 8 + FeatureName.QEMU_TABLE.size() * FeatureName.ENTRY_SIZE;
        }
        return at + 8;
    }

    private static boolean hasFeatureTable(CreateOptions o) {
        return o.version() >= 3 && o.clusterSize() > FEATURE_TABLE_MIN_CLUSTER;
    }

    /** The first cluster: header, extensions, backing file name. */
    private static MemorySegment header(Arena arena, CreateOptions o, Layout l) {
        MemorySegment h = arena.allocate(l.cs);
        h.set(BE32, 0, Qcow2Header.MAGIC);
        h.set(BE32, 4, o.version());
        h.set(BE32, 20, l.g.clusterBits());
        h.set(BE64, 24, l.size);
        h.set(BE32, 32, Qcow2Header.CRYPT_NONE);
        h.set(BE32, 36, (int) l.l1Entries);
        h.set(BE64, 40, l.l1Offset);
        h.set(BE64, 48, l.rtOffset);
        h.set(BE32, 56, (int) l.rtClusters);
        // nb_snapshots and snapshots_offset stay 0
        int at;
        if (o.version() >= 3) {
            long incompatible = 0;
            if (o.compressionType() != CompressionType.ZLIB) {
                incompatible |= Qcow2Header.INCOMPAT_COMPRESSION;
            }
            if (o.extendedL2()) {
                incompatible |= Qcow2Header.INCOMPAT_EXTL2;
            }
            h.set(BE64, 72, incompatible);
            h.set(BE64, 80, o.lazyRefcounts() ? Qcow2Header.COMPAT_LAZY_REFCOUNTS : 0);
            h.set(BE64, 88, 0);
            h.set(BE32, 96, l.g.refcountOrder());
            h.set(BE32, 100, V3_HEADER_LENGTH);
            h.set(ValueLayout.JAVA_BYTE, Qcow2Header.COMPRESSION_TYPE_OFFSET, (byte) o.compressionType().code());
            at = V3_HEADER_LENGTH;
        } else {
            at = Qcow2Header.V2_HEADER_LENGTH;
        }
        if (o.backingFormat() != null) {
            at = extension(h, at, HeaderExtensions.BACKING_FILE_FORMAT,
                    o.backingFormat().getBytes(StandardCharsets.UTF_8));
        }
        if (hasFeatureTable(o)) {
            byte[] table = FeatureName.encode(FeatureName.QEMU_TABLE);
            at = extension(h, at, HeaderExtensions.FEATURE_NAME_TABLE, table);
        }
        at = extension(h, at, HeaderExtensions.END, new byte[0]);
        if (o.backingFile() != null) {
            byte[] name = o.backingFile().getBytes(StandardCharsets.UTF_8);
            MemorySegment.copy(name, 0, h, ValueLayout.JAVA_BYTE, at, name.length);
            h.set(BE64, 8, at);
            h.set(BE32, 16, name.length);
        }
        return h;
    }

    /** Writes one extension record (type, length, data padded to 8) at {@code at}; returns the next offset. */
    private static int extension(MemorySegment h, int at, int type, byte[] data) {
        h.set(BE32, at, type);
        h.set(BE32, at + 4, data.length);
        MemorySegment.copy(data, 0, h, ValueLayout.JAVA_BYTE, at + 8, data.length);
        return at + 8 + pad8(data.length);
    }

    private static int pad8(int n) {
        return (n + 7) & ~7;
    }

    private static long roundUp(long v, long to) {
        return (v + to - 1) / to * to;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

}
