package io.qcow2j.cli;

import io.qcow2j.engine.CacheMode;
import io.qcow2j.engine.CacheStats;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.Sizes;
import io.qcow2j.engine.Qcow2j;
import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.AsyncIo;
import io.qcow2j.ffm.IoMode;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code qcow2j bench}: {@code qemu-img bench}'s flags and output, so that one argument list runs both tools.
 * Requests go out {@code depth} at a time, at offset {@code offset + i × step} modulo the image size. With
 * {@code --engine async} (the default) one thread submits through the disk's asynchronous API and keeps
 * {@code depth} futures in flight (each request's file I/O goes through io_uring, or the thread-pool
 * fallback with {@code -i threads}); with {@code --engine blocking} {@code depth} platform threads each call
 * the blocking API (direct {@code pread}/{@code pwrite}). Between qemu-img's first and last lines it prints what
 * qemu-img does not: IOPS, throughput, latency percentiles, cache statistics and fdatasync calls.
 * {@code -f raw} runs the same pattern on a raw file with plain pread/pwrite: the physical limit.
 */
@Command(name = "bench", sortOptions = false,
        header = "Measure an image's I/O with qemu-img bench's options, with latencies and cache statistics.",
        description = {
    "Run a simple image benchmark, as qemu-img bench: COUNT requests of SIZE bytes, DEPTH in parallel,",
    "starting at OFFSET and advancing by STEP (wrapping at the end of the image); reads unless -w."})
public final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "-c", paramLabel = "COUNT", description = "number of requests (default 75000)")
    int count = 75000;

    @Option(names = "-d", paramLabel = "DEPTH", description = "requests in flight (default 64)")
    int depth = 64;

    @Option(names = "-f", paramLabel = "FMT", description = "qcow2 (default) or raw")
    String format = "qcow2";

    @Option(names = "--flush-interval", paramLabel = "N", description = "flush every N requests (writes only)")
    int flushInterval;

    @Option(names = "--no-drain", description = "do not wait for requests in flight before a flush")
    boolean noDrain;

    @Option(names = "-i", paramLabel = "AIO",
            description = "I/O backend: io_uring (default where the kernel allows it) or threads; native means io_uring")
    String aio;

    @Option(names = "--engine", paramLabel = "ENGINE",
            description = "async (default: the asynchronous API, DEPTH requests in flight) or blocking (DEPTH platform threads)")
    String engine = "async";

    @Option(names = "-n", description = "accepted for compatibility (native AIO): ignored")
    boolean nativeAio;

    @Option(names = "-o", paramLabel = "OFFSET", description = "first offset (default 0)")
    String offset = "0";

    @Option(names = "--pattern", paramLabel = "PATTERN", description = "byte written (default 0)")
    int pattern;

    @Option(names = "-q", description = "accepted for compatibility")
    boolean quiet;

    @Option(names = "-s", paramLabel = "SIZE", description = "bytes per request (default 4096)")
    String size = "4096";

    @Option(names = "-S", paramLabel = "STEP", description = "offset step (default: SIZE)")
    String step;

    @Option(names = "-t", paramLabel = "CACHE", description = "none, writeback (default), writethrough, unsafe")
    String cache = "writeback";

    @Option(names = "-w", description = "write instead of read")
    boolean write;

    @Option(names = "-U", description = "accepted for compatibility (force share)")
    boolean forceShare;

    @Option(names = "--image-opts", description = "FILENAME is an option string: driver=qcow2,file.filename=...")
    boolean imageOpts;

    @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json")
    String output = "human";

    @Parameters(index = "0", paramLabel = "FILENAME")
    String filename;

    /** The I/O a run drives: a qcow2 image or a raw file. */
    private interface Target extends AutoCloseable {
        long size();

        void read(long offset, MemorySegment buf) throws IOException;

        void write(long offset, MemorySegment buf) throws IOException;

        /** The request, asynchronously: a qcow2 disk's own async API; a raw file's I/O on a virtual thread. */
        default CompletableFuture<Void> submit(boolean write, long offset, MemorySegment buf) {
            CompletableFuture<Void> f = new CompletableFuture<>();
            Thread.ofVirtual().start(() -> {
                try {
                    if (write) {
                        write(offset, buf);
                    } else {
                        read(offset, buf);
                    }
                    f.complete(null);
                } catch (Throwable t) {
                    f.completeExceptionally(t);
                }
            });
            return f;
        }

        void flush() throws IOException;

        @Override
        void close() throws IOException;
    }

    @Override
    public Integer call() throws Exception {
        long bufsize = Sizes.parse("buffer size", size);
        long stepSize = step == null ? bufsize : Sizes.parse("step size", step);
        long start = Sizes.parse("offset", offset);
        checkRange("request count", count);
        checkRange("queue depth", depth);
        checkRange("buffer size", bufsize);
        if (pattern < 0 || pattern > 255) {
            throw new IllegalArgumentException("Invalid pattern byte specified. Must be between 0 and 255.");
        }
        if (flushInterval != 0 && !write) {
            throw new IllegalArgumentException("--flush-interval is only available in write tests");
        }
        if (flushInterval != 0 && flushInterval < depth) {
            throw new IllegalArgumentException("Flush interval can't be smaller than depth");
        }
        if (!output.equals("human") && !output.equals("json")) {
            throw new IllegalArgumentException("--output must be human or json, not '" + output + "'");
        }
        CacheMode mode = CacheMode.parse(cache);
        if (!engine.equals("async") && !engine.equals("blocking")) {
            throw new IllegalArgumentException("--engine must be async or blocking, not '" + engine + "'");
        }
        if (aio != null || nativeAio) {
            String backend = nativeAio || "native".equals(aio) ? "io_uring" : aio;
            if (!backend.equals("io_uring") && !backend.equals("threads")) {
                throw new IllegalArgumentException("Invalid aio option: " + aio);
            }
            System.setProperty(AsyncIo.BACKEND_PROPERTY, backend); // before the shared backend is opened
        }
        engineLine = engine.equals("async") ? "engine: async, " + Qcow2j.ioBackend()
                : "engine: blocking (" + depth + " platform threads, pread/pwrite)";
        PrintWriter out = spec.commandLine().getOut();
        try (Target target = open(mode)) {
            long imageSize = target.size();
            if (imageSize <= 0) {
                throw new IllegalArgumentException(filename + ": image is empty");
            }
            if (output.equals("human")) {
                out.printf("Sending %d %s requests, %d bytes each, %d in parallel (starting at offset %d, step size %d)%n",
                        count, write ? "write" : "read", bufsize, depth, start, stepSize);
                if (flushInterval != 0) {
                    out.printf("Sending flush every %d requests%n", flushInterval);
                }
                out.println(engineLine);
                out.flush();
            }
            Run run = new Run(target, imageSize, bufsize, stepSize, start);
            long t0 = System.nanoTime();
            if (engine.equals("async")) {
                run.goAsync();
            } else {
                run.go();
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            if (image != null) {
                stats = snapshot(image);
            }
            report(out, run, seconds, bufsize);
        }
        return 0;
    }

    private static void checkRange(String what, long v) {
        if (v < 1 || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("Invalid " + what + " specified. Must be between 1 and 2147483647.");
        }
    }

    private Qcow2Disk image;

    private Target open(CacheMode mode) throws IOException {
        ImageOptions base = Main.imageOptions().cacheMode(mode).readOnly(!write).build();
        String file = filename;
        ImageOptions opts = base;
        if (imageOpts) {
            opts = ImageOptions.parse(filename, base);
            if (opts.filename() == null) {
                throw new IllegalArgumentException("--image-opts needs file.filename=...");
            }
            file = opts.filename();
            opts = opts.toBuilder().readOnly(!write).build();
        }
        if (format.equals("raw") && engine.equals("async")) {
            return rawDisk(file, opts);
        }
        if (format.equals("raw")) {
            IoMode io = mode == CacheMode.NONE ? IoMode.DIRECT : IoMode.BUFFERED;
            AlignedFile aligned = write
                    ? AlignedFile.open(Path.of(file), io, StandardOpenOption.READ, StandardOpenOption.WRITE)
                    : AlignedFile.open(Path.of(file), io, StandardOpenOption.READ);
            PositionalFile f = aligned;
            long sz = f.size();
            boolean sync = mode != CacheMode.UNSAFE;
            return new Target() {
                final AtomicLong syncs = new AtomicLong();

                public long size() {
                    return sz;
                }

                public void read(long off, MemorySegment b) throws IOException {
                    f.read(off, b);
                }

                public void write(long off, MemorySegment b) throws IOException {
                    f.write(off, b);
                    if (mode == CacheMode.WRITETHROUGH) {
                        flush();
                    }
                }

                public void flush() throws IOException {
                    if (sync) {
                        f.dataSync();
                        syncs.incrementAndGet();
                    }
                }

                public void close() throws IOException {
                    rawSyncs = syncs.get();
                    f.close();
                }
            };
        }
        if (!format.equals("qcow2")) {
            throw new IllegalArgumentException("Unknown file format '" + format + "' (qcow2 or raw)");
        }
        Qcow2Disk im = Images.openQcow2(Path.of(file), opts);
        for (String w : im.warnings()) {
            spec.commandLine().getErr().println("qcow2j: warning: " + w);
        }
        image = im;
        return diskTarget(im, false);
    }

    /**
     * {@code -f raw --engine async}: the engine's raw disk (what {@code Images.open} gives for a raw file), so
     * that its asynchronous reads take the same path as a qcow2 image's: straight to io_uring.
     */
    private Target rawDisk(String file, ImageOptions opts) throws IOException {
        Disk d = Images.open(Path.of(file), opts);
        if (!d.format().equals("raw")) {
            d.close();
            throw new IllegalArgumentException(file + ": -f raw on a " + d.format() + " image");
        }
        return diskTarget(d, opts.cacheMode() != CacheMode.UNSAFE);
    }

    /** A run on a {@link Disk}; {@code countSyncs}: a raw disk's flushes are its syncs (qcow2 counts its own). */
    private Target diskTarget(Disk d, boolean countSyncs) {
        return new Target() {
            long syncs;

            public long size() {
                return d.size();
            }

            public void read(long off, MemorySegment b) throws IOException {
                d.read(off, b);
            }

            public void write(long off, MemorySegment b) throws IOException {
                d.write(off, b);
            }

            @Override
            public CompletableFuture<Void> submit(boolean write, long off, MemorySegment b) {
                return write ? d.writeAsync(off, b) : d.readAsync(off, b);
            }

            public void flush() throws IOException {
                d.flush();
                syncs += countSyncs ? 1 : 0;
            }

            public void close() throws IOException {
                if (countSyncs) {
                    rawSyncs = syncs;
                }
                d.close();
            }
        };
    }

    private long rawSyncs;
    /** Which engine and I/O backend the run uses, one line. */
    private String engineLine;
    private Map<String, Object> stats;

    private static Map<String, Object> snapshot(Qcow2Disk im) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("l2-cache", cacheStats(im.l2CacheStatistics()));
        m.put("refcount-cache", cacheStats(im.refcountCacheStatistics()));
        m.put("syncs", im.syncCount());
        return m;
    }

    private static Map<String, Object> cacheStats(CacheStats s) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("hits", s.hits());
        m.put("misses", s.misses());
        m.put("loads", s.loads());
        m.put("evictions", s.evictions());
        m.put("write-backs", s.writebacks());
        m.put("probes-per-lookup", Math.round(s.probesPerLookup() * 100) / 100.0);
        return m;
    }

    /** One run: workers take request numbers from a counter; flushes drain unless --no-drain. */
    private final class Run {
        final Target target;
        final long imageSize;
        final long bufsize;
        final long stepSize;
        final long start;
        final long[] latencies = new long[count];
        final AtomicLong next = new AtomicLong();
        final AtomicLong completed = new AtomicLong();
        /**
         * Requests with a number below this may start (advanced past each drained flush). Volatile so that a
         * request already released passes without the gate's monitor: 16 threads taking one monitor per
         * request measured the harness, not the image.
         */
        volatile long released;
        final Object gate = new Object();
        volatile Throwable failure;

        Run(Target target, long imageSize, long bufsize, long stepSize, long start) {
            this.target = target;
            this.imageSize = imageSize;
            this.bufsize = bufsize;
            this.stepSize = stepSize;
            this.start = start;
            this.released = flushInterval != 0 && !noDrain ? flushInterval : Long.MAX_VALUE;
        }

        long offsetOf(long i) {
            long o = Math.floorMod(start, imageSize);
            return Math.floorMod(o + Math.floorMod(i * Math.floorMod(stepSize, imageSize), imageSize), imageSize);
        }

        void go() throws Exception {
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < Math.min(depth, count); t++) {
                threads.add(Thread.ofPlatform().name("bench-" + t).start(this::work));
            }
            for (Thread t : threads) {
                t.join();
            }
            if (failure != null) {
                throw failure instanceof Exception e ? e : new RuntimeException(failure);
            }
        }

        /**
         * The asynchronous run: this thread submits, a semaphore keeps {@code depth} requests in flight, each
         * with a buffer of its own from a pool; a flush (with drain) waits for every request in flight first.
         */
        void goAsync() throws Exception {
            if (flushInterval == 0) {
                goLanes();
                return;
            }
            int inFlight = (int) Math.min(depth, count);
            Semaphore slots = new Semaphore(inFlight);
            ArrayBlockingQueue<MemorySegment> buffers = new ArrayBlockingQueue<>(inFlight);
            try (Arena arena = Arena.ofShared()) {
                for (int k = 0; k < inFlight; k++) {
                    MemorySegment b = arena.allocate(bufsize, 4096);
                    if (write) {
                        b.fill((byte) pattern);
                    }
                    buffers.add(b);
                }
                for (long i = 0; i < count && failure == null; i++) {
                    if (flushInterval != 0 && i > 0 && i % flushInterval == 0) {
                        if (!noDrain) {
                            slots.acquire(inFlight);
                        }
                        target.flush();
                        if (!noDrain) {
                            slots.release(inFlight);
                        }
                    }
                    long off = offsetOf(i);
                    if (off + bufsize > imageSize) {
                        throw new IOException("request " + i + " of " + bufsize + " bytes at offset " + off
                                + " runs past the end of the image (" + imageSize + " bytes)");
                    }
                    slots.acquire();
                    MemorySegment b = buffers.poll();
                    int n = (int) i;
                    long t0 = System.nanoTime();
                    target.submit(write, off, b).whenComplete((v, e) -> {
                        latencies[n] = System.nanoTime() - t0;
                        if (e != null) {
                            failure = e;
                        }
                        buffers.add(b);
                        slots.release();
                    });
                }
                slots.acquire(inFlight); // every request completed before the buffers go
            }
            if (failure != null) {
                throw failure instanceof Exception e ? e : new RuntimeException(failure);
            }
        }

        /**
         * The asynchronous run without flushes: {@code depth} lanes, each with a buffer and one request in flight;
         * a request's completion starts the lane's next one (on the completing thread, as an event-driven
         * embedder such as a virtio queue would), so no thread waits for a free slot and is woken per request.
         * A future already complete when it is returned (a read the engine finished inside the call) is
         * followed in a loop, not by recursion.
         */
        void goLanes() throws Exception {
            int lanes = (int) Math.min(depth, count);
            java.util.concurrent.CountDownLatch finished = new java.util.concurrent.CountDownLatch(lanes);
            try (Arena arena = Arena.ofShared()) {
                for (int k = 0; k < lanes; k++) {
                    MemorySegment b = arena.allocate(bufsize, 4096);
                    if (write) {
                        b.fill((byte) pattern);
                    }
                    lane(b, finished);
                }
                finished.await(); // every request completed before the buffers go
            }
            if (failure != null) {
                throw failure instanceof Exception e ? e : new RuntimeException(failure);
            }
        }

        private void lane(MemorySegment b, java.util.concurrent.CountDownLatch finished) {
            while (true) {
                long i = failure == null ? next.getAndIncrement() : count;
                long off = i < count ? offsetOf(i) : 0;
                if (i >= count || off + bufsize > imageSize) {
                    if (i < count) {
                        failure = new IOException("request " + i + " of " + bufsize + " bytes at offset " + off
                                + " runs past the end of the image (" + imageSize + " bytes)");
                    }
                    finished.countDown();
                    return;
                }
                long t0 = System.nanoTime();
                CompletableFuture<Void> f = target.submit(write, off, b);
                if (!f.isDone()) {
                    f.whenComplete((v, e) -> {
                        finish((int) i, t0, e);
                        lane(b, finished);
                    });
                    return;
                }
                finish((int) i, t0, f.isCompletedExceptionally() ? f.exceptionNow() : null);
            }
        }

        private void finish(int i, long t0, Throwable e) {
            latencies[i] = System.nanoTime() - t0;
            if (e != null) {
                failure = e;
            }
        }

        void work() {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment buf = arena.allocate(bufsize, 4096);
                if (write) {
                    buf.fill((byte) pattern);
                }
                while (failure == null) {
                    long i = next.getAndIncrement();
                    if (i >= count) {
                        return;
                    }
                    if (i >= released) {
                        synchronized (gate) {
                            while (i >= released && failure == null) {
                                gate.wait();
                            }
                        }
                    }
                    long off = offsetOf(i);
                    if (off + bufsize > imageSize) {
                        throw new IOException("request " + i + " of " + bufsize + " bytes at offset " + off
                                + " runs past the end of the image (" + imageSize + " bytes)");
                    }
                    long t0 = System.nanoTime();
                    if (write) {
                        target.write(off, buf);
                    } else {
                        target.read(off, buf);
                    }
                    latencies[(int) i] = System.nanoTime() - t0;
                    long done = completed.incrementAndGet();
                    if (flushInterval != 0 && done % flushInterval == 0) {
                        target.flush();
                        if (!noDrain) {
                            synchronized (gate) {
                                released = done + flushInterval;
                                gate.notifyAll();
                            }
                        }
                    }
                }
            } catch (Throwable e) {
                failure = e;
                synchronized (gate) {
                    gate.notifyAll();
                }
            }
        }
    }

    private void report(PrintWriter out, Run run, double seconds, long bufsize) {
        long[] lat = run.latencies.clone();
        Arrays.sort(lat);
        double iops = count / seconds;
        double mibs = iops * bufsize / (1 << 20);
        Map<String, Object> pct = new LinkedHashMap<>();
        for (double p : new double[] {50, 90, 99, 99.9}) {
            pct.put("p" + (p == Math.rint(p) ? String.valueOf((int) p) : String.valueOf(p)), us(lat[idx(lat, p)]));
        }
        pct.put("max", us(lat[lat.length - 1]));
        if (output.equals("json")) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("filename", filename);
            m.put("format", format);
            m.put("operation", write ? "write" : "read");
            m.put("requests", count);
            m.put("request-size", bufsize);
            m.put("depth", depth);
            m.put("engine", engineLine);
            m.put("seconds", Math.round(seconds * 1e6) / 1e6);
            m.put("iops", Math.round(iops * 10) / 10.0);
            m.put("mib-per-second", Math.round(mibs * 100) / 100.0);
            m.put("latency-us", pct);
            if (stats != null) {
                m.putAll(stats);
            } else {
                m.put("syncs", rawSyncs);
            }
            out.println(JsonWriter.pretty(m));
            out.flush();
            return;
        }
        StringBuilder l = new StringBuilder();
        pct.forEach((k, v) -> l.append(l.length() == 0 ? "" : ", ").append(k).append(' ').append(v));
        out.printf(Locale.ROOT, "%.0f IOPS, %.2f MiB/s; latency (us): %s%n", iops, mibs, l);
        if (image != null) {
            out.println("L2 cache: " + image.l2CacheStatistics());
            out.println("refcount cache: " + image.refcountCacheStatistics());
            out.println("fdatasync calls: " + stats.get("syncs"));
        } else {
            out.println("fdatasync calls: " + rawSyncs);
        }
        out.printf(Locale.ROOT, "Run completed in %3.3f seconds.%n", seconds);
        out.flush();
    }

    private static int idx(long[] sorted, double p) {
        return (int) Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
    }

    private static double us(long nanos) {
        return Math.round(nanos / 100.0) / 10.0;
    }
}
