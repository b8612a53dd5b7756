package io.qcow2j.engine.convert;

import io.qcow2j.engine.ConvertOptions;
import io.qcow2j.engine.CreateOptions;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.ZeroFlag;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * {@code qemu-img convert -O qcow2}: copies the concatenated sources into a qcow2 image, chunk by chunk.
 *
 * <p>The main thread walks the sources' block status ({@link SourceMap}) and hands every chunk of
 * {@value #CHUNK} bytes (aligned, so no two chunks share a target cluster) that holds data to one of
 * {@code parallel} workers; ranges that read as zeros, or are left to the backing file, are skipped without
 * being read. A worker reads the data ranges of its chunk, finds the blocks that are all zeros (blocks of the
 * sparse size rounded up to the target's cluster size: a skipped block is a whole unallocated cluster) and
 * compresses the rest with {@code -c}; all of that runs in parallel. Then it writes its chunk, or, unless
 * out-of-order writes are allowed, leaves it to be written in chunk order by whichever worker finds it next
 * in order (see {@link #ready}), so the target's clusters lie in guest order, as qemu-img's do.
 *
 * <p>A target that reads as zeros from the start (a new image without a backing file, or {@code -n} with
 * {@code --target-is-zero}) needs nothing for zero ranges; otherwise they are written as zeros (unmapped).
 * A target this call created is deleted when the copy fails.
 */
public final class ImageConverter {
    /** Bytes one worker copies at once (qemu-img's buffer, and the largest cluster size). */
    static final int CHUNK = 2 << 20;
    /** Chunks handed out per worker before the main thread waits: each worker has the next one queued. */
    private static final int IN_FLIGHT_PER_WORKER = 2;

    private final SourceMap map;
    private final Qcow2Disk target;
    private final ConvertOptions o;
    private final long block;
    private final boolean zerosNeedWriting;
    private final AtomicLong done = new AtomicLong();
    /**
     * Chunk buffers, allocated once (a fresh native buffer per chunk costs page faults on every chunk): one
     * per chunk in flight. A chunk takes one when it starts and gives it back once written. Freed with the
     * converter (automatic arena).
     */
    private final BlockingQueue<MemorySegment> buffers = new LinkedBlockingQueue<>();
    /** Bounds the chunks in flight to the buffers; released when a chunk's buffer is given back. */
    private final Semaphore inFlight;
    /**
     * In-order mode: chunks copied but not written yet, by index; the next index to write; whether a worker
     * is writing them. A worker that finishes a chunk leaves it here and, unless another worker is already
     * writing, writes every chunk that is next in order itself: nobody waits for a turn, so on a busy
     * machine no chunk waits for a descheduled thread to be woken (qemu-img's coroutines share one thread).
     * Guarded by {@link #ready}.
     */
    private final Map<Long, Chunk> ready = new HashMap<>();
    private long next;
    private boolean writing;

    private ImageConverter(SourceMap map, Qcow2Disk target, ConvertOptions o) {
        this.map = map;
        this.target = target;
        this.o = o;
        int cs = target.header().geometry().clusterSize();
        long sparse = o.sparseSize() == 0 ? cs : Math.max(o.sparseSize(), cs);
        this.block = (sparse + cs - 1) / cs * cs;
        this.zerosNeedWriting = o.sparseSize() == 0 || target.backing().isPresent()
                || (o.targetExists() && !o.targetIsZero());
        int chunks = IN_FLIGHT_PER_WORKER * o.parallel();
        this.inFlight = new Semaphore(chunks);
        Arena arena = Arena.ofAuto();
        for (int i = 0; i < chunks; i++) {
            buffers.add(arena.allocate(CHUNK, 4096));
        }
    }

    /**
     * Converts {@code sources} (concatenated) into the qcow2 image {@code path}, created with {@code create}
     * (its size defaults to the sources' total) unless {@code o.targetExists()}.
     */
    public static void convert(List<Disk> sources, Path path, CreateOptions create, ConvertOptions o)
            throws IOException {
        SourceMap map = new SourceMap(sources, o.topOnly());
        boolean created = false;
        if (!o.targetExists()) {
            CreateOptions c = create.size() == null ? create.toBuilder().size(map.size()).build() : create;
            Images.create(path, c);
            created = true;
        }
        boolean ok = false;
        try (Qcow2Disk target = Images.openQcow2(path, ImageOptions.builder().cacheMode(o.cacheMode()).build())) {
            if (o.targetExists() && target.size() < map.size()) {
                throw new IOException("Target image is smaller than the source (" + target.size() + " < "
                        + map.size() + " bytes)");
            }
            new ImageConverter(map, target, o).run();
            target.flush();
            ok = true;
        } finally {
            if (!ok && created) {
                Files.deleteIfExists(path);
            }
        }
    }

    private void run() throws IOException {
        long size = map.size();
        ExecutorService pool = Executors.newFixedThreadPool(o.parallel(), r -> {
            Thread t = new Thread(r, "qcow2j-convert");
            t.setDaemon(true);
            return t;
        });
        List<Future<?>> futures = new ArrayList<>();
        long index = 0;
        try {
            long pos = 0;
            o.progress().accept(0);
            while (pos < size) {
                SourceMap.Extent e = map.status(pos, size - pos);
                boolean skip = e.kind() == SourceMap.Kind.BACKING
                        || (e.kind() == SourceMap.Kind.ZERO && !zerosNeedWriting);
                if (skip) {
                    pos += e.length();
                    progress(e.length());
                    continue;
                }
                long chunkStart = pos & -(long) CHUNK;
                long chunkEnd = Math.min(size, chunkStart + CHUNK);
                long first = Math.max(chunkStart, pos & -block);
                long my = index++;
                inFlight.acquireUninterruptibly();
                futures.add(pool.submit(() -> {
                    try {
                        copyChunk(my, first, chunkEnd);
                    } catch (IOException ex) {
                        throw new UncheckedIOException(ex);
                    }
                    return null;
                }));
                pos = chunkEnd;
                futures.removeIf(f -> f.isDone() && succeeded(f));
            }
            for (Future<?> f : futures) {
                succeeded(f);
            }
            o.progress().accept(100);
        } catch (RuntimeException e) {
            pool.shutdownNow();
            throw unwrap(e);
        } finally {
            pool.shutdown();
        }
    }

    private static boolean succeeded(Future<?> f) {
        try {
            f.get();
            return true;
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    private static IOException unwrap(RuntimeException e) throws IOException {
        if (e instanceof UncheckedIOException u) {
            throw u.getCause();
        }
        throw e;
    }

    private void progress(long bytes) {
        long size = map.size();
        long d = done.addAndGet(bytes);
        o.progress().accept(size == 0 ? 100 : Math.min(100.0, d * 100.0 / size));
    }

    /** One write of a chunk's plan; {@code compressed}: compressed when the chunk was prepared, committed when written. */
    private record Write(long offset, long length, boolean zeros, Qcow2Disk.CompressedWrite compressed) {
        Write(long offset, long length, boolean zeros) {
            this(offset, length, zeros, null);
        }
    }

    /** A chunk read and planned: its writes, in its buffer; {@code writes} null if it failed before. */
    private record Chunk(long start, long end, MemorySegment buf, List<Write> writes) {}

    /**
     * Copies {@code [start, end)} (the rest of one chunk): reads it, plans it, compresses it; then writes it
     * (out-of-order mode), or leaves it to be written in order ({@link #ready}).
     */
    private void copyChunk(long index, long start, long end) throws IOException {
        MemorySegment buf = buffers.poll(); // never empty: the semaphore counts the buffers
        Chunk chunk = new Chunk(start, end, buf, null);
        try {
            chunk = new Chunk(start, end, buf, prepare(start, end, buf.asSlice(0, end - start)));
        } finally {
            if (o.outOfOrder()) {
                write(chunk);
            } else {
                writeInOrder(index, chunk); // a failed chunk too: it passes the order on
            }
        }
    }

    private List<Write> prepare(long start, long end, MemorySegment buf) throws IOException {
        List<SourceMap.Extent> parts = map.extents(start, end - start);
        for (SourceMap.Extent p : parts) {
            MemorySegment part = buf.asSlice(p.start() - start, p.length());
            if (p.kind() == SourceMap.Kind.DATA) {
                map.read(p.start(), part);
            } else {
                part.fill((byte) 0);
            }
        }
        List<Write> writes = plan(parts, start, end, buf);
        if (o.compress()) { // compressed here, in parallel with the other workers; the commit comes in order
            for (int i = 0; i < writes.size(); i++) {
                Write w = writes.get(i);
                if (!w.zeros() && wholeClusters(w)) {
                    writes.set(i, new Write(w.offset(), w.length(), false,
                            target.prepareCompressed(w.offset(), buf.asSlice(w.offset() - start, w.length()))));
                }
            }
        }
        return writes;
    }

    /** Leaves {@code chunk} to be written in order, and writes what is next in order unless a worker is. */
    private void writeInOrder(long index, Chunk chunk) throws IOException {
        synchronized (ready) {
            ready.put(index, chunk);
            if (writing) {
                return;
            }
            writing = true;
        }
        while (true) {
            Chunk c;
            synchronized (ready) {
                c = ready.remove(next);
                if (c == null) {
                    writing = false;
                    return;
                }
                next++;
            }
            try {
                write(c);
            } catch (IOException | RuntimeException e) {
                synchronized (ready) {
                    writing = false; // the next chunk left here (or its worker) goes on; this copy has failed
                }
                throw e;
            }
        }
    }

    /** Makes a chunk's writes, then gives its buffer back. */
    private void write(Chunk c) throws IOException {
        try {
            if (c.writes() == null) {
                return;
            }
            for (Write w : c.writes()) {
                if (w.zeros()) {
                    target.writeZeroes(w.offset(), w.length(), ZeroFlag.unmapIf(true));
                } else if (w.compressed() != null) {
                    w.compressed().commit();
                } else {
                    target.write(w.offset(), c.buf().asSlice(w.offset() - c.start(), w.length()));
                }
            }
            progress(c.end() - c.start());
        } finally {
            buffers.add(c.buf());
            inFlight.release();
        }
    }

    private boolean wholeClusters(Write w) {
        int cs = target.header().geometry().clusterSize();
        return (w.offset() & (cs - 1)) == 0
                && ((w.length() & (cs - 1)) == 0 || w.offset() + w.length() == target.size());
    }

    /**
     * The writes of a chunk: block by block (aligned to the block size), a block left to the backing file is
     * skipped, a block of zeros is skipped or written as zeros, a block of data is written; neighbouring
     * writes of the same kind are merged. A block partly left to the backing file writes only its other parts.
     */
    private List<Write> plan(List<SourceMap.Extent> parts, long start, long end, MemorySegment buf) {
        List<Write> out = new ArrayList<>();
        long pos = start;
        while (pos < end) {
            long blockEnd = Math.min(end, (pos / block + 1) * block);
            List<SourceMap.Extent> in = overlapping(parts, pos, blockEnd);
            boolean anyBacking = in.stream().anyMatch(x -> x.kind() == SourceMap.Kind.BACKING);
            if (anyBacking) {
                for (SourceMap.Extent x : in) {
                    long a = Math.max(pos, x.start());
                    long b = Math.min(blockEnd, x.start() + x.length());
                    if (x.kind() != SourceMap.Kind.BACKING) {
                        add(out, a, b - a, x.kind() == SourceMap.Kind.ZERO && o.sparseSize() != 0);
                    }
                }
            } else {
                boolean zero = o.sparseSize() != 0 && isZero(buf.asSlice(pos - start, blockEnd - pos));
                if (!zero) {
                    add(out, pos, blockEnd - pos, false);
                } else if (zerosNeedWriting) {
                    add(out, pos, blockEnd - pos, true);
                }
            }
            pos = blockEnd;
        }
        return out;
    }

    private static List<SourceMap.Extent> overlapping(List<SourceMap.Extent> parts, long a, long b) {
        List<SourceMap.Extent> r = new ArrayList<>();
        for (SourceMap.Extent x : parts) {
            if (x.start() < b && x.start() + x.length() > a) {
                r.add(x);
            }
        }
        return r;
    }

    private static void add(List<Write> out, long offset, long length, boolean zeros) {
        if (length <= 0) {
            return;
        }
        Write last = out.isEmpty() ? null : out.getLast();
        if (last != null && last.zeros() == zeros && last.offset() + last.length() == offset) {
            out.set(out.size() - 1, new Write(last.offset(), last.length() + length, zeros));
        } else {
            out.add(new Write(offset, length, zeros));
        }
    }

    private static final MemorySegment ZEROS = MemorySegment.ofArray(new byte[64 << 10]);

    static boolean isZero(MemorySegment seg) {
        for (long pos = 0; pos < seg.byteSize(); pos += ZEROS.byteSize()) {
            long n = Math.min(ZEROS.byteSize(), seg.byteSize() - pos);
            if (MemorySegment.mismatch(seg, pos, pos + n, ZEROS, 0, n) != -1) {
                return false;
            }
        }
        return true;
    }
}
