package io.qcow2j.proptest.crash;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.Commit;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Rebase;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.qcow2.BackingFileChange;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.ForwardingFile;
import io.qcow2j.ffm.PositionalFile;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Crash points of the surgery that writes guest data along a backing chain (base ← mid ← top): commit's
 * copy step (the top's data written into its backing file), a safe rebase of the top onto the base (the
 * ranges where the chains differ copied into the top, then the header switched) and an unsafe one (the
 * header only), and a flatten ({@code rebase -b ""}: everything the top reads copied into it, then the
 * backing file dropped). Every crash state of the written file's log is checked: {@code qemu-img check} finds no
 * corruption (leaks allowed), and the top of the chain reads as it did before (commit, safe rebase: what
 * is copied is what the guest already saw there) or, for the unsafe rebase, as before or as after.
 */
class ChainSurgeryCrashTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"commit-copy", "rebase-safe", "rebase-unsafe", "rebase-flatten"})
    void everyCrashPointIsConsistent(String op) throws IOException {
        Path base = Qemu.create(dir, "base.qcow2", "cluster_size=4096", "1M");
        Qemu.io(base, "write -P 1 0 512k", "write -P 2 768k 64k");
        Path mid = Qemu.create(dir, "mid.qcow2", "cluster_size=4096,backing_file=base.qcow2,backing_fmt=qcow2", null);
        Qemu.io(mid, "write -P 3 64k 64k", "write -z 256k 16k", "write -P 4 900k 8k");
        Path top = Qemu.create(dir, "top.qcow2", "cluster_size=4096,backing_file=mid.qcow2,backing_fmt=qcow2", null);
        Qemu.io(top, "write -P 5 100k 8k", "write -P 6 800k 12k");
        byte[] guestBefore = Qemu.guestContent(top);
        // the file the operation writes: the base for a commit, the top for a rebase
        Path written = op.equals("commit-copy") ? base.toRealPath() : top.toRealPath();
        byte[] initial = Files.readAllBytes(written);
        RecordingFile rec = RecordingFile.inMemory(written, initial);
        ImageOptions rw = ImageOptions.builder().readOnly(false).cacheCleanInterval(0).build();
        ImageOptions ro = ImageOptions.builder().readOnly(true).build();
        switch (op) {
            case "commit-copy" -> {
                try (Disk image = Images.open(top, ro); Qcow2Image into = open(written, rec, rw)) {
                    Commit.copy(image, into, allocatedAbove(image, 2), 0, p -> { });
                    into.flush();
                }
            }
            case "rebase-safe" -> {
                try (Qcow2Image image = open(written, rec, rw); Disk next = Images.open(base, ro)) {
                    Rebase.copyDifferences(image, next, p -> { });
                    image.flush();
                }
                BackingFileChange.change(rec, Qcow2Header.read(rec), "base.qcow2", "qcow2");
            }
            case "rebase-unsafe" -> BackingFileChange.change(rec, Qcow2Header.read(rec), "base.qcow2", "qcow2");
            case "rebase-flatten" -> { // -b "": everything the top reads copied into it, then no backing file
                try (Qcow2Image image = open(written, rec, rw)) {
                    Rebase.copyDifferences(image, null, p -> { });
                    image.flush();
                }
                BackingFileChange.change(rec, Qcow2Header.read(rec), null, null);
            }
            default -> throw new AssertionError(op);
        }

        // every crash state is checked in a folder of its own with copies of the other files of the chain
        Path crashDir = Files.createDirectories(dir.resolve("crash"));
        for (String f : List.of("base.qcow2", "mid.qcow2", "top.qcow2")) {
            Files.copy(dir.resolve(f), crashDir.resolve(f));
        }
        Path crash = crashDir.resolve(written.getFileName());
        Files.write(crash, rec.content());
        Qemu.requireClean(crash, op + " completed");
        byte[] guestAfter = Qemu.guestContent(crashDir.resolve("top.qcow2"));
        if (!op.equals("rebase-unsafe")) {
            assertThat(guestAfter).as(op + ": the guest reads as before").isEqualTo(guestBefore);
        }
        if (op.equals("commit-copy")) {
            assertThat(Qemu.guestContent(crash)).as("the base reads as the top").isEqualTo(guestBefore);
        }
        CrashSimulator sim = rec.crashSimulator();
        Random rnd = new Random(14);
        int states = 0;
        List<String> problems = new ArrayList<>();
        for (int point = 0; point < sim.points(); point++) {
            for (CrashState st : sim.states(point, rnd)) {
                sim.image(st, written).writeTo(crash);
                states++;
                Qemu.Check c = Qemu.check(crash);
                if (!c.consistent()) {
                    problems.add(st + ": " + c.verdict() + "\n" + c.output());
                    continue;
                }
                byte[] guest = Qemu.guestContent(crashDir.resolve("top.qcow2"));
                if (!java.util.Arrays.equals(guest, guestBefore) && !java.util.Arrays.equals(guest, guestAfter)) {
                    problems.add(st + ": the top reads neither as before nor as after");
                }
            }
        }
        assertThat(problems).as("%s: %d crash states", op, states).isEmpty();
        assertThat(states).isGreaterThan(3);
    }

    /** Opens the qcow2 image at {@code path} with {@code file} as its file; its backing files from disk. */
    private static Qcow2Image open(Path path, RecordingFile file, ImageOptions options) throws IOException {
        PositionalFile kept = new ForwardingFile(file) {
            @Override
            public void close() {
                // the header switch writes the same recording after the image is closed
            }
        };
        return ChainOpener.openQcow2(path, options, (p, mode, writable) -> p.equals(path) ? kept
                : ChainOpener.ALIGNED_FILES.open(p, mode, writable));
    }

    /** The ranges held by the top {@code layers} images of {@code image}'s chain (what a commit copies). */
    private static List<long[]> allocatedAbove(Disk image, int layers) throws IOException {
        List<long[]> out = new ArrayList<>();
        Disk layer = image;
        for (int i = 0; i < layers; i++) {
            for (long pos = 0; pos < image.size(); ) {
                BlockStatus st = layer.blockStatus(pos, image.size() - pos);
                if (st.allocated()) {
                    out.add(new long[] {pos, st.length()});
                }
                pos += st.length();
            }
            layer = layer.backing().orElseThrow();
        }
        return out;
    }
}
