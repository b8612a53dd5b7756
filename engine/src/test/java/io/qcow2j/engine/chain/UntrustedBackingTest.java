package io.qcow2j.engine.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ImageOptions#untrusted()}: images made by {@code qemu-img create -u -b NAME -F FMT} whose backing
 * names point at host files are refused with one line naming the backing file, while the same images open
 * (and read the host file) as QEMU would without it; legitimate relative chains still open.
 */
class UntrustedBackingTest {
    private static final ImageOptions TRUSTED = ImageOptions.builder().readOnly(true).build();
    private static final ImageOptions UNTRUSTED = TRUSTED.toBuilder().untrusted(true).build();

    @TempDir
    Path tmp;
    Path dir;
    Path secret;

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createDirectory(tmp.resolve("uploads"));
        secret = tmp.resolve("secret.raw");
        byte[] s = new byte[1 << 20];
        byte[] text = "TOP SECRET host file".getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(text, 0, s, 0, text.length);
        Files.write(secret, s);
    }

    private Path evil(String name, String backing, String format) {
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", format, name, "1M");
        return dir.resolve(name);
    }

    private static String firstBytes(Path image, ImageOptions o) throws IOException {
        try (Disk d = Images.open(image, o)) {
            MemorySegment m = MemorySegment.ofArray(new byte[20]);
            d.read(0, m);
            return new String(m.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII);
        }
    }

    private static void refused(Path image, String... words) {
        assertThatThrownBy(() -> Images.open(image, UNTRUSTED).close())
                .isInstanceOf(Qcow2FormatException.class)
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n").contains(words));
    }

    @Test
    void absoluteHostFileIsReadWhenTrustedAndRefusedWhenNot() throws IOException {
        Path evil = evil("evil.qcow2", secret.toString(), "raw");
        assertThat(firstBytes(evil, TRUSTED)).isEqualTo("TOP SECRET host file"); // QEMU's behaviour, kept
        refused(evil, secret.toString(), "absolute");
    }

    @Test
    void etcFileIsRefused() {
        refused(evil("etc.qcow2", "/etc/passwd", "raw"), "/etc/passwd", "absolute");
    }

    @Test
    void dotDotEscapeIsRefusedBeforeTheFileIsLookedAt() {
        refused(evil("dots.qcow2", "../secret.raw", "qcow2"), "../secret.raw", "outside");
        // a name that does not exist outside the folder gets the same answer: no existence oracle
        refused(evil("dots2.qcow2", "../nothing-here.raw", "qcow2"), "../nothing-here.raw", "outside");
    }

    @Test
    void symlinkEscapeIsRefused() throws IOException {
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "outside.qcow2", "1M");
        Files.move(dir.resolve("outside.qcow2"), tmp.resolve("outside.qcow2"));
        Files.createSymbolicLink(dir.resolve("link.qcow2"), tmp.resolve("outside.qcow2"));
        Path evil = evil("sym.qcow2", "link.qcow2", "qcow2");
        try (Disk d = Images.open(evil, TRUSTED)) {
            assertThat(d.size()).isEqualTo(1 << 20);
        }
        refused(evil, "link.qcow2", "symlinks", "outside");
    }

    @Test
    void protocolAndJsonNamesAreRefused() {
        refused(evil("json.qcow2", "json:{\"file.filename\":\"/etc/passwd\"}", "raw"), "json:", "protocol");
        refused(evil("file.qcow2", "file:/etc/passwd", "raw"), "file:/etc/passwd", "protocol");
        refused(evil("nbd.qcow2", "nbd://127.0.0.1:10809/x", "raw"), "nbd://", "protocol");
    }

    @Test
    void rawBackingNeedsTheExplicitOption() throws IOException {
        Files.copy(secret, dir.resolve("base.raw"));
        Path img = evil("overlay.qcow2", "base.raw", "raw");
        refused(img, "base.raw", "raw backing files are not allowed");
        assertThat(firstBytes(img, UNTRUSTED.toBuilder().allowRawBacking(true).build()))
                .isEqualTo("TOP SECRET host file");
    }

    @Test
    void backingFormatMustBeInTheImage() throws IOException {
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "1M");
        Path img = evil("withformat.qcow2", "base.qcow2", "qcow2");
        // an image without the backing format extension (as old qemu-img made them): the name patched in
        Path v2 = dir.resolve("v2.qcow2");
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "v2.qcow2", "1M");
        setBackingName(v2, "base.qcow2");
        assertThat(Qemu.info(v2)).containsEntry("backing-filename", "base.qcow2")
                .doesNotContainKey("backing-filename-format");
        try (Disk d = Images.open(v2, TRUSTED)) { // probed as qcow2 without the option
            assertThat(d.size()).isEqualTo(1 << 20);
        }
        refused(v2, "base.qcow2", "does not give the backing format");
        try (Disk d = Images.open(img, UNTRUSTED)) { // a proper relative chain opens
            assertThat(d.size()).isEqualTo(1 << 20);
        }
    }

    /** Writes {@code name} at byte 1024 of the header cluster and points backing_file_offset/size at it. */
    private static void setBackingName(Path image, String name) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(image, java.nio.file.StandardOpenOption.WRITE)) {
            byte[] n = name.getBytes(StandardCharsets.UTF_8);
            ch.write(java.nio.ByteBuffer.wrap(n), 1024);
            ch.write(java.nio.ByteBuffer.allocate(12).putLong(1024).putInt(n.length).flip(), 8);
        }
    }

    @Test
    void depthLimitIs16UntrustedAnd64Otherwise() throws IOException {
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "l0.qcow2", "1M");
        for (int i = 1; i <= 17; i++) {
            Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "l" + (i - 1) + ".qcow2",
                    "-F", "qcow2", "l" + i + ".qcow2", "1M");
        }
        try (Disk d = Images.open(dir.resolve("l16.qcow2"), UNTRUSTED)) { // 16 backing files: the limit
            assertThat(d.size()).isEqualTo(1 << 20);
        }
        refused(dir.resolve("l17.qcow2"), "l0.qcow2", "deeper than 16");
        try (Disk d = Images.open(dir.resolve("l17.qcow2"), TRUSTED)) {
            assertThat(d.size()).isEqualTo(1 << 20);
        }
    }

    /**
     * Without {@code untrusted} the limit is {@link ImageOptions#MAX_CHAIN_DEPTH}: 64 backing files open, the
     * 65th is a one-line error naming it.
     */
    @Test
    void trustedDepthLimitIs64() throws IOException {
        assertThat(ImageOptions.MAX_CHAIN_DEPTH).isEqualTo(64);
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "t0.qcow2", "1M");
        Qemu.io(dir.resolve("t0.qcow2"), "write -P 0x42 0 4k");
        for (int i = 1; i <= 65; i++) {
            Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", "t" + (i - 1) + ".qcow2",
                    "-F", "qcow2", "t" + i + ".qcow2", "1M");
        }
        try (Disk d = Images.open(dir.resolve("t64.qcow2"), TRUSTED)) { // 64 backing files: the limit
            MemorySegment m = MemorySegment.ofArray(new byte[4096]);
            d.read(0, m);
            assertThat(m.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).containsOnly((byte) 0x42);
        }
        assertThatThrownBy(() -> Images.open(dir.resolve("t65.qcow2"), TRUSTED).close())
                .isInstanceOf(Qcow2FormatException.class)
                .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n")
                        .contains("t0.qcow2", "deeper than 64"));
        refused(dir.resolve("t17.qcow2"), "t0.qcow2", "deeper than 16");
    }

    @Test
    void loopIsOneLineNamingTheBackingFile() {
        evil("a.qcow2", "b.qcow2", "qcow2");
        evil("b.qcow2", "a.qcow2", "qcow2");
        refused(dir.resolve("a.qcow2"), "a.qcow2", "loops");
        assertThatThrownBy(() -> Images.open(dir.resolve("a.qcow2"), TRUSTED).close())
                .isInstanceOf(Qcow2FormatException.class).hasMessageContaining("loops");
    }

    @Test
    void subfolderBackingIsAllowed() throws IOException {
        Files.createDirectory(dir.resolve("base"));
        Qemu.run(dir, "qemu-img", "create", "-q", "-f", "qcow2", "base/b.qcow2", "1M");
        Qemu.io(dir.resolve("base/b.qcow2"), "write -P 0x5a 0 64k");
        Path img = evil("top.qcow2", "base/b.qcow2", "qcow2");
        try (Disk d = Images.open(img, UNTRUSTED)) {
            MemorySegment m = MemorySegment.ofArray(new byte[4]);
            d.read(0, m);
            assertThat(m.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).containsOnly((byte) 0x5a);
        }
    }
}
