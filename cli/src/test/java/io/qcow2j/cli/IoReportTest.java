package io.qcow2j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** qemu-io's report formatting; the expected strings are what qemu-io 7.2 prints for the same numbers. */
class IoReportTest {

    @Test
    void sizesAsCvtstr() {
        assertThat(IoReport.cvtstr(65536)).isEqualTo("64 KiB");
        assertThat(IoReport.cvtstr(32)).isEqualTo("32 bytes");
        assertThat(IoReport.cvtstr(0)).isEqualTo("0 bytes");
        assertThat(IoReport.cvtstr(1000)).isEqualTo("1000 bytes");
        assertThat(IoReport.cvtstr(1025)).isEqualTo("1.001 KiB");
        assertThat(IoReport.cvtstr(1088)).as("exact tie: to even, as printf").isEqualTo("1.062 KiB");
        assertThat(IoReport.cvtstr(2112)).isEqualTo("2.062 KiB");
        assertThat(IoReport.cvtstr(5000)).isEqualTo("4.883 KiB");
        assertThat(IoReport.cvtstr(1 << 20)).isEqualTo("1 MiB");
        assertThat(IoReport.cvtstr(3L << 29)).isEqualTo("1.500 GiB");
        assertThat(IoReport.cvtstr(337.507855)).isEqualTo("337.507855 bytes");
        assertThat(IoReport.cvtstr(5.0001)).as("qemu trims at the first .000").isEqualTo("5 bytes");
        assertThat(IoReport.cvtstr(1L << 60)).isEqualTo("1 EiB");
        assertThat(IoReport.cvtstr(Double.POSITIVE_INFINITY)).isEqualTo("inf EiB");
    }

    @Test
    void timesAsTimestr() {
        assertThat(IoReport.timestr(0, false)).isEqualTo("00.00 sec");
        assertThat(IoReport.timestr(60_000_000L, false)).isEqualTo("00.06 sec");
        assertThat(IoReport.timestr(999_000_000L, false)).isEqualTo("01.00 sec");
        assertThat(IoReport.timestr(1_500_000_000L, false)).isEqualTo("0:00:01.50");
        assertThat(IoReport.timestr(3_723_450_000_000L, false)).isEqualTo("1:02:03.45");
        assertThat(IoReport.timestr(0, true)).isEqualTo("0:00:00.00");
    }

    @Test
    void reports() {
        assertThat(IoReport.report("read", 1_000_000_000L, 0, 65536, 65536, 1, false))
                .isEqualTo("read 65536/65536 bytes at offset 0\n"
                        + "64 KiB, 1 ops; 0:00:01.00 (64 KiB/sec and 1.0000 ops/sec)\n");
        assertThat(IoReport.report("wrote", 2_000_000L, 1000, 5000, 5000, 1, false))
                .isEqualTo("wrote 5000/5000 bytes at offset 1000\n"
                        + "4.883 KiB, 1 ops; 00.00 sec (2.384 MiB/sec and 500.0000 ops/sec)\n");
        assertThat(IoReport.report("discard", 4_000_000L, 0, 65536, 65536, 1, true))
                .isEqualTo("65536,1,0:00:00.00,16384000.000,250.000\n");
    }

    @Test
    void hexdumpAsDumpBuffer() {
        byte[] data = new byte[20];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i < 16 ? 0xab : "Az9 ".charAt(i - 16));
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        IoReport.hexdump(out, MemorySegment.ofArray(data), 0x5a);
        assertThat(bytes.toString(StandardCharsets.UTF_8)).isEqualTo(
                "0000005a:  ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab  ................\n"
                        + "0000006a:  41 7a 39 20  Az9.\n");
    }
}
