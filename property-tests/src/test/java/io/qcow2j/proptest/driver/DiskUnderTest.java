package io.qcow2j.proptest.driver;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.proptest.crash.NoSyncFile;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The system under test of {@link ImageModelProperties}: an open image (a copy of a template) and its
 * configuration. Closing it is the end-of-sequence check: the image is closed, {@code qemu-img check} must find
 * it clean (no corruption, no leaks), and qemu must read exactly the model's guest content from it.
 */
final class DiskUnderTest implements AutoCloseable {
    final DiskConfig config;
    final Path dir;
    final Path file;
    private final DiskState model;
    Qcow2Image image;
    int reopens;

    private DiskUnderTest(DiskConfig config, Path dir, Path file, DiskState model) throws IOException {
        this.config = config;
        this.dir = dir;
        this.file = file;
        this.model = model;
        this.image = open(file, config.options());
    }

    /** Opens the image; its syncs are counted but skipped: this property is not about durability. */
    static Qcow2Image open(Path file, ImageOptions options) throws IOException {
        return ChainOpener.openQcow2(file, options, (p, mode, writable) -> new NoSyncFile(ChainOpener.ALIGNED_FILES.open(p, mode, writable)));
    }

    /** A fresh copy of {@code config}'s template in a new folder under {@code root}, opened. */
    static DiskUnderTest create(Templates templates, Path root, DiskConfig config, DiskState model) throws IOException {
        Templates.Template t = templates.get(config);
        Path dir = Files.createTempDirectory(root, "seq-");
        Path file = Files.copy(t.file(), dir.resolve("disk.qcow2"));
        return new DiskUnderTest(config, dir, file, model);
    }

    /** Closes the image and opens it again with {@code options}. */
    void reopen(ImageOptions options) throws IOException {
        Qcow2Image old = image;
        image = null;
        old.close();
        image = open(file, options);
        reopens++;
    }

    @Override
    public void close() throws IOException {
        try {
            if (image != null) {
                image.close();
                image = null;
            }
            Qemu.requireClean(file, config.toString());
            byte[] qemu = Qemu.guestContent(file);
            if (qemu.length != model.guest.size()) {
                throw new AssertionError(config + ": qemu reads " + qemu.length + " guest bytes, not " + model.guest.size());
            }
            model.guest.compare(qemu, 0, null, config + ": what qemu reads after the close");
        } finally {
            try (Stream<Path> s = Files.walk(dir)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }
}
