package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code ./qcow2j} launcher in the POSIX locale (no {@code LANG}, {@code LC_ALL} or {@code LC_CTYPE}, as in
 * cron jobs and {@code env -i}): file and snapshot names that are not ASCII still reach the image as their
 * UTF-8 bytes, as with qemu-img. A JVM left in that locale decodes its arguments as ASCII, so 'größe.qcow2'
 * becomes another name. The names are made with {@code printf} inside bash, so that this test's own JVM (whatever
 * its locale) passes only ASCII; qemu-img, which takes names as bytes, checks what was written.
 */
@Timeout(value = 300, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class LauncherLocaleTest {
    @TempDir
    static Path tmp;

    @Test
    void nonAsciiFileAndSnapshotNamesSurviveThePosixLocale() throws IOException {
        Path root = LauncherCheckout.make(tmp.resolve("checkout"));
        Path work = Files.createDirectories(tmp.resolve("work"));
        String script = String.join("\n",
                "set -u",
                "q=" + root.resolve("qcow2j"),
                "img=$(printf 'gr\\303\\266\\303\\237e.qcow2')",
                "snap=$(printf 'sn\\303\\244p')",
                "\"$q\" create -q -f qcow2 \"$img\" 1M || echo 'create failed'",
                "[ -f \"$img\" ] && echo 'file has the UTF-8 name'",
                "\"$q\" info \"$img\" | grep -qx \"image: $img\" && echo 'info names it'",
                "\"$q\" snapshot -c \"$snap\" \"$img\" || echo 'snapshot failed'",
                "qemu-img snapshot -l \"$img\" | grep -q \" $snap \" && echo 'qemu-img lists the snapshot'",
                "\"$q\" snapshot -l \"$img\" | grep -q \" $snap \" && echo 'we list it'");
        Qemu.Result r = Qemu.exec(work, "env", "-u", "LC_ALL", "-u", "LC_CTYPE", "-u", "LANG", "-u", "LANGUAGE",
                "-u", "QCOW2J_AOT", "QCOW2J_AOT=off", "bash", "-c", script);
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out().lines()).as(r.err()).containsExactly("file has the UTF-8 name", "info names it",
                "qemu-img lists the snapshot", "we list it");
    }
}
