package io.qcow2j.proptest.cache;

import io.qcow2j.ffm.LibC;
import io.qcow2j.ffm.MappedArena;
import io.qcow2j.ffm.PageSpan;
import io.qcow2j.proptest.Property;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * The arithmetic of a table release: the cache asks its store to release tables {@code [first, first + count)},
 * i.e. bytes {@code [first * tableSize, (first + count) * tableSize)}, and the off-heap store gives back the
 * whole pages inside, {@link PageSpan#inside}. Checked against brute force: every page of the arena, one by one.
 */
final class ReleaseSpans {
    private ReleaseSpans() {}

    static final int[] PAGE_SIZES = {4096, 16384, 65536};

    /** A run of tables to release and the host page size. */
    record Case(int tableSize, int pageSize, int first, int count) {
        long offset() {
            return (long) first * tableSize; // what MetadataCache.release computes ((long) first << tableShift)
        }

        long length() {
            return (long) count * tableSize;
        }

        @Override
        public String toString() {
            return "tables [" + first + ", " + (first + count) + ") of " + tableSize + " bytes, pages of " + pageSize
                    + " (bytes [" + offset() + ", " + (offset() + length()) + "))";
        }
    }

    /** How a release range becomes pages: the real {@link PageSpan#inside}, or a broken variant. */
    @FunctionalInterface
    interface Arithmetic {
        PageSpan inside(long offset, long length, long pageSize);
    }

    /**
     * QEMU's arithmetic before its fix for 32-bit hosts (commit "qcow2: Fix the calculation of the maximum L2
     * cache size"... and the cache_table_release segfault): start rounded up, then the length computed by an
     * unsigned subtraction without first checking that the rounded start is still inside the range.
     */
    static final Arithmetic UNCHECKED_SUBTRACTION = (offset, length, pageSize) -> {
        long start = (offset + pageSize - 1) & -pageSize;
        long len = (length - (start - offset)) & -pageSize; // wraps when start is past the end
        return len == 0 ? PageSpan.EMPTY : new PageSpan(start, len);
    };

    static Case generate(Random rnd) {
        int tableSize = 512 << rnd.nextInt(13); // 512 .. 2 MiB
        int pageSize = PAGE_SIZES[rnd.nextInt(PAGE_SIZES.length)];
        int first = rnd.nextInt(0, 64);
        int count = rnd.nextInt(1, 33);
        return new Case(tableSize, pageSize, first, count);
    }

    static List<Case> shrink(Case c) {
        List<Case> out = new ArrayList<>();
        if (c.first > 0) {
            out.add(new Case(c.tableSize, c.pageSize, c.first / 2, c.count));
            out.add(new Case(c.tableSize, c.pageSize, c.first - 1, c.count));
        }
        if (c.count > 1) {
            out.add(new Case(c.tableSize, c.pageSize, c.first, c.count / 2));
            out.add(new Case(c.tableSize, c.pageSize, c.first, c.count - 1));
        }
        if (c.tableSize > 512) {
            out.add(new Case(c.tableSize / 2, c.pageSize, c.first, c.count));
        }
        if (c.pageSize > PAGE_SIZES[0]) {
            out.add(new Case(c.tableSize, c.pageSize / 4, c.first, c.count));
        }
        return out;
    }

    /** The check: the span lies inside the released tables and covers exactly their whole pages. */
    static void check(Case c, Arithmetic a, boolean realArena) throws Exception {
        long offset = c.offset();
        long length = c.length();
        long end = offset + length;
        long ps = c.pageSize();
        PageSpan span = a.inside(offset, length, ps);
        // brute force: every page that meets the range, kept if it lies wholly inside
        long firstWhole = -1;
        long whole = 0;
        for (long p = offset / ps; p * ps < end; p++) {
            if (p * ps >= offset && (p + 1) * ps <= end) {
                if (firstWhole < 0) {
                    firstWhole = p * ps;
                }
                whole += ps;
            }
        }
        if (span.length() < 0 || span.start() < 0) {
            throw new AssertionError("negative span " + span);
        }
        if (!span.isEmpty() && (span.start() < offset || span.start() + span.length() > end)) {
            throw new AssertionError(span + " reaches outside the released tables [" + offset + ", " + end + ")");
        }
        if (span.start() % ps != 0 || span.length() % ps != 0) {
            throw new AssertionError(span + " is not made of whole pages of " + ps);
        }
        if (span.length() != whole || (whole > 0 && span.start() != firstWhole)) {
            throw new AssertionError(span + " but the whole pages inside are " + whole + " bytes from " + firstWhole);
        }
        if (realArena && ps == LibC.pageSize()) {
            // the off-heap store itself (untouched pages of a mapping cost nothing)
            try (MappedArena arena = MappedArena.map(end)) {
                long released = arena.release(offset, length);
                if (released != whole) {
                    throw new AssertionError("the arena released " + released + " bytes, brute force says " + whole);
                }
            }
        }
    }

    static Property<Case> property(String name, Arithmetic a, boolean realArena) {
        return Property.<Case>forAll(name, ReleaseSpans::generate, c -> check(c, a, realArena))
                .shrink(ReleaseSpans::shrink);
    }
}
