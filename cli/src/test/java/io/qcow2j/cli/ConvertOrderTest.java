package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Json;
import io.qcow2j.testsupport.Qemu;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Without {@code -W}, {@code qcow2j convert -O qcow2} writes in guest order even with 16 workers, as qemu-img
 * does: {@code qemu-img map} of the output finds the host offsets of its data rising with the guest offsets.
 */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ConvertOrderTest {
    @TempDir
    Path dir;

    @Test
    void inOrderOutputLiesInGuestOrder() {
        Path src = Qemu.create(dir, "src.qcow2", null, "48M");
        List<String> writes = new ArrayList<>();
        for (int mib = 0; mib < 48; mib += 2) {
            writes.add("write -P " + (mib + 1) + " " + mib + "M 1M"); // 1 MiB of data per 2 MiB chunk
        }
        Qemu.io(src, writes.toArray(String[]::new));
        for (String flags : List.of("-m 16", "-m 3")) {
            Path out = dir.resolve("out" + flags.replace(" ", "") + ".qcow2");
            List<String> args = new ArrayList<>(List.of("convert", "-O", "qcow2"));
            args.addAll(List.of(flags.split(" ")));
            args.addAll(List.of(src.toString(), out.toString()));
            Cli.ok(args.toArray(String[]::new));
            assertThat(Qemu.img(dir, "compare", src.toString(), out.toString())).isEqualTo("Images are identical.\n");
            List<Long> hosts = new ArrayList<>();
            for (Object o : Json.array(Qemu.img(dir, "map", "--output=json", out.toString()))) {
                Map<?, ?> e = (Map<?, ?>) o;
                if (Boolean.TRUE.equals(e.get("data")) && e.get("offset") != null) {
                    hosts.add(((Number) e.get("offset")).longValue());
                }
            }
            assertThat(hosts).as(flags).hasSize(24).isSorted();
        }
    }
}
