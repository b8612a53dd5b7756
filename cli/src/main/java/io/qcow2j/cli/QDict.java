package io.qcow2j.cli;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The order in which QEMU's {@code QDict} gives back its keys, so that our JSON and our "Format specific
 * information" lists come out in the order {@code qemu-img} prints them.
 *
 * <p>A QDict is a hash table of 512 buckets ({@code QDICT_BUCKET_MAX}) indexed by {@code tdb_hash(key) % 512},
 * each bucket a list to whose head new keys are added; iteration walks the buckets in order and each bucket
 * from its head. So the order depends on the keys and, within a bucket, on the order they were put (QEMU
 * puts them in the order of the QAPI schema's fields).
 */
final class QDict {
    private static final int BUCKETS = 512;

    private QDict() {}

    /**
     * {@code map} (keys in insertion order, as QEMU's visitor would put them) reordered as QEMU iterates it,
     * nested maps and maps inside lists too.
     */
    static Map<String, Object> order(Map<String, ?> map) {
        List<List<String>> buckets = new ArrayList<>();
        for (int i = 0; i < BUCKETS; i++) {
            buckets.add(null);
        }
        for (String k : map.keySet()) {
            int b = Integer.remainderUnsigned(hash(k), BUCKETS);
            if (buckets.get(b) == null) {
                buckets.set(b, new ArrayList<>());
            }
            buckets.get(b).addFirst(k);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (List<String> bucket : buckets) {
            if (bucket != null) {
                for (String k : bucket) {
                    out.put(k, deep(map.get(k)));
                }
            }
        }
        return out;
    }

    private static Object deep(Object v) {
        if (v instanceof Map<?, ?> m) {
            @SuppressWarnings("unchecked")
            Map<String, ?> sm = (Map<String, ?>) m;
            return order(sm);
        }
        if (v instanceof List<?> l) {
            List<Object> out = new ArrayList<>(l.size());
            for (Object o : l) {
                out.add(deep(o));
            }
            return out;
        }
        return v;
    }

    /** QEMU's {@code tdb_hash} (from Samba's TDB) over the key's UTF-8 bytes, as a 32-bit unsigned value. */
    static int hash(String key) {
        byte[] b = key.getBytes(StandardCharsets.UTF_8);
        int value = 0x238F13AF * b.length;
        for (int i = 0; i < b.length; i++) {
            value += (b[i] & 0xff) << (i * 5 % 24);
        }
        return 1103515243 * value + 12345;
    }
}
