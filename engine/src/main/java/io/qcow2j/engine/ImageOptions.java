package io.qcow2j.engine;

import io.qcow2j.engine.cache.CacheSizes;
import io.qcow2j.engine.format.Geometry;
import io.qcow2j.engine.format.Qcow2Header;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * How to open an image: QEMU's qcow2 runtime options with QEMU's names and defaults, plus qcow2j's own.
 *
 * <p>Immutable; build with {@link #builder()} or parse QEMU's {@code key=value,key=value} syntax with
 * {@link #parse} (as in {@code qemu-img -o …} and {@code --image-opts}; {@code ,,} stands for a comma
 * inside a value).
 *
 * @param l2CacheSize          {@code l2-cache-size} in bytes, or null for QEMU's default
 * @param refcountCacheSize    {@code refcount-cache-size} in bytes, or null
 * @param cacheSize            {@code cache-size} (both caches) in bytes, or null
 * @param l2CacheEntrySize     {@code l2-cache-entry-size} in bytes, or null
 * @param cacheCleanInterval   {@code cache-clean-interval} in seconds; 0 disables (QEMU's default: 600)
 * @param overlapCheck         {@code overlap-check} (QEMU's default: cached)
 * @param cacheMode            {@code cache=}: writeback (default), none ({@code O_DIRECT}), writethrough, unsafe
 * @param directFallback       with {@code cache=none}: fall back to buffered I/O (reported) where the
 *                             filesystem refuses {@code O_DIRECT}, instead of failing as QEMU does
 * @param tableStore           where the metadata caches keep their tables: off-heap (default) or heap
 * @param discardUnmap         {@code discard=unmap}: clusters freed by guest discards and unmapping zero writes
 *                             are punched out of the image file (QEMU's default {@code discard=ignore} keeps them)
 * @param lazyRefcounts        {@code lazy-refcounts}: null follows the image header (compat 1.1 images only)
 * @param readOnly             open without write access ({@code read-only=on}); the default opens read/write,
 *                             as qemu-io, qemu-nbd and hypervisors do
 * @param filename             {@code file.filename} from {@code --image-opts}, or null
 * @param untrusted            the image comes from someone else (an upload, a guest): backing file names must be
 *                             relative and stay inside the top image's folder (symlinks followed), protocol and
 *                             {@code json:} names are refused, the backing format must be written in the image
 *                             (no probing), raw backing files are refused unless {@code allowRawBacking}, and the
 *                             chain may be at most {@value #UNTRUSTED_MAX_CHAIN_DEPTH} backing files deep
 *                             (else {@value #MAX_CHAIN_DEPTH}); the default (off) behaves as QEMU
 * @param allowRawBacking      with {@code untrusted}: accept backing files whose (given) format is raw
 * @param snapshot             open the top image as it was at this internal snapshot ({@code qemu-img convert -l}),
 *                             or null for its current state: a view that is always {@code readOnly} (the
 *                             constructor refuses anything else) with the image's current virtual size, as QEMU's
 *                             temporary snapshot load; its backing files open as they are
 */
public record ImageOptions(Long l2CacheSize, Long refcountCacheSize, Long cacheSize, Long l2CacheEntrySize,
        long cacheCleanInterval, OverlapCheckMode overlapCheck, CacheMode cacheMode, boolean directFallback,
        TableStoreKind tableStore, boolean discardUnmap, Boolean lazyRefcounts, boolean readOnly, String filename,
        boolean untrusted, boolean allowRawBacking, SnapshotRef snapshot) {

    public static final long DEFAULT_CACHE_CLEAN_INTERVAL = 600;

    /** The deepest backing chain opened (backing files below the top image); QEMU has no fixed limit. */
    public static final int MAX_CHAIN_DEPTH = 64;

    /** The deepest backing chain opened with {@link #untrusted()}. */
    public static final int UNTRUSTED_MAX_CHAIN_DEPTH = 16;

    /** The deepest backing chain these options open. */
    public int maxChainDepth() {
        return untrusted ? UNTRUSTED_MAX_CHAIN_DEPTH : MAX_CHAIN_DEPTH;
    }

    public ImageOptions {
        Objects.requireNonNull(overlapCheck);
        Objects.requireNonNull(cacheMode);
        Objects.requireNonNull(tableStore);
        if (cacheCleanInterval < 0 || cacheCleanInterval > 0xffffffffL) {
            throw new IllegalArgumentException("Cache clean interval too big");
        }
        if (snapshot != null && !readOnly) {
            throw new IllegalArgumentException("an internal snapshot is opened read-only");
        }
    }

    /** QEMU's defaults. */
    public static ImageOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A builder holding these options, to change some. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.l2CacheSize = l2CacheSize;
        b.refcountCacheSize = refcountCacheSize;
        b.cacheSize = cacheSize;
        b.l2CacheEntrySize = l2CacheEntrySize;
        b.cacheCleanInterval = cacheCleanInterval;
        b.overlapCheck = overlapCheck;
        b.cacheMode = cacheMode;
        b.directFallback = directFallback;
        b.tableStore = tableStore;
        b.discardUnmap = discardUnmap;
        b.lazyRefcounts = lazyRefcounts;
        b.readOnly = readOnly;
        b.filename = filename;
        b.untrusted = untrusted;
        b.allowRawBacking = allowRawBacking;
        b.snapshot = snapshot;
        return b;
    }

    /**
     * Parses {@code key=value[,key=value…]} over {@code base}. Known keys: the QEMU qcow2 options above,
     * {@code cache} ({@code none|writeback|writethrough|unsafe}), {@code cache.direct} and
     * {@code cache.no-flush} ({@code on|off}), {@code read-only}, {@code driver} (must be qcow2),
     * {@code file.filename}, {@code file.driver} (must be file), {@code discard} ({@code ignore|unmap}), and
     * qcow2j's {@code table-store}
     * ({@code off-heap|heap}) and {@code direct-fallback} ({@code on|off}).
     *
     * @throws IllegalArgumentException one line naming the bad option or value
     */
    public static ImageOptions parse(String text, ImageOptions base) {
        Builder b = base.toBuilder();
        Boolean direct = null;
        Boolean noFlush = null;
        for (Map.Entry<String, String> e : split(text).entrySet()) {
            String k = e.getKey();
            String v = e.getValue();
            switch (k) {
                case "l2-cache-size" -> b.l2CacheSize = Sizes.parse(k, v);
                case "refcount-cache-size" -> b.refcountCacheSize = Sizes.parse(k, v);
                case "cache-size" -> b.cacheSize = Sizes.parse(k, v);
                case "l2-cache-entry-size" -> b.l2CacheEntrySize = Sizes.parse(k, v);
                case "cache-clean-interval" -> b.cacheCleanInterval = parseNumber(k, v);
                case "overlap-check" -> b.overlapCheck = OverlapCheckMode.parse(v);
                case "cache" -> b.cacheMode = CacheMode.parse(v);
                case "cache.direct" -> direct = parseBool(k, v);
                case "cache.no-flush" -> noFlush = parseBool(k, v);
                case "read-only" -> b.readOnly = parseBool(k, v);
                case "lazy-refcounts" -> b.lazyRefcounts = parseBool(k, v);
                case "discard" -> b.discardUnmap = switch (v) {
                    case "unmap", "on" -> true;
                    case "ignore", "off" -> false;
                    default -> throw new IllegalArgumentException(
                            "Invalid discard option '" + v + "' (expected ignore or unmap)");
                };
                case "direct-fallback" -> b.directFallback = parseBool(k, v);
                case "table-store" -> b.tableStore = switch (v) {
                    case "off-heap" -> TableStoreKind.OFF_HEAP;
                    case "heap" -> TableStoreKind.HEAP;
                    default -> throw new IllegalArgumentException(
                            "Invalid value '" + v + "' for 'table-store' (expected off-heap or heap)");
                };
                case "driver" -> {
                    if (!v.equals("qcow2")) {
                        throw new IllegalArgumentException("Unknown driver '" + v + "' (qcow2j opens qcow2)");
                    }
                }
                case "file.driver" -> {
                    if (!v.equals("file")) {
                        throw new IllegalArgumentException("Unsupported protocol driver '" + v + "'");
                    }
                }
                case "file.filename", "file" -> b.filename = v;
                default -> throw new IllegalArgumentException(
                        "Block format 'qcow2' does not support the option '" + k + "'");
            }
        }
        if (direct != null || noFlush != null) {
            boolean d = direct != null ? direct : b.cacheMode == CacheMode.NONE;
            boolean nf = noFlush != null ? noFlush : b.cacheMode == CacheMode.UNSAFE;
            if (d && nf) {
                throw new IllegalArgumentException("cache.direct=on with cache.no-flush=on is not supported");
            }
            b.cacheMode = d ? CacheMode.NONE : nf ? CacheMode.UNSAFE
                    : b.cacheMode == CacheMode.WRITETHROUGH ? CacheMode.WRITETHROUGH : CacheMode.WRITEBACK;
        }
        return b.build();
    }

    /**
     * Checks the cache options against an image's geometry as opening it would ({@code l2-cache-size} and
     * the others must fit together and with the cluster size).
     *
     * @throws IllegalArgumentException with QEMU's message for the first problem
     */
    public void checkCacheSizes(Qcow2Header header) {
        Geometry g = header.geometry();
        CacheSizes.resolve(l2CacheSize, refcountCacheSize, cacheSize, l2CacheEntrySize, g.clusterSize(), header.size(),
                g.l2EntrySize());
    }

    /** Splits QEMU's option syntax; {@code ,,} is a literal comma. Keeps order; a repeated key: last wins. */
    static Map<String, String> split(String text) {
        Map<String, String> out = new LinkedHashMap<>();
        if (text == null || text.isEmpty()) {
            return out;
        }
        List<String> parts = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == ',') {
                if (i + 1 < text.length() && text.charAt(i + 1) == ',') {
                    cur.append(',');
                    i++;
                } else {
                    parts.add(cur.toString());
                    cur.setLength(0);
                }
            } else {
                cur.append(c);
            }
        }
        parts.add(cur.toString());
        for (String p : parts) {
            if (p.isEmpty()) {
                continue;
            }
            int eq = p.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("Invalid option '" + p + "': expected key=value");
            }
            out.put(p.substring(0, eq), p.substring(eq + 1));
        }
        return out;
    }

    private static boolean parseBool(String key, String v) {
        return switch (v.toLowerCase(Locale.ROOT)) {
            case "on", "true", "yes" -> true;
            case "off", "false", "no" -> false;
            default -> throw new IllegalArgumentException("Parameter '" + key + "' expects 'on' or 'off'");
        };
    }

    private static long parseNumber(String key, String v) {
        try {
            long n = Long.parseLong(v);
            if (n < 0) {
                throw new NumberFormatException();
            }
            return n;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("Parameter '" + key + "' expects a non-negative number");
        }
    }

    /** Mutable form of {@link ImageOptions}. */
    public static final class Builder {
        private Long l2CacheSize;
        private Long refcountCacheSize;
        private Long cacheSize;
        private Long l2CacheEntrySize;
        private long cacheCleanInterval = DEFAULT_CACHE_CLEAN_INTERVAL;
        private OverlapCheckMode overlapCheck = OverlapCheckMode.CACHED;
        private CacheMode cacheMode = CacheMode.WRITEBACK;
        private boolean directFallback;
        private TableStoreKind tableStore = TableStoreKind.OFF_HEAP;
        private boolean discardUnmap;
        private Boolean lazyRefcounts;
        private boolean readOnly;
        private String filename;
        private boolean untrusted;
        private boolean allowRawBacking;
        private SnapshotRef snapshot;

        private Builder() {}

        /** See {@link ImageOptions#snapshot()}; a snapshot also makes the open read-only. */
        public Builder snapshot(SnapshotRef v) {
            snapshot = v;
            if (v != null) {
                readOnly = true;
            }
            return this;
        }

        /** See {@link ImageOptions#untrusted()}: open an image someone else made without trusting its backing names. */
        public Builder untrusted(boolean v) {
            untrusted = v;
            return this;
        }

        /** See {@link ImageOptions#allowRawBacking()}. */
        public Builder allowRawBacking(boolean v) {
            allowRawBacking = v;
            return this;
        }

        public Builder l2CacheSize(Long v) {
            l2CacheSize = v;
            return this;
        }

        public Builder refcountCacheSize(Long v) {
            refcountCacheSize = v;
            return this;
        }

        public Builder cacheSize(Long v) {
            cacheSize = v;
            return this;
        }

        public Builder l2CacheEntrySize(Long v) {
            l2CacheEntrySize = v;
            return this;
        }

        public Builder cacheCleanInterval(long seconds) {
            cacheCleanInterval = seconds;
            return this;
        }

        public Builder overlapCheck(OverlapCheckMode v) {
            overlapCheck = v;
            return this;
        }

        public Builder cacheMode(CacheMode v) {
            cacheMode = v;
            return this;
        }

        public Builder directFallback(boolean v) {
            directFallback = v;
            return this;
        }

        public Builder tableStore(TableStoreKind v) {
            tableStore = v;
            return this;
        }

        public Builder discardUnmap(boolean v) {
            discardUnmap = v;
            return this;
        }

        public Builder lazyRefcounts(Boolean v) {
            lazyRefcounts = v;
            return this;
        }

        public Builder readOnly(boolean v) {
            readOnly = v;
            return this;
        }

        public Builder filename(String v) {
            filename = v;
            return this;
        }

        public ImageOptions build() {
            return new ImageOptions(l2CacheSize, refcountCacheSize, cacheSize, l2CacheEntrySize, cacheCleanInterval,
                    overlapCheck, cacheMode, directFallback, tableStore, discardUnmap, lazyRefcounts, readOnly, filename,
                    untrusted, allowRawBacking, snapshot);
        }
    }
}
