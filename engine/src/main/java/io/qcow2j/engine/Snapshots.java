package io.qcow2j.engine;

import io.qcow2j.engine.format.Qcow2Snapshot;
import io.qcow2j.engine.qcow2.ImageResize;
import io.qcow2j.engine.qcow2.InternalSnapshots;
import io.qcow2j.engine.qcow2.Qcow2Image;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

/**
 * Internal snapshots of a qcow2 image, as {@code qemu-img snapshot} handles them: list, create, apply
 * (revert to) and delete. Each call opens the image, does one operation and closes it; the image must not be
 * open elsewhere (a VM, another {@link Disk}) while its tables are rewritten.
 *
 * <pre>{@code
 * Snapshots.create(Path.of("vm.qcow2"), "before-upgrade");
 * Snapshots.apply(Path.of("vm.qcow2"), "before-upgrade");   // the disk reads as it did then
 * Snapshots.delete(Path.of("vm.qcow2"), "before-upgrade");
 * }</pre>
 *
 * <p>Every operation is crash-safe: whatever point a crash interrupts it at, the image is consistent
 * (at most leaked clusters, which {@code qemu-img check -r leaks} reclaims).
 */
public final class Snapshots {
    private Snapshots() {}

    /** The image's snapshots in table order (opened read-only). */
    public static List<Qcow2Snapshot> list(Path image) throws IOException {
        return list(image, ImageOptions.defaults());
    }

    /**
     * {@link #list(Path)} with the image opened with {@code options}; so do the other operations' overloads
     * ({@link ImageOptions#untrusted()} applies to the backing chain an open reads; read/write as needed,
     * whatever {@code readOnly} says).
     */
    public static List<Qcow2Snapshot> list(Path image, ImageOptions options) throws IOException {
        try (Qcow2Image img = open(image, true, options)) {
            return InternalSnapshots.list(img);
        }
    }

    /** Creates a snapshot named {@code name} of the image as it is now, dated now; returns its table entry. */
    public static Qcow2Snapshot create(Path image, String name) throws IOException {
        return create(image, name, ImageOptions.defaults());
    }

    public static Qcow2Snapshot create(Path image, String name, ImageOptions options) throws IOException {
        Instant now = Instant.now();
        try (Qcow2Image img = open(image, false, options)) {
            return InternalSnapshots.create(img, name, now.getEpochSecond(), now.getNano());
        }
    }

    /**
     * Reverts the image to the snapshot whose ID, else whose name, is {@code idOrName}; the snapshot stays.
     *
     * @throws SnapshotNotFoundException if there is no such snapshot
     */
    public static Qcow2Snapshot apply(Path image, String idOrName) throws IOException {
        return apply(image, idOrName, ImageOptions.defaults());
    }

    public static Qcow2Snapshot apply(Path image, String idOrName, ImageOptions options) throws IOException {
        try (Qcow2Image img = open(image, false, options)) {
            var sn = InternalSnapshots.find(InternalSnapshots.list(img), idOrName);
            if (sn.isPresent() && sn.get().l1Size() > img.l1Table().length) {
                ImageResize.resize(img, sn.get().diskSize()); // its L1 table must fit: grown first, as QEMU does
            }
        }
        try (Qcow2Image img = open(image, false, options)) {
            return InternalSnapshots.apply(img, idOrName);
        }
    }

    /**
     * Deletes the first snapshot named {@code name}; clusters only it used are freed (and discarded in the file).
     *
     * @throws SnapshotNotFoundException if no snapshot has that name
     */
    public static Qcow2Snapshot delete(Path image, String name) throws IOException {
        return delete(image, name, ImageOptions.defaults());
    }

    public static Qcow2Snapshot delete(Path image, String name, ImageOptions options) throws IOException {
        try (Qcow2Image img = open(image, false, options)) {
            return InternalSnapshots.delete(img, name);
        }
    }

    private static Qcow2Image open(Path image, boolean readOnly, ImageOptions options) throws IOException {
        return (Qcow2Image) Images.openQcow2(image, options.toBuilder().readOnly(readOnly).build());
    }
}
