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
import java.util.function.Consumer;

/**
 * Runs the requests of one connection on the disk and writes their replies: the one place that knows how an
 * NBD command maps onto {@link Disk}. Each request runs on a virtual thread of its own ({@link #submit}), so
 * many are in flight and their replies go out in the order they finish, as the protocol allows; the
 * connection bounds how many bytes they hold.
 *
 * <p>Checks come before any work: unknown commands and flags, ranges past the end, lengths over
 * {@link NbdProtocol#MAX_PAYLOAD}, writes to a read-only export each get the protocol's error and change
 * nothing. Flush covers every request that returned before it, on any connection (the disk's rule), which is
 * what {@code CAN_MULTI_CONN} promises; FUA is a write followed by a flush.
 */
final class RequestDispatcher {
    /** One request as read off the wire; {@code payload} holds a write's data. */
    record Request(int flags, int type, long cookie, long offset, long length, ByteBuffer payload) {}

    /** At most this many block status descriptors in one reply (bounds its size: 8 bytes each). */
    private static final int MAX_DESCRIPTORS = 1 << 16;

    private final Export export;
    private final Disk disk;
    private final ChainStatus chain;
    private final Handshake.Result session;
    private final ReplyWriter out;
    private final Consumer<String> log;
    private final BufferPool buffers;

    RequestDispatcher(Handshake.Result session, ReplyWriter out, Consumer<String> log, BufferPool buffers) {
        this.buffers = buffers;
        this.session = session;
        this.export = session.export();
        this.disk = export.disk();
        this.chain = ChainStatus.of(disk);
        this.out = out;
        this.log = log;
    }

    /** Runs {@code r} asynchronously; {@code done} runs after its reply was written or failed. */
    void submit(Request r, Runnable done, Consumer<IOException> replyFailed) {
        Thread.ofVirtual().name("nbd-request").start(() -> {
            try {
                handle(r);
            } catch (IOException e) {
                replyFailed.accept(e);
            } finally {
                buffers.give(r.payload());
                done.run();
            }
        });
    }

    /** Runs {@code r} and writes its reply; an exception means the reply could not be written. */
    void handle(Request r) throws IOException {
        int error;
        String message;
        try {
            error = check(r);
            message = error == 0 ? null : "invalid request";
            if (error == 0) {
                switch (r.type()) {
                    case CMD_READ -> {
                        read(r);
                        return;
                    }
                    case CMD_BLOCK_STATUS -> {
                        blockStatus(r);
                        return;
                    }
                    case CMD_WRITE -> write(r);
                    case CMD_WRITE_ZEROES -> writeZeroes(r);
                    case CMD_TRIM -> trim(r);
                    case CMD_FLUSH -> disk.flush();
                    case CMD_CACHE -> { } // advisory: the metadata is cached on first use anyway
                    default -> throw new IllegalStateException("checked above");
                }
            }
        } catch (FastZeroUnsupportedException e) {
            error = ENOTSUP;
            message = e.getMessage();
        } catch (IOException | RuntimeException e) {
            message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            error = errno(e);
            log.accept("request " + r.type() + " at " + Long.toUnsignedString(r.offset()) + " failed: " + message);
        }
        if (error != 0 && session.structured() && (r.type() == CMD_READ || r.type() == CMD_BLOCK_STATUS)) {
            out.structuredError(r.cookie(), error, message);
        } else {
            out.simple(r.cookie(), error, null);
        }
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

    private void read(Request r) throws IOException {
        ByteBuffer buf = buffers.take((int) r.length());
        try {
            read(r, buf, MemorySegment.ofBuffer(buf));
        } finally {
            buffers.give(buf);
        }
    }

    private void read(Request r, ByteBuffer buf, MemorySegment seg) throws IOException {
        int len = (int) r.length();
        boolean holes = session.structured() && (r.flags() & CMD_FLAG_DF) == 0 && len > 0;
        if (!holes) {
            disk.read(r.offset(), seg);
            if (session.structured()) {
                out.send(new ReplyWriter.Structured(r.cookie()).chunk(REPLY_TYPE_OFFSET_DATA,
                        ByteBuffer.allocate(8).putLong(0, r.offset()), buf));
            } else {
                out.simple(r.cookie(), 0, buf);
            }
            return;
        }
        // Ranges that read as zeros go out as holes: the client need not receive (nor we read) their bytes.
        ReplyWriter.Structured reply = new ReplyWriter.Structured(r.cookie());
        long end = r.offset() + len;
        long pos = r.offset();
        while (pos < end) {
            ChainStatus.Extent e = chain.status(pos, end - pos);
            long n = Math.max(1, Math.min(e.length(), end - pos));
            long stop = pos + n;
            boolean zero = e.zero();
            while (stop < end) { // merge the following extents of the same kind into one chunk
                ChainStatus.Extent next = chain.status(stop, end - stop);
                if (next.zero() != zero) {
                    break;
                }
                stop += Math.max(1, Math.min(next.length(), end - stop));
            }
            int from = (int) (pos - r.offset());
            int count = (int) (stop - pos);
            if (zero) {
                reply.chunk(REPLY_TYPE_OFFSET_HOLE, ByteBuffer.allocate(12).putLong(0, pos).putInt(8, count));
            } else {
                disk.read(pos, seg.asSlice(from, count));
                reply.chunk(REPLY_TYPE_OFFSET_DATA, ByteBuffer.allocate(8).putLong(0, pos), buf.slice(from, count));
            }
            pos = stop;
        }
        out.send(reply);
    }

    private void write(Request r) throws IOException {
        MemorySegment data = MemorySegment.ofBuffer(r.payload());
        if (export.detectZeroes() != Export.DetectZeroes.OFF && allZero(data)) {
            boolean unmap = export.detectZeroes() == Export.DetectZeroes.UNMAP && export.discard();
            disk.writeZeroes(r.offset(), data.byteSize(), ZeroFlag.unmapIf(unmap));
        } else {
            disk.write(r.offset(), data);
        }
        fua(r);
    }

    private void writeZeroes(Request r) throws IOException {
        Set<ZeroFlag> flags = EnumSet.noneOf(ZeroFlag.class);
        // Like QEMU: a zero write may deallocate only where the export was opened with discard=unmap.
        if ((r.flags() & CMD_FLAG_NO_HOLE) == 0 && export.discard()) {
            flags.add(ZeroFlag.MAY_UNMAP);
        }
        if ((r.flags() & CMD_FLAG_FAST_ZERO) != 0) {
            flags.add(ZeroFlag.NO_FALLBACK);
        }
        if (r.length() > 0) {
            disk.writeZeroes(r.offset(), r.length(), flags);
        }
        fua(r);
    }

    private void trim(Request r) throws IOException {
        if (export.discard() && r.length() > 0) {
            disk.discard(r.offset(), r.length());
        }
        fua(r);
    }

    private void fua(Request r) throws IOException {
        if ((r.flags() & CMD_FLAG_FUA) != 0) {
            disk.flush();
        }
    }

    /** One descriptor of a block status reply. */
    private record Descriptor(long length, int flags) {}

    private void blockStatus(Request r) throws IOException {
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
        ReplyWriter.Structured reply = new ReplyWriter.Structured(r.cookie());
        if (session.baseAllocation()) {
            reply.chunk(REPLY_TYPE_BLOCK_STATUS, descriptors(CONTEXT_BASE_ALLOCATION, base, one));
        }
        if (session.allocationDepth()) {
            reply.chunk(REPLY_TYPE_BLOCK_STATUS, descriptors(CONTEXT_ALLOCATION_DEPTH, depth, one));
        }
        out.send(reply);
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
    private static int errno(Exception e) {
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
