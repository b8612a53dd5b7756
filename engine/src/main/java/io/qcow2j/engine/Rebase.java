package io.qcow2j.engine;

import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.qcow2.BackingFileChange;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.IoMode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.function.DoubleConsumer;

/**
 * Changes the backing file of a qcow2 image, as {@code qemu-img rebase} does. Safe mode first copies into the
 * image every range it does not hold itself where the old backing chain and the new one read differently
 * (so the guest sees the same disk afterwards), then switches the header; unsafe mode only switches the
 * header. An empty new name removes the backing file (safe mode: the image is flattened). The image must not
 * be open elsewhere.
 */
public final class Rebase {
    private static final int CHUNK = 64 * 1024;

    private Rebase() {}

    /**
     * Rebases {@code image} onto {@code backing} (as it is to be written in the header: relative names are
     * relative to the image's folder; "" for none) of format {@code format} (null: none recorded; required
     * for a non-empty name, as qemu-img 7.2 requires it).
     *
     * @throws IllegalArgumentException if a format is missing
     */
    public static void rebase(Path image, String backing, String format, boolean unsafe, DoubleConsumer progress)
            throws IOException {
        rebase(image, backing, format, unsafe, progress, ImageOptions.defaults());
    }

    /**
     * {@link #rebase(Path, String, String, boolean, DoubleConsumer)} with the old and the new backing chain
     * opened with {@code options} ({@link ImageOptions#untrusted()} and {@link ImageOptions#allowRawBacking()}
     * decide which backing files may be opened, the new one included).
     */
    public static void rebase(Path image, String backing, String format, boolean unsafe, DoubleConsumer progress,
            ImageOptions options) throws IOException {
        boolean none = backing.isEmpty();
        if (!none && format == null) {
            throw new IllegalArgumentException("Could not change the backing file to '" + backing
                    + "': backing format must be specified");
        }
        Path newBacking = none ? null : ChainOpener.resolveNewBacking(image, backing, format, options);
        if (!unsafe) {
            if (!none) {
                refuseLoop(image, newBacking, backing);
            }
            try (Disk top = Images.open(image, options.toBuilder().readOnly(false).build());
                    Disk next = none ? null : openNewBacking(newBacking, backing, options)) {
                copyDifferences(top, next, progress);
                top.flush();
            }
        }
        try (AlignedFile f = AlignedFile.open(image, IoMode.BUFFERED, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            Qcow2Header h = Qcow2Header.read(f);
            BackingFileChange.change(f, h, none ? null : backing, none ? null : format);
        }
        progress.accept(100);
    }

    /**
     * A safe rebase onto a chain that holds {@code image} itself would make the chain loop: refused before
     * anything changes, with the line qemu-img prints there (its image lock refuses to open the image twice).
     * Unsafe mode does not look, as in qemu-img. Files that are not qcow2 end the walk; opening reports them.
     */
    private static void refuseLoop(Path image, Path newBacking, String name) throws IOException {
        Path p = newBacking;
        for (int depth = 0; depth <= ImageOptions.MAX_CHAIN_DEPTH && Files.exists(p); depth++) {
            if (Files.isSameFile(p, image)) {
                throw new IllegalArgumentException("Could not open new backing file '" + name + "': "
                        + (depth > 0 ? "Could not open backing file: " : "") + "Failed to get shared \"write\" lock");
            }
            java.util.Optional<String> next;
            try (AlignedFile f = AlignedFile.open(p, IoMode.BUFFERED, StandardOpenOption.READ)) {
                next = Qcow2Header.read(f).backingFileName();
            } catch (IOException e) {
                return; // not a qcow2 image, or a bad one: opening it reports that
            }
            if (next.isEmpty()) {
                return;
            }
            p = ChainOpener.resolveBacking(p, next.get(), p.toString());
        }
    }

    private static Disk openNewBacking(Path path, String name, ImageOptions options) throws IOException {
        try {
            return Images.open(path, options.toBuilder().readOnly(true).build());
        } catch (NoSuchFileException e) {
            throw new IOException("Could not open new backing file '" + name + "': Could not open '" + name
                    + "': No such file or directory", e); // qemu-img's line
        }
    }

    /**
     * The copy step of a safe rebase: writes into {@code top} every range it does not hold itself where its
     * current backing chain and {@code next} (null: none) read differently. Nothing is flushed. At every point
     * {@code top} reads as before (what is copied is what it read there).
     */
    public static void copyDifferences(Disk top, Disk next, DoubleConsumer progress) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            copyDifferences(top, next, arena, progress);
        }
    }

    private static void copyDifferences(Disk top, Disk next, Arena arena, DoubleConsumer progress) throws IOException {
        long size = top.size();
        MemorySegment old = arena.allocate(CHUNK, 4096);
        MemorySegment now = arena.allocate(CHUNK, 4096);
        for (long pos = 0; pos < size; ) {
            BlockStatus st = top.blockStatus(pos, Math.min(CHUNK - pos % CHUNK, size - pos));
            long n = st.length();
            if (!st.allocated()) {
                MemorySegment a = old.asSlice(0, n);
                MemorySegment b = now.asSlice(0, n);
                top.read(pos, a); // through the old backing chain
                b.fill((byte) 0);
                if (next != null && pos < next.size()) {
                    next.read(pos, b.asSlice(0, Math.min(n, next.size() - pos)));
                }
                if (a.mismatch(b) >= 0) {
                    top.write(pos, a);
                }
            }
            pos += n;
            progress.accept(100.0 * pos / size);
        }
    }
}
