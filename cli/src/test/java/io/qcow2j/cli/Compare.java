package io.qcow2j.cli;

import io.qcow2j.testsupport.Json;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Compares our output with qemu-img's: exactly, except the allocated size of files ("actual-size",
 * "disk size"), which may differ by filesystem rounding and is compared loosely.
 */
final class Compare {
    private static final Pattern ACTUAL = Pattern.compile("\"actual-size\": (\\d+)");
    private static final Pattern DISK = Pattern.compile("(?m)^disk size: ([0-9.]+) (B|KiB|MiB|GiB|TiB)$");

    private Compare() {}

    /** Both allocated sizes are close: within 64 KiB or 10 %. */
    static void assertClose(long ours, long qemu, String what) {
        assertThat(Math.abs(ours - qemu)).as(what + ": ours " + ours + ", qemu-img " + qemu)
                .isLessThanOrEqualTo(Math.max(64 * 1024, qemu / 10));
    }

    /** {@code qemu-img info --output=json}: same text, actual sizes close. */
    static void infoJson(String ours, String qemu) {
        Json.parse(ours); // well-formed
        List<Long> a = numbers(ACTUAL, ours);
        List<Long> b = numbers(ACTUAL, qemu);
        assertThat(a).as("actual-size entries").hasSameSizeAs(b);
        for (int i = 0; i < a.size(); i++) {
            assertClose(a.get(i), b.get(i), "actual-size #" + i);
        }
        assertThat(ACTUAL.matcher(ours).replaceAll("\"actual-size\": N"))
                .isEqualTo(ACTUAL.matcher(qemu).replaceAll("\"actual-size\": N"));
    }

    /** {@code qemu-img info}: same lines, disk sizes close. */
    static void infoHuman(String ours, String qemu) {
        List<Long> a = diskSizes(ours);
        List<Long> b = diskSizes(qemu);
        assertThat(a).as("disk size lines").hasSameSizeAs(b);
        for (int i = 0; i < a.size(); i++) {
            assertClose(a.get(i), b.get(i), "disk size #" + i);
        }
        assertThat(DISK.matcher(ours).replaceAll("disk size: N").lines().toList())
                .containsExactlyElementsOf(DISK.matcher(qemu).replaceAll("disk size: N").lines().toList());
        assertThat(ours.endsWith("\n")).isEqualTo(qemu.endsWith("\n"));
    }

    private static List<Long> numbers(Pattern p, String text) {
        List<Long> out = new ArrayList<>();
        Matcher m = p.matcher(text);
        while (m.find()) {
            out.add(Long.parseLong(m.group(1)));
        }
        return out;
    }

    private static List<Long> diskSizes(String text) {
        Map<String, Integer> shift = Map.of("B", 0, "KiB", 10, "MiB", 20, "GiB", 30, "TiB", 40);
        List<Long> out = new ArrayList<>();
        Matcher m = DISK.matcher(text);
        while (m.find()) {
            out.add((long) (Double.parseDouble(m.group(1)) * (1L << shift.get(m.group(2)))));
        }
        return out;
    }
}
