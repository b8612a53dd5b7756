package io.qcow2j.cli;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.SnapshotNotFoundException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * The options naming and opening a source image, shared by the subcommands as in {@code qemu-img}:
 * {@code -f FMT}, {@code --image-opts}, {@code -U}. Opening turns every failure into one line
 * {@code Could not open 'NAME': REASON}.
 */
final class ImageSource {
    private static final int QCOW2_MAGIC = 0x514649fb;

    @Option(names = "-f", paramLabel = "FMT", description = "Format of the image: qcow2; convert, compare and measure"
            + " also read raw (without -f, a file without the qcow2 magic is raw, as qemu-img probes).")
    String format;

    @Option(names = "--image-opts", description = "IMAGE is an option string: driver=qcow2,file.filename=FILE,"
            + "l2-cache-size=1M,...")
    boolean imageOpts;

    @Option(names = {"-U", "--force-share"}, description = "Open the image even if it is in use (qcow2j takes no"
            + " locks: accepted for compatibility).")
    boolean forceShare;

    /**
     * The file name and options an IMAGE argument stands for; {@code label} is the argument itself, which
     * names the image in errors (with --image-opts, the option string, as qemu-img does).
     */
    record Spec(String filename, ImageOptions options, String label) {
        /** Runs {@code action}; an open failure of the file itself is reported under the label. */
        <T> T relabel(IoSupplier<T> action) throws IOException {
            try {
                return action.get();
            } catch (OpenFailure f) {
                if (label.equals(filename) || !f.name.equals(filename)) {
                    throw f;
                }
                throw new CommandFailure("Could not open '" + label + "': "
                        + (f.fileLevel ? "Could not open '" + filename + "': " : "") + f.reason, f);
            }
        }
    }

    /** A supplier that may fail with an I/O error. */
    interface IoSupplier<T> {
        T get() throws IOException;
    }

    /**
     * {@code Could not open 'NAME': REASON}. {@code fileLevel}: the file itself could not be opened (missing,
     * not a regular file, no permission), as opposed to its contents being refused.
     */
    static final class OpenFailure extends CommandFailure {
        private static final long serialVersionUID = 1L;
        final String name;
        final String reason;
        final boolean fileLevel;

        OpenFailure(String name, String reason, boolean fileLevel, Throwable cause) {
            super("Could not open '" + name + "': " + reason, cause);
            this.name = name;
            this.reason = reason;
            this.fileLevel = fileLevel;
        }
    }

    /** Parses IMAGE (a file name, or with --image-opts an option string) over {@code base}. */
    Spec spec(String image, ImageOptions base) {
        if (format != null && !format.equals("qcow2")) {
            throw new CommandFailure("Could not open '" + image + "': "
                    + (knownFormat(format) ? "format '" + format + "' is not supported (qcow2j opens qcow2 images)"
                            : "Unknown driver '" + format + "'"));
        }
        if (!imageOpts) {
            return new Spec(image, base, image);
        }
        ImageOptions o;
        try {
            o = ImageOptions.parse(image, base);
        } catch (IllegalArgumentException e) {
            throw new CommandFailure("Could not open '" + image + "': " + e.getMessage());
        }
        if (o.filename() == null || o.filename().isEmpty()) {
            throw new CommandFailure("Could not open '" + image + "': The 'file' block driver requires a file name");
        }
        return new Spec(o.filename(), o, image);
    }

    static boolean knownFormat(String f) {
        return switch (f) {
            case "raw", "qcow", "qed", "vmdk", "vdi", "vpc", "vhdx", "parallels", "luks", "bochs", "cloop", "dmg",
                    "vvfat", "file", "host_device", "nbd" -> true;
            default -> false;
        };
    }

    /**
     * Opens a guest disk for reading, for the commands that read one whatever its format (convert, compare,
     * measure): a qcow2 image and its backing chain, or a raw file, with {@code -f raw} or, without {@code -f},
     * when the file does not start with the qcow2 magic (qemu-img's probe; read-only, so it warns of nothing).
     * {@code -f raw} on a file with the qcow2 magic is refused: the engine would open it as qcow2.
     */
    Chain openGuestDisk(String image, ImageOptions base) throws IOException {
        boolean raw = "raw".equals(format);
        if (!imageOpts && (raw || format == null)) {
            checkFile(image);
            boolean qcow2 = hasQcow2Magic(image);
            if (raw && qcow2) {
                throw new OpenFailure(image, "-f raw on a qcow2 image is not supported (qcow2j would open it as"
                        + " qcow2)", false, null);
            }
            if (!qcow2) {
                if (base.snapshot() != null) { // convert -l: qemu-img's words
                    throw new CommandFailure("Failed to load snapshot: Block format 'raw' used by device '' does not"
                            + " support temporarily loading internal snapshots");
                }
                Disk d;
                try {
                    d = Images.open(Path.of(image), base.toBuilder().readOnly(true).build());
                } catch (IOException | RuntimeException e) {
                    throw new OpenFailure(image, reason(image, e), false, e);
                }
                return new Chain(d, List.of(d), List.of(image));
            }
        }
        return openChain(spec(image, base));
    }

    /** Opens a qcow2 image and its backing chain for reading. */
    static Chain openChain(Spec spec) throws IOException {
        return spec.relabel(() -> openChain(spec.filename(), spec.options()));
    }

    private static Chain openChain(String name, ImageOptions options) {
        checkQcow2File(name);
        Qcow2Disk top;
        try {
            top = Images.openQcow2(Path.of(name), options.toBuilder().readOnly(true).build());
        } catch (SnapshotNotFoundException e) {
            throw new CommandFailure("Failed to load snapshot: Can't find snapshot", e);
        } catch (NoSuchFileException e) {
            String missing = e.getFile();
            if (missing != null && !missing.equals(name)) {
                String reason = missingBackingReason(name);
                throw new OpenFailure(name, reason != null ? reason : "Could not open backing file: Could not open '"
                        + missing + "': No such file or directory", false, e);
            }
            throw new OpenFailure(name, "No such file or directory", true, e);
        } catch (IOException | RuntimeException e) {
            throw new OpenFailure(name, reason(name, e), false, e);
        }
        return Chain.of(top, name);
    }

    /**
     * qemu-img's reason for not opening the chain from {@code top} when one of its backing files does not
     * exist: "Could not open backing file: " once for each level down to it (each image's open reports its
     * backing file's failure), then "Could not open 'NAME': No such file or directory" with the name as
     * qemu-img makes it ({@link #pathCombine}); null when every file of the chain exists.
     */
    static String missingBackingReason(String top) {
        String cur = top;
        for (int depth = 0; depth <= Images.MAX_CHAIN_DEPTH; depth++) {
            Path p = Path.of(cur);
            if (!Files.exists(p)) {
                return depth == 0 ? null : "Could not open backing file: ".repeat(depth) + "Could not open '" + cur
                        + "': No such file or directory";
            }
            String backing;
            try (AlignedFile f = AlignedFile.open(p, IoMode.BUFFERED, StandardOpenOption.READ)) {
                backing = Qcow2Header.read(f).backingFileName().orElse(null);
            } catch (IOException | RuntimeException e) {
                return null; // not qcow2 (a raw file ends the chain) or unreadable: nothing to say
            }
            if (backing == null) {
                return null;
            }
            cur = pathCombine(cur, backing);
        }
        return null;
    }

    /**
     * What {@code qemu-img} checks first and says in its own words: the file exists, is a regular file and
     * starts with the qcow2 magic.
     */
    static void checkQcow2File(String name) {
        checkFile(name);
        if (!hasQcow2Magic(name)) {
            throw new OpenFailure(name, "Image is not in qcow2 format", false, null);
        }
    }

    /** Whether the file {@code name} (which exists) starts with the qcow2 magic. */
    private static boolean hasQcow2Magic(String name) {
        byte[] head;
        try (InputStream in = Files.newInputStream(Path.of(name))) {
            head = in.readNBytes(4);
        } catch (AccessDeniedException e) {
            throw new OpenFailure(name, "Permission denied", true, e);
        } catch (IOException e) {
            throw new OpenFailure(name, Main.describe(e), true, e);
        }
        return head.length == 4 && ((head[0] & 0xff) << 24 | (head[1] & 0xff) << 16 | (head[2] & 0xff) << 8
                | (head[3] & 0xff)) == QCOW2_MAGIC;
    }

    /** The file exists and is a regular file, else qemu-img's words for it. */
    static void checkFile(String name) {
        Path p = Path.of(name);
        if (!Files.exists(p)) {
            throw new OpenFailure(name, "No such file or directory", true, null);
        }
        if (!Files.isRegularFile(p)) {
            throw new OpenFailure(name, "'file' driver requires '" + name + "' to be a regular file", true, null);
        }
    }

    /** The message of an open failure without a leading "NAME: " the engine puts there. */
    static String reason(String name, Throwable e) {
        String m = Main.describe(e);
        return m.startsWith(name + ": ") ? m.substring(name.length() + 2) : m;
    }

    /** A cache mode given with -t / -T. */
    static CacheMode cacheMode(String value) {
        try {
            return CacheMode.parse(value);
        } catch (IllegalArgumentException e) {
            throw new CommandFailure("Invalid cache option: " + value);
        }
    }

    /**
     * QEMU's {@code path_combine}: a relative backing file name is relative to the folder part of the name
     * of the image that names it, as written ({@code dir/top.qcow2} + {@code base.raw} = {@code dir/base.raw}).
     */
    static String pathCombine(String base, String name) {
        if (name.startsWith("/")) {
            return name;
        }
        int slash = base.lastIndexOf('/');
        return slash < 0 ? name : base.substring(0, slash + 1) + name;
    }

    /**
     * An open image and its backing chain, each with the name {@code qemu-img} shows for it; {@code top} is a
     * {@link Qcow2Disk} unless {@link #openGuestDisk} opened a raw file.
     */
    record Chain(Disk top, List<Disk> layers, List<String> names) implements AutoCloseable {
        static Chain of(Qcow2Disk top, String name) {
            List<Disk> layers = new ArrayList<>();
            List<String> names = new ArrayList<>();
            Disk d = top;
            String n = name;
            while (d != null) {
                layers.add(d);
                names.add(n);
                if (d instanceof Qcow2Disk q && q.header().backingFileName().isPresent()) {
                    n = pathCombine(n, q.header().backingFileName().get());
                }
                d = d.backing().orElse(null);
            }
            return new Chain(top, List.copyOf(layers), List.copyOf(names));
        }

        @Override
        public void close() throws IOException {
            top.close(); // closes the backing chain too
        }
    }
}
