package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The bytes of the transmission phase's replies, built as buffers for one gathering write: a reply is a
 * {@code ByteBuffer[]} whose concatenation is the whole message (all chunks of a structured reply), so the
 * {@link ReplyWriter} can write it without interleaving and without copying the data.
 */
final class Replies {
    private Replies() {}

    /** A simple reply: error (0 = success) and, for a successful read, the data. */
    static ByteBuffer[] simple(long cookie, int error, ByteBuffer data) {
        ByteBuffer h = ByteBuffer.allocate(16).putInt(SIMPLE_REPLY_MAGIC).putInt(error).putLong(cookie).flip();
        return data == null ? new ByteBuffer[] {h} : new ByteBuffer[] {h, data};
    }

    /** The chunks of one structured reply; the last one gets the DONE flag ({@link #done}). */
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

        /** The whole reply, its last chunk flagged DONE (a reply without chunks gets a NONE chunk). */
        ByteBuffer[] done() {
            if (parts.isEmpty()) {
                chunk(REPLY_TYPE_NONE);
            }
            lastHeader.putShort(4, (short) REPLY_FLAG_DONE);
            return parts.toArray(ByteBuffer[]::new);
        }
    }

    /** A structured error reply (one chunk, DONE) with a message for the user. */
    static ByteBuffer[] structuredError(long cookie, int error, String message) {
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(m.length, 4096);
        ByteBuffer p = ByteBuffer.allocate(6 + n).putInt(error).putShort((short) n).put(m, 0, n).flip();
        return new Structured(cookie).chunk(REPLY_TYPE_ERROR, p).done();
    }
}
