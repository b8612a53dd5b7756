package io.qcow2j.engine;

import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.qcow2.CompatibleFeatures;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.engine.qcow2.RefcountOrderChange;
import io.qcow2j.engine.qcow2.VersionChange;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import java.io.IOException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Changes creation options of an existing qcow2 image, as {@code qemu-img amend -o} does: the version
 * ({@code compat=0.10|1.1}), the refcount width ({@code refcount_bits}, by building a new refcount
 * structure), {@code lazy_refcounts} and the virtual size. The image must not be open elsewhere.
 *
 * <pre>{@code
 * Amend.amend(Path.of("vm.qcow2"), new Amend.Changes(2, null, null, null), ImageOptions.defaults()); // compat=0.10
 * Amend.amend(Path.of("vm.qcow2"), new Amend.Changes(null, 64, null, null), ImageOptions.defaults());
 * }</pre>
 *
 * <p>Each change is crash-safe: whatever point a crash interrupts it at, the image reads as before or after
 * and {@code qemu-img check} finds at most leaked clusters.
 */
public final class Amend {
    private Amend() {}

    /**
     * What to change; null leaves a field as it is.
     *
     * @param version 2 ({@code compat=0.10}) or 3 ({@code compat=1.1})
     * @param refcountBits 1, 2, 4, 8, 16, 32 or 64
     * @param lazyRefcounts lazy refcounts on or off
     * @param size the new virtual size (a resize; shrinking allowed, as in qemu-img amend)
     */
    public record Changes(Integer version, Integer refcountBits, Boolean lazyRefcounts, Long size) {}

    /**
     * Applies {@code changes} in QEMU's order: an upgrade first, then the refcount width, lazy refcounts, the
     * size, and a downgrade last. Every refusal QEMU makes is checked before anything changes.
     *
     * @param options how the image (and its backing chain) is opened: {@link ImageOptions#untrusted()} and
     *     the like apply; it is opened read/write whatever {@code readOnly} says
     * @throws IllegalArgumentException for what qemu-img refuses (its message); nothing changed then
     */
    public static void amend(Path image, Changes changes, ImageOptions options) throws IOException {
        ImageOptions rw = options.toBuilder().readOnly(false).lazyRefcounts(false).build();
        Qcow2Header h;
        try (Qcow2Disk d = Images.openQcow2(image, options.toBuilder().readOnly(true).build())) {
            h = d.header();
            int version = changes.version() != null ? changes.version() : h.version();
            int bits = changes.refcountBits() != null ? changes.refcountBits() : h.refcountBits();
            if (bits <= 0 || bits > 64 || Integer.bitCount(bits) != 1) {
                throw new IllegalArgumentException("Refcount width must be a power of two and may not exceed 64 bits");
            }
            if (version < 3 && bits != h.refcountBits() && bits != 16) {
                throw new IllegalArgumentException("Refcount widths other than 16 bits require compatibility level 1.1"
                        + " or above (use compat=1.1 or greater)");
            }
            if (Boolean.TRUE.equals(changes.lazyRefcounts()) && version < 3 && !h.lazyRefcounts()) {
                throw new IllegalArgumentException("Lazy refcounts only supported with compatibility level 1.1 and"
                        + " above (use compat=1.1 or greater)");
            }
            if (changes.size() != null && changes.size() % 512 != 0) {
                throw new IllegalArgumentException("The new size must be a multiple of 512");
            }
            if (bits != h.refcountBits()) {
                RefcountOrderChange.checkFits((Qcow2Image) d, bits);
            }
            if (version < h.version()) {
                long size = changes.size() != null ? changes.size() : h.size();
                VersionChange.checkDowngrade((Qcow2Image) d, size, Integer.numberOfTrailingZeros(bits));
            }
        }
        if (changes.version() != null && changes.version() > h.version()) {
            try (Qcow2Image img = (Qcow2Image) Images.openQcow2(image, rw)) {
                VersionChange.change(img, changes.version());
            }
        }
        if (changes.refcountBits() != null && changes.refcountBits() != h.refcountBits()) {
            try (Qcow2Image img = (Qcow2Image) Images.openQcow2(image, rw)) {
                RefcountOrderChange.change(img, changes.refcountBits());
            }
        }
        if (changes.lazyRefcounts() != null) {
            setLazyRefcounts(image, changes.lazyRefcounts(), rw);
        }
        if (changes.size() != null) {
            Resize.resize(image, Resize.Format.QCOW2, changes.size(), true, rw);
        }
        if (changes.version() != null && changes.version() < h.version()) {
            try (Qcow2Image img = (Qcow2Image) Images.openQcow2(image, rw)) {
                VersionChange.change(img, changes.version());
            }
        }
    }

    /** {@link #setLazyRefcounts(Path, boolean, ImageOptions)} with the default options. */
    public static void setLazyRefcounts(Path image, boolean on) throws IOException {
        setLazyRefcounts(image, on, ImageOptions.defaults());
    }

    /**
     * Turns lazy refcounts on or off. Turning them off first opens the image read/write and closes it, so that
     * every refcount is written and the dirty bit is clear (a dirty image is repaired by the open).
     *
     * @throws IllegalArgumentException for a version 2 image (qemu-img's message)
     */
    public static void setLazyRefcounts(Path image, boolean on, ImageOptions options) throws IOException {
        Qcow2Header h;
        try (Qcow2Disk d = Images.openQcow2(image, options.toBuilder().readOnly(false).build())) {
            h = d.header();
            if (on && h.version() < 3) {
                throw new IllegalArgumentException("Lazy refcounts only supported with compatibility level 1.1 and"
                        + " above (use compat=1.1 or greater)");
            }
        }
        if (h.version() < 3) {
            return; // off already: version 2 has no such bit
        }
        try (AlignedFile f = AlignedFile.open(image, IoMode.BUFFERED, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            CompatibleFeatures.set(f, Qcow2Header.COMPAT_LAZY_REFCOUNTS, on);
        }
    }
}
