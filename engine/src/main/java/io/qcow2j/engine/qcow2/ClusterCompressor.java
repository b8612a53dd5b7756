package io.qcow2j.engine.qcow2;

import io.airlift.compress.v3.zstd.ZstdJavaCompressor;
import io.qcow2j.engine.format.CompressionType;
import io.qcow2j.ffm.RawDeflater;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.zip.Deflater;

/**
 * Compresses clusters as QEMU stores them: raw deflate with QEMU's parameters or one zstd frame. A cluster
 * whose compressed form is not smaller than the cluster (at most {@code cluster size - 1} bytes, QEMU's
 * limit) answers null: QEMU then writes it uncompressed.
 *
 * <p>Deflate: QEMU compresses each cluster in one call with {@code deflateInit2(level -1, window bits -12,
 * memLevel 9)} and inflates with the same 2^12-byte window. {@link RawDeflater} calls the system's zlib
 * with exactly those parameters, so the output is QEMU's, byte for byte with the same zlib. Without a
 * usable system zlib, {@code java.util.zip.Deflater} (whose window is always 2^15) is used with a full
 * flush every {@value #WINDOW} bytes, which resets its history so that no reference reaches further back
 * than QEMU's window: valid for any reader, but about 9% larger on text and slower (the flushes start a
 * new block, and each 4 KiB starts with no history; measured in docs/BENCHMARKS.md).
 *
 * <p>A cluster that {@link IncompressibleProbe} finds incompressible is not given to the compressor at all:
 * the answer is null, as the compressor's would be (or within 0.5% of the cluster; the probe's comment says
 * why).
 *
 * <p>zstd: aircompressor v3's {@code ZstdJavaCompressor} (already our zstd decoder's library, maintained,
 * pure Java; see docs/ARCHITECTURE.md for the choice).
 *
 * <p>One instance per thread and per batch of clusters: it holds native buffers and zlib's state until
 * {@link #close}.
 */
final class ClusterCompressor implements AutoCloseable {
    /** QEMU's deflate window. */
    static final int WINDOW = 4096;
    private static final int WINDOW_BITS = 12;
    private static final int LEVEL = Deflater.DEFAULT_COMPRESSION;
    private static final int MEM_LEVEL = 9;

    private final CompressionType type;
    private final int clusterSize;
    /** The system zlib route, or null (zstd, or no usable system zlib). */
    private final RawDeflater zlib;
    private final Arena arena;
    /** Native input (for a heap or partial cluster) and output of the zlib route. */
    private final MemorySegment nativeIn;
    private final MemorySegment nativeOut;
    /** Heap buffers of the java.util.zip and zstd routes. */
    private final byte[] in;
    private final byte[] out;

    private ClusterCompressor(CompressionType type, int clusterSize, boolean systemZlib) {
        this.type = type;
        this.clusterSize = clusterSize;
        this.zlib = type == CompressionType.ZLIB && systemZlib
                ? RawDeflater.open(LEVEL, WINDOW_BITS, MEM_LEVEL).orElse(null) : null;
        if (zlib != null) {
            arena = Arena.ofConfined();
            nativeIn = arena.allocate(clusterSize, 8);
            nativeOut = arena.allocate(clusterSize - 1, 8);
            in = null;
            out = null;
        } else {
            arena = null;
            nativeIn = null;
            nativeOut = null;
            in = new byte[clusterSize];
            out = new byte[ZSTD.get().maxCompressedLength(clusterSize) + 64];
        }
    }

    /** A compressor for clusters of {@code clusterSize} bytes, used by the calling thread only. */
    static ClusterCompressor open(CompressionType type, int clusterSize) {
        return new ClusterCompressor(type, clusterSize, true);
    }

    /** As {@link #open}, but always through {@code java.util.zip} for deflate: the fallback, for tests. */
    static ClusterCompressor openWithoutSystemZlib(CompressionType type, int clusterSize) {
        return new ClusterCompressor(type, clusterSize, false);
    }

    /** Whether deflate goes through the system's zlib (QEMU's exact parameters). */
    boolean systemZlib() {
        return zlib != null;
    }

    /**
     * The compressed bytes of {@code cluster} (a whole cluster, or the disk's partial last one, padded with
     * zeros as QEMU pads it), or null when compression does not make it smaller.
     */
    byte[] compress(MemorySegment cluster) {
        int n = (int) cluster.byteSize();
        if (n == clusterSize && PROBES.get().incompressible(cluster)) {
            return null; // the compressor would fail on it, at about the cost of compressing text
        }
        if (zlib != null) {
            MemorySegment src = cluster;
            if (!cluster.isNative() || n < clusterSize) {
                MemorySegment.copy(cluster, 0, nativeIn, 0, n);
                nativeIn.asSlice(n).fill((byte) 0);
                src = nativeIn;
            }
            int len = zlib.deflate(src, nativeOut);
            return len < 0 ? null : nativeOut.asSlice(0, len).toArray(ValueLayout.JAVA_BYTE);
        }
        MemorySegment.copy(cluster, 0, MemorySegment.ofArray(in), 0, n);
        java.util.Arrays.fill(in, n, clusterSize, (byte) 0);
        int len = switch (type) {
            case ZLIB -> deflateInWindows(in, out, clusterSize - 1);
            case ZSTD -> zstd(in, out, clusterSize - 1);
        };
        return len < 0 ? null : java.util.Arrays.copyOf(out, len);
    }

    @Override
    public void close() {
        if (zlib != null) {
            zlib.close();
            arena.close();
        }
    }

    /**
     * The fallback: {@code java.util.zip} with a full flush every {@value #WINDOW} input bytes, so no
     * reference crosses a 4 KiB segment. Answers the length, or -1 if it is more than {@code limit}.
     */
    private static int deflateInWindows(byte[] in, byte[] out, int limit) {
        Deflater d = DEFLATERS.get();
        d.reset();
        int n = 0;
        for (int pos = 0; pos < in.length; pos += WINDOW) {
            int len = Math.min(WINDOW, in.length - pos);
            d.setInput(in, pos, len);
            boolean last = pos + len >= in.length;
            if (last) {
                d.finish();
            }
            // room for one byte more than the limit, so that a stream of exactly the limit is seen to end
            while (n <= limit) {
                int space = limit + 1 - n;
                int got = d.deflate(out, n, space, last ? Deflater.NO_FLUSH : Deflater.FULL_FLUSH);
                n += got;
                if (last ? d.finished() : got < space && d.needsInput()) {
                    break;
                }
            }
            if (n > limit) {
                return -1;
            }
        }
        return d.finished() ? n : -1;
    }

    /** One deflater per thread, reset per cluster: creating one allocates zlib's state each time. */
    private static final ThreadLocal<Deflater> DEFLATERS =
            ThreadLocal.withInitial(() -> new Deflater(LEVEL, true));
    /**
     * One probe per thread, as the deflaters: its table (256 KiB) and copy buffer would otherwise be
     * allocated for every request (a compressor is opened per request); spares the compressor the clusters
     * it cannot shrink (random, encrypted, already compressed data).
     */
    private static final ThreadLocal<IncompressibleProbe> PROBES = ThreadLocal.withInitial(IncompressibleProbe::new);
    private static final ThreadLocal<ZstdJavaCompressor> ZSTD = ThreadLocal.withInitial(ZstdJavaCompressor::new);

    private static int zstd(byte[] in, byte[] out, int limit) {
        int n = ZSTD.get().compress(in, 0, in.length, out, 0, out.length);
        return n <= limit ? n : -1;
    }
}
