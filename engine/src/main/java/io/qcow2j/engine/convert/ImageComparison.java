package io.qcow2j.engine.convert;

import io.qcow2j.engine.CompareResult;
import io.qcow2j.engine.Disk;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.function.DoubleConsumer;

/**
 * {@code qemu-img compare} (its {@code img_compare}): walks both images' block status through their chains
 * as QEMU's block layer reports it ({@link QemuBlockStatus}: the same extents, so the same offsets in
 * messages); ranges both read as zeros are not read; ranges both allocate are read and compared 512-byte sector by
 * sector (the mismatch offset is the first differing sector, as qemu-img reports it); a range only one
 * allocates must read as zeros in it. With {@code strict}, a size difference or a block status difference is
 * a mismatch; without, the larger image's tail must read as zeros.
 */
public final class ImageComparison {
    /** qemu-img's I/O buffer. */
    static final int BUFFER = 2 << 20;

    private ImageComparison() {}

    public static CompareResult compare(Disk a, Disk b, boolean strict, DoubleConsumer progress) throws IOException {
        List<String> lines = new ArrayList<>();
        long sa = a.size();
        long sb = b.size();
        long common = Math.min(sa, sb);
        long base = Math.max(sa, sb);
        progress.accept(0);
        if (strict && sa != sb) {
            lines.add("Strict mode: Image size mismatch!");
            return new CompareResult(false, -1, true, lines);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment b1 = arena.allocate(BUFFER, 4096);
            MemorySegment b2 = arena.allocate(BUFFER, 4096);
            long offset = 0;
            while (offset < common) {
                QemuBlockStatus.Extent e1 = QemuBlockStatus.above(a, offset, sa - offset);
                QemuBlockStatus.Extent e2 = QemuBlockStatus.above(b, offset, sb - offset);
                long chunk = Math.min(e1.length(), e2.length());
                if (strict && e1.flags() != e2.flags()) {
                    lines.add("Strict mode: Offset " + offset + " block status mismatch!");
                    return new CompareResult(false, offset, false, lines);
                }
                boolean allocated1 = e1.is(QemuBlockStatus.ALLOCATED);
                boolean allocated2 = e2.is(QemuBlockStatus.ALLOCATED);
                if (e1.is(QemuBlockStatus.ZERO) && e2.is(QemuBlockStatus.ZERO)) {
                    // both read as zeros: nothing to read
                } else if (allocated1 == allocated2) {
                    if (allocated1) {
                        chunk = Math.min(chunk, BUFFER);
                        a.read(offset, b1.asSlice(0, chunk));
                        b.read(offset, b2.asSlice(0, chunk));
                        long at = firstDifferentSector(b1, b2, chunk);
                        if (at >= 0) {
                            return mismatch(lines, offset + at, sa != sb);
                        }
                    }
                } else {
                    chunk = Math.min(chunk, BUFFER);
                    Disk d = allocated1 ? a : b;
                    long at = firstNonZeroSector(d, offset, chunk, b1);
                    if (at >= 0) {
                        return mismatch(lines, offset + at, sa != sb);
                    }
                }
                offset += chunk;
                progress.accept(offset * 100.0 / Math.max(1, base));
            }
            if (sa != sb) {
                lines.add("Warning: Image size mismatch!");
                Disk over = sa > sb ? a : b;
                while (offset < base) {
                    QemuBlockStatus.Extent e = QemuBlockStatus.above(over, offset, base - offset);
                    long chunk = e.length();
                    if (e.is(QemuBlockStatus.ALLOCATED)) {
                        chunk = Math.min(chunk, BUFFER);
                        long at = firstNonZeroSector(over, offset, chunk, b1);
                        if (at >= 0) {
                            return mismatch(lines, offset + at, true);
                        }
                    }
                    offset += chunk;
                    progress.accept(offset * 100.0 / base);
                }
            }
        }
        progress.accept(100);
        lines.add("Images are identical.");
        return new CompareResult(true, -1, sa != sb, lines);
    }

    private static CompareResult mismatch(List<String> lines, long at, boolean sizeDiffer) {
        lines.add("Content mismatch at offset " + at + "!");
        return new CompareResult(false, at, sizeDiffer, lines);
    }

    /** The first 512-byte sector (as an offset) where the buffers differ, or -1. */
    private static long firstDifferentSector(MemorySegment x, MemorySegment y, long n) {
        long m = MemorySegment.mismatch(x, 0, n, y, 0, n);
        return m < 0 ? -1 : m & ~511L;
    }

    private static long firstNonZeroSector(Disk d, long offset, long n, MemorySegment buf) throws IOException {
        MemorySegment s = buf.asSlice(0, n);
        d.read(offset, s);
        for (long i = 0; i < n; i += 512) {
            long len = Math.min(512, n - i);
            if (!ImageConverter.isZero(s.asSlice(i, len))) {
                return i;
            }
        }
        return -1;
    }
}
