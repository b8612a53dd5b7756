package io.qcow2j.proptest.crash;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.qcow2.ImageResize;
import io.qcow2j.engine.qcow2.InternalSnapshots;
import io.qcow2j.engine.qcow2.MakeEmpty;
import io.qcow2j.engine.qcow2.Qcow2Image;
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
 * Crash points of the table-rewriting operations (snapshot create, delete, apply; resize grow with the L1
 * table moved, and shrink; emptying an image after commit): every crash state of the operation's write log (each point, each way of
 * treating the unsynced writes, torn writes) is checked by {@code qemu-img check} and must be consistent:
 * clean, leaked clusters, or at worst clusters whose refcount dropped to 1 before their COPIED flag was set
 * (harmless: they are copied on the next write; {@code check -r all} sets the flag). The guest content must
 * be the one before or the one after the operation.
 */
class SurgeryCrashTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"snapshot-create", "snapshot-delete", "snapshot-apply", "resize-grow", "resize-shrink",
        "make-empty"})
    void everyCrashPointIsConsistent(String op) throws IOException {
        Path top = Qemu.create(dir, "top.qcow2", "cluster_size=4096", "1M");
        Qemu.io(top, "write -P 1 0 256k", "write -P 2 512k 64k");
        Qemu.img(dir, "snapshot", "-c", "old", "top.qcow2");
        Qemu.io(top, "write -P 3 64k 64k", "write -P 4 768k 8k");
        Path before = Files.copy(top, dir.resolve("before.qcow2"));
        byte[] bytes = Files.readAllBytes(top);
        TestImage image = new TestImage(top.toRealPath(), bytes, null, null, new byte[1 << 20], 4096, 3, 1 << 20);
        RecordingFile rec = RecordingFile.inMemory(image.top(), bytes);
        ImageOptions options = ImageOptions.builder().readOnly(false).cacheCleanInterval(0).build();
        try (Qcow2Image img = image.open(rec, options)) {
            switch (op) {
                case "snapshot-create" -> InternalSnapshots.create(img, "new", 1, 0);
                case "snapshot-delete" -> InternalSnapshots.delete(img, "old");
                case "snapshot-apply" -> InternalSnapshots.apply(img, "old");
                case "resize-grow" -> ImageResize.resize(img, 64L << 20); // 4 KiB clusters: the L1 table moves
                case "resize-shrink" -> ImageResize.resize(img, 300 << 10);
                case "make-empty" -> MakeEmpty.makeEmpty(img); // commit's last step
                default -> throw new AssertionError(op);
            }
        }
        Path after = dir.resolve("after.qcow2");
        Files.write(after, rec.content());
        Qemu.requireClean(after, op + " completed");

        CrashSimulator sim = rec.crashSimulator();
        Random rnd = new Random(14);
        Path crash = dir.resolve("crash.qcow2");
        int states = 0;
        List<String> problems = new ArrayList<>();
        for (int point = 0; point < sim.points(); point++) {
            for (CrashState st : sim.states(point, rnd)) {
                sim.image(st, image.top()).writeTo(crash);
                states++;
                Qemu.Check c = Qemu.check(crash);
                if (!c.consistent() && !onlyMissingCopiedFlags(c.output())) {
                    problems.add(st + ": " + c.verdict() + "\n" + c.output());
                    continue;
                }
                boolean same = equalContent(crash, before) || equalContent(crash, after);
                if (!same) {
                    problems.add(st + ": guest content is neither the one before nor the one after");
                }
            }
        }
        assertThat(problems).as("%s: %d crash states", op, states).isEmpty();
        assertThat(states).isGreaterThan(5);
    }

    /** Errors only of the kind "refcount 1 without COPIED" (what a crash between the two updates leaves). */
    private static boolean onlyMissingCopiedFlags(String output) {
        List<String> errors = output.lines().filter(l -> l.startsWith("ERROR")).toList();
        return !errors.isEmpty() && errors.stream().allMatch(l -> l.startsWith("ERROR OFLAG_COPIED")
                && l.endsWith("refcount=1"));
    }

    private boolean equalContent(Path a, Path b) {
        return Qemu.exec(dir, "qemu-img", "compare", "-q", a.getFileName().toString(), b.getFileName().toString())
                .exit() == 0;
    }
}
