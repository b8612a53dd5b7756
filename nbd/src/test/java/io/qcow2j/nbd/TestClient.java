package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.net.SocketAddress;

/** A minimal NBD client speaking raw bytes, for tests that must send what real clients never send. */
final class TestClient implements AutoCloseable {
    final SocketChannel ch;
    long size;
    int flags;

    /** One reply: simple (type -1) or one structured chunk. */
    record Reply(boolean structured, int flags, int type, long cookie, int error, byte[] payload) {
        boolean done() {
            return !structured || (flags & REPLY_FLAG_DONE) != 0;
        }
    }

    /** An option reply. */
    record OptionReply(int option, int type, byte[] payload) {}

    TestClient(SocketAddress a) throws IOException {
        ch = SocketChannel.open(a);
        if (!(a instanceof java.net.UnixDomainSocketAddress)) {
            ch.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
        }
    }

    /** Reads the greeting and sends the client flags. */
    TestClient greet() throws IOException {
        ByteBuffer g = Wire.read(ch, 18);
        if (g.getLong() != NBDMAGIC || g.getLong() != IHAVEOPT) {
            throw new IOException("bad greeting");
        }
        Wire.writeFully(ch, ByteBuffer.allocate(4).putInt(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).flip());
        return this;
    }

    void option(int option, ByteBuffer data) throws IOException {
        Wire.writeFully(ch, ByteBuffer.allocate(16).putLong(IHAVEOPT).putInt(option).putInt(data.remaining()).flip(),
                data);
    }

    OptionReply optionReply() throws IOException {
        ByteBuffer h = Wire.read(ch, 20);
        if (h.getLong() != OPTION_REPLY_MAGIC) {
            throw new IOException("bad option reply magic");
        }
        int opt = h.getInt();
        int type = h.getInt();
        int len = h.getInt();
        return new OptionReply(opt, type, Wire.read(ch, len).array());
    }

    static ByteBuffer nameAndQueries(String name, String... queries) {
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(1024).putInt(n.length).put(n).putInt(queries.length);
        for (String q : queries) {
            byte[] qb = q.getBytes(StandardCharsets.UTF_8);
            b.putInt(qb.length).put(qb);
        }
        return b.flip();
    }

    /** Greets, optionally negotiates structured replies and base:allocation, then GO on export "". */
    TestClient connect(boolean structured) throws IOException {
        greet();
        if (structured) {
            option(OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0));
            expect(REP_ACK);
            option(OPT_SET_META_CONTEXT, nameAndQueries("", BASE_ALLOCATION));
            expect(REP_META_CONTEXT);
            expect(REP_ACK);
        }
        option(OPT_GO, ByteBuffer.allocate(6).putInt(0).putShort((short) 0).flip());
        OptionReply info = expect(REP_INFO);
        ByteBuffer p = ByteBuffer.wrap(info.payload());
        p.getShort();
        size = p.getLong();
        flags = Short.toUnsignedInt(p.getShort());
        expect(REP_ACK);
        return this;
    }

    OptionReply expect(int type) throws IOException {
        OptionReply r = optionReply();
        if (r.type() != type) {
            throw new IOException("expected option reply " + type + ", got " + r.type());
        }
        return r;
    }

    static ByteBuffer header(int type, int cmdFlags, long cookie, long offset, long length) {
        return ByteBuffer.allocate(REQUEST_HEADER).putInt(REQUEST_MAGIC).putShort((short) cmdFlags)
                .putShort((short) type).putLong(cookie).putLong(offset).putInt((int) length).flip();
    }

    void request(int type, int cmdFlags, long cookie, long offset, long length, byte[] payload) throws IOException {
        Wire.writeFully(ch, header(type, cmdFlags, cookie, offset, length),
                payload == null ? ByteBuffer.allocate(0) : ByteBuffer.wrap(payload));
    }

    /** Reads one reply or chunk; for a simple reply to a read, pass the read's length. */
    Reply reply(int simpleReadLength) throws IOException {
        ByteBuffer m = Wire.read(ch, 4);
        int magic = m.getInt();
        if (magic == SIMPLE_REPLY_MAGIC) {
            ByteBuffer h = Wire.read(ch, 12);
            int error = h.getInt();
            long cookie = h.getLong();
            byte[] data = error == 0 && simpleReadLength > 0 ? Wire.read(ch, simpleReadLength).array() : new byte[0];
            return new Reply(false, 0, -1, cookie, error, data);
        }
        if (magic != STRUCTURED_REPLY_MAGIC) {
            throw new IOException("bad reply magic " + Integer.toHexString(magic));
        }
        ByteBuffer h = Wire.read(ch, 16);
        int f = Short.toUnsignedInt(h.getShort());
        int type = Short.toUnsignedInt(h.getShort());
        long cookie = h.getLong();
        int len = h.getInt();
        byte[] payload = Wire.read(ch, len).array();
        int error = type == REPLY_TYPE_ERROR ? ByteBuffer.wrap(payload).getInt() : 0;
        return new Reply(true, f, type, cookie, error, payload);
    }

    /** The error of a request without payload reply (simple, or structured with one chunk). */
    int simpleError(int type, long offset, long length) throws IOException {
        request(type, 0, 7, offset, length, null);
        return reply(0).error();
    }

    /** Whether the server closed the connection: the next read sees the end of the stream. */
    boolean closedByServer() throws IOException {
        return ch.read(ByteBuffer.allocate(1)) < 0;
    }

    @Override
    public void close() throws IOException {
        ch.close();
    }
}
