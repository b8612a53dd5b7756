package io.qcow2j.engine.qcow2;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Tells, for a small part of what compressing it costs, that a cluster cannot shrink: its bytes are spread
 * evenly over all 256 values and it holds next to no repeated strings within deflate's reach. Such a
 * cluster (random, encrypted or already compressed data: media, packages, archives) is written
 * uncompressed without running the compressor, as QEMU writes it once its compressor has failed. Deflate
 * spends about as long failing on such a cluster as it spends compressing text (measured: 39 MB/s on
 * random data against 29 MB/s on text, one thread); this probe reads the cluster twice at memory speed.
 *
 * <p>Why the two tests bound what is lost. A compressor shrinks data through two things only: skewed byte
 * frequencies (the entropy coder: Huffman in deflate, FSE in zstd) and repeated strings (LZ77 matches, at
 * most {@value #REACH} bytes back for QEMU's deflate window). A cluster passes as incompressible only if
 * (1) its order-0 entropy is at least {@value #MIN_BITS_PER_BYTE} bits per byte, so no entropy coder of
 * single bytes saves more than {@code n/256} bytes, and (2) about {@code n/1024} or fewer of its positions start
 * a 4-byte string seen in the {@value #REACH} bytes before (matches of 3 bytes save at most a few bits each
 * in deflate and are ignored). Together the compressor could have saved at most ~0.5% of such a cluster,
 * less than deflate's own block and Huffman table overhead on data that dense, so the cluster would have
 * come out uncompressed or within that margin: the image's size stays within 0.5% of QEMU's on such data
 * (and is QEMU's byte for byte on truly random data, which QEMU stores uncompressed too).
 *
 * <p>Clusters under {@value #MIN_CLUSTER} bytes are never judged: a sample of so few bytes does not reach
 * the entropy threshold even when it is random (the expected entropy of n random bytes is about
 * {@code 8 - 184/n} bits), so for them the compressor decides, as before.
 *
 * <p>One instance per thread: it owns a table of string positions.
 */
final class IncompressibleProbe {
    /** The smallest cluster judged (16 KiB: random data's entropy there is ~7.989 bits per byte). */
    static final int MIN_CLUSTER = 16 << 10;
    /** Entropy below this (8 bits less 1/256 of them) may let an entropy coder save more than n/256 bytes. */
    static final double MIN_BITS_PER_BYTE = 8.0 * 255 / 256;
    /** How far back a match may reach: QEMU's deflate window (2^12). */
    static final int REACH = 4096;
    /** The table of 4-byte strings' last positions: 2^16 slots, so few are overwritten within the reach. */
    private static final int TABLE_BITS = 16;
    /** One position in this many is looked up in the table (a power of two). */
    static final int PROBE_EVERY = 8;

    /** Last position (offset by {@link #base}) where a 4-byte string of each hash began; stale below base. */
    private final int[] table = new int[1 << TABLE_BITS];
    /** Positions of the current cluster are stored as {@code base + i}; each cluster moves it past the last. */
    private int base = 1;
    private final int[] counts = new int[256];
    /**
     * The cluster's bytes, copied once: the one-shot commands run with C1 alone (see the launcher), where a
     * loop over a heap array is several times faster than the same loop over a memory segment.
     */
    private byte[] bytes = new byte[0];

    /** Whether {@code cluster} cannot shrink (see the class comment); false when in doubt. */
    boolean incompressible(MemorySegment cluster) {
        long size = cluster.byteSize();
        if (size < MIN_CLUSTER || size > Integer.MAX_VALUE / 4) {
            return false;
        }
        int n = (int) size;
        if (bytes.length < n) {
            bytes = new byte[n];
        }
        MemorySegment.copy(cluster, ValueLayout.JAVA_BYTE, 0, bytes, 0, n);
        return entropyBitsPerByte(bytes, n) >= MIN_BITS_PER_BYTE && repeatedStrings(bytes, n, n / 1024) <= n / 1024;
    }

    /** The order-0 entropy of {@code b[0, n)}, in bits per byte. */
    double entropyBitsPerByte(byte[] b, int n) {
        int[] c = counts;
        Arrays.fill(c, 0);
        for (int i = 0; i < n; i++) {
            c[b[i] & 0xff]++;
        }
        double sum = 0;
        for (int k : c) {
            if (k > 0) {
                sum += k * Math.log(k);
            }
        }
        return (Math.log(n) - sum / n) / Math.log(2);
    }

    /**
     * About how many positions of {@code b[0, n)} start a 4-byte string that also began within
     * {@link #REACH} bytes before; stops counting once past {@code enough}. Every position's string is
     * entered in the table, but only one position in {@value #PROBE_EVERY} is looked up (the lookup's
     * branches are what cost, as a string seen or not in random data is a coin toss), and each hit counts
     * for {@value #PROBE_EVERY}: a repeated run of k strings is sampled about k/{@value #PROBE_EVERY} times,
     * so the estimate follows the full count (and a run of {@value #PROBE_EVERY} or more is never missed).
     */
    long repeatedStrings(byte[] b, int n, long enough) {
        if ((long) base + n + 1 > Integer.MAX_VALUE) { // positions would overflow: forget them all
            Arrays.fill(table, 0);
            base = 1;
        }
        int[] t = table;
        long repeats = 0;
        int v = 0; // the 4 bytes ending at i, big-endian
        for (int i = 0; i < n; i++) {
            v = (v << 8) | (b[i] & 0xff);
            int at = i - 3;
            int slot = (v * 0x9E3779B1) >>> (32 - TABLE_BITS);
            if ((at & (PROBE_EVERY - 1)) == 0 && at > 0) {
                int seen = t[slot] - base;
                if (seen >= 0 && at - seen <= REACH && fourBytes(b, seen) == v
                        && (repeats += PROBE_EVERY) > enough) {
                    break;
                }
            }
            t[slot] = base + at; // positions before 0 (the first three) are stored below base: stale
        }
        base += n + 1;
        return repeats;
    }

    private static int fourBytes(byte[] b, int at) {
        return (b[at] & 0xff) << 24 | (b[at + 1] & 0xff) << 16 | (b[at + 2] & 0xff) << 8 | (b[at + 3] & 0xff);
    }
}
