package io.qcow2j.cli;

import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * What {@code qemu-io} 7.2 prints after a request, character for character: the report
 * ({@code read 65536/65536 bytes at offset 0} and {@code 64 KiB, 1 ops; 00.00 sec (19.318 MiB/sec and
 * 309.0805 ops/sec)}, or with {@code -C} {@code 65536,1,0:00:00.00,53579472.757,817.558}) and the hex dump
 * of {@code read -v}. Numbers are formatted as C's {@code printf} does (exact binary value, ties to even).
 */
final class IoReport {
    private static final String[] UNITS = {" EiB", " PiB", " TiB", " GiB", " MiB", " KiB"};

    private IoReport() {}

    /** C's {@code printf("%.Nf", v)}. */
    static String fixed(double v, int decimals) {
        if (Double.isNaN(v)) {
            return "nan";
        }
        if (Double.isInfinite(v)) {
            return v > 0 ? "inf" : "-inf";
        }
        return new BigDecimal(v).setScale(decimals, RoundingMode.HALF_EVEN).toPlainString();
    }

    /** qemu-io's {@code cvtstr}: {@code 64 KiB}, {@code 1.062 KiB}, {@code 32 bytes}, {@code 337.507855 bytes}. */
    static String cvtstr(double value) {
        String str = null;
        String suffix = " bytes";
        for (int i = 0; i < UNITS.length; i++) {
            int shift = 10 * (6 - i);
            if (value >= Math.scalb(1.0, shift)) {
                suffix = UNITS[i];
                str = fixed(value / Math.scalb(1.0, shift), 3);
                break;
            }
        }
        if (str == null) {
            str = fixed(value, 6);
        }
        int trim = str.indexOf(".000");
        return (trim >= 0 ? str.substring(0, trim) : str) + suffix;
    }

    /** qemu-io's {@code timestr}: {@code 00.03 sec} below a second, else {@code H:MM:SS.ss}; -C always the latter. */
    static String timestr(long nanos, boolean verbose) {
        long sec = nanos / 1_000_000_000L;
        double frac = (nanos % 1_000_000_000L) / 1e9;
        if (verbose || sec != 0) {
            return (sec / 3600) + ":" + pad2(sec % 3600 / 60) + ":" + zeroPad(fixed((sec % 60) + frac, 2), 5);
        }
        return zeroPad(fixed(frac, 2), 5) + " sec";
    }

    private static String pad2(long v) {
        return v < 10 ? "0" + v : Long.toString(v);
    }

    private static String zeroPad(String s, int width) {
        return s.length() >= width ? s : "0".repeat(width - s.length()) + s;
    }

    private static double tdiv(double value, long nanos) {
        long sec = nanos / 1_000_000_000L;
        long nsec = nanos % 1_000_000_000L;
        return value / ((double) sec + ((double) nsec / 1e9));
    }

    /** qemu-io's {@code print_report}: two lines, or one with {@code -C}; each ends with a newline. */
    static String report(String op, long nanos, long offset, long count, long total, int cnt, boolean machine) {
        if (machine) {
            return total + "," + cnt + "," + timestr(nanos, true) + "," + fixed(tdiv(total, nanos), 3) + ","
                    + fixed(tdiv(cnt, nanos), 3) + "\n";
        }
        return op + " " + total + "/" + count + " bytes at offset " + offset + "\n"
                + cvtstr(total) + ", " + cnt + " ops; " + timestr(nanos, false) + " (" + cvtstr(tdiv(total, nanos))
                + "/sec and " + fixed(tdiv(cnt, nanos), 4) + " ops/sec)\n";
    }

    /** qemu-io's {@code dump_buffer}: 16 bytes a line, {@code 00000010:  ab ab …  ................}. */
    static void hexdump(PrintStream out, MemorySegment buf, long offset) {
        long len = buf.byteSize();
        StringBuilder line = new StringBuilder(80);
        for (long i = 0; i < len; i += 16) {
            line.setLength(0);
            String addr = Long.toHexString(offset + i);
            line.append("0".repeat(Math.max(0, 8 - addr.length()))).append(addr).append(":  ");
            int n = (int) Math.min(16, len - i);
            for (int j = 0; j < n; j++) {
                int b = buf.get(ValueLayout.JAVA_BYTE, i + j) & 0xff;
                line.append(Character.forDigit(b >> 4, 16)).append(Character.forDigit(b & 15, 16)).append(' ');
            }
            line.append(' ');
            for (int j = 0; j < n; j++) {
                int b = buf.get(ValueLayout.JAVA_BYTE, i + j) & 0xff;
                boolean alnum = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
                line.append(alnum ? (char) b : '.');
            }
            line.append('\n');
            out.print(line);
        }
    }
}
