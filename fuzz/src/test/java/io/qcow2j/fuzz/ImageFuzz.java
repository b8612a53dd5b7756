package io.qcow2j.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.RepairMode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A whole image file through the engine's API, as a hostile upload would go: open read-only and read, map
 * (block status) and check it (L1/L2/refcount walking, compressed-cluster decoding, snapshot and bitmap
 * tables); then, on a copy, write, flush and read back; then repair it. The read-only phase must leave the file
 * unchanged, and what was written and flushed must read back. Errors must be {@link IOException}s with one line.
 *
 * <p>Nothing outside the image a phase may write is written (issue 15: no write outside the image file): the
 * target works in a private folder holding only the input, its copy and {@value #BASE}, a real image (the
 * {@code seed-data} seed) that the {@code seed-backed} seed and its mutations name as their backing file.
 * After each phase every file of the folder but the one opened read/write has the size, modification time and
 * SHA-256 it had before, and no file has appeared. (Backing names pointing outside the folder are refused by
 * {@code untrusted}, which every open here uses.)
 */
class ImageFuzz {
    /** Only this much of the guest disk is read and mapped, so one input costs milliseconds whatever its size says. */
    private static final long GUEST_WINDOW = 256 << 10;
    /** Small caches, so that evictions and reloads are exercised too. */
    private static final ImageOptions READ = ImageOptions.builder().readOnly(true).untrusted(true)
            .l2CacheSize(4096L).refcountCacheSize(4096L).cacheCleanInterval(0).build();
    private static final ImageOptions WRITE = READ.toBuilder().readOnly(false).build();

    /** The backing file of the seeds that name one, inside the folder. */
    static final String BASE = "base.qcow2";
    private static final Path DIR;
    private static final byte[] BASE_BYTES;
    static {
        try {
            DIR = Files.createTempDirectory("qcow2j-fuzz");
            try (var in = ImageFuzz.class.getResourceAsStream("ImageFuzzInputs/image/seed-data")) {
                BASE_BYTES = in.readAllBytes();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @FuzzTest(maxDuration = "10m")
    void image(byte[] file) throws IOException {
        Path base = DIR.resolve(BASE);
        FolderState.reset(DIR, base, BASE_BYTES);
        Path p = DIR.resolve("input.qcow2");
        Files.write(p, file);
        FolderState before = FolderState.of(DIR, null);
        readOnly(p, file);
        before.requireSame(DIR, null, "the read-only phase");
        Path copy = DIR.resolve("copy.qcow2");
        Files.write(copy, file);
        writeAndReadBack(copy);
        before.requireSame(DIR, copy, "the write phase on " + copy.getFileName());
        Files.write(copy, file);
        repair(copy);
        before.requireSame(DIR, copy, "the repair of " + copy.getFileName());
    }

    private static void readOnly(Path p, byte[] file) throws IOException {
        try (Qcow2Disk d = Images.openQcow2(p, READ)) {
            long end = Math.min(d.size(), GUEST_WINDOW);
            MemorySegment buf = MemorySegment.ofArray(new byte[4096]);
            for (long pos = 0; pos < end; pos += buf.byteSize()) {
                d.read(pos, buf.asSlice(0, Math.min(buf.byteSize(), end - pos)));
            }
            for (long pos = 0, n = 0; pos < end && n < 256; n++) {
                BlockStatus s = d.blockStatus(pos, end - pos);
                Outcomes.require(s.start() == pos && s.length() > 0 && s.length() <= end - pos,
                        "block status " + s + " at " + pos);
                pos += s.length();
            }
            d.check(line -> { });
        } catch (IOException e) {
            Outcomes.allowedError(e);
        }
        Outcomes.require(Arrays.equals(Files.readAllBytes(p), file), "a read-only open changed the file");
    }

    private static void writeAndReadBack(Path p) throws IOException {
        byte[] data = new byte[3000];
        Arrays.fill(data, (byte) 0x5a);
        long at;
        try (Qcow2Disk d = Images.openQcow2(p, WRITE)) {
            if (d.size() < data.length) {
                return;
            }
            at = Math.min(d.size() - data.length, 1000);
            d.write(at, MemorySegment.ofArray(data));
            d.flush();
            // acknowledged and flushed: from here on the data must read back (issue 15's "data lost")
            MemorySegment back = MemorySegment.ofArray(new byte[data.length]);
            d.read(at, back);
            Outcomes.require(Arrays.equals(back.toArray(ValueLayout.JAVA_BYTE), data),
                    "write and flush succeeded but the data read back differs at " + at);
        } catch (IOException e) {
            Outcomes.allowedError(e);
            return;
        }
        try (Qcow2Disk d = Images.openQcow2(p, READ)) {
            MemorySegment back = MemorySegment.ofArray(new byte[data.length]);
            d.read(at, back);
            Outcomes.require(Arrays.equals(back.toArray(ValueLayout.JAVA_BYTE), data),
                    "write and flush succeeded but after a reopen the data read back differs at " + at);
        } catch (IOException e) {
            // a corruption found only now (the write went where metadata said) is reported, not silent
            Outcomes.allowedError(e);
        }
    }

    private static void repair(Path p) throws IOException {
        try (Qcow2Disk d = Images.openForRepair(p, WRITE)) {
            d.repair(RepairMode.ALL, line -> { });
        } catch (IOException e) {
            Outcomes.allowedError(e);
        }
    }
}
