package io.qcow2j.engine;

import io.qcow2j.engine.create.ImageCreator;
import io.qcow2j.engine.format.CompressionType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * The options of a new image, with QEMU's {@code -o} names in brackets. Not validated on construction
 * ({@link #validate()} does it with QEMU's messages), so that a command line can show what it was given.
 *
 * @param size            {@code size}: virtual size in bytes (rounded up to 512), or null to take the
 *                        backing file's
 * @param clusterSize     {@code cluster_size}: 512 .. 2 MiB, a power of two (default 64 KiB)
 * @param version         {@code compat}: 2 ({@code 0.10}, {@code v2}) or 3 ({@code 1.1}, {@code v3}, default)
 * @param refcountBits    {@code refcount_bits}: 1 .. 64, a power of two (default 16; not 16 needs version 3)
 * @param extendedL2      {@code extended_l2}: subclusters (version 3, clusters of 16 KiB or more)
 * @param lazyRefcounts   {@code lazy_refcounts} (version 3)
 * @param compressionType {@code compression_type}: zlib (default) or zstd (version 3)
 * @param backingFile     {@code backing_file} ({@code -b}), as stored in the image; relative names are
 *                        relative to the image's folder; or null
 * @param backingFormat   {@code backing_fmt} ({@code -F}): {@code qcow2} or {@code raw}; required with a
 *                        backing file, as in qemu-img 7.2
 * @param preallocation   {@code preallocation}: off (default), metadata, falloc or full
 * @param unsafe          {@code -u}: do not open the backing file (then the size must be given)
 */
public record CreateOptions(Long size, long clusterSize, int version, long refcountBits, boolean extendedL2,
        boolean lazyRefcounts, CompressionType compressionType, String backingFile, String backingFormat,
        Preallocation preallocation, boolean unsafe) {
    /** QEMU's default cluster size, 64 KiB. */
    public static final int DEFAULT_CLUSTER_SIZE = 1 << 16;
    /** QEMU's default refcount width. */
    public static final int DEFAULT_REFCOUNT_BITS = 16;
    private static final String SIZE_HINT = " (optional suffix k, M, G, T, P or E means kilo-, mega-, giga-,"
            + " tera-, peta- and exabytes, respectively)";

    public CreateOptions {
        Objects.requireNonNull(compressionType);
        Objects.requireNonNull(preallocation);
    }

    /** QEMU's defaults, no size. */
    public static CreateOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.size = size;
        b.clusterSize = clusterSize;
        b.version = version;
        b.refcountBits = refcountBits;
        b.extendedL2 = extendedL2;
        b.lazyRefcounts = lazyRefcounts;
        b.compressionType = compressionType;
        b.backingFile = backingFile;
        b.backingFormat = backingFormat;
        b.preallocation = preallocation;
        b.unsafe = unsafe;
        return b;
    }

    /** {@code compat} as qemu-img info shows it: {@code 0.10} or {@code 1.1}. */
    public String compat() {
        return version == 2 ? "0.10" : "1.1";
    }

    /** Mutable form of {@link CreateOptions}. */
    public static final class Builder {
        private Long size;
        private long clusterSize = DEFAULT_CLUSTER_SIZE;
        private int version = 3;
        private long refcountBits = DEFAULT_REFCOUNT_BITS;
        private boolean extendedL2;
        private boolean lazyRefcounts;
        private CompressionType compressionType = CompressionType.ZLIB;
        private String backingFile;
        private String backingFormat;
        private Preallocation preallocation = Preallocation.OFF;
        private boolean unsafe;

        private Builder() {}

        public Builder size(Long bytes) {
            size = bytes;
            return this;
        }

        public Builder clusterSize(long bytes) {
            clusterSize = bytes;
            return this;
        }

        public Builder version(int v) {
            version = v;
            return this;
        }

        public Builder refcountBits(long bits) {
            refcountBits = bits;
            return this;
        }

        public Builder extendedL2(boolean on) {
            extendedL2 = on;
            return this;
        }

        public Builder lazyRefcounts(boolean on) {
            lazyRefcounts = on;
            return this;
        }

        public Builder compressionType(CompressionType type) {
            compressionType = type;
            return this;
        }

        public Builder backingFile(String name) {
            backingFile = name;
            return this;
        }

        public Builder backingFormat(String format) {
            backingFormat = format;
            return this;
        }

        public Builder preallocation(Preallocation p) {
            preallocation = p;
            return this;
        }

        public Builder unsafe(boolean on) {
            unsafe = on;
            return this;
        }

        public CreateOptions build() {
            return new CreateOptions(size, clusterSize, version, refcountBits, extendedL2, lazyRefcounts, compressionType,
                    backingFile, backingFormat, preallocation, unsafe);
        }
    }

    /** How much of the image to allocate up front. */
    public enum Preallocation {
        /** Only the header, refcount structures and L1 table. */
        OFF("off"),
        /** Also every L2 table and a (sparse) data cluster for every guest cluster. */
        METADATA("metadata"),
        /** As metadata, and the file system allocates the data clusters ({@code fallocate}). */
        FALLOC("falloc"),
        /** As metadata, and zeros are written into the data clusters. */
        FULL("full");

        private final String qemuName;

        Preallocation(String qemuName) {
            this.qemuName = qemuName;
        }

        /** The name in {@code -o preallocation=…}. */
        public String qemuName() {
            return qemuName;
        }
    }

    /** One {@code -o} key for {@code -o help}: its name, value type and description, as qemu-img lists them. */
    public record OptionHelp(String name, String type, String description) {}

    /** The {@code -o} keys {@link #parse} understands, sorted by name as qemu-img lists them. */
    public static List<OptionHelp> supportedOptions() {
        return List.of(
                new OptionHelp("backing_file", "str", "File name of a base image"),
                new OptionHelp("backing_fmt", "str", "Image format of the base image"),
                new OptionHelp("cluster_size", "size", "qcow2 cluster size"),
                new OptionHelp("compat", "str", "Compatibility level (v2 [0.10] or v3 [1.1])"),
                new OptionHelp("compression_type", "str", "Compression method used for image cluster compression"),
                new OptionHelp("extended_l2", "bool (on/off)", "Extended L2 tables"),
                new OptionHelp("lazy_refcounts", "bool (on/off)", "Postpone refcount updates"),
                new OptionHelp("preallocation", "str", "Preallocation mode (allowed values: off, metadata, falloc, full)"),
                new OptionHelp("refcount_bits", "num", "Width of a reference count entry in bits"),
                new OptionHelp("size", "size", "Virtual disk size"));
    }

    /**
     * Splits QEMU's {@code key=value,key=value} syntax ({@code ,,} is a comma in a value) in order; a repeated
     * key keeps its last value.
     *
     * @throws IllegalArgumentException on an item without {@code =}
     */
    public static Map<String, String> splitOptions(String text) {
        return ImageOptions.split(text);
    }

    /**
     * Parses {@code -o} options over {@code base}: the keys of {@link #supportedOptions()}, values as qemu-img
     * reads them (sizes with suffixes, numbers in C syntax, {@code on}/{@code off}). Only syntax is checked
     * here; {@link #validate()} checks the combination.
     *
     * @throws IllegalArgumentException with QEMU's message for an unknown key or a value of the wrong type
     */
    public static CreateOptions parse(String text, CreateOptions base) {
        Builder b = base.toBuilder();
        for (Map.Entry<String, String> e : splitOptions(text).entrySet()) {
            String k = e.getKey();
            String v = e.getValue();
            switch (k) {
                case "size" -> b.size = parseSize(k, v);
                case "cluster_size" -> b.clusterSize = parseSize(k, v);
                case "compat" -> b.version = switch (v) {
                    case "0.10", "v2" -> 2;
                    case "1.1", "v3" -> 3;
                    default -> throw new IllegalArgumentException("Parameter 'version' does not accept value '"
                            + v + "'");
                };
                case "refcount_bits" -> b.refcountBits = parseNumber(k, v);
                case "extended_l2" -> b.extendedL2 = parseBool(k, v);
                case "lazy_refcounts" -> b.lazyRefcounts = parseBool(k, v);
                case "compression_type" -> b.compressionType = switch (v) {
                    case "zlib" -> CompressionType.ZLIB;
                    case "zstd" -> CompressionType.ZSTD;
                    default -> throw new IllegalArgumentException(
                            "Parameter 'compression-type' does not accept value '" + v + "'");
                };
                case "backing_file" -> b.backingFile = v;
                case "backing_fmt" -> b.backingFormat = v;
                case "preallocation" -> b.preallocation = switch (v) {
                    case "off" -> Preallocation.OFF;
                    case "metadata" -> Preallocation.METADATA;
                    case "falloc" -> Preallocation.FALLOC;
                    case "full" -> Preallocation.FULL;
                    default -> throw new IllegalArgumentException("Parameter 'preallocation' does not accept value '"
                            + v + "'");
                };
                default -> throw new IllegalArgumentException("Invalid parameter '" + k + "'");
            }
        }
        return b.build();
    }

    /** A size option as QEMU's {@code QEMU_OPT_SIZE} reads it. */
    private static long parseSize(String key, String v) {
        try {
            return Sizes.parse(key, v);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("Parameter '" + key + "' expects a non-negative number below 2^64"
                    + SIZE_HINT);
        }
    }

    /** A number option as QEMU's {@code QEMU_OPT_NUMBER} reads it: C syntax ({@code 16}, {@code 0x10}, {@code 020}). */
    static long parseNumber(String key, String v) {
        String s = v.strip();
        int radix = 10;
        if (s.startsWith("0x") || s.startsWith("0X")) {
            radix = 16;
            s = s.substring(2);
        } else if (s.length() > 1 && s.startsWith("0")) {
            radix = 8;
            s = s.substring(1);
        }
        try {
            if (s.isEmpty() || s.startsWith("+") || s.startsWith("-")) {
                throw new NumberFormatException();
            }
            return Long.parseUnsignedLong(s, radix);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Parameter '" + key + "' expects a number");
        }
    }

    private static boolean parseBool(String key, String v) {
        return switch (v.toLowerCase(Locale.ROOT)) {
            case "on", "yes", "true", "y" -> true;
            case "off", "no", "false", "n" -> false;
            default -> throw new IllegalArgumentException("Parameter '" + key + "' expects 'on' or 'off'");
        };
    }

    /**
     * Checks the options as QEMU's {@code qcow2_co_create} does, in its order and with its messages, plus what
     * qcow2j cannot do (backing formats other than qcow2 and raw). The size must be known.
     *
     * @throws IllegalArgumentException one line naming the first problem
     */
    public void validate() {
        ImageCreator.validate(this);
    }

    /**
     * What {@code qemu-img create} checks before it prints its "Formatting" line: a backing file is not the
     * image itself and has a name and a format; unless {@link #unsafe()}, it opens (with its own backing
     * chain) as that format; and the size is known. Returns the options with the size taken from the backing
     * file if none was given (a qcow2 image's virtual size; a raw file's size rounded up to 512).
     *
     * @param image the image to be created (relative backing names are relative to its folder)
     * @throws IllegalArgumentException for a missing size or backing format (QEMU's messages)
     * @throws IOException when the backing file cannot be opened: "Could not open backing image 'NAME': why"
     */
    public CreateOptions resolveBacking(Path image) throws IOException {
        return ImageCreator.resolveBacking(image, this);
    }
}
