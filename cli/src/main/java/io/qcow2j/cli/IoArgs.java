package io.qcow2j.cli;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * How {@code qemu-io} 7.2 reads a command line: words split at spaces, options with glibc's {@code getopt}
 * (permuting, clustered, {@code --} ends options), sizes with {@code qemu_strtosz} ({@code 64k},
 * {@code 1.5M}, {@code 0x10}) and pattern bytes with {@code strtol(…, 0)}.
 */
final class IoArgs {
    static final int EPERM = 1;
    static final int EIO = 5;
    static final int EINVAL = 22;
    static final int ERANGE = 34;
    static final int ENOTSUP = 95;

    /** Largest request qemu accepts: {@code BDRV_REQUEST_MAX_BYTES}, INT_MAX rounded down to 512. */
    static final long MAX_REQUEST = 2147483136L;

    private static final BigInteger U64_MAX = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    private IoArgs() {}

    /** Splits a command at spaces (only spaces, as qemu-io's breakline); empty words are dropped. */
    static List<String> breakline(String line) {
        List<String> words = new ArrayList<>();
        for (String w : line.split(" ", -1)) {
            if (!w.isEmpty()) {
                words.add(w);
            }
        }
        return words;
    }

    /**
     * qemu-io's {@code cvtnum}: a byte count with an optional suffix, at most {@code INT64_MAX}. Returns the
     * value, or {@code -EINVAL} (not a number, unknown suffix, trailing garbage) or {@code -ERANGE}.
     *
     * @param warn receives qemu's deprecation warning for a hex number with a suffix
     */
    static long cvtnum(String s, Consumer<String> warn) {
        BigInteger v;
        try {
            v = strtosz(s, warn);
        } catch (NumberFormatException e) {
            return -EINVAL;
        } catch (ArithmeticException e) {
            return -ERANGE;
        }
        return v.bitLength() > 63 ? -ERANGE : v.longValueExact();
    }

    /** The message qemu-io prints for a {@link #cvtnum} error. */
    static String cvtnumError(long rc, String arg) {
        if (rc == -EINVAL) {
            return "Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- " + arg;
        }
        if (rc == -ERANGE) {
            return "Parsing error: argument too large -- " + arg;
        }
        return "Parsing error: " + arg;
    }

    /** An unsigned number the way {@code strtoull} reads its start: where it ended, and whether it overflowed. */
    private record Parsed(BigInteger value, int end, boolean overflow) {}

    private static boolean isSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\u000b' || c == '\f' || c == '\r';
    }

    private static int digit(char c, int base) {
        int d = Character.digit(c, 16);
        return c < 128 && d >= 0 && d < base ? d : -1;
    }

    /** {@code strtoull(s + from, &end, base)} for base 10 or 16 (with an optional 0x prefix); end = from if no digits. */
    private static Parsed strtoull(String s, int from, int base) {
        int i = from;
        while (i < s.length() && isSpace(s.charAt(i))) {
            i++;
        }
        boolean negative = false;
        if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
            negative = s.charAt(i) == '-';
            i++;
        }
        if (base == 16 && i + 2 < s.length() && s.charAt(i) == '0' && (s.charAt(i + 1) == 'x'
                || s.charAt(i + 1) == 'X') && digit(s.charAt(i + 2), 16) >= 0) {
            i += 2;
        }
        int start = i;
        BigInteger v = BigInteger.ZERO;
        BigInteger b = BigInteger.valueOf(base);
        while (i < s.length() && digit(s.charAt(i), base) >= 0) {
            v = v.multiply(b).add(BigInteger.valueOf(digit(s.charAt(i), base)));
            i++;
        }
        if (i == start) {
            return new Parsed(BigInteger.ZERO, from, false);
        }
        boolean overflow = v.compareTo(U64_MAX) > 0;
        if (!overflow && negative) {
            v = BigInteger.ONE.shiftLeft(64).subtract(v).and(U64_MAX);
        }
        return new Parsed(v, i, overflow);
    }

    private static long suffixMultiplier(char c) {
        return switch (Character.toUpperCase(c)) {
            case 'B' -> 1L;
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            case 'T' -> 1L << 40;
            case 'P' -> 1L << 50;
            case 'E' -> 1L << 60;
            default -> -1L;
        };
    }

    /**
     * QEMU's {@code qemu_strtosz} (QEMU 6.0 and later): a decimal integer, or a hex one ({@code 0x…}, no
     * fraction), a decimal fraction that needs a suffix of K or more and is rounded to the nearest byte (half
     * up), an optional suffix B/K/M/G/T/P/E in either case, nothing after it; no minus sign anywhere in the
     * number.
     *
     * @throws NumberFormatException for -EINVAL
     * @throws ArithmeticException for -ERANGE (more than 64 bits)
     */
    static BigInteger strtosz(String s, Consumer<String> warn) {
        Parsed p = strtoull(s, 0, 10);
        if (p.end() == 0) {
            throw new NumberFormatException(s);
        }
        if (p.overflow()) {
            if (p.end() < s.length()) {
                throw new NumberFormatException(s); // trailing garbage wins over the range error
            }
            throw new ArithmeticException(s);
        }
        if (s.substring(0, p.end()).indexOf('-') >= 0) {
            throw new NumberFormatException(s);
        }
        BigInteger val = p.value();
        int end = p.end();
        boolean hex = false;
        BigInteger valf = BigInteger.ZERO; // 0.64 fixed point
        if (val.signum() == 0 && end < s.length() && (s.charAt(end) == 'x' || s.charAt(end) == 'X')) {
            Parsed h = strtoull(s, 0, 16);
            if (h.overflow()) {
                if (h.end() < s.length()) {
                    throw new NumberFormatException(s);
                }
                throw new ArithmeticException(s);
            }
            end = h.end();
            val = h.value();
            if (end < s.length() && s.charAt(end) == '.') {
                throw new NumberFormatException(s);
            }
            hex = true;
        } else if (end < s.length() && s.charAt(end) == '.') {
            int f = end;
            int i = f + 1;
            while (i < s.length() && Character.isDigit(s.charAt(i)) && s.charAt(i) < 128) {
                i++;
            }
            if (i == f + 1) {
                end = f + 1; // "1." or "1.k": strtod finds no number; skip the point
            } else {
                int j = i;
                if (j < s.length() && (s.charAt(j) == 'e' || s.charAt(j) == 'E')) {
                    int k = j + 1;
                    if (k < s.length() && (s.charAt(k) == '+' || s.charAt(k) == '-')) {
                        k++;
                    }
                    if (k < s.length() && Character.isDigit(s.charAt(k)) && s.charAt(k) < 128) {
                        throw new NumberFormatException(s); // an exponent: the whole input is invalid
                    }
                }
                double fraction = Double.parseDouble("0" + s.substring(f, i));
                valf = new BigDecimal(fraction).multiply(new BigDecimal(BigInteger.ONE.shiftLeft(64)))
                        .toBigInteger();
                end = i;
            }
        }
        long mul = end < s.length() ? suffixMultiplier(s.charAt(end)) : -1;
        if (mul > 0) {
            if (hex) {
                warn.accept("Using a multiplier suffix on hex numbers is deprecated: " + s);
            }
            end++;
        } else {
            mul = 1;
        }
        if (end < s.length()) {
            throw new NumberFormatException(s);
        }
        if (mul == 1) {
            if (valf.signum() != 0) {
                throw new NumberFormatException(s); // a fraction needs a scale
            }
            return val;
        }
        BigInteger m = BigInteger.valueOf(mul);
        BigInteger frac = valf.multiply(m); // 64.64
        BigInteger result = val.multiply(m).add(frac.shiftRight(64));
        if (frac.testBit(63)) {
            result = result.add(BigInteger.ONE);
        }
        if (result.compareTo(U64_MAX) > 0) {
            throw new ArithmeticException(s);
        }
        return result;
    }

    /**
     * qemu-io's pattern byte: {@code strtol(arg, &end, 0)} (decimal, 0x hex, 0 octal) in 0…255 with nothing
     * after it. Returns -1 when it is not one (qemu then prints "ARG is not a valid pattern byte").
     */
    static int parsePattern(String arg) {
        int i = 0;
        while (i < arg.length() && isSpace(arg.charAt(i))) {
            i++;
        }
        boolean negative = false;
        if (i < arg.length() && (arg.charAt(i) == '+' || arg.charAt(i) == '-')) {
            negative = arg.charAt(i) == '-';
            i++;
        }
        int base = 10;
        if (i < arg.length() && arg.charAt(i) == '0') {
            if (i + 2 < arg.length() && (arg.charAt(i + 1) == 'x' || arg.charAt(i + 1) == 'X')
                    && digit(arg.charAt(i + 2), 16) >= 0) {
                base = 16;
                i += 2;
            } else {
                base = 8;
            }
        }
        int start = i;
        BigInteger v = BigInteger.ZERO;
        while (i < arg.length() && digit(arg.charAt(i), base) >= 0) {
            v = v.multiply(BigInteger.valueOf(base)).add(BigInteger.valueOf(digit(arg.charAt(i), base)));
            i++;
        }
        if (i == start) {
            return arg.isEmpty() ? 0 : -1; // no digits: strtol returns 0 with end at the start
        }
        if (i != arg.length()) {
            return -1;
        }
        if (negative) {
            v = v.negate();
        }
        return v.signum() >= 0 && v.compareTo(BigInteger.valueOf(255)) <= 0 ? v.intValue() : -1;
    }

    /**
     * glibc's {@code getopt} over one command's words (the first is the command name), permuting: options
     * may follow operands; {@code --} ends the options. Errors are reported as glibc does
     * ({@code NAME: invalid option -- 'x'}) and {@link #next} returns {@code '?'}.
     */
    static final class Getopt {
        private final List<String> argv;
        private final String optstring;
        private final Consumer<String> err;
        private final List<String> operands = new ArrayList<>();
        private int index = 1;
        private int charIndex; // within argv[index] while inside a cluster of options; 0 when not
        private String optarg;

        Getopt(List<String> argv, String optstring, Consumer<String> err) {
            this.argv = argv;
            this.optstring = optstring;
            this.err = err;
        }

        /** The next option character, {@code '?'} on an error (already reported), or -1 after the last. */
        int next() {
            optarg = null;
            while (charIndex == 0) {
                if (index >= argv.size()) {
                    return -1;
                }
                String a = argv.get(index);
                if (a.equals("--")) {
                    operands.addAll(argv.subList(index + 1, argv.size()));
                    index = argv.size();
                    return -1;
                }
                if (a.length() > 1 && a.charAt(0) == '-') {
                    charIndex = 1;
                } else {
                    operands.add(a);
                    index++;
                }
            }
            String a = argv.get(index);
            char c = a.charAt(charIndex++);
            boolean last = charIndex >= a.length();
            int pos = c == ':' ? -1 : optstring.indexOf(c);
            if (pos < 0) {
                advanceIf(last);
                err.accept(argv.get(0) + ": invalid option -- '" + c + "'");
                return '?';
            }
            boolean takesArgument = pos + 1 < optstring.length() && optstring.charAt(pos + 1) == ':';
            if (!takesArgument) {
                advanceIf(last);
                return c;
            }
            if (!last) {
                optarg = a.substring(charIndex);
                advanceIf(true);
                return c;
            }
            advanceIf(true);
            if (index >= argv.size()) {
                err.accept(argv.get(0) + ": option requires an argument -- '" + c + "'");
                return '?';
            }
            optarg = argv.get(index++);
            return c;
        }

        private void advanceIf(boolean endOfWord) {
            if (endOfWord) {
                charIndex = 0;
                index++;
            }
        }

        String optarg() {
            return optarg;
        }

        /** The words that are not options, in order; complete once {@link #next} returned -1. */
        List<String> operands() {
            return operands;
        }
    }
}
