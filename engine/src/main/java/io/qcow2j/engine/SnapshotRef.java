package io.qcow2j.engine;

import io.qcow2j.engine.format.Qcow2Snapshot;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * Names one internal snapshot of a qcow2 image, as {@code qemu-img convert -l} does: by ID, by name, by both
 * (both must match), or by a string that is tried as an ID first and then as a name. Given as
 * {@link ImageOptions#snapshot()}, the image opens as a read-only view of the disk as it was when the
 * snapshot was taken.
 *
 * @param id       the snapshot's ID, or null
 * @param name     the snapshot's name, or null
 * @param idOrName whether {@code id} and {@code name} are one string to match as an ID, else as a name
 *                 ({@link #idOrName(String)}); otherwise each one given must match
 */
public record SnapshotRef(String id, String name, boolean idOrName) {
    public SnapshotRef {
        if (id == null && name == null) {
            throw new IllegalArgumentException("a snapshot is named by its ID, its name or both");
        }
        if (idOrName && !Objects.equals(id, name)) {
            throw new IllegalArgumentException("an ID-or-name reference has one string");
        }
    }

    /** {@code -l snapshot.id=ID}. */
    public static SnapshotRef byId(String id) {
        return new SnapshotRef(Objects.requireNonNull(id), null, false);
    }

    /** {@code -l snapshot.name=NAME}: the first snapshot of that name. */
    public static SnapshotRef byName(String name) {
        return new SnapshotRef(null, Objects.requireNonNull(name), false);
    }

    /** {@code -l snapshot.id=ID,snapshot.name=NAME}: the snapshot with both; either may be null. */
    public static SnapshotRef of(String id, String name) {
        return new SnapshotRef(id, name, false);
    }

    /** {@code -l TEXT}: the snapshot whose ID is {@code text}, else the first whose name is. */
    public static SnapshotRef idOrName(String text) {
        return new SnapshotRef(Objects.requireNonNull(text), text, true);
    }

    /** The snapshot this names in {@code snapshots} (table order), as QEMU looks it up. */
    public Optional<Qcow2Snapshot> find(List<Qcow2Snapshot> snapshots) {
        if (idOrName) {
            Optional<Qcow2Snapshot> byId = first(snapshots, id, null);
            return byId.isPresent() ? byId : first(snapshots, null, name);
        }
        return first(snapshots, id, name);
    }

    private static Optional<Qcow2Snapshot> first(List<Qcow2Snapshot> snapshots, String id, String name) {
        return snapshots.stream()
                .filter(sn -> (id == null || sn.id().equals(id)) && (name == null || sn.name().equals(name)))
                .findFirst();
    }

    @Override
    public String toString() {
        return idOrName ? id : (id != null ? "snapshot.id=" + id : "") + (id != null && name != null ? "," : "")
                + (name != null ? "snapshot.name=" + name : "");
    }
}
