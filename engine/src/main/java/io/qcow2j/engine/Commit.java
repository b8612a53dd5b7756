package io.qcow2j.engine;

import io.qcow2j.engine.qcow2.MakeEmpty;
import io.qcow2j.engine.qcow2.Qcow2Image;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.DoubleConsumer;

/**
 * Writes an image's data into its backing file, as {@code qemu-img commit} does: every range allocated in
 * the image (or, with a base further down the chain, in any image above the base) is copied into the base;
 * then, when the base is the direct backing file and the image is not kept, the image is emptied so that it
 * reads as its backing file. The images must not be open elsewhere.
 */
public final class Commit {
    private static final int CHUNK = 1 << 20;

    private Commit() {}

    /**
     * Commits {@code image} into {@code base} (null: its backing file).
     *
     * @param keep  do not empty the image afterwards ({@code -d}; always so with an explicit base, as qemu-img)
     * @param bytesPerSecond at most this many bytes written per second, 0: no limit ({@code -r})
     * @param progress called with the percentage done
     * @throws IllegalArgumentException if the image has no backing file or {@code base} is not in its chain
     */
    public static void commit(Path image, Path base, boolean keep, long bytesPerSecond, DoubleConsumer progress)
            throws IOException {
        commit(image, base, keep, bytesPerSecond, progress, ImageOptions.defaults());
    }

    /**
     * {@link #commit(Path, Path, boolean, long, DoubleConsumer)} with the chain opened with {@code options}
     * ({@link ImageOptions#untrusted()} and {@link ImageOptions#allowRawBacking()} decide which backing
     * files may be opened; the base is opened read/write, the image read-only, whatever {@code readOnly} says).
     */
    public static void commit(Path image, Path base, boolean keep, long bytesPerSecond, DoubleConsumer progress,
            ImageOptions options) throws IOException {
        Path basePath;
        List<long[]> ranges = new ArrayList<>();
        long size;
        boolean baseIsQcow2;
        long baseSize;
        ImageOptions ro = options.toBuilder().readOnly(true).build();
        ImageOptions rw = options.toBuilder().readOnly(false).build();
        try (Disk top = Images.open(image, ro)) {
            if (top.backing().isEmpty()) {
                throw new IllegalArgumentException("Image does not have a backing file");
            }
            // the chain's files, each backing name resolved against the folder of the image naming it (as QEMU)
            List<Disk> layers = new ArrayList<>();
            List<Path> paths = new ArrayList<>();
            Path at = image;
            for (Disk layer = top; layer != null; layer = layer.backing().orElse(null)) {
                if (!layers.isEmpty()) {
                    Path parent = at.toAbsolutePath().getParent();
                    at = parent.resolve(layer.filename());
                }
                layers.add(layer);
                paths.add(at);
            }
            int baseIndex = 1;
            if (base != null) {
                baseIndex = -1;
                for (int i = 1; i < paths.size() && baseIndex < 0; i++) {
                    if (paths.get(i).toAbsolutePath().normalize().equals(base.toAbsolutePath().normalize())
                            || sameFile(paths.get(i), base)) {
                        baseIndex = i;
                    }
                }
                if (baseIndex < 0) {
                    throw new IllegalArgumentException("Did not find '" + base + "' in the backing chain of '" + image
                            + "'");
                }
            }
            Disk b = layers.get(baseIndex);
            basePath = paths.get(baseIndex);
            baseIsQcow2 = b.format().equals("qcow2");
            baseSize = b.size();
            size = top.size();
            for (Disk layer = top; layer != b; layer = layer.backing().orElseThrow()) {
                collectAllocated(layer, Math.min(size, layer.size()), ranges);
            }
            if (b instanceof Qcow2Disk q) {
                // qemu-img's commit job copies in granules of the base's cluster size, at least 4 KiB
                long g = Math.max(4096, q.header().geometry().clusterSize());
                for (long[] r : ranges) {
                    long start = r[0] / g * g;
                    long end = Math.min(size, (r[0] + r[1] + g - 1) / g * g);
                    r[0] = start;
                    r[1] = end - start;
                }
            }
        }
        if (baseSize < size) {
            // a smaller base grows to the image's size first, as qemu-img commit does (the new space reads as zeros)
            Resize.resize(basePath, baseIsQcow2 ? Resize.Format.QCOW2 : Resize.Format.RAW, size, false, rw);
        }
        try (Disk dst = Images.open(basePath, rw); Disk src = Images.open(image, ro)) {
            copy(src, dst, ranges, bytesPerSecond, progress);
            dst.flush();
        }
        progress.accept(100);
        if (!keep && base == null) {
            try (Qcow2Image img = (Qcow2Image) Images.openQcow2(image, rw)) {
                MakeEmpty.makeEmpty(img);
            }
        }
    }

    /**
     * The copy step of a commit: writes what {@code image} reads over {@code ranges} (offset, length pairs)
     * into {@code base}, which must be large enough (the commit grows a smaller base first). Nothing is flushed: the caller flushes the base. At every point the chain above the base reads
     * as before, since the image still holds every range copied.
     */
    public static void copy(Disk image, Disk base, List<long[]> ranges, long bytesPerSecond, DoubleConsumer progress)
            throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(CHUNK, 4096);
            long total = 0;
            for (long[] r : ranges) {
                total += r[1];
            }
            long done = 0;
            long started = System.nanoTime();
            for (long[] r : ranges) {
                for (long pos = r[0]; pos < r[0] + r[1]; ) {
                    long n = Math.min(CHUNK, r[0] + r[1] - pos);
                    // ranges that read as zeros are written as zeros, not as data (qemu-img's commit job zeroes
                    // them: the base gets zero clusters where the image had them)
                    BlockStatus st = image.blockStatus(pos, n);
                    n = Math.max(1, Math.min(n, st.length()));
                    if (st.zero()) {
                        base.writeZeroes(pos, n, ZeroFlag.unmapIf(true));
                    } else {
                        MemorySegment part = buf.asSlice(0, n);
                        image.read(pos, part);
                        base.write(pos, part);
                    }
                    pos += n;
                    done += n;
                    progress.accept(total == 0 ? 100 : 100.0 * done / total);
                    throttle(started, done, bytesPerSecond);
                }
            }
        }
    }

    private static boolean sameFile(Path a, Path b) {
        try {
            return Files.exists(b) && Files.isSameFile(a, b);
        } catch (IOException e) {
            return false;
        }
    }

    /** Appends the ranges {@code layer} itself holds (not its backing file), merging adjacent ones. */
    private static void collectAllocated(Disk layer, long size, List<long[]> out) throws IOException {
        for (long pos = 0; pos < size; ) {
            BlockStatus st = layer.blockStatus(pos, size - pos);
            if (st.allocated()) {
                out.add(new long[] {pos, st.length()});
            }
            pos += st.length();
        }
    }

    private static void throttle(long started, long done, long bytesPerSecond) {
        if (bytesPerSecond <= 0) {
            return;
        }
        long dueNanos = (long) (done * 1e9 / bytesPerSecond);
        long wait = dueNanos - (System.nanoTime() - started);
        if (wait > 0) {
            try {
                Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
