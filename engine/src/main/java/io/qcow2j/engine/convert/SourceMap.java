package io.qcow2j.engine.convert;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.ChainStatus;
import io.qcow2j.engine.Disk;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Several sources one after the other, as {@code qemu-img convert} concatenates them: the status of each
 * range (qemu-img's {@code convert_iteration_sectors}) and reads that cross from one source into the next.
 * Thread-safe (the disks are).
 */
final class SourceMap {
    /** What a range of the sources is. */
    enum Kind {
        /** Bytes to read. */
        DATA,
        /** Reads as zeros: nothing to read. */
        ZERO,
        /** Left to the backing file (only with top-only copies): nothing to write either. */
        BACKING
    }

    /** One range of uniform kind. */
    record Extent(long start, long length, Kind kind) {}

    private final List<Disk> sources;
    private final List<ChainStatus> chains;
    private final long[] starts;
    private final long size;
    private final boolean topOnly;

    SourceMap(List<Disk> sources, boolean topOnly) {
        if (sources.isEmpty()) {
            throw new IllegalArgumentException("no source image");
        }
        this.sources = List.copyOf(sources);
        this.topOnly = topOnly;
        this.chains = new ArrayList<>();
        this.starts = new long[sources.size() + 1];
        for (int i = 0; i < sources.size(); i++) {
            chains.add(ChainStatus.of(sources.get(i)));
            starts[i + 1] = Math.addExact(starts[i], sources.get(i).size());
        }
        this.size = starts[sources.size()];
    }

    long size() {
        return size;
    }

    private int sourceAt(long offset) {
        int i = 0;
        while (i + 1 < sources.size() && starts[i + 1] <= offset) {
            i++;
        }
        return i;
    }

    /** The extent at {@code offset}, at most {@code max} bytes, within one source. */
    Extent status(long offset, long max) throws IOException {
        int i = sourceAt(offset);
        long local = offset - starts[i];
        long n = Math.min(max, sources.get(i).size() - local);
        if (n <= 0) {
            return new Extent(offset, Math.max(1, Math.min(max, size - offset)), Kind.ZERO);
        }
        Disk d = sources.get(i);
        if (topOnly) {
            BlockStatus b = d.blockStatus(local, n);
            Kind k = b.zero() ? Kind.ZERO : b.data() || b.allocated() ? Kind.DATA
                    : d.backing().isPresent() ? Kind.BACKING : Kind.ZERO;
            return new Extent(offset, b.length(), k);
        }
        ChainStatus.Extent e = chains.get(i).status(local, n);
        return new Extent(offset, e.length(), e.zero() ? Kind.ZERO : Kind.DATA);
    }

    /** The extents covering {@code [offset, offset + length)}. */
    List<Extent> extents(long offset, long length) throws IOException {
        List<Extent> out = new ArrayList<>();
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            Extent e = status(pos, end - pos);
            long n = Math.min(e.length(), end - pos);
            Extent last = out.isEmpty() ? null : out.getLast();
            if (last != null && last.kind() == e.kind() && last.start() + last.length() == pos) {
                out.set(out.size() - 1, new Extent(last.start(), last.length() + n, e.kind()));
            } else {
                out.add(new Extent(pos, n, e.kind()));
            }
            pos += n;
        }
        return out;
    }

    /** Reads {@code dst.byteSize()} bytes from {@code offset}, across sources. */
    void read(long offset, MemorySegment dst) throws IOException {
        long pos = 0;
        while (pos < dst.byteSize()) {
            int i = sourceAt(offset + pos);
            long local = offset + pos - starts[i];
            long n = Math.min(dst.byteSize() - pos, sources.get(i).size() - local);
            sources.get(i).read(local, dst.asSlice(pos, n));
            pos += n;
        }
    }
}
