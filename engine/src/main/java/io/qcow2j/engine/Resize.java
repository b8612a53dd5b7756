package io.qcow2j.engine;

import io.qcow2j.engine.qcow2.ClusterPreallocation;
import io.qcow2j.engine.qcow2.ImageResize;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Changes the virtual size of a disk image, as {@code qemu-img resize} does: a qcow2 image grows its L1
 * table (moved to new clusters when it must grow) and its header; shrinking frees the clusters past the new
 * end and cuts the file after its last used cluster. A raw image is truncated or extended (sparse). The image
 * must not be open elsewhere.
 *
 * <pre>{@code
 * Resize.resize(Path.of("vm.qcow2"), Resize.Format.PROBE, 20L << 30, false);   // grow to 20 GiB
 * }</pre>
 */
public final class Resize {
    /** The image format: probed (qcow2 by its magic, else raw), or given. */
    public enum Format { PROBE, QCOW2, RAW }

    /**
     * What the new space of a grown image gets ({@code --preallocation}): nothing; host clusters for every
     * new guest cluster, the file left sparse (qcow2 only); host clusters and file space allocated by the file
     * system; zeros written. As QEMU's, the host clusters of a qcow2 image are never written through the guest.
     */
    public enum Preallocation { OFF, METADATA, FALLOC, FULL }

    private Resize() {}

    /**
     * Resizes {@code image} to {@code newSize} bytes.
     *
     * @param allowShrink whether a smaller size is accepted (qemu-img's {@code --shrink}); without it a
     *     smaller size is refused with qemu-img's message and nothing changes
     * @throws IllegalArgumentException for a size qemu-img refuses (not positive, not a multiple of 512 for
     *     qcow2, a shrink without {@code allowShrink}, a version 2 qcow2 image with snapshots)
     */
    public static void resize(Path image, Format format, long newSize, boolean allowShrink) throws IOException {
        resize(image, format, newSize, allowShrink, ImageOptions.defaults());
    }

    /**
     * {@link #resize(Path, Format, long, boolean)} with the image (and its backing chain, whose size decides
     * what the new space reads) opened with {@code options} ({@link ImageOptions#untrusted()} applies; the
     * image is opened read/write whatever {@code readOnly} says).
     */
    public static void resize(Path image, Format format, long newSize, boolean allowShrink, ImageOptions options)
            throws IOException {
        resize(image, format, newSize, allowShrink, Preallocation.OFF, options);
    }

    /**
     * {@link #resize(Path, Format, long, boolean, ImageOptions)} with the new space preallocated as qemu-img
     * resize {@code --preallocation} does.
     *
     * @throws IllegalArgumentException also for preallocation with a shrink, and {@code METADATA} for raw
     */
    public static void resize(Path image, Format format, long newSize, boolean allowShrink, Preallocation prealloc,
            ImageOptions options) throws IOException {
        ImageOptions ro = options.toBuilder().readOnly(true).build();
        ImageOptions rw = options.toBuilder().readOnly(false).build();
        if (newSize <= 0) {
            throw new IllegalArgumentException("New image size must be positive");
        }
        boolean qcow2;
        long current;
        try (Disk d = format == Format.QCOW2 ? Images.openQcow2(image, ro) : Images.open(image, ro)) {
            qcow2 = d.format().equals("qcow2");
            if (format == Format.RAW && qcow2) {
                qcow2 = false; // a raw disk whose guest wrote a qcow2 header: the file is resized as it is
            }
            current = format == Format.RAW ? Files.size(image) : d.size();
            if (qcow2 && newSize != current && ((Qcow2Disk) d).header().version() < 3
                    && ((Qcow2Disk) d).header().nbSnapshots() > 0) {
                throw new IllegalArgumentException("Can't resize a v2 image which has snapshots");
            }
        }
        if (newSize < current && !allowShrink) {
            throw new ShrinkRefusedException();
        }
        if (prealloc != Preallocation.OFF && newSize < current) {
            throw new IllegalArgumentException("Preallocation can only be used for growing images");
        }
        if (!qcow2) {
            if (prealloc == Preallocation.METADATA) {
                throw new IllegalArgumentException("Unsupported preallocation mode: metadata");
            }
            try (AlignedFile f = AlignedFile.open(image, IoMode.BUFFERED, StandardOpenOption.READ,
                    StandardOpenOption.WRITE)) {
                if (prealloc == Preallocation.FALLOC && newSize > current) {
                    f.zeroRange(current, newSize - current); // allocated by the file system (FALLOC_FL_ZERO_RANGE)
                } else if (prealloc == Preallocation.FULL && newSize > current) {
                    writeZeros(current, newSize, f::write);
                }
                f.truncate(newSize);
            }
            return;
        }
        if (newSize % 512 != 0) {
            throw new IllegalArgumentException("The new size must be a multiple of 512");
        }
        if (newSize == current) {
            return;
        }
        long backingEnd;
        try (Qcow2Image img = (Qcow2Image) Images.openQcow2(image, rw)) {
            backingEnd = img.backing().map(Disk::size).orElse(0L);
            ImageResize.resize(img, newSize);
        }
        // A backing file reaching into the new space would show through: it reads as zeros instead, all of it
        // (QEMU's BDRV_REQ_ZERO_WRITE over the whole new range), by zero clusters or preallocated zeros.
        boolean zeroNew = newSize > current && backingEnd > current;
        long cs;
        long firstCluster;
        try (Qcow2Image img = (Qcow2Image) Images.openQcow2(image, rw)) {
            cs = img.header().geometry().clusterSize();
            firstCluster = current / cs;
            if (current % cs != 0 && img.backing().isPresent()) {
                firstCluster++; // the cluster holding the old end keeps what it shows of the backing file
            }
            if (prealloc != Preallocation.OFF && newSize > current) {
                // every new guest cluster gets a host cluster, without guest data written (QEMU's truncate)
                ClusterPreallocation.preallocate(img, firstCluster, newSize, switch (prealloc) {
                    case METADATA -> ClusterPreallocation.Mode.METADATA;
                    case FALLOC -> ClusterPreallocation.Mode.FALLOC;
                    default -> ClusterPreallocation.Mode.FULL;
                }, zeroNew);
            }
        }
        long zeroEnd = prealloc == Preallocation.OFF ? newSize : Math.min(newSize, firstCluster * cs);
        if (zeroNew && zeroEnd > current) {
            try (Disk d = Images.openQcow2(image, rw)) {
                d.writeZeroes(current, zeroEnd - current, ZeroFlag.unmapIf(true));
                d.flush();
            }
        }
    }

    private interface Writer {
        void write(long offset, MemorySegment src) throws IOException;
    }

    private static void writeZeros(long from, long to, Writer w) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment zeros = arena.allocate(1 << 20, 4096);
            for (long pos = from; pos < to; ) {
                long n = Math.min(zeros.byteSize() - (pos & (zeros.byteSize() - 1)), to - pos);
                w.write(pos, zeros.asSlice(0, n));
                pos += n;
            }
        }
    }

    /** A shrink without {@code allowShrink}: qemu-img's refusal (and the warning it prints with it). */
    public static final class ShrinkRefusedException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        /** What qemu-img prints as a warning after the error line. */
        public static final String WARNING = "Shrinking an image will delete all data beyond the shrunken image's end."
                + " Before performing such an operation, make sure there is no important data there.";

        ShrinkRefusedException() {
            super("Use the --shrink option to perform a shrink operation.");
        }
    }
}
