package io.qcow2j.engine.qcow2;

import io.airlift.compress.v3.zstd.ZstdJavaCompressor;
import io.qcow2j.engine.format.CompressionType;
import java.util.zip.Deflater;

/**
 * Compresses one cluster as QEMU stores it: raw deflate (no zlib header, no reference further back than
 * QEMU's 2^12-byte inflate window, default level) or one zstd frame. Both are pure Java: {@code java.util.zip}
 * for deflate, aircompressor v3's {@code ZstdJavaCompressor} for zstd (already our zstd decoder's library,
 * maintained, no native code; see docs/ARCHITECTURE.md for the choice).
 *
 * <p>Returns the compressed length, or -1 when the result would not be smaller than the cluster minus one
 * byte: QEMU then writes the cluster uncompressed.
 */
final class ClusterCompressor {
    private ClusterCompressor() {}

    /** Compresses {@code in} (one whole cluster) into {@code out}; -1 if it does not fit {@code in.length - 1}. */
    static int compress(CompressionType type, byte[] in, byte[] out) {
        int limit = in.length - 1;
        return switch (type) {
            case ZLIB -> deflate(in, out, limit);
            case ZSTD -> zstd(in, out, limit);
        };
    }

    /** A buffer large enough for any compressor's output of a cluster. */
    static byte[] outputBuffer(int clusterSize) {
        return new byte[ZSTD.get().maxCompressedLength(clusterSize) + 64];
    }

    /**
     * QEMU declares a 2^12-byte window ({@code inflateInit2(-12)}), and {@code java.util.zip} always deflates
     * with 2^15. QEMU inflates a cluster in one call into the whole output buffer, which zlib also uses as
     * history, so longer references happen to work there (a test that deflated with 32 KiB still passed); a
     * reader that inflates in pieces with the declared window would fail. A full flush every
     * {@value #WINDOW} input bytes resets the compressor's history, so no reference crosses a 4 KiB segment:
     * the stream is valid for the window QEMU declares, for a few percent of size.
     */
    private static int deflate(byte[] in, byte[] out, int limit) {
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
            while (n < limit) {
                int space = limit - n;
                int got = d.deflate(out, n, space, last ? Deflater.NO_FLUSH : Deflater.FULL_FLUSH);
                n += got;
                if (last ? d.finished() : got < space && d.needsInput()) {
                    break;
                }
            }
            if (n >= limit) {
                return -1;
            }
        }
        return d.finished() ? n : -1;
    }

    /** One deflater per thread, reset per cluster: creating one allocates zlib's state each time. */
    private static final ThreadLocal<Deflater> DEFLATERS =
            ThreadLocal.withInitial(() -> new Deflater(Deflater.DEFAULT_COMPRESSION, true));
    private static final ThreadLocal<ZstdJavaCompressor> ZSTD = ThreadLocal.withInitial(ZstdJavaCompressor::new);

    /** QEMU's deflate window. */
    static final int WINDOW = 4096;

    private static int zstd(byte[] in, byte[] out, int limit) {
        int n = ZSTD.get().compress(in, 0, in.length, out, 0, out.length);
        return n <= limit ? n : -1;
    }
}
