package io.qcow2j.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The one disk interface, through the public API only, on qcow2 images and raw files alike: opening is
 * read/write by default, every request kind works on both, the scatter-gather forms equal their one-buffer
 * forms, and {@code ZeroFlag.NO_FALLBACK} refuses exactly what needs buffers of zeros. Results are read back
 * and checked by qemu (qemu-io read -P, qemu-img compare and check).
 */
class DiskTest {
    @TempDir
    Path dir;

    private Path make(String format) throws IOException {
        Path p = dir.resolve("d." + format);
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", format, p.getFileName().toString(), "8M");
        return p;
    }

    @ParameterizedTest
    @ValueSource(strings = {"qcow2", "raw"})
    void opensReadWriteByDefaultAndServesEveryRequest(String format) throws IOException {
        Path p = make(format);
        byte[] model = new byte[8 << 20];
        Random rnd = new Random(7);
        try (Disk d = Images.open(p, ImageOptions.defaults()); Arena arena = Arena.ofConfined()) {
            assertThat(d.format()).isEqualTo(format);
            assertThat(d.isReadOnly()).isFalse();
            assertThat(d.size()).isEqualTo(8L << 20);
            assertThat(d.backing()).isEmpty();
            for (int i = 0; i < 40; i++) {
                int off = rnd.nextInt(8 << 20);
                int len = 1 + rnd.nextInt(Math.min(200_000, (8 << 20) - off));
                switch (rnd.nextInt(4)) {
                    case 0, 1 -> {
                        byte[] data = new byte[len];
                        rnd.nextBytes(data);
                        MemorySegment src = arena.allocate(len);
                        src.copyFrom(MemorySegment.ofArray(data));
                        d.write(off, src);
                        System.arraycopy(data, 0, model, off, len);
                    }
                    case 2 -> {
                        d.writeZeroes(off, len, ZeroFlag.unmapIf(rnd.nextBoolean()));
                        Arrays.fill(model, off, off + len, (byte) 0);
                    }
                    default -> {
                        // discard is advisory: the model cannot know what reads as zeros, so rewrite after it
                        d.discard(off, len);
                        MemorySegment src = MemorySegment.ofArray(Arrays.copyOfRange(model, off, off + len));
                        d.write(off, src);
                    }
                }
            }
            d.flush();
            byte[] got = new byte[8 << 20];
            d.read(0, MemorySegment.ofArray(got));
            assertThat(Arrays.mismatch(got, model)).as("first difference").isEqualTo(-1);
        }
        Path expected = dir.resolve("expected.raw");
        Files.write(expected, model);
        Qemu.run(dir, "qemu-img", "compare", "-f", format, "-F", "raw", p.getFileName().toString(), "expected.raw");
        if (format.equals("qcow2")) {
            assertThat(Qemu.check(p).clean()).as("qemu-img check").isTrue();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qcow2", "raw"})
    void scatterGatherEqualsOneBuffer(String format) throws IOException {
        Path p = make(format);
        byte[] data = new byte[3 * 4096 + 1000];
        new Random(3).nextBytes(data);
        try (Disk d = Images.open(p, ImageOptions.defaults())) {
            MemorySegment[] pieces = {
                MemorySegment.ofArray(Arrays.copyOfRange(data, 0, 100)),
                MemorySegment.ofArray(Arrays.copyOfRange(data, 100, 9000)),
                MemorySegment.ofArray(Arrays.copyOfRange(data, 9000, data.length))};
            d.writev(65536 - 50, pieces);
            byte[] a = new byte[5000];
            byte[] b = new byte[data.length - 5000];
            d.readv(65536 - 50, MemorySegment.ofArray(a), MemorySegment.ofArray(b));
            byte[] joined = new byte[data.length];
            System.arraycopy(a, 0, joined, 0, a.length);
            System.arraycopy(b, 0, joined, a.length, b.length);
            assertThat(joined).isEqualTo(data);
        }
        Path expected = dir.resolve("e.raw");
        byte[] flat = new byte[8 << 20];
        System.arraycopy(data, 0, flat, 65536 - 50, data.length);
        Files.write(expected, flat);
        Qemu.run(dir, "qemu-img", "compare", "-f", format, "-F", "raw", p.getFileName().toString(), "e.raw");
    }

    @ParameterizedTest
    @ValueSource(strings = {"qcow2", "raw"})
    void readOnlyWhenAskedRefusesEveryWrite(String format) throws IOException {
        Path p = make(format);
        byte[] before = Files.readAllBytes(p);
        try (Disk d = Images.open(p, ImageOptions.builder().readOnly(true).build())) {
            assertThat(d.isReadOnly()).isTrue();
            MemorySegment buf = MemorySegment.ofArray(new byte[512]);
            assertThatThrownBy(() -> d.write(0, buf)).isInstanceOf(IOException.class).hasMessageContaining("read-only");
            assertThatThrownBy(() -> d.writeZeroes(0, 512)).hasMessageContaining("read-only");
            assertThatThrownBy(() -> d.discard(0, 65536)).hasMessageContaining("read-only");
            d.flush(); // a no-op
            d.read(0, buf);
        }
        assertThat(Files.readAllBytes(p)).isEqualTo(before);
    }

    @Test
    void noFallbackZeroesWholeClustersOnlyAndChangesNothingElse() throws IOException {
        Path p = make("qcow2");
        Qemu.io(p, "write -P 0x11 0 1M");
        try (Disk d = Images.open(p, ImageOptions.defaults())) {
            Set<ZeroFlag> fast = Set.of(ZeroFlag.NO_FALLBACK, ZeroFlag.MAY_UNMAP);
            d.writeZeroes(65536, 131072, fast); // two whole clusters: metadata only
            assertThatThrownBy(() -> d.writeZeroes(196608 + 512, 4096, fast))
                    .isInstanceOf(FastZeroUnsupportedException.class).hasMessageContaining("not whole clusters");
            assertThatThrownBy(() -> d.writeZeroes(262144, 65536 + 512, fast))
                    .isInstanceOf(FastZeroUnsupportedException.class);
        }
        Qemu.io(p, "read -P 0x11 0 64k", "read -P 0 64k 128k", "read -P 0x11 192k 832k");
        assertThat(Qemu.check(p).clean()).isTrue();
    }

    @Test
    void noFallbackIsRefusedOnVersion2ImagesWhichHaveNoZeroFlag() throws IOException {
        Path p = Qemu.create(dir, "v2.qcow2", "compat=0.10", "1M");
        try (Disk d = Images.open(p, ImageOptions.defaults())) {
            assertThatThrownBy(() -> d.writeZeroes(0, 65536, Set.of(ZeroFlag.NO_FALLBACK)))
                    .isInstanceOf(FastZeroUnsupportedException.class).hasMessageContaining("version 2");
            d.writeZeroes(0, 65536, Set.of()); // with fallback: written as zeros
        }
        assertThat(Qemu.check(p).clean()).isTrue();
    }

    @Test
    void openProbesRawButOpenQcow2RefusesIt() throws IOException {
        Path raw = make("raw");
        try (Disk d = Images.open(raw, ImageOptions.defaults())) {
            assertThat(d).isNotInstanceOf(Qcow2Disk.class);
        }
        assertThatThrownBy(() -> Images.openQcow2(raw, ImageOptions.defaults()))
                .isInstanceOf(Qcow2FormatException.class).hasMessageContaining("not a qcow2 image");
        Path q = make("qcow2");
        try (Disk d = Images.open(q, ImageOptions.defaults())) {
            assertThat(d).isInstanceOf(Qcow2Disk.class);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"qcow2", "raw"})
    void requestsOutsideTheDiskAndAfterCloseAreRefused(String format) throws IOException {
        Path p = make(format);
        Disk d = Images.open(p, ImageOptions.defaults());
        MemorySegment buf = MemorySegment.ofArray(new byte[512]);
        assertThatThrownBy(() -> d.read((8 << 20) - 100, buf)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("outside the image");
        assertThatThrownBy(() -> d.writeZeroes(-1, 10)).isInstanceOf(IllegalArgumentException.class);
        d.close();
        d.close(); // idempotent
        assertThatThrownBy(() -> d.read(0, buf)).isInstanceOf(IOException.class).hasMessageContaining("closed");
    }
}
