package io.qcow2j.proptest.crash;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.PositionalFile;
import io.qcow2j.proptest.driver.GuestModel;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * An image made by qemu-img for a crash or fault test, optionally over a qcow2 backing file with data, and
 * how to open it through a file of our own (recording, or a crash image) with the backing file in memory.
 *
 * @param top          the image file (on disk, as qemu-img made it)
 * @param topBytes     its content
 * @param backing      the backing file, or null
 * @param backingBytes its content (the qcow2 file), or null
 * @param guest        what the guest reads before any request (the backing file's data, or zeros)
 * @param clusterSize  the image's cluster size
 * @param version      2 or 3
 * @param size         the guest size
 */
record TestImage(Path top, byte[] topBytes, Path backing, byte[] backingBytes, byte[] guest, int clusterSize,
        int version, long size) {

    /**
     * Creates {@code top.qcow2} in {@code dir} with {@code options} and {@code size}; with {@code backingOptions}
     * not null, first a backing file {@code back.qcow2} of the same size, half of its clusters filled with data.
     */
    static TestImage create(Path dir, String options, long size, String backingOptions, long seed) throws IOException {
        return create(dir, options, size, backingOptions, seed, new String[0]);
    }

    /** As above, then {@code qemu-io} runs {@code prefill} on the image (the guest model reads its result). */
    static TestImage create(Path dir, String options, long size, String backingOptions, long seed, String... prefill)
            throws IOException {
        Path backing = null;
        byte[] backingBytes = null;
        byte[] guest = new byte[(int) size];
        String opts = options;
        if (backingOptions != null) {
            SplittableRandom rnd = new SplittableRandom(seed);
            // data in runs of 4 KiB … 64 KiB, zeros between: the backing file has allocated and unallocated parts
            for (int pos = 0; pos < size; ) {
                int run = 4096 << rnd.nextInt(5);
                if (rnd.nextBoolean()) {
                    byte[] b = new byte[(int) Math.min(run, size - pos)];
                    rnd.nextBytes(b);
                    System.arraycopy(b, 0, guest, pos, b.length);
                }
                pos += run;
            }
            Files.write(dir.resolve("back.raw"), guest);
            Qemu.run(dir, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", backingOptions, "back.raw",
                    "back.qcow2");
            Files.delete(dir.resolve("back.raw"));
            backing = dir.resolve("back.qcow2").toRealPath();
            backingBytes = Files.readAllBytes(backing);
            opts = options + (options.isEmpty() ? "" : ",") + "backing_file=back.qcow2,backing_fmt=qcow2";
        }
        Path top = Qemu.create(dir, "top.qcow2", opts, size).toRealPath();
        if (prefill.length > 0) {
            Qemu.ioFormat(top, "qcow2", prefill);
            guest = Qemu.guestContent(top);
        }
        byte[] topBytes = Files.readAllBytes(top);
        try (Qcow2Image img = ChainOpener.openQcow2(top, ImageOptions.defaults())) {
            return new TestImage(top, topBytes, backing, backingBytes, guest, img.header().clusterSize(),
                    img.header().version(), img.size());
        }
    }

    /** The guest model before any request. */
    GuestModel model() {
        return new GuestModel(size, clusterSize, version, backing != null, guest);
    }

    /** Opens the image with {@code file} as the image file and the backing file (if any) in memory. */
    Qcow2Image open(PositionalFile file, ImageOptions options) throws IOException {
        return ChainOpener.openQcow2(top, options, (p, mode, writable) -> {
            if (p.equals(top)) {
                return file;
            }
            if (p.equals(backing)) {
                return MemoryFile.readOnly(p, backingBytes);
            }
            return ChainOpener.ALIGNED_FILES.open(p, mode, writable);
        });
    }

    /** Opens the image file {@code path} (in the same folder: the backing file resolves) from disk. */
    Qcow2Image openFile(Path path, ImageOptions options) throws IOException {
        return ChainOpener.openQcow2(path, options);
    }
}
