package io.qcow2j.proptest.driver;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.ImageOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * An image geometry (made by qemu-img, maybe with a backing file and pre-existing data) and the cache options
 * it is opened with, drawn at random for one sequence of a property.
 *
 * @param clusterSize 512 … 64 KiB
 * @param refcountBits 1 … 64
 * @param extendedL2  extended L2 entries (clusters of 16 KiB and more)
 * @param version     3, or 2 ({@code compat=0.10})
 * @param backing     "none", "raw" or "qcow2"
 * @param size        guest size (the backing file's, when there is one)
 * @param prefill     whether qemu-io wrote data (plain, compressed, zeros) into the image first
 * @param cache       "default", "tiny" (two 512-byte L2 slices), "small" (a few slices) or "writethrough"
 */
record DiskConfig(int clusterSize, int refcountBits, boolean extendedL2, int version, String backing, long size,
        boolean prefill, String cache) {

    /** The guest size of the images over a backing file: the backing file's, not a multiple of 64 KiB. */
    static final long BACKING_SIZE = (3L << 20) + 1536;

    /**
     * The geometries the properties draw from: 24 of them, so that each template image is made once and copied
     * for every sequence that uses it. Every cluster size (512 … 64 KiB) three times, every refcount width,
     * version 2 twice, extended L2 five times, a raw backing file nine times and a qcow2 one six times, half
     * pre-filled (plain, compressed and zero clusters).
     */
    static final List<DiskConfig> GEOMETRIES = geometries();

    private static List<DiskConfig> geometries() {
        List<DiskConfig> out = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            int clusterBits = 9 + i % 8;
            int version = i % 12 == 7 ? 2 : 3;
            boolean extended = version == 3 && clusterBits >= 14 && (i / 8) % 2 == 0;
            int refcountBits = version == 2 ? 16 : 1 << ((i * 3) % 7);
            String backing = List.of("none", "raw", "qcow2").get((i + i / 8) % 3);
            long size = !backing.equals("none") ? BACKING_SIZE : List.of(1L << 20, (2L << 20) + 512, 3L << 20).get(i % 3);
            out.add(new DiskConfig(1 << clusterBits, refcountBits, extended, version, backing, size, (i / 3) % 2 == 0,
                    "default"));
        }
        return List.copyOf(out);
    }

    /** One of the {@link #GEOMETRIES} with random cache options. */
    static DiskConfig random(Random rnd) {
        return GEOMETRIES.get(rnd.nextInt(GEOMETRIES.size()))
                .withCache(List.of("default", "tiny", "tiny", "small", "writethrough").get(rnd.nextInt(5)));
    }

    DiskConfig withCache(String cache) {
        return new DiskConfig(clusterSize, refcountBits, extendedL2, version, backing, size, prefill, cache);
    }

    /** The {@code qemu-img create -o} options (without the backing file). */
    String createOptions() {
        List<String> o = new ArrayList<>();
        o.add("cluster_size=" + clusterSize);
        if (version == 2) {
            o.add("compat=0.10");
        } else {
            o.add("refcount_bits=" + refcountBits);
        }
        if (extendedL2) {
            o.add("extended_l2=on");
        }
        return String.join(",", o);
    }

    /** The qemu-io commands that fill the template (data, a compressed run, zeros), or none. */
    String[] prefillCommands() {
        if (!prefill) {
            return new String[0];
        }
        long c = clusterSize;
        long compressed = Math.max(c, 4096) * 2;
        return new String[] {"write -P 0x11 " + (c / 2) + " " + (5 * c), "write -c -P 0x22 " + (size / 2 & -c) + " " + compressed,
                "write -z " + (size / 4 & -c) + " " + (3 * c)};
    }

    /** The template key: what the image file holds before the sequence. */
    String templateKey() {
        return createOptions() + ";" + backing + ";" + size + ";" + prefill;
    }

    /** The options the sequence opens the image with. */
    ImageOptions options() {
        ImageOptions.Builder b = ImageOptions.builder().readOnly(false).cacheCleanInterval(0);
        switch (cache) {
            case "tiny" -> b.l2CacheSize(1024L).l2CacheEntrySize(512L);
            case "small" -> b.l2CacheSize(4L * Math.min(clusterSize, 4096)).l2CacheEntrySize((long) Math.min(clusterSize, 4096))
                    .refcountCacheSize(4L * clusterSize);
            case "writethrough" -> b.cacheMode(CacheMode.WRITETHROUGH);
            default -> { }
        }
        return b.build();
    }

    @Override
    public String toString() {
        return (version == 2 ? "v2" : "v3") + ", " + clusterSize + "-byte clusters, refcount_bits=" + refcountBits
                + (extendedL2 ? ", extended L2" : "") + (backing.equals("none") ? "" : ", " + backing + " backing file")
                + ", " + size + " bytes" + (prefill ? ", pre-filled by qemu-io" : "") + ", " + cache + " cache";
    }
}
