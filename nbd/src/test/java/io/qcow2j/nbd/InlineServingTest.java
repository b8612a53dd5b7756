package io.qcow2j.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.engine.BlockStatus;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.ZeroFlag;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Which path a request takes ({@link Connection}): pipelined requests served inline by the connection's
 * thread with their replies held and written together, and the asynchronous path for a kind whose inline
 * service is slow. A counting disk between the server and the image tells which of its methods ran, on
 * which thread; real clients (fio's nbd engine with crc32c verification, nbdcopy) drive the export and
 * qemu-img checks and compares the result.
 */
@Timeout(120)
class InlineServingTest {
    @TempDir
    Path dir;

    /** Forwards to an image, counting blocking calls (on the connection's platform thread) and async starts. */
    static final class CountingDisk implements Disk {
        final Disk d;
        /** Nanoseconds every blocking read waits first (a device). */
        final long readDelay;
        final AtomicLong inlineReads = new AtomicLong();
        final AtomicLong inlineWrites = new AtomicLong();
        final AtomicLong asyncStarts = new AtomicLong();

        CountingDisk(Disk d, long readDelay) {
            this.d = d;
            this.readDelay = readDelay;
        }

        private static boolean platform() {
            return !Thread.currentThread().isVirtual();
        }

        @Override public long size() { return d.size(); }
        @Override public boolean isReadOnly() { return d.isReadOnly(); }

        @Override
        public void read(long offset, MemorySegment dst) throws IOException {
            if (platform()) {
                inlineReads.incrementAndGet();
            }
            if (readDelay > 0) {
                long end = System.nanoTime() + readDelay;
                while (System.nanoTime() < end) {
                    LockSupport.parkNanos(end - System.nanoTime());
                }
            }
            d.read(offset, dst);
        }

        @Override
        public void write(long offset, MemorySegment src) throws IOException {
            if (platform()) {
                inlineWrites.incrementAndGet();
            }
            d.write(offset, src);
        }

        @Override
        public void writeZeroes(long offset, long length, Set<ZeroFlag> flags) throws IOException {
            d.writeZeroes(offset, length, flags);
        }

        @Override public void discard(long offset, long length) throws IOException { d.discard(offset, length); }
        @Override public void flush() throws IOException { d.flush(); }

        @Override
        public CompletableFuture<Void> readAsync(long offset, MemorySegment dst) {
            asyncStarts.incrementAndGet();
            return Disk.super.readAsync(offset, dst); // the blocking read above, on a virtual thread
        }

        @Override
        public CompletableFuture<Void> writeAsync(long offset, MemorySegment src) {
            asyncStarts.incrementAndGet();
            return Disk.super.writeAsync(offset, src);
        }

        @Override
        public BlockStatus blockStatus(long offset, long maxLength) throws IOException {
            return d.blockStatus(offset, maxLength);
        }

        @Override public Optional<Disk> backing() { return d.backing(); }
        @Override public String format() { return d.format(); }
        @Override public String filename() { return d.filename(); }
        @Override public void close() throws IOException { d.close(); }
    }

    private NbdServer serve(CountingDisk disk, List<String> log) throws IOException {
        Export e = new Export("", null, disk, false, false, Export.DetectZeroes.OFF, true);
        return NbdServer.start(e, new NbdServer.Options(Served.address(), 4, true,
                Duration.ofSeconds(5)), log::add);
    }

    /** Runs fio's nbd engine on {@code uri}, 16 requests in flight, with {@code job}'s options. */
    private void fio(String uri, String... job) {
        List<String> cmd = new java.util.ArrayList<>(List.of("fio", "--name=job", "--ioengine=nbd", "--uri=" + uri,
                "--iodepth=16", "--randrepeat=1", "--output-format=terse"));
        cmd.addAll(List.of(job));
        Qemu.run(dir, cmd.toArray(String[]::new));
    }

    @Test
    void pipelinedRequestsOfAFastDiskAreServedInlineAndAnsweredRight() throws Exception {
        Path img = Qemu.create(dir, "a.qcow2", null, "16M");
        List<String> log = new CopyOnWriteArrayList<>();
        try (CountingDisk disk = new CountingDisk(Images.open(img, ImageOptions.builder().build()), 0);
                NbdServer s = serve(disk, log)) {
            // Warm-up (the JIT: interpreted requests are slow, and a slow kind goes asynchronous for a while).
            fio(s.uri(), "--rw=randrw", "--bs=4k", "--size=16M", "--io_size=16M");
            disk.inlineReads.set(0);
            disk.inlineWrites.set(0);
            disk.asyncStarts.set(0);
            // Writes, then reads verifying every block's checksum, 16 in flight all the time.
            fio(s.uri(), "--rw=randwrite", "--bs=4k", "--size=16M", "--io_size=8M", "--verify=crc32c",
                    "--do_verify=1", "--verify_fatal=1");
            // Not all, nor even most on a loaded machine: a preempted request looks slow, and a kind that looks
            // slow goes asynchronous for a while. Were pipelined requests never served inline, only the few
            // that found nothing else in flight (depth 1) would be.
            long inline = disk.inlineWrites.get() + disk.inlineReads.get();
            long all = inline + disk.asyncStarts.get();
            assertThat(all).isGreaterThanOrEqualTo(4096);
            assertThat(inline).as("pipelined reads and writes served on the connection's thread, of " + all)
                    .isGreaterThan(all / 5);
        }
        assertThat(log).isEmpty();
        Qemu.requireClean(img, "after fio");
    }

    @Test
    void largeAndMixedWritePayloadsArriveWhole() throws Exception {
        // 64 KiB payloads are read straight into their buffers (RequestReader.DIRECT), 4-128 KiB mixed ones
        // switch between that and the buffered reads; every block is verified by its checksum.
        Path img = Qemu.create(dir, "c.qcow2", null, "32M");
        List<String> log = new CopyOnWriteArrayList<>();
        try (CountingDisk disk = new CountingDisk(Images.open(img, ImageOptions.builder().build()), 0);
                NbdServer s = serve(disk, log)) {
            for (String[] job : new String[][] {{"--rw=write", "--bs=64k"}, {"--rw=randwrite", "--bsrange=4k-128k"}}) {
                fio(s.uri(), job[0], job[1], "--size=32M", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1");
            }
        }
        assertThat(log).isEmpty();
        Qemu.requireClean(img, "after fio");
    }

    @Test
    void pipelinedReadsOfASlowDiskGoAsynchronousAndCopyRight() throws Exception {
        Path img = Qemu.create(dir, "b.qcow2", null, "8M");
        Qemu.io(img, "write -P 0x3c 0 3M", "write -P 0x4d 5M 2M");
        Path copy = dir.resolve("copy.raw");
        List<String> log = new CopyOnWriteArrayList<>();
        try (CountingDisk disk = new CountingDisk(Images.open(img, ImageOptions.builder().readOnly(true).build()),
                200_000); NbdServer s = serve(disk, log)) {
            Qemu.run(dir, "nbdcopy", "--connections=1", "--requests=16", "--request-size=65536", s.uri(),
                    copy.toString());
            assertThat(disk.asyncStarts.get()).as("slow reads in flight together went asynchronous")
                    .isGreaterThan(10);
            assertThat(disk.inlineReads.get()).as("some inline: the first ones and the probes").isPositive();
        }
        assertThat(log).isEmpty();
        assertThat(Qemu.exec(dir, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img.toString(),
                copy.toString()).exit()).isZero();
    }
}
