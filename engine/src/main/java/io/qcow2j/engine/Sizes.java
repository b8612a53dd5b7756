package io.qcow2j.engine;

import java.math.BigDecimal;
import java.util.Locale;

/**
 * Byte sizes written the way {@code qemu-img} reads them: a number with an optional suffix {@code B},
 * {@code K}, {@code M}, {@code G}, {@code T}, {@code P} or {@code E} (powers of 1024, either case), e.g.
 * {@code 64k}, {@code 1.5G}, {@code 4096}. A fraction needs a suffix of {@code K} or more, and what it
 * means must be a whole number of bytes.
 */
public final class Sizes {
    private static final String SUFFIXES = "BKMGTPE";

    private Sizes() {}

    /**
     * Parses {@code text}; {@code what} names the value in the one-line error, e.g. "l2-cache-size".
     *
     * @throws IllegalArgumentException naming {@code what} and the text when it is not a size
     */
    public static long parse(String what, String text) {
        String s = text.strip();
        if (s.isEmpty()) {
            throw bad(what, text);
        }
        char last = Character.toUpperCase(s.charAt(s.length() - 1));
        int shift = 0;
        String number = s;
        if (Character.isLetter(last)) {
            int idx = SUFFIXES.indexOf(last);
            if (idx < 0) {
                throw bad(what, text);
            }
            shift = 10 * idx;
            number = s.substring(0, s.length() - 1);
        }
        if (number.isEmpty() || !number.chars().allMatch(c -> (c >= '0' && c <= '9') || c == '.')
                || number.startsWith(".") || number.indexOf('.') != number.lastIndexOf('.')) {
            throw bad(what, text);
        }
        BigDecimal bytes = new BigDecimal(number).multiply(BigDecimal.valueOf(2).pow(shift));
        if (number.contains(".") && shift == 0) {
            throw new IllegalArgumentException(what + ": fractional byte count '" + text + "' needs a suffix");
        }
        try {
            return bytes.toBigIntegerExact().longValueExact();
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(what + ": '" + text + "' is not a whole number of bytes below 2^63");
        }
    }

    private static IllegalArgumentException bad(String what, String text) {
        return new IllegalArgumentException(what + ": '" + text + "' is not a size (a number with an optional"
                + " suffix k, M, G, T, P or E)");
    }

    /**
     * A size the way {@code qemu-img info} prints it: three significant digits in the binary unit that
     * keeps the number below 1000, e.g. {@code 512 B}, {@code 64 KiB}, {@code 1.5 GiB}, {@code 0.977 KiB}.
     */
    public static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        int unit = bytes <= 0 ? 0 : Math.max(0, Math.getExponent(bytes / (1000.0 / 1024.0)) / 10);
        double v = bytes / Math.pow(2, 10.0 * unit);
        String num = String.format(Locale.ROOT, "%.3g", v);
        if (num.contains(".") && !num.contains("e")) {
            num = num.replaceAll("0+$", "").replaceAll("\\.$", "");
        }
        return num + " " + units[unit];
    }
}
