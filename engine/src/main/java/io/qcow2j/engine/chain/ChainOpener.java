package io.qcow2j.engine.chain;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.RepairMode;
import io.qcow2j.engine.RepairResult;
import io.qcow2j.engine.check.ImageCheck;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.engine.raw.RawImage;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.AsyncFile;
import io.qcow2j.ffm.AsyncIo;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Opens disk images with their backing chains: the machinery behind {@link io.qcow2j.engine.Images}.
 *
 * <p>A backing file name is resolved as QEMU does: an absolute name as it is, a relative one against the
 * folder of the image that names it. Its format comes from the backing format header extension, else from
 * probing (the qcow2 magic, else raw). A chain deeper than {@value #MAX_CHAIN_DEPTH} or one that comes
 * back to a file already in it is refused with a one-line error. Backing files are always opened read-only.
 * {@link ImageOptions#untrusted()} opens only the backing files {@link BackingPolicy} allows.
 */
public final class ChainOpener {
    /** Deeper chains are almost certainly a mistake or an attack; QEMU has no fixed limit. */
    public static final int MAX_CHAIN_DEPTH = ImageOptions.MAX_CHAIN_DEPTH;
    private static final int QCOW2_MAGIC = 0x514649fb;

    private ChainOpener() {}

    /**
     * Opens the files of an image chain. The default opens {@link AlignedFile}s; tests substitute files that
     * record every write and sync (crash simulation) or fail on purpose.
     */
    @FunctionalInterface
    public interface FileOpener {
        PositionalFile open(Path path, IoMode mode, boolean writable) throws IOException;
    }

    /**
     * The default opener: libc files, buffered or {@code O_DIRECT}, whose I/O from virtual threads goes
     * through the process's {@link AsyncIo#shared() asynchronous backend} (io_uring, else a thread pool), so
     * that a virtual thread waiting for its file I/O parks instead of holding its carrier.
     */
    public static final FileOpener ALIGNED_FILES = (path, mode, writable) -> new AsyncFile(writable
            ? AlignedFile.open(path, mode, StandardOpenOption.READ, StandardOpenOption.WRITE)
            : AlignedFile.open(path, mode, StandardOpenOption.READ), AsyncIo.shared());

    /** A qcow2 image (found by its magic) or else a raw file, as QEMU probes; see {@link io.qcow2j.engine.Images#open}. */
    public static Disk open(Path path, ImageOptions options) throws IOException {
        Path real = existing(path, path.toString());
        if (probe(real).equals("raw")) {
            if (options.snapshot() != null) {
                throw new Qcow2FormatException(path + ": a raw image has no internal snapshots");
            }
            return RawImage.open(ALIGNED_FILES.open(real, ioMode(options), !options.readOnly()), path.toString(),
                    options.readOnly(), options.cacheMode());
        }
        return openQcow2(path, options);
    }

    /** Opens a qcow2 image (refusing anything else) and its backing chain, read/write unless options say read-only. */
    public static Qcow2Image openQcow2(Path path, ImageOptions options) throws IOException {
        return openQcow2(path, options, ALIGNED_FILES);
    }

    /** As {@link #openQcow2(Path, ImageOptions)}, with every file of the chain opened by {@code opener}. */
    public static Qcow2Image openQcow2(Path path, ImageOptions options, FileOpener opener) throws IOException {
        if (!options.readOnly() && isDirtyNotCorrupt(path)) {
            return openAfterUncleanClose(path, options, opener);
        }
        Disk dev = open(path, path.toString(), "qcow2", options, opener, new HashSet<>(), 0, false, null);
        return (Qcow2Image) dev;
    }

    /**
     * A writable open of an image left dirty by lazy refcounts (an unclean close): as QEMU does, its refcounts
     * are rebuilt from the L2 tables first (a {@code check -r all}), and the open goes on only if that leaves
     * the image consistent. What was repaired is reported in {@link Qcow2Image#warnings()}.
     */
    private static Qcow2Image openAfterUncleanClose(Path path, ImageOptions options, FileOpener opener)
            throws IOException {
        Qcow2Image im = (Qcow2Image) open(path, path.toString(), "qcow2", options, opener, new HashSet<>(), 0, true, null);
        try {
            List<String> lines = new ArrayList<>();
            RepairResult r = ImageCheck.repair(im, RepairMode.ALL, lines::add);
            if (r.result().corruptions() != 0 || r.result().checkErrors() != 0) {
                throw new Qcow2FormatException(path + ": the image was not closed cleanly (lazy refcounts) and its"
                        + " refcounts could not be repaired: " + r.result().corruptions() + " corruptions remain");
            }
            im.addWarning(path + ": the image was not closed cleanly (lazy refcounts); refcounts repaired ("
                    + r.leaksFixed() + " leaked clusters freed, " + r.corruptionsFixed() + " refcounts raised)");
            return im;
        } catch (IOException | RuntimeException e) {
            try {
                im.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    private static boolean isDirtyNotCorrupt(Path path) {
        try (AlignedFile f = AlignedFile.open(path, IoMode.BUFFERED, StandardOpenOption.READ)) {
            if (!hasQcow2Magic(f)) {
                return false;
            }
            Qcow2Header h = Qcow2Header.read(f);
            return h.isDirty() && !h.isCorrupt();
        } catch (IOException | RuntimeException e) {
            return false; // the real open reports what is wrong
        }
    }

    /** See {@link io.qcow2j.engine.Images#openForRepair}. */
    public static Qcow2Image openForRepair(Path path, ImageOptions options) throws IOException {
        Disk dev = open(path, path.toString(), "qcow2", options.toBuilder().readOnly(false).build(),
                ALIGNED_FILES, new HashSet<>(), 0, true, null);
        return (Qcow2Image) dev;
    }

    private static Disk open(Path path, String name, String format, ImageOptions options, FileOpener opener,
            Set<Path> chain, int depth, boolean forRepair, BackingPolicy policy) throws IOException {
        Path real = existing(path, name, depth);
        if (policy == null) {
            policy = BackingPolicy.of(options, real);
        }
        policy.checkReal(real, name);
        if (!chain.add(real)) {
            throw new Qcow2FormatException(name + ": backing chain loops back to " + real);
        }
        if (Files.isDirectory(real)) {
            throw new IOException(name + ": is a directory");
        }
        List<String> warnings = new ArrayList<>();
        IoMode mode = ioMode(options);
        if (format == null) {
            format = probe(real);
        }
        if (format.equals("raw")) {
            if (depth == 0) {
                throw new Qcow2FormatException(name + ": not a qcow2 image (no qcow2 magic)");
            }
            return RawImage.open(opener.open(real, mode, false), name);
        }
        if (!format.equals("qcow2")) {
            throw new Qcow2FormatException(name + ": backing format '" + format + "' is not supported (qcow2 or raw)");
        }
        PositionalFile file = opener.open(real, mode, !options.readOnly());
        if (file.fallbackReason() != null) {
            warnings.add(name + ": " + file.fallbackReason());
        }
        Disk backing = null;
        Qcow2Header header;
        try {
            requireQcow2Magic(file, name);
            header = Qcow2Header.read(file);
            if (header.backingFileName().isPresent()) {
                String backingName = header.backingFileName().get();
                if (depth + 1 > policy.maxDepth()) {
                    throw policy.tooDeep(backingName);
                }
                String backingFormat = header.extensions().backingFormat().orElse(null);
                Path backingPath = policy.resolve(real, backingName, backingFormat, name);
                backing = open(backingPath, backingName, backingFormat,
                        options.toBuilder().snapshot(null).readOnly(true).build(), opener, chain, depth + 1, false,
                        policy); // a snapshot is the top image's: the backing chain opens as it is
            }
        } catch (IOException | RuntimeException e) {
            file.close();
            throw e;
        }
        return Qcow2Image.open(name, file, header, options, backing, warnings, forRepair);
    }

    private static Path existing(Path path, String name) throws IOException {
        return existing(path, name, 0);
    }

    private static Path existing(Path path, String name, int depth) throws IOException {
        try {
            return path.toRealPath();
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(name, null, depth == 0 ? "No such file or directory"
                    : "backing file not found (No such file or directory)");
        }
    }

    /**
     * Where the backing file {@code backingName} of format {@code format} (null: none given) that the image
     * at {@code image} is about to be given (a rebase) is, by the rules {@code options} set for backing
     * names stored in images: under {@link ImageOptions#untrusted()} the name must pass what an untrusted
     * image's backing name must pass.
     *
     * @throws Qcow2FormatException naming what is refused
     */
    public static Path resolveNewBacking(Path image, String backingName, String format, ImageOptions options)
            throws IOException {
        if (!options.untrusted()) {
            return image.toAbsolutePath().getParent().resolve(backingName); // as the user named it
        }
        BackingPolicy policy = BackingPolicy.of(options, image.toRealPath());
        Path p = policy.resolve(image.toRealPath(), backingName, format, image.toString());
        if (Files.exists(p)) {
            policy.checkReal(p.toRealPath(), backingName);
        }
        return p;
    }

    /** QEMU's rule: relative backing names are relative to the folder of the image naming them. */
    public static Path resolveBacking(Path image, String backingName, String imageName) throws Qcow2FormatException {
        String n = backingName;
        if (n.startsWith("file:")) {
            n = n.substring("file:".length());
        }
        int colon = n.indexOf(':');
        int slash = n.indexOf('/');
        if (n.startsWith("json:") || (colon > 0 && (slash < 0 || colon < slash)
                && n.substring(0, colon).matches("nbd|https?|ftps?|ssh|iscsi|rbd|gluster|nfs|vvfat|blkdebug"))) {
            throw new Qcow2FormatException(imageName + ": backing file '" + backingName
                    + "' uses a protocol qcow2j does not support (only local files)");
        }
        if (n.isEmpty()) {
            throw new Qcow2FormatException(imageName + ": empty backing file name");
        }
        Path p = Path.of(n);
        return p.isAbsolute() ? p : image.getParent().resolve(p);
    }

    private static IoMode ioMode(ImageOptions options) {
        if (options.cacheMode() != CacheMode.NONE) {
            return IoMode.BUFFERED;
        }
        return options.directFallback() ? IoMode.DIRECT_OR_BUFFERED : IoMode.DIRECT;
    }

    private static String probe(Path path) throws IOException {
        try (AlignedFile f = AlignedFile.open(path, IoMode.BUFFERED, StandardOpenOption.READ)) {
            return hasQcow2Magic(f) ? "qcow2" : "raw";
        }
    }

    private static boolean hasQcow2Magic(AlignedFile f) throws IOException {
        MemorySegment m = MemorySegment.ofArray(new byte[4]);
        return f.read(0, m) == 4 && m.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN), 0) == QCOW2_MAGIC;
    }

    private static void requireQcow2Magic(PositionalFile f, String name) throws IOException {
        MemorySegment m = MemorySegment.ofArray(new byte[4]);
        long n = f.read(0, m);
        if (n < 4 || m.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN), 0) != QCOW2_MAGIC) {
            throw new Qcow2FormatException(name + ": not a qcow2 image (no qcow2 magic)");
        }
    }
}
