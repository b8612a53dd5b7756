package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The JSON writer and the QDict key order, against what qemu-img 7.2 prints. */
@Timeout(value = 120, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class JsonWriterTest {
    private static Map<String, Object> keys(String... names) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (String n : names) {
            m.put(n, 1);
        }
        return m;
    }

    @Test
    void qdictOrderOfImageInfo() {
        // QAPI order in, qemu-img info --output=json order out (seen with backing files and snapshots).
        Map<String, Object> info = keys("filename", "format", "dirty-flag", "actual-size", "virtual-size",
                "cluster-size", "backing-filename", "full-backing-filename", "backing-filename-format", "snapshots",
                "format-specific");
        assertThat(QDict.order(info).keySet()).containsExactly("backing-filename-format", "snapshots", "virtual-size",
                "filename", "cluster-size", "format", "actual-size", "format-specific", "full-backing-filename",
                "backing-filename", "dirty-flag");
        assertThat(QDict.order(keys("id", "name", "vm-state-size", "date-sec", "date-nsec", "vm-clock-sec",
                "vm-clock-nsec", "icount")).keySet()).containsExactly("icount", "vm-clock-nsec", "name", "date-sec",
                "date-nsec", "vm-clock-sec", "id", "vm-state-size");
        assertThat(QDict.order(keys("compat", "extended-l2", "lazy-refcounts", "corrupt", "refcount-bits", "bitmaps",
                "compression-type")).keySet()).containsExactly("compat", "compression-type", "lazy-refcounts",
                "bitmaps", "refcount-bits", "corrupt", "extended-l2");
    }

    @Test
    void qdictOrderWithinABucketIsLastPutFirst() {
        // Find two keys in the same bucket and check the later one comes first, whichever order they are put.
        String a = "k0";
        String b = null;
        for (int i = 1; b == null; i++) {
            if (Integer.remainderUnsigned(QDict.hash("k" + i), 512) == Integer.remainderUnsigned(QDict.hash(a), 512)) {
                b = "k" + i;
            }
        }
        assertThat(QDict.order(keys(a, b)).keySet()).containsExactly(b, a);
        assertThat(QDict.order(keys(b, a)).keySet()).containsExactly(a, b);
    }

    @Test
    void prettyLikeQemu() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("flags", List.of());
        m.put("empty", Map.of());
        m.put("name", "é \"q\" \\ \t\u0001");
        m.put("n", 5L);
        m.put("list", List.of(true, "x"));
        assertThat(JsonWriter.pretty(m)).isEqualTo("""
                {
                    "flags": [
                    ],
                    "empty": {
                    },
                    "name": "\\u00E9 \\"q\\" \\\\ \\t\\u0001",
                    "n": 5,
                    "list": [
                        true,
                        "x"
                    ]
                }""");
    }

    @Test
    void humanDumpLikeQemu() {
        Map<String, Object> bm = new LinkedHashMap<>();
        bm.put("flags", List.of("in-use", "auto"));
        bm.put("name", "b");
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("lazy-refcounts", false);
        m.put("bitmaps", List.of(bm));
        m.put("refcount-bits", 16L);
        assertThat(JsonWriter.human(m, 1)).isEqualTo("""
                    lazy refcounts: false
                    bitmaps:
                        [0]:
                            flags:
                                [0]: in-use
                                [1]: auto
                            name: b
                    refcount bits: 16
                """);
    }
}
