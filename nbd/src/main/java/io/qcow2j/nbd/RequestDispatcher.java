package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;

import io.qcow2j.engine.ChainStatus;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.FastZeroUnsupportedException;
import io.qcow2j.engine.ZeroFlag;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Consumer;

/**
 * Runs the requests of one connection on the disk and builds their replies: the one place that knows how an
 * NBD command maps onto {@link Disk}. {@link #start} issues a request through the disk's asynchronous API
 * ({@link Disk#readAsync}, {@link Disk#writeAsync}, ...) and returns a future of its reply, so many requests
 * are in flight at once and their replies go out in the order they finish, as the protocol allows; the
 * connection bounds how many bytes they hold and writes the replies. How the disk runs a request (a virtual
 * thread of the engine's, or straight onto io_uring) is the engine's business, and whatever is fastest there
 * is what the server gets.
 *
 * <p>What has no asynchronous form runs on the calling thread (the connection's reader) before the disk
 * request is issued: the checks, block status ({@code BLOCK_STATUS}, and the hole lookup of a structured
 * read), the zero detection of {@code --detect-zeroes}. Block status reads cached metadata, and where it
 * misses the cache the wait is back-pressure on that one client.
 *
 * <p>Checks come before any work: unknown commands and flags, ranges past the end, lengths over
 * {@link NbdProtocol#MAX_PAYLOAD}, writes to a read-only export each get the protocol's error and change
 * nothing. Flush covers every request whose reply was sent before it, on any connection (the disk's rule),
 * which is what {@code CAN_MULTI_CONN} promises; FUA is a write followed by a flush.
 */
final class RequestDispatcher {
    /**
     * One request as read off the wire; {@code data} holds a write's payload or is a read's destination
     * (allocated by the connection, which gives it back once the reply is written).
     */
    record Request(int flags, int type, long cookie, long offset, long length, ByteBuffer data) {}

    /** At most this many block status descriptors in one reply (bounds its size: 8 bytes each). */
    private static final int MAX_DESCRIPTORS = 1 << 16;

    private final Export export;
    private final Disk disk;
    private final ChainStatus chain;
    private final Handshake.Result session;
    private final Consumer<String> log;

    RequestDispatcher(Handshake.Result session, Consumer<String> log) {
        this.session = session;
        this.export = session.export();
        this.disk = export.disk();
        this.chain = ChainStatus.of(disk);
        this.log = log;
    }

    /**
     * Starts {@code r}; the future completes with its whole reply, never exceptionally (a failure of the disk
     * is an error reply). It may complete on any thread, including one that must not block.
     */
    CompletableFuture<ByteBuffer[]> start(Request r) {
        return start(r, async);
    }

    /**
     * Runs {@code r} on this thread with the disk's blocking methods, for a request the connection serves
     * inline: the returned future is complete. The blocking methods are what the asynchronous ones run (on a
     * virtual thread of their own), so this is the same work without the hand-off to that thread and back.
     */
    CompletableFuture<ByteBuffer[]> run(Request r) {
        return start(r, inline);
    }

    /** The disk operations a request is made of, as futures: started asynchronously, or run right here. */
    private interface Io {
        CompletableFuture<Void> read(long offset, MemorySegment dst);

        CompletableFuture<Void> write(long offset, MemorySegment src);

        CompletableFuture<Void> writeZeroes(long offset, long length, Set<ZeroFlag> flags);

        CompletableFuture<Void> discard(long offset, long length);

        CompletableFuture<Void> flush();
    }

    /** A blocking disk call, for {@link #inline}. */
    @FunctionalInterface
    private interface Call {
        void run() throws IOException;
    }

    private static CompletableFuture<Void> now(Call c) {
        try {
            c.run();
            return CompletableFuture.completedFuture(null);
        } catch (IOException | RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private final Io async = new Io() {
        @Override
        public CompletableFuture<Void> read(long offset, MemorySegment dst) {
            return disk.readAsync(offset, dst);
        }

        @Override
        public CompletableFuture<Void> write(long offset, MemorySegment src) {
            return disk.writeAsync(offset, src);
        }

        @Override
        public CompletableFuture<Void> writeZeroes(long offset, long length, Set<ZeroFlag> flags) {
            return disk.writeZeroesAsync(offset, length, flags);
        }

        @Override
        public CompletableFuture<Void> discard(long offset, long length) {
            return disk.discardAsync(offset, length);
        }

        @Override
        public CompletableFuture<Void> flush() {
            return disk.flushAsync();
        }
    };

    private final Io inline = new Io() {
        @Override
        public CompletableFuture<Void> read(long offset, MemorySegment dst) {
            return now(() -> disk.read(offset, dst));
        }

        @Override
        public CompletableFuture<Void> write(long offset, MemorySegment src) {
            return now(() -> disk.write(offset, src));
        }

        @Override
        public CompletableFuture<Void> writeZeroes(long offset, long length, Set<ZeroFlag> flags) {
            return now(() -> disk.writeZeroes(offset, length, flags));
        }

        @Override
        public CompletableFuture<Void> discard(long offset, long length) {
            return now(() -> disk.discard(offset, length));
        }

        @Override
        public CompletableFuture<Void> flush() {
            return now(disk::flush);
        }
    };

    private CompletableFuture<ByteBuffer[]> start(Request r, Io io) {
        int error = check(r);
        if (error != 0) {
            return CompletableFuture.completedFuture(failure(r, error, "invalid request"));
        }
        try {
            if (r.type() == CMD_READ) {
                return read(r, io);
            }
            if (r.type() == CMD_BLOCK_STATUS) {
                return CompletableFuture.completedFuture(blockStatus(r));
            }
            CompletableFuture<?> work = switch (r.type()) {
                case CMD_WRITE -> fua(r, io, write(r, io));
                case CMD_WRITE_ZEROES -> fua(r, io, writeZeroes(r, io));
                case CMD_TRIM -> fua(r, io, export.discard() && r.length() > 0 ? io.discard(r.offset(), r.length())
                        : CompletableFuture.completedFuture(null));
                case CMD_FLUSH -> io.flush();
                case CMD_CACHE -> CompletableFuture.completedFuture(null); // advisory: cached on first use anyway
                default -> throw new IllegalStateException("checked above");
            };
            return work.handle((v, e) -> e == null ? Replies.simple(r.cookie(), 0, null) : failure(r, e));
        } catch (IOException | RuntimeException e) {
            return CompletableFuture.completedFuture(failure(r, e));
        }
    }

    /** The error reply for a failure of the disk (logged: the client sees only an errno). */
    private ByteBuffer[] failure(Request r, Throwable t) {
        Throwable e = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
        if (e instanceof FastZeroUnsupportedException) {
            return failure(r, ENOTSUP, e.getMessage());
        }
        String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        log.accept("request " + r.type() + " at " + Long.toUnsignedString(r.offset()) + " failed: " + message);
        return failure(r, errno(e), message);
    }

    private ByteBuffer[] failure(Request r, int error, String message) {
        if (session.structured() && (r.type() == CMD_READ || r.type() == CMD_BLOCK_STATUS)) {
            return Replies.structuredError(r.cookie(), error, message);
        }
        return Replies.simple(r.cookie(), error, null);
    }

    /** The protocol's error for a request that must not be run, or 0. */
    private int check(Request r) {
        int allowed = switch (r.type()) {
            case CMD_READ -> session.structured() ? CMD_FLAG_DF : 0;
            case CMD_WRITE, CMD_TRIM -> CMD_FLAG_FUA;
            case CMD_WRITE_ZEROES -> CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO;
            case CMD_BLOCK_STATUS -> CMD_FLAG_REQ_ONE;
            case CMD_FLUSH, CMD_CACHE -> 0;
            default -> -1;
        };
        if (allowed < 0 || (r.flags() & ~allowed) != 0) {
            return EINVAL;
        }
        boolean writes = r.type() == CMD_WRITE || r.type() == CMD_WRITE_ZEROES || r.type() == CMD_TRIM;
        if (writes && export.readOnly()) {
            return EPERM;
        }
        if (r.type() == CMD_FLUSH) {
            return r.offset() != 0 || r.length() != 0 ? EINVAL : 0;
        }
        if ((r.type() == CMD_READ || r.type() == CMD_WRITE) && r.length() > MAX_PAYLOAD) {
            return EOVERFLOW;
        }
        if (r.type() == CMD_BLOCK_STATUS && (r.length() == 0 || !(session.baseAllocation()
                || session.allocationDepth()))) {
            return EINVAL;
        }
        long size = disk.size();
        if (r.offset() < 0 || r.offset() > size || r.length() > size - r.offset()) {
            return writes ? ENOSPC : EINVAL;
        }
        return 0;
    }

    private CompletableFuture<ByteBuffer[]> read(Request r, Io io) throws IOException {
        ByteBuffer buf = r.data();
        MemorySegment seg = MemorySegment.ofBuffer(buf);
        int len = (int) r.length();
        boolean holes = session.structured() && (r.flags() & CMD_FLAG_DF) == 0 && len > 0;
        if (!holes) {
            return io.read(r.offset(), seg).handle((v, e) -> {
                if (e != null) {
                    return failure(r, e);
                }
                return session.structured() ? new Replies.Structured(r.cookie()).chunk(REPLY_TYPE_OFFSET_DATA,
                        ByteBuffer.allocate(8).putLong(0, r.offset()), buf).done()
                        : Replies.simple(r.cookie(), 0, buf);
            });
        }
        // Ranges that read as zeros go out as holes: the client need not receive (nor we read) their bytes.
        // All lookups come first: should one fail, no read into buf is in flight when the error reply goes out.
        List<long[]> runs = new ArrayList<>(); // {start, length, zero ? 1 : 0}
        long end = r.offset() + len;
        long pos = r.offset();
        while (pos < end) {
            ChainStatus.Extent e = chain.status(pos, end - pos);
            long stop = pos + Math.max(1, Math.min(e.length(), end - pos));
            boolean zero = e.zero();
            while (stop < end) { // merge the following extents of the same kind into one chunk
                ChainStatus.Extent next = chain.status(stop, end - stop);
                if (next.zero() != zero) {
                    break;
                }
                stop += Math.max(1, Math.min(next.length(), end - stop));
            }
            runs.add(new long[] {pos, stop - pos, zero ? 1 : 0});
            pos = stop;
        }
        Replies.Structured reply = new Replies.Structured(r.cookie());
        List<CompletableFuture<Void>> reads = new ArrayList<>();
        for (long[] run : runs) {
            int from = (int) (run[0] - r.offset());
            int count = (int) run[1];
            if (run[2] == 1) {
                reply.chunk(REPLY_TYPE_OFFSET_HOLE, ByteBuffer.allocate(12).putLong(0, run[0]).putInt(8, count));
            } else {
                reads.add(io.read(run[0], seg.asSlice(from, count)));
                reply.chunk(REPLY_TYPE_OFFSET_DATA, ByteBuffer.allocate(8).putLong(0, run[0]), buf.slice(from,
                        count));
            }
        }
        return CompletableFuture.allOf(reads.toArray(CompletableFuture[]::new))
                .handle((v, e) -> e == null ? reply.done() : failure(r, e));
    }

    private CompletableFuture<Void> write(Request r, Io io) {
        MemorySegment data = MemorySegment.ofBuffer(r.data());
        if (export.detectZeroes() != Export.DetectZeroes.OFF && allZero(data)) {
            boolean unmap = export.detectZeroes() == Export.DetectZeroes.UNMAP && export.discard();
            return io.writeZeroes(r.offset(), data.byteSize(), ZeroFlag.unmapIf(unmap));
        }
        return io.write(r.offset(), data);
    }

    private CompletableFuture<Void> writeZeroes(Request r, Io io) {
        Set<ZeroFlag> flags = EnumSet.noneOf(ZeroFlag.class);
        // Like QEMU: a zero write may deallocate only where the export was opened with discard=unmap.
        if ((r.flags() & CMD_FLAG_NO_HOLE) == 0 && export.discard()) {
            flags.add(ZeroFlag.MAY_UNMAP);
        }
        if ((r.flags() & CMD_FLAG_FAST_ZERO) != 0) {
            flags.add(ZeroFlag.NO_FALLBACK);
        }
        return r.length() > 0 ? io.writeZeroes(r.offset(), r.length(), flags)
                : CompletableFuture.completedFuture(null);
    }

    /** {@code work}, then a flush if the request has FUA. */
    private static CompletableFuture<?> fua(Request r, Io io, CompletableFuture<?> work) {
        return (r.flags() & CMD_FLAG_FUA) != 0 ? work.thenCompose(v -> io.flush()) : work;
    }

    /** One descriptor of a block status reply. */
    private record Descriptor(long length, int flags) {}

    private ByteBuffer[] blockStatus(Request r) throws IOException {
        boolean one = (r.flags() & CMD_FLAG_REQ_ONE) != 0;
        long end = r.offset() + r.length();
        List<Descriptor> base = new ArrayList<>();
        List<Descriptor> depth = new ArrayList<>();
        long pos = r.offset();
        while (pos < end && base.size() < MAX_DESCRIPTORS && depth.size() < MAX_DESCRIPTORS) {
            ChainStatus.Extent e = chain.status(pos, end - pos);
            long n = Math.max(1, Math.min(e.length(), end - pos));
            add(base, n, (e.data() ? 0 : STATE_HOLE) | (e.zero() ? STATE_ZERO : 0));
            add(depth, n, e.present() ? e.depth() + 1 : 0);
            pos += n;
            if (one && base.size() > 1 && depth.size() > 1) {
                break;
            }
        }
        Replies.Structured reply = new Replies.Structured(r.cookie());
        if (session.baseAllocation()) {
            reply.chunk(REPLY_TYPE_BLOCK_STATUS, descriptors(CONTEXT_BASE_ALLOCATION, base, one));
        }
        if (session.allocationDepth()) {
            reply.chunk(REPLY_TYPE_BLOCK_STATUS, descriptors(CONTEXT_ALLOCATION_DEPTH, depth, one));
        }
        return reply.done();
    }

    private static void add(List<Descriptor> list, long n, int flags) {
        int last = list.size() - 1;
        if (last >= 0 && list.get(last).flags() == flags) {
            list.set(last, new Descriptor(list.get(last).length() + n, flags));
        } else {
            list.add(new Descriptor(n, flags));
        }
    }

    private static ByteBuffer descriptors(int context, List<Descriptor> list, boolean one) {
        int n = one ? 1 : list.size();
        ByteBuffer b = ByteBuffer.allocate(4 + 8 * n).putInt(context);
        for (int i = 0; i < n; i++) {
            b.putInt((int) list.get(i).length()).putInt(list.get(i).flags());
        }
        return b.flip();
    }

    private static boolean allZero(MemorySegment data) {
        for (long i = 0; i < data.byteSize(); i++) {
            if (data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, i) != 0) {
                return false;
            }
        }
        return true;
    }

    /** The protocol's error value for a failure of the disk. */
    private static int errno(Throwable e) {
        if (e instanceof IllegalArgumentException) {
            return EINVAL;
        }
        String m = String.valueOf(e.getMessage());
        if (m.contains("No space left")) {
            return ENOSPC;
        }
        if (m.contains("read-only") || m.contains("Read-only")) {
            return EPERM;
        }
        return EIO;
    }
}
