package io.qcow2j.engine;

import io.qcow2j.engine.qcow2.Qcow2Image;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Block status through a backing chain, for embedders and for {@code qcow2j map}/{@code convert}: which layer
 * (depth 0 = the top image) holds each extent, and whether it is data or zeros. It adds what QEMU's generic
 * block layer adds to a driver's block status, as {@code qemu-img map} and
 * {@code qemu-img convert} see it ({@code bdrv_co_block_status} with {@code want_zero}, and
 * {@code get_block_status} of {@code qemu-img map} walking the backing chain):
 *
 * <ul>
 *   <li>an extent a layer does not allocate reads as zeros when the layer has no backing file or the extent
 *       starts at or past the end of the backing file;</li>
 *   <li>on a qcow2 image that looks metadata-preallocated, a data extent that is a hole in the image file
 *       reads as zeros ({@code BDRV_BLOCK_RECURSE}: data and zero both set);</li>
 *   <li>an extent that is neither data nor zero is looked up in the next layer down (depth + 1).</li>
 * </ul>
 */
public final class ChainStatus {
    /** {@code qemu-img map} probes at most this much at a time. */
    public static final long PROBE = 1L << 30;

    private final List<Disk> layers;
    private final List<String> names;

    /** The chain of {@code layers} (top first), named as {@code names} (what map prints as the file). */
    public ChainStatus(List<Disk> layers, List<String> names) {
        if (layers.isEmpty() || layers.size() != names.size()) {
            throw new IllegalArgumentException("one name per layer, at least one layer");
        }
        this.layers = List.copyOf(layers);
        this.names = List.copyOf(names);
    }

    /** The chain from {@code top} down through {@link Disk#backing()}, named by their file names. */
    public static ChainStatus of(Disk top) {
        List<Disk> l = new ArrayList<>();
        List<String> n = new ArrayList<>();
        for (Disk d = top; d != null; d = d.backing().orElse(null)) {
            l.add(d);
            n.add(d.filename());
        }
        return new ChainStatus(l, n);
    }

    /**
     * One extent of uniform status (qemu-img's {@code MapEntry}).
     *
     * @param present  some layer allocates it (false: it reads as zeros because nothing below has it)
     * @param depth    the layer it comes from, 0 for the top image
     * @param filename the file holding the bytes (the layer's name) when the offset is known, else null
     */
    public record Extent(long start, long length, boolean data, boolean zero, boolean present, int depth,
            boolean hasOffset, long offset, String filename) {
        public Extent withLength(long n) {
            return new Extent(start, n, data, zero, present, depth, hasOffset, offset, filename);
        }

        public Extent withFlags(boolean newData, boolean newZero) {
            return new Extent(start, length, newData, newZero, present, depth, hasOffset, offset, filename);
        }
    }

    /** One layer's status, as {@code bdrv_block_status} returns it. */
    private record Status(long length, boolean data, boolean zero, boolean allocated, long offset) {}

    /**
     * The status at {@code offset} of at most {@code bytes} bytes (QEMU's {@code get_block_status} of
     * qemu-img map): the first layer from the top that says data or zero.
     */
    public Extent status(long offset, long bytes) throws IOException {
        int depth = 0;
        while (true) {
            Status s = layerStatus(depth, offset, bytes);
            bytes = s.length();
            if (s.data() || s.zero() || depth + 1 >= layers.size()) {
                boolean hasOffset = s.offset() >= 0;
                return new Extent(offset, bytes, s.data(), s.zero(), s.allocated(), depth, hasOffset,
                        hasOffset ? s.offset() : 0, hasOffset ? names.get(depth) : null);
            }
            depth++;
        }
    }

    private Status layerStatus(int depth, long offset, long bytes) throws IOException {
        Disk dev = layers.get(depth);
        if (offset >= dev.size()) {
            // Past the end of this layer reads as zeros (QEMU stops above it: see the backing rule below).
            return new Status(bytes, false, true, false, -1);
        }
        bytes = Math.min(bytes, dev.size() - offset);
        BlockStatus st = dev.blockStatus(offset, bytes);
        long length = st.length();
        boolean data = st.data();
        boolean zero = st.zero();
        boolean allocated = data || zero;
        long host = st.hostOffset();
        if (!allocated && dev instanceof Qcow2Image) {
            Disk backing = dev.backing().orElse(null);
            if (backing == null || offset >= backing.size()) {
                zero = true;
            }
        }
        if (dev instanceof Qcow2Image q && data && !zero && host >= 0 && q.metadataPreallocated()) {
            BlockStatus file = q.fileStatus(host, length);
            boolean eof = file.start() + file.length() >= q.fileSize();
            if (eof && (file.length() == 0 || file.zero())) {
                zero = true;
            } else {
                length = file.length();
                zero = file.zero();
            }
        }
        return new Status(length, data, zero, allocated, host);
    }
}
