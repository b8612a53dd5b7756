package io.qcow2j.proptest.driver;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.chain.ChainOpener;
import io.qcow2j.engine.qcow2.Qcow2Image;
import io.qcow2j.ffm.ForwardingFile;
import io.qcow2j.ffm.PositionalFile;
import io.qcow2j.proptest.crash.NoSyncFile;
import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code Qcow2Image.close} with a request in flight. */
class CloseTest {
    @TempDir
    Path dir;

    /** A file that, once armed, holds the next write until released (and says when it is holding it). */
    static final class HoldingFile extends ForwardingFile {
        volatile boolean armed;
        final CountDownLatch holding = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);

        HoldingFile(PositionalFile delegate) {
            super(delegate);
        }

        @Override
        public void write(long offset, MemorySegment src) throws IOException {
            if (armed) {
                armed = false;
                holding.countDown();
                try {
                    if (!release.await(30, TimeUnit.SECONDS)) {
                        throw new IOException("never released");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException(e);
                }
            }
            delegate.write(offset, src);
        }
    }

    /**
     * The deterministic form of what {@link OptimisticReadStressTest#closingWhileRequestsRunEndsEachOneCleanly} found
     * in most runs: a write
     * of a new cluster is in flight (its data write held by the file) when close starts; close must wait for it
     * (it does, for the request lock) and then write its metadata (the L2 entry it links after its data write),
     * because the write returns success.
     */
    @Test
    void aWriteInFlightWhenCloseStartsIsKept() throws Exception {
        Path file = Qemu.create(dir, "inflight.qcow2", "cluster_size=65536", 16L << 20);
        HoldingFile[] hf = new HoldingFile[1];
        Qcow2Image img = ChainOpener.openQcow2(file, ImageOptions.builder().readOnly(false).cacheCleanInterval(0).build(),
                (p, mode, w) -> {
                    PositionalFile f = new NoSyncFile(ChainOpener.ALIGNED_FILES.open(p, mode, w));
                    return w ? (hf[0] = new HoldingFile(f)) : f;
                });
        byte[] first = new byte[4096];
        Arrays.fill(first, (byte) 1);
        img.write(0, MemorySegment.ofArray(first)); // the L2 table exists: the next write only adds a cluster
        img.flush();
        byte[] data = new byte[12345];
        new SplittableRandom(5).nextBytes(data);
        hf[0].armed = true;
        FutureTask<Void> writer = new FutureTask<>(() -> {
            img.write(65536, MemorySegment.ofArray(data));
            return null;
        });
        Thread.ofPlatform().name("writer").start(writer);
        assertThat(hf[0].holding.await(30, TimeUnit.SECONDS)).as("the writer's data write is held").isTrue();
        FutureTask<Void> closer = new FutureTask<>(() -> {
            img.close();
            return null;
        });
        Thread closeThread = Thread.ofPlatform().name("closer").start(closer);
        // wait until the closer waits for the request in flight (in RequestLock.lockExclusive)
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!inLockExclusive(closeThread) && !closer.isDone() && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertThat(closer.isDone()).as("close waits for the write in flight").isFalse();
        assertThat(inLockExclusive(closeThread)).as("the closer waits in lockExclusive").isTrue();
        hf[0].release.countDown();
        writer.get(30, TimeUnit.SECONDS); // the write returned: it succeeded
        closer.get(30, TimeUnit.SECONDS);
        Qemu.requireClean(file, "a write in flight when close started");
        try (Qcow2Image again = ChainOpener.openQcow2(file, ImageOptions.defaults())) {
            byte[] got = new byte[data.length];
            again.read(65536, MemorySegment.ofArray(got));
            assertThat(Arrays.mismatch(got, data)).as("the write that returned before close returned is in the image")
                    .isEqualTo(-1);
        }
    }

    private static boolean inLockExclusive(Thread t) {
        for (StackTraceElement e : t.getStackTrace()) {
            if (e.getMethodName().equals("lockExclusive")) {
                return true;
            }
        }
        return false;
    }
}
