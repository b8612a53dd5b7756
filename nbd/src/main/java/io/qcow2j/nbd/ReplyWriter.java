package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes the replies of one connection in the transmission phase. Requests finish in any order; each reply
 * (all chunks of a structured reply) is written whole under {@link #lock}, so replies never interleave
 * mid-message. A {@link ReentrantLock} rather than {@code synchronized}: a virtual thread blocked on a slow
 * client parks instead of pinning its carrier.
 */
final class ReplyWriter {
    private final GatheringByteChannel ch;
    /** Guards the channel's write side: one reply at a time. */
    private final ReentrantLock lock = new ReentrantLock();

    ReplyWriter(GatheringByteChannel ch) {
        this.ch = ch;
    }

    /** A simple reply: error (0 = success) and, for a successful read, the data. */
    void simple(long cookie, int error, ByteBuffer data) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(16).putInt(SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie).flip();
        send(data == null ? new ByteBuffer[] {h} : new ByteBuffer[] {h, data});
    }

    /** The chunks of one structured reply; the last one gets the DONE flag. */
    static final class Structured {
        private final long cookie;
        private final List<ByteBuffer> parts = new ArrayList<>();
        private ByteBuffer lastHeader;

        Structured(long cookie) {
            this.cookie = cookie;
        }

        /** Adds a chunk of {@code type} whose payload is the concatenation of {@code payload}. */
        Structured chunk(int type, ByteBuffer... payload) {
            long len = 0;
            for (ByteBuffer p : payload) {
                len += p.remaining();
            }
            lastHeader = ByteBuffer.allocate(20).putInt(STRUCTURED_REPLY_MAGIC).putShort((short) 0)
                    .putShort((short) type).putLong(cookie).putInt((int) len).flip();
            parts.add(lastHeader);
            parts.addAll(List.of(payload));
            return this;
        }

        boolean isEmpty() {
            return parts.isEmpty();
        }
    }

    void send(Structured s) throws IOException {
        if (s.isEmpty()) {
            s.chunk(REPLY_TYPE_NONE);
        }
        s.lastHeader.putShort(4, (short) REPLY_FLAG_DONE);
        send(s.parts.toArray(ByteBuffer[]::new));
    }

    /** A structured error reply (one chunk, DONE) with a message for the user. */
    void structuredError(long cookie, int error, String message) throws IOException {
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(m.length, 4096);
        ByteBuffer p = ByteBuffer.allocate(6 + n).putInt(error).putShort((short) n).put(m, 0, n).flip();
        send(new Structured(cookie).chunk(REPLY_TYPE_ERROR, p));
    }

    private void send(ByteBuffer[] bufs) throws IOException {
        lock.lock();
        try {
            long left = 0;
            for (ByteBuffer b : bufs) {
                left += b.remaining();
            }
            while (left > 0) {
                left -= ch.write(bufs);
            }
        } finally {
            lock.unlock();
        }
    }
}
