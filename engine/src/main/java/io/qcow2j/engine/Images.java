package io.qcow2j.engine;

import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.convert.ImageComparison;
import io.qcow2j.engine.convert.ImageConverter;
import io.qcow2j.engine.convert.SizeMeasure;
import io.qcow2j.engine.create.ImageCreator;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.DoubleConsumer;

/**
 * Opens and creates disk images: where an embedder starts.
 *
 * <pre>{@code
 * try (Disk disk = Images.open(Path.of("vm.qcow2"), ImageOptions.defaults())) {   // read/write
 *     disk.write(0, data);
 *     disk.flush();
 * }
 * }</pre>
 *
 * <p>Opening is read/write unless {@link ImageOptions#readOnly()} says otherwise; backing files are always
 * opened read-only. A backing file name is resolved as QEMU does (relative to the folder of the image naming
 * it); its format comes from the image's backing format extension, else from probing. A chain deeper than
 * {@value #MAX_CHAIN_DEPTH} images, or one that loops, is refused with a one-line error. For images someone
 * else made, {@link ImageOptions#untrusted()} restricts which backing files may be opened (see the README).
 */
public final class Images {
    /** The deepest backing chain that is opened. */
    public static final int MAX_CHAIN_DEPTH = ChainOpener.MAX_CHAIN_DEPTH;

    private Images() {}

    /**
     * Opens a disk image and its backing chain: a qcow2 image (found by its magic) or else a raw file, as QEMU
     * probes. Prefer {@link #openQcow2} where only qcow2 is expected: probing lets a raw disk whose guest wrote
     * a qcow2 header be taken for a qcow2 image.
     *
     * @throws java.nio.file.NoSuchFileException if the file (or a backing file) does not exist
     * @throws io.qcow2j.engine.format.Qcow2FormatException if the image is corrupt or uses what qcow2j does
     *     not support (one line naming the file and the problem)
     * @throws IOException if a file cannot be opened or read
     */
    public static Disk open(Path path, ImageOptions options) throws IOException {
        return ChainOpener.open(path, options);
    }

    /**
     * Opens a qcow2 image and its backing chain; anything that is not qcow2 is refused. A writable open of an
     * image left dirty by lazy refcounts (an unclean close) repairs its refcounts first, as QEMU does, and
     * says so in {@link Qcow2Disk#warnings()}; a writable open of an image marked corrupt is refused.
     */
    public static Qcow2Disk openQcow2(Path path, ImageOptions options) throws IOException {
        return ChainOpener.openQcow2(path, options);
    }

    /**
     * Opens a qcow2 image read/write to repair it with {@link Qcow2Disk#repair} ({@code qemu-img check -r}),
     * whatever {@code options} say about read-only: unlike {@link #openQcow2} it accepts an image whose header
     * has the dirty bit (lazy refcounts after an unclean close) or the corrupt bit. Such an image must be
     * repaired before anything else is written to it; a successful repair clears both bits.
     */
    public static Qcow2Disk openForRepair(Path path, ImageOptions options) throws IOException {
        return ChainOpener.openForRepair(path, options);
    }

    /**
     * Creates (or overwrites) the qcow2 image {@code path} as {@code qemu-img create -f qcow2} does, with the
     * same layout (byte for byte where QEMU's metadata fits in one refcount block). The options are checked
     * first ({@link CreateOptions#resolveBacking}, {@link CreateOptions#validate}); an interrupted creation
     * never leaves a file that looks like a valid image, and a failed one is removed.
     *
     * @throws IllegalArgumentException for options QEMU would refuse (QEMU's message)
     * @throws IOException if the backing file cannot be opened or the image cannot be written
     */
    public static CreatedImage create(Path path, CreateOptions options) throws IOException {
        return ImageCreator.create(path, options);
    }

    /**
     * Copies {@code sources}, one after the other, into the qcow2 image {@code target} as
     * {@code qemu-img convert -O qcow2} does: the target is created with {@code create} (its size defaults to
     * the sources' total; {@code create}'s backing file with {@link ConvertOptions#topOnly()} is {@code -B})
     * unless {@link ConvertOptions#targetExists()}. Ranges the sources' block status says read as zeros are
     * never read; blocks of zeros stay unallocated; {@link ConvertOptions#compress()} writes compressed
     * clusters. A target this call created is deleted if the copy fails.
     *
     * @throws IllegalArgumentException for options QEMU would refuse (QEMU's message)
     * @throws IOException if a source cannot be read (one line naming it) or the target cannot be written
     */
    public static void convert(List<Disk> sources, Path target, CreateOptions create, ConvertOptions options)
            throws IOException {
        ImageConverter.convert(sources, target, create, options);
    }

    /**
     * Compares the guest contents of two disks as {@code qemu-img compare} does (through their backing chains;
     * ranges both read as zeros by block status are not read). {@code strict} ({@code -s}): a size or
     * allocation difference is a mismatch too.
     */
    public static CompareResult compare(Disk a, Disk b, boolean strict, DoubleConsumer progress) throws IOException {
        return ImageComparison.compare(a, b, strict, progress);
    }

    /**
     * {@code qemu-img measure -O qcow2}: the file size a new image with {@code options} needs to hold
     * {@code source} (null: an empty image of {@code size} bytes). {@code fullPreallocation}: falloc or full.
     *
     * @throws IllegalArgumentException if the size is too large for the cluster size (QEMU's message)
     */
    public static Measurement measure(CreateOptions options, boolean fullPreallocation, Disk source, long size)
            throws IOException {
        return SizeMeasure.qcow2(options, fullPreallocation, source, size);
    }
}
