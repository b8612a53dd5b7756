package io.qcow2j.proptest.driver;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Template images for the properties: each geometry is made by qemu-img (and filled by qemu-io) once, then
 * copied for every sequence that uses it; with the guest content qemu reads from it. The backing files (raw and
 * qcow2, the same data) are shared, read-only.
 */
final class Templates {
    /** A template file and what the guest reads from it. */
    record Template(Path file, byte[] guest) {}

    private final Path dir;
    private final Map<String, Template> templates = new HashMap<>();
    private byte[] backingData;

    Templates(Path dir) {
        this.dir = dir;
    }

    /** The template of {@code config}'s image, made on first use. */
    synchronized Template get(DiskConfig config) throws IOException {
        Template t = templates.get(config.templateKey());
        if (t != null) {
            return t;
        }
        String name = "tpl-" + templates.size() + ".qcow2";
        String options = config.createOptions();
        Long size = config.size();
        if (!config.backing().equals("none")) {
            Path back = backing(config.backing());
            options += ",backing_file=" + back + ",backing_fmt=" + config.backing();
            size = null;
        }
        Path file = Qemu.create(dir, name, options, size);
        String[] prefill = config.prefillCommands();
        if (prefill.length > 0) {
            Qemu.ioFormat(file, "qcow2", prefill);
        }
        byte[] guest = prefill.length > 0 || !config.backing().equals("none") ? Qemu.guestContent(file)
                : new byte[(int) config.size()];
        t = new Template(file, guest);
        templates.put(config.templateKey(), t);
        return t;
    }

    /** The shared backing file of {@code kind} ("raw" or "qcow2"). */
    private Path backing(String kind) throws IOException {
        if (backingData == null) {
            backingData = new byte[(int) DiskConfig.BACKING_SIZE];
            SplittableRandom rnd = new SplittableRandom(42);
            for (int pos = 0; pos < backingData.length; ) {
                int run = 2048 << rnd.nextInt(6);
                if (rnd.nextBoolean()) {
                    byte[] b = new byte[Math.min(run, backingData.length - pos)];
                    rnd.nextBytes(b);
                    System.arraycopy(b, 0, backingData, pos, b.length);
                }
                pos += run;
            }
            Files.write(dir.resolve("back.raw"), backingData);
            Qemu.run(dir, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096",
                    "back.raw", "back.qcow2");
        }
        return dir.resolve("back." + kind).toRealPath();
    }
}
