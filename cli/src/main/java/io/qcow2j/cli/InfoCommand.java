package io.qcow2j.cli;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Sizes;
import io.qcow2j.engine.format.BitmapsExtension;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.format.SnapshotTable;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code qcow2j info}: what {@code qemu-img info} shows, with the same layout (human) and the same keys in
 * the same order (JSON). Like qemu-img it reads each image on its own, without opening its backing file;
 * {@code --backing-chain} then follows the backing file names.
 */
@Command(name = "info", sortOptions = false, mixinStandardHelpOptions = true,
        header = "Show facts about an image and its backing chain, as qemu-img info does.",
        description = "Show facts about an image (and its backing chain), as qemu-img info.")
final class InfoCommand implements Callable<Integer> {
    private static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");
    private static final int BME_FLAG_IN_USE = 1;
    private static final int BME_FLAG_AUTO = 1 << 1;

    @Spec
    CommandSpec spec;

    @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json.")
    String output = "human";

    @Option(names = "--backing-chain", description = "Show every image of the backing chain.")
    boolean backingChain;

    @Mixin
    ImageSource source = new ImageSource();

    @Parameters(index = "0", paramLabel = "IMAGE", description = "The image (or with --image-opts its options).")
    String image;

    @Override
    public Integer call() throws IOException {
        boolean json = parseOutput(output);
        ImageSource.Spec s = source.spec(image, Main.imageOptions().build());
        if (s.options().untrusted()) {
            ImageSource.openChain(s).close(); // info reads files itself: the engine first checks the chain's names
        }
        List<Map<String, Object>> infos = s.relabel(() -> collect(s.filename(), s.options(), backingChain));
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.print(JsonWriter.pretty(backingChain ? infos : infos.get(0)) + "\n");
        } else {
            for (int i = 0; i < infos.size(); i++) {
                if (i > 0) {
                    out.print("\n");
                }
                out.print(human(infos.get(i)));
            }
        }
        out.flush();
        return 0;
    }

    /** {@code --output}: true for json, false for human; anything else is refused as qemu-img does. */
    static boolean parseOutput(String output) {
        return switch (output) {
            case "json" -> true;
            case "human" -> false;
            default -> throw new CommandFailure("--output must be used with human or json as argument.");
        };
    }

    /** {@code collect_image_info_list}: the image, then (with {@code chain}) each backing file by its full name. */
    static List<Map<String, Object>> collect(String top, ImageOptions options, boolean chain) throws IOException {
        List<Map<String, Object>> infos = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        String name = top;
        String format = "qcow2";
        while (name != null) {
            if (!seen.add(name)) {
                throw new CommandFailure("Backing file '" + name + "' creates an infinite loop.");
            }
            Map<String, Object> info = imageInfo(name, format, infos.isEmpty() ? options : null);
            infos.add(QDict.order(info));
            name = null;
            if (chain && info.containsKey("full-backing-filename")) {
                name = (String) info.get("full-backing-filename");
                format = (String) info.get("backing-filename-format");
            }
        }
        return infos;
    }

    /** One image's {@code ImageInfo}, keys in the QAPI schema's order (QDict ordering comes later). */
    static Map<String, Object> imageInfo(String name, String format, ImageOptions options) throws IOException {
        Path path = Path.of(name);
        ImageSource.checkFile(name);
        if (format == null) {
            format = hasQcow2Magic(path) ? "qcow2" : "raw";
        }
        return switch (format) {
            case "qcow2" -> qcow2Info(name, path, options);
            case "raw" -> rawInfo(name, path);
            default -> throw new CommandFailure("Could not open '" + name + "': format '" + format
                    + "' is not supported (qcow2j reads qcow2 and raw backing files)");
        };
    }

    private static boolean hasQcow2Magic(Path path) throws IOException {
        try (InputStream in = Files.newInputStream(path)) {
            byte[] b = in.readNBytes(4);
            return b.length == 4 && (b[0] & 0xff) == 0x51 && (b[1] & 0xff) == 0x46 && (b[2] & 0xff) == 0x49
                    && (b[3] & 0xff) == 0xfb;
        }
    }

    private static Map<String, Object> rawInfo(String name, Path path) throws IOException {
        Map<String, Object> info = new LinkedHashMap<>();
        try (AlignedFile f = AlignedFile.open(path, IoMode.BUFFERED, StandardOpenOption.READ)) {
            var st = f.stat();
            info.put("filename", name);
            info.put("format", "raw");
            info.put("dirty-flag", false);
            info.put("actual-size", st.allocatedBytes());
            info.put("virtual-size", st.size());
        }
        return info;
    }

    /** {@code options}: the top image's options, checked against it as opening it would (null: none). */
    private static Map<String, Object> qcow2Info(String name, Path path, ImageOptions options) throws IOException {
        ImageSource.checkQcow2File(name);
        Map<String, Object> info = new LinkedHashMap<>();
        try (AlignedFile f = AlignedFile.open(path, IoMode.BUFFERED, StandardOpenOption.READ)) {
            Qcow2Header h;
            List<Qcow2Snapshot> snapshots;
            List<Map<String, Object>> bitmaps;
            try {
                h = Qcow2Header.read(f);
                snapshots = SnapshotTable.read(f, h);
                bitmaps = bitmaps(f, h);
                if (options != null) {
                    options.checkCacheSizes(h);
                }
            } catch (Qcow2FormatException | IllegalArgumentException e) {
                throw new ImageSource.OpenFailure(name, ImageSource.reason(name, e), false, e);
            }
            long actual = f.stat().allocatedBytes();
            String dataFile = h.extensions().externalDataFile().orElse(null);
            if (dataFile != null) {
                String dataName = ImageSource.pathCombine(name, dataFile);
                Path dataPath = Path.of(dataName);
                if (!Files.exists(dataPath)) {
                    throw new ImageSource.OpenFailure(name, "Could not open '" + dataName
                            + "': No such file or directory", false, null);
                }
                try (AlignedFile df = AlignedFile.open(dataPath, IoMode.BUFFERED, StandardOpenOption.READ)) {
                    actual += df.stat().allocatedBytes();
                }
            }
            info.put("filename", name);
            info.put("format", "qcow2");
            info.put("dirty-flag", h.isDirty());
            info.put("actual-size", actual);
            info.put("virtual-size", h.size());
            info.put("cluster-size", (long) h.clusterSize());
            if (h.backingFileName().isPresent()) {
                String backing = h.backingFileName().get();
                info.put("backing-filename", backing);
                info.put("full-backing-filename", ImageSource.pathCombine(name, backing));
                h.extensions().backingFormat().ifPresent(fmt -> info.put("backing-filename-format", fmt));
            }
            if (!snapshots.isEmpty()) {
                List<Map<String, Object>> list = new ArrayList<>();
                for (Qcow2Snapshot sn : snapshots) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("id", sn.id());
                    m.put("name", sn.name());
                    m.put("vm-state-size", sn.vmStateSize());
                    m.put("date-sec", sn.dateSeconds());
                    m.put("date-nsec", sn.dateNanos());
                    m.put("vm-clock-sec", Long.divideUnsigned(sn.vmClockNanos(), 1_000_000_000L));
                    m.put("vm-clock-nsec", Long.remainderUnsigned(sn.vmClockNanos(), 1_000_000_000L));
                    if (sn.hasIcount()) {
                        m.put("icount", sn.icount());
                    }
                    list.add(m);
                }
                info.put("snapshots", list);
            }
            info.put("format-specific", formatSpecific(h, dataFile, bitmaps));
        }
        return info;
    }

    /** {@code ImageInfoSpecificQCow2}, fields in the schema's order. */
    private static Map<String, Object> formatSpecific(Qcow2Header h, String dataFile, List<Map<String, Object>> bitmaps) {
        Map<String, Object> data = new LinkedHashMap<>();
        if (h.version() == 2) {
            data.put("compat", "0.10");
            data.put("refcount-bits", (long) h.refcountBits());
        } else {
            data.put("compat", "1.1");
            if (dataFile != null) {
                data.put("data-file", dataFile);
            }
            if (h.hasExternalDataFile()) {
                data.put("data-file-raw", h.dataFileRaw());
            }
            data.put("extended-l2", h.hasExtendedL2());
            data.put("lazy-refcounts", h.lazyRefcounts());
            data.put("corrupt", h.isCorrupt());
            data.put("refcount-bits", (long) h.refcountBits());
            if (!bitmaps.isEmpty()) {
                data.put("bitmaps", bitmaps);
            }
        }
        data.put("compression-type", h.compressionType().qemuName());
        Map<String, Object> spec = new LinkedHashMap<>();
        spec.put("type", "qcow2");
        spec.put("data", data);
        return spec;
    }

    /**
     * The persistent dirty bitmaps of the directory ({@code Qcow2BitmapInfo}: name, granularity, flags), or
     * none when the bitmaps extension is missing or inconsistent (QEMU then ignores it).
     */
    private static List<Map<String, Object>> bitmaps(AlignedFile f, Qcow2Header h) throws IOException {
        BitmapsExtension ext = h.extensions().bitmaps().orElse(null);
        if (ext == null || !ext.consistent() || ext.count() == 0 || h.version() < 3) {
            return List.of();
        }
        long size = ext.directorySize();
        if (size > BitmapsExtension.MAX_DIRECTORY_SIZE || ext.directoryOffset() + size > f.size()) {
            throw new Qcow2FormatException("qcow2 bitmap directory (" + size + " bytes at " + ext.directoryOffset()
                    + ") is not inside the file");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dir = arena.allocate(Math.max(size, 1));
            f.readFully(ext.directoryOffset(), dir.asSlice(0, size));
            ValueLayout.OfInt be32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
            ValueLayout.OfShort be16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
            long pos = 0;
            for (long i = 0; i < ext.count(); i++) {
                if (pos + 24 > size) {
                    throw new Qcow2FormatException("qcow2 bitmap directory: entry " + i + " is past its end");
                }
                int flags = dir.get(be32, pos + 12);
                int granularityBits = dir.get(ValueLayout.JAVA_BYTE, pos + 17) & 0xff;
                int nameSize = dir.get(be16, pos + 18) & 0xffff;
                long extra = dir.get(be32, pos + 20) & 0xffff_ffffL;
                long entry = (24 + extra + nameSize + 7) & ~7L;
                if (pos + 24 + extra + nameSize > size || granularityBits > 31) {
                    throw new Qcow2FormatException("qcow2 bitmap directory: entry " + i + " is invalid");
                }
                byte[] nameBytes = dir.asSlice(pos + 24 + extra, nameSize).toArray(ValueLayout.JAVA_BYTE);
                List<Object> flagNames = new ArrayList<>();
                if ((flags & BME_FLAG_IN_USE) != 0) {
                    flagNames.add("in-use");
                }
                if ((flags & BME_FLAG_AUTO) != 0) {
                    flagNames.add("auto");
                }
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("name", new String(nameBytes, StandardCharsets.UTF_8));
                m.put("granularity", 1L << granularityBits);
                m.put("flags", flagNames);
                out.add(m);
                pos += entry;
            }
        }
        return out;
    }

    /** {@code bdrv_image_info_dump}. */
    static String human(Map<String, Object> info) {
        StringBuilder sb = new StringBuilder();
        long virtual = (Long) info.get("virtual-size");
        Object actual = info.get("actual-size");
        sb.append("image: ").append(info.get("filename")).append('\n');
        sb.append("file format: ").append(info.get("format")).append('\n');
        sb.append("virtual size: ").append(Sizes.human(virtual)).append(" (").append(virtual).append(" bytes)\n");
        sb.append("disk size: ").append(actual == null ? "unavailable" : Sizes.human((Long) actual)).append('\n');
        if (info.containsKey("cluster-size")) {
            sb.append("cluster_size: ").append(info.get("cluster-size")).append('\n');
        }
        if (Boolean.TRUE.equals(info.get("dirty-flag"))) {
            sb.append("cleanly shut down: no\n");
        }
        if (info.containsKey("backing-filename")) {
            String b = (String) info.get("backing-filename");
            String full = (String) info.get("full-backing-filename");
            sb.append("backing file: ").append(b);
            if (full == null) {
                sb.append(" (cannot determine actual path)");
            } else if (!b.equals(full)) {
                sb.append(" (actual path: ").append(full).append(')');
            }
            sb.append('\n');
            if (info.containsKey("backing-filename-format")) {
                sb.append("backing file format: ").append(info.get("backing-filename-format")).append('\n');
            }
        }
        if (info.get("snapshots") instanceof List<?> snapshots) {
            sb.append("Snapshot list:\n");
            sb.append(String.format("%-10s%-17s%8s%20s%13s%11s", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT"))
                    .append('\n');
            for (Object o : snapshots) {
                sb.append(snapshotLine((Map<?, ?>) o)).append('\n');
            }
        }
        if (info.get("format-specific") instanceof Map<?, ?> fs && fs.get("data") instanceof Map<?, ?> data) {
            sb.append("Format specific information:\n");
            @SuppressWarnings("unchecked")
            Map<String, ?> d = (Map<String, ?>) data;
            sb.append(JsonWriter.human(d, 1));
        }
        return sb.toString();
    }

    /** {@code bdrv_snapshot_dump}: {@code %-9s %-16s %8s%20s%13s%11s}, widths in bytes as C counts them. */
    static String snapshotLine(Map<?, ?> sn) {
        long date = (Long) sn.get("date-sec");
        long clockNs = (Long) sn.get("vm-clock-sec") * 1_000_000_000L + (Long) sn.get("vm-clock-nsec");
        long secs = clockNs / 1_000_000_000L;
        String clock = String.format("%02d:%02d:%02d.%03d", (int) (secs / 3600), (int) ((secs / 60) % 60),
                (int) (secs % 60), (int) ((clockNs / 1_000_000) % 1000));
        String when = DATE.format(Instant.ofEpochSecond(date).atZone(ZoneId.systemDefault()));
        Object icount = sn.get("icount");
        return padRight((String) sn.get("id"), 9) + " " + padRight((String) sn.get("name"), 16) + " "
                + padLeft(Sizes.human((Long) sn.get("vm-state-size")), 8) + padLeft(when, 20) + padLeft(clock, 13)
                + padLeft(icount == null ? "" : icount.toString(), 11);
    }

    private static int width(String s) {
        return s.getBytes(StandardCharsets.UTF_8).length;
    }

    private static String padRight(String s, int w) {
        return s + " ".repeat(Math.max(0, w - width(s)));
    }

    private static String padLeft(String s, int w) {
        return " ".repeat(Math.max(0, w - width(s))) + s;
    }
}
