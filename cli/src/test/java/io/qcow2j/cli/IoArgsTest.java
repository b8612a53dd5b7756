package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** qemu-io's parsing rules; the expected values are what qemu-io 7.2 does with the same words. */
class IoArgsTest {

    private static long cvt(String s) {
        return IoArgs.cvtnum(s, w -> { });
    }

    @Test
    void sizesAsQemuStrtosz() {
        assertThat(cvt("0")).isZero();
        assertThat(cvt("4096")).isEqualTo(4096);
        assertThat(cvt("64k")).isEqualTo(65536);
        assertThat(cvt("64K")).isEqualTo(65536);
        assertThat(cvt("1M")).isEqualTo(1 << 20);
        assertThat(cvt("1m")).isEqualTo(1 << 20);
        assertThat(cvt("2G")).isEqualTo(2L << 30);
        assertThat(cvt("1b")).isEqualTo(1);
        assertThat(cvt("1.5M")).isEqualTo(3 << 19);
        assertThat(cvt("1.25k")).isEqualTo(1280);
        assertThat(cvt("1.0005k")).as("rounded half up").isEqualTo(1025);
        assertThat(cvt("1.0001k")).isEqualTo(1024);
        assertThat(cvt("0.0001k")).isZero();
        assertThat(cvt("1.")).isEqualTo(1);
        assertThat(cvt("1.0")).as("a zero fraction needs no suffix").isEqualTo(1);
        assertThat(cvt("+5")).isEqualTo(5);
        assertThat(cvt("010")).as("decimal, not octal").isEqualTo(10);
        assertThat(cvt("0x10")).isEqualTo(16);
        assertThat(cvt("0X1f")).isEqualTo(31);
        assertThat(cvt("1.5e")).isEqualTo(3L << 59);
        assertThat(cvt("9223372036854775807")).isEqualTo(Long.MAX_VALUE);
        List<String> warnings = new ArrayList<>();
        assertThat(IoArgs.cvtnum("0x1k", warnings::add)).isEqualTo(1024);
        assertThat(warnings).containsExactly("Using a multiplier suffix on hex numbers is deprecated: 0x1k");
    }

    @Test
    void badSizes() {
        long inval = -IoArgs.EINVAL;
        long range = -IoArgs.ERANGE;
        for (String s : List.of("", "abc", "1x", "1kk", "1.5", ".5k", "1e2", "0x", "0x1.5k", "-5", "1.e5", "1.000e1k",
                "99999999999999999999x", "k", "1 ")) {
            assertThat(cvt(s)).as(s).isEqualTo(inval);
        }
        for (String s : List.of("8e", "16e", "9223372036854775808", "18446744073709551615", "99999999999999999999",
                "16384P")) {
            assertThat(cvt(s)).as(s).isEqualTo(range);
        }
        assertThat(IoArgs.cvtnumError(inval, "1x"))
                .isEqualTo("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- 1x");
        assertThat(IoArgs.cvtnumError(range, "8e")).isEqualTo("Parsing error: argument too large -- 8e");
    }

    @Test
    void patternBytesAsStrtolBaseZero() {
        assertThat(IoArgs.parsePattern("0xab")).isEqualTo(0xab);
        assertThat(IoArgs.parsePattern("0XAB")).isEqualTo(0xab);
        assertThat(IoArgs.parsePattern("171")).isEqualTo(171);
        assertThat(IoArgs.parsePattern("010")).as("octal").isEqualTo(8);
        assertThat(IoArgs.parsePattern("0")).isZero();
        assertThat(IoArgs.parsePattern("-0")).isZero();
        assertThat(IoArgs.parsePattern("+5")).isEqualTo(5);
        assertThat(IoArgs.parsePattern("255")).isEqualTo(255);
        for (String s : List.of("256", "-1", "08", "0x", "1x", "abc", "0x100", "99999999999999999999999")) {
            assertThat(IoArgs.parsePattern(s)).as(s).isEqualTo(-1);
        }
    }

    @Test
    void breaklineSplitsAtSpacesOnly() {
        assertThat(IoArgs.breakline("  read  -v\t0   1 ")).containsExactly("read", "-v\t0", "1");
        assertThat(IoArgs.breakline("")).isEmpty();
    }

    /** Runs getopt over a command; returns the options seen (c or c=arg, ? on error), then the operands. */
    private static List<String> getopt(String line, String optstring, List<String> errors) {
        IoArgs.Getopt g = new IoArgs.Getopt(IoArgs.breakline(line), optstring, errors::add);
        List<String> seen = new ArrayList<>();
        for (int c; (c = g.next()) != -1; ) {
            seen.add(g.optarg() == null ? String.valueOf((char) c) : (char) c + "=" + g.optarg());
            if (c == '?') {
                return seen;
            }
        }
        seen.add("|");
        seen.addAll(g.operands());
        return seen;
    }

    @Test
    void getoptPermutesClustersAndStopsAtDoubleDash() {
        List<String> errors = new ArrayList<>();
        assertThat(getopt("read -v 0 4", "bCl:pP:qs:v", errors)).containsExactly("v", "|", "0", "4");
        assertThat(getopt("read 0 4 -v", "bCl:pP:qs:v", errors)).containsExactly("v", "|", "0", "4");
        assertThat(getopt("read -vqP0xab 0 4", "bCl:pP:qs:v", errors))
                .containsExactly("v", "q", "P=0xab", "|", "0", "4");
        assertThat(getopt("read -P -1 0 4", "bCl:pP:qs:v", errors)).containsExactly("P=-1", "|", "0", "4");
        assertThat(getopt("read -v -- 0 -q", "bCl:pP:qs:v", errors)).containsExactly("v", "|", "0", "-q");
        assertThat(getopt("read 0 4 -- -v", "bCl:pP:qs:v", errors)).containsExactly("|", "0", "4", "-v");
        assertThat(getopt("read - 4", "bCl:pP:qs:v", errors)).containsExactly("|", "-", "4");
        assertThat(errors).isEmpty();
    }

    @Test
    void getoptErrorsAsGlibc() {
        List<String> errors = new ArrayList<>();
        assertThat(getopt("read -x 0 4", "bCl:pP:qs:v", errors)).containsExactly("?");
        assertThat(getopt("r 0 4 -P", "bCl:pP:qs:v", errors)).containsExactly("?");
        assertThat(getopt("read --5 1", "bCl:pP:qs:v", errors)).containsExactly("?");
        assertThat(getopt("read -1 1", "bCl:pP:qs:v", errors)).containsExactly("?");
        assertThat(errors).containsExactly("read: invalid option -- 'x'", "r: option requires an argument -- 'P'",
                "read: invalid option -- '-'", "read: invalid option -- '1'");
    }
}
