package io.qcow2j.proptest.driver;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** A set of byte ranges {@code [start, end)}, kept merged. Not thread-safe. */
public final class IntervalSet {
    /** start → end, disjoint and not touching. */
    private final TreeMap<Long, Long> ranges = new TreeMap<>();

    public IntervalSet() {}

    /** A copy. */
    public IntervalSet copy() {
        IntervalSet c = new IntervalSet();
        c.ranges.putAll(ranges);
        return c;
    }

    /** Adds {@code [start, end)}. */
    public void add(long start, long end) {
        if (start >= end) {
            return;
        }
        Map.Entry<Long, Long> before = ranges.floorEntry(start);
        if (before != null && before.getValue() >= start) {
            start = before.getKey();
            end = Math.max(end, before.getValue());
        }
        Map.Entry<Long, Long> next;
        while ((next = ranges.ceilingEntry(start)) != null && next.getKey() <= end) {
            end = Math.max(end, next.getValue());
            ranges.remove(next.getKey());
        }
        ranges.put(start, end);
    }

    public void clear() {
        ranges.clear();
    }

    public boolean isEmpty() {
        return ranges.isEmpty();
    }

    /** Whether {@code [start, end)} overlaps a range of the set. */
    public boolean intersects(long start, long end) {
        Map.Entry<Long, Long> e = ranges.floorEntry(start);
        if (e != null && e.getValue() > start) {
            return true;
        }
        Long k = ranges.higherKey(start);
        return k != null && k < end;
    }

    /** The parts of {@code [start, end)} outside the set, in order, as {start, end} pairs. */
    public List<long[]> gaps(long start, long end) {
        List<long[]> out = new ArrayList<>();
        long pos = start;
        Map.Entry<Long, Long> e = ranges.floorEntry(start);
        if (e != null && e.getValue() > pos) {
            pos = e.getValue();
        }
        for (Map.Entry<Long, Long> r : ranges.subMap(start, false, end, false).entrySet()) {
            if (r.getKey() > pos) {
                out.add(new long[] {pos, r.getKey()});
            }
            pos = Math.max(pos, r.getValue());
        }
        if (pos < end) {
            out.add(new long[] {pos, end});
        }
        return out;
    }

    /** The ranges, in order, as {start, end} pairs. */
    public List<long[]> ranges() {
        return ranges.entrySet().stream().map(e -> new long[] {e.getKey(), e.getValue()}).toList();
    }

    /** Total bytes in the set. */
    public long bytes() {
        return ranges.entrySet().stream().mapToLong(e -> e.getValue() - e.getKey()).sum();
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("[");
        for (Map.Entry<Long, Long> e : ranges.entrySet()) {
            if (b.length() > 1) {
                b.append(", ");
            }
            b.append("0x").append(Long.toHexString(e.getKey())).append("-0x").append(Long.toHexString(e.getValue()));
        }
        return b.append(']').toString();
    }
}
