package io.qcow2j.engine;

import io.airlift.compress.v3.zstd.ZstdInputStream;
import io.qcow2j.engine.format.CompressionType;
import io.qcow2j.engine.format.Qcow2FormatException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * Inflates one compressed cluster: raw deflate (zlib without header, QEMU's default) or a zstd frame,
 * both in pure Java. The output must fill the cluster exactly, as in QEMU; bytes after the compressed
 * stream (the descriptor rounds its length up to 512-byte sectors) are ignored.
 */
final class ClusterDecompressor {
    private ClusterDecompressor() {}

    /** Decompresses {@code in[0, inLength)} into all of {@code out}; {@code where} names the cluster in errors. */
    static void decompress(CompressionType type, byte[] in, int inLength, byte[] out, String where)
            throws IOException {
        int produced = switch (type) {
            case ZLIB -> inflate(in, inLength, out, where);
            case ZSTD -> unzstd(in, inLength, out, where);
        };
        if (produced != out.length) {
            throw new Qcow2FormatException(where + ": decompresses to " + produced + " bytes, expected " + out.length);
        }
    }

    private static int inflate(byte[] in, int inLength, byte[] out, String where) throws Qcow2FormatException {
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(in, 0, inLength);
            int total = 0;
            while (total < out.length) {
                int n = inflater.inflate(out, total, out.length - total);
                total += n;
                if (n == 0 && (inflater.finished() || inflater.needsInput() || inflater.needsDictionary())) {
                    break;
                }
            }
            return total;
        } catch (DataFormatException e) {
            throw new Qcow2FormatException(where + ": bad deflate data (" + e.getMessage() + ")");
        } finally {
            inflater.end();
        }
    }

    private static int unzstd(byte[] in, int inLength, byte[] out, String where) throws Qcow2FormatException {
        try (ZstdInputStream z = new ZstdInputStream(new ByteArrayInputStream(in, 0, inLength))) {
            return z.readNBytes(out, 0, out.length);
        } catch (IOException | RuntimeException e) {
            throw new Qcow2FormatException(where + ": bad zstd data (" + e.getMessage() + ")");
        }
    }
}
