package io.qcow2j.engine.qcow2;

import io.qcow2j.engine.format.CompressionType;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.airlift.compress.v3.zstd.ZstdJavaDecompressor;
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
        // The descriptor's length runs to a sector boundary; the decompressor must not see the padding after
        // the frame, or it takes it for a second frame.
        int frame = zstdFrameLength(in, inLength, where);
        try {
            return new ZstdJavaDecompressor().decompress(in, 0, frame, out, 0, out.length);
        } catch (RuntimeException e) {
            throw new Qcow2FormatException(where + ": bad zstd data (" + e.getMessage() + ")");
        }
    }

    /**
     * Length of the zstd frame at the start of {@code in}, from its header and block headers (RFC 8878
     * section 3.1.1): magic, frame header, blocks up to the one marked last, optional checksum.
     */
    static int zstdFrameLength(byte[] in, int len, String where) throws Qcow2FormatException {
        if (len < 6 || (in[0] & 0xff) != 0x28 || (in[1] & 0xff) != 0xb5 || (in[2] & 0xff) != 0x2f
                || (in[3] & 0xff) != 0xfd) {
            throw new Qcow2FormatException(where + ": not a zstd frame");
        }
        int fhd = in[4] & 0xff;
        int fcsFlag = fhd >>> 6;
        boolean singleSegment = (fhd & 0x20) != 0;
        boolean checksum = (fhd & 0x04) != 0;
        int dictFlag = fhd & 0x03;
        int pos = 5 + (singleSegment ? 0 : 1) + new int[] {0, 1, 2, 4}[dictFlag]
                + new int[] {singleSegment ? 1 : 0, 2, 4, 8}[fcsFlag];
        while (true) {
            if (pos + 3 > len) {
                throw new Qcow2FormatException(where + ": zstd frame runs past the compressed data");
            }
            int header = (in[pos] & 0xff) | (in[pos + 1] & 0xff) << 8 | (in[pos + 2] & 0xff) << 16;
            boolean last = (header & 1) != 0;
            int type = (header >>> 1) & 3;
            int size = header >>> 3;
            pos += 3 + switch (type) {
                case 0, 2 -> size;
                case 1 -> 1;
                default -> throw new Qcow2FormatException(where + ": zstd block of reserved type");
            };
            if (pos > len) {
                throw new Qcow2FormatException(where + ": zstd frame runs past the compressed data");
            }
            if (last) {
                break;
            }
        }
        pos += checksum ? 4 : 0;
        if (pos > len) {
            throw new Qcow2FormatException(where + ": zstd frame runs past the compressed data");
        }
        return pos;
    }
}
