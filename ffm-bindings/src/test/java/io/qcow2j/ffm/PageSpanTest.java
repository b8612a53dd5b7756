package io.qcow2j.ffm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@link PageSpan#inside} against a model that walks the pages one by one. */
class PageSpanTest {

    /**
     * The whole pages inside {@code [offset, offset + length)}, found by visiting every page the range
     * touches. Written with comparisons only (no rounding tricks), so it shares no arithmetic with the code
     * under test; {@code k * page <= end - page} avoids overflow on the last page below Long.MAX_VALUE.
     */
    static PageSpan bruteForce(long offset, long length, long page) {
        long end = offset + length;
        long first = -1;
        long count = 0;
        for (long k = offset / page; k <= end / page; k++) {
            long pageStart = k * page;
            boolean inside = pageStart >= offset && pageStart <= end - page;
            if (inside) {
                if (first < 0) {
                    first = pageStart;
                }
                count++;
            }
        }
        return count == 0 ? PageSpan.EMPTY : new PageSpan(first, count * page);
    }

    /**
     * For ranges too long to walk page by page: walk at most a few pages in from each end to find the first
     * and the last whole page. Pages between them are all inside, by construction of a contiguous range.
     */
    static PageSpan bruteForceLong(long offset, long length, long page) {
        long end = offset + length;
        long first = -1;
        for (long k = offset / page; k <= offset / page + 2 && k <= end / page; k++) {
            if (k * page >= offset && k * page <= end - page) {
                first = k * page;
                break;
            }
        }
        long lastEnd = -1;
        for (long k = end / page; k >= end / page - 2 && k >= offset / page; k--) {
            if (k * page >= offset && k * page <= end - page) {
                lastEnd = k * page + page;
                break;
            }
        }
        if (first < 0) {
            assertThat(lastEnd).isEqualTo(-1);
            return PageSpan.EMPTY;
        }
        return new PageSpan(first, lastEnd - first);
    }

    private static void check(long offset, long length, long page) {
        PageSpan expected = length / page <= 64 ? bruteForce(offset, length, page)
                : bruteForceLong(offset, length, page);
        assertThat(PageSpan.inside(offset, length, page))
                .as("inside(%d, %d, %d)", offset, length, page)
                .isEqualTo(expected);
    }

    @Test
    void exhaustiveForSmallPages() {
        for (long page = 1; page <= 64; page <<= 1) {
            for (long offset = 0; offset <= 4 * page + 1; offset++) {
                for (long length = 0; length <= 4 * page + 1; length++) {
                    check(offset, length, page);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {4096, 16384, 65536})
    void aroundPageBoundaries(long page) {
        long[] deltas = {-page - 1, -page, -page + 1, -2, -1, 0, 1, 2, page - 1, page, page + 1};
        for (long base = 0; base <= 5 * page; base += page) {
            for (long d : deltas) {
                long offset = base + d;
                if (offset < 0) {
                    continue;
                }
                for (long lenBase = 0; lenBase <= 4 * page; lenBase += page) {
                    for (long ld : deltas) {
                        long length = lenBase + ld;
                        if (length >= 0) {
                            check(offset, length, page);
                        }
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {4096, 16384, 65536})
    void seededRandomRanges(long page) {
        SplittableRandom rnd = new SplittableRandom(0x5EED_0000L + page);
        for (int i = 0; i < 50_000; i++) {
            long offset = switch (rnd.nextInt(3)) {
                case 0 -> rnd.nextLong(0, 64 * page);
                case 1 -> rnd.nextLong(0, 1L << 50) * page + rnd.nextLong(-2, 3) & Long.MAX_VALUE;
                default -> rnd.nextLong(0, Long.MAX_VALUE);
            };
            long maxLen = Long.MAX_VALUE - offset;
            long length = switch (rnd.nextInt(4)) {
                case 0 -> Math.min(maxLen, rnd.nextLong(0, page));
                case 1 -> Math.min(maxLen, rnd.nextLong(0, 8 * page));
                case 2 -> Math.min(maxLen, rnd.nextLong(0, 40) * page + rnd.nextLong(-2, 3) & Long.MAX_VALUE);
                default -> maxLen == 0 ? 0 : rnd.nextLong(0, maxLen) + (rnd.nextBoolean() ? 1 : 0);
            };
            check(offset, length, page);
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {4096, 16384, 65536})
    void nearLongMaxValueNothingOverflows(long page) {
        java.util.TreeSet<Long> near = new java.util.TreeSet<>();
        for (long k = 0; k <= 3; k++) {
            for (long d = -3; d <= 3; d++) {
                if (k * page + d >= 0) {
                    near.add(k * page + d);
                }
            }
        }
        for (long back : near) {
            long offset = Long.MAX_VALUE - back;
            for (long length : near) {
                if (length <= back) {
                    check(offset, length, page);
                }
            }
        }
        // Ranges ending exactly at Long.MAX_VALUE from anywhere below.
        long[] offsets = {0, 1, page - 1, page, page + 1, Long.MAX_VALUE / 2, Long.MAX_VALUE - page * 3 - 7};
        for (long offset : offsets) {
            check(offset, Long.MAX_VALUE - offset, page);
        }
        // The last whole page below 2^63 ends at 2^63 - page; a range must reach it to include it.
        long lastPage = Long.MAX_VALUE - page + 1;
        assertThat(PageSpan.inside(lastPage - page, page, page)).isEqualTo(new PageSpan(lastPage - page, page));
        assertThat(PageSpan.inside(lastPage, Long.MAX_VALUE - lastPage, page)).isEqualTo(PageSpan.EMPTY);
        assertThat(PageSpan.inside(Long.MAX_VALUE, 0, page)).isEqualTo(PageSpan.EMPTY);
    }

    @Test
    void spansAreWholePagesAndEmptyIsCanonical() {
        assertThat(PageSpan.inside(4096, 0, 4096)).isSameAs(PageSpan.EMPTY).matches(PageSpan::isEmpty);
        assertThat(PageSpan.inside(1, 8190, 4096)).isEqualTo(PageSpan.EMPTY);
        assertThat(PageSpan.inside(1, 8191, 4096)).isEqualTo(new PageSpan(4096, 4096));
        assertThat(PageSpan.inside(0, 4096, 4096)).isEqualTo(new PageSpan(0, 4096));
        assertThat(PageSpan.inside(4095, 4096 * 3 + 2, 4096)).isEqualTo(new PageSpan(4096, 4096 * 3));
    }

    @ParameterizedTest
    @ValueSource(longs = {0, -1, -4096, 3, 12, 4095, 4097, 12288, 65535, Long.MIN_VALUE, Long.MAX_VALUE})
    void rejectsPageSizesThatAreNotPowersOfTwo(long page) {
        assertThatThrownBy(() -> PageSpan.inside(0, 8192, page))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("power of two");
    }

    @Test
    void rejectsNegativeAndOverflowingRanges() {
        assertThatThrownBy(() -> PageSpan.inside(-1, 4096, 4096)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> PageSpan.inside(0, -1, 4096)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> PageSpan.inside(Long.MIN_VALUE, 4096, 4096))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> PageSpan.inside(1, Long.MAX_VALUE, 4096))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> PageSpan.inside(Long.MAX_VALUE, 1, 4096))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> PageSpan.inside(Long.MAX_VALUE / 2 + 1, Long.MAX_VALUE / 2 + 1, 4096))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
