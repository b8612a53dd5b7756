package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The fixed newstyle handshake and option haggling of one connection, up to the transmission phase
 * ({@code EXPORT_NAME} or {@code GO}) or the client's {@code ABORT}.
 *
 * <p>Every length the client sends is checked against what is left of its option before anything is read or
 * allocated; an option longer than {@link NbdProtocol#MAX_OPTION} is answered {@code ERR_TOO_BIG} and the
 * connection closed. Unknown options get {@code ERR_UNSUP}.
 *
 * <p>TLS: without credentials the server is in the spec's NOTLS mode ({@code STARTTLS} gets {@code ERR_UNSUP}).
 * With credentials it is in FORCEDTLS mode: until {@code STARTTLS} every option but {@code ABORT} gets
 * {@code ERR_TLS_REQD}, and an {@code EXPORT_NAME} (which cannot be refused) ends the connection; after the
 * {@code ACK} to {@code STARTTLS} the TLS handshake runs and the haggling goes on inside TLS, where a second
 * {@code STARTTLS} is {@code ERR_INVALID}.
 */
final class Handshake {
    /** What the client chose: the export and, for the transmission phase, the reply style and contexts. */
    record Result(Export export, boolean structured, boolean baseAllocation, boolean allocationDepth,
            ByteChannel in, GatheringByteChannel out) {}

    /** A protocol violation after which the connection is closed. */
    static final class ProtocolException extends IOException {
        private static final long serialVersionUID = 1L;

        ProtocolException(String message) {
            super(message);
        }
    }

    private final Transport socket;
    private final TlsCredentials tls;
    /** The socket until STARTTLS, then the TLS channel over it (both directions: {@link #out} is the same). */
    private ByteChannel ch;
    private GatheringByteChannel out;
    private boolean tlsDone;
    private final Export export;
    private boolean noZeroes;
    private boolean structured;
    private boolean baseAllocation;
    private boolean allocationDepth;

    /** {@code tls}: the server's credentials, or null for a server without TLS. */
    Handshake(Transport socket, Export export, TlsCredentials tls) {
        this.socket = socket;
        this.ch = socket;
        this.out = socket;
        this.export = export;
        this.tls = tls;
    }

    /** Runs the handshake; null if the client aborted. */
    Result run() throws IOException {
        ByteBuffer hello = ByteBuffer.allocate(18).putLong(NBDMAGIC).putLong(IHAVEOPT)
                .putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).flip();
        Wire.writeFully(ch, hello);
        int clientFlags = Wire.read(ch, 4).getInt();
        if ((clientFlags & ~CLIENT_FLAGS_KNOWN) != 0) {
            throw new ProtocolException("unknown client flags 0x" + Integer.toHexString(clientFlags));
        }
        noZeroes = (clientFlags & FLAG_NO_ZEROES) != 0;
        while (true) {
            ByteBuffer h = Wire.read(ch, 16);
            if (h.getLong() != IHAVEOPT) {
                throw new ProtocolException("bad option magic");
            }
            int option = h.getInt();
            long length = Integer.toUnsignedLong(h.getInt());
            if (length > MAX_OPTION) {
                error(option, REP_ERR_TOO_BIG, "option too long");
                throw new ProtocolException("option of " + length + " bytes");
            }
            ByteBuffer data = Wire.read(ch, (int) length);
            if (tls != null && !tlsDone && option != OPT_STARTTLS && option != OPT_ABORT) {
                if (option == OPT_EXPORT_NAME) {
                    throw new ProtocolException("EXPORT_NAME without TLS on a server that requires TLS");
                }
                error(option, REP_ERR_TLS_REQD, "TLS is required: send STARTTLS first");
                continue;
            }
            switch (option) {
                case OPT_STARTTLS -> startTls(option, data);
                case OPT_EXPORT_NAME -> {
                    String name = string(data, data.remaining());
                    if (!name.equals(export.name())) {
                        throw new ProtocolException("no export named '" + name + "'");
                    }
                    ByteBuffer b = ByteBuffer.allocate(noZeroes ? 10 : 134).putLong(export.disk().size())
                            .putShort((short) export.transmissionFlags());
                    Wire.writeFully(ch, b.position(b.capacity()).flip());
                    return result();
                }
                case OPT_ABORT -> {
                    reply(option, REP_ACK, null);
                    return null;
                }
                case OPT_LIST -> list(option, data);
                case OPT_INFO, OPT_GO -> {
                    if (info(option, data) && option == OPT_GO) {
                        return result();
                    }
                }
                case OPT_STRUCTURED_REPLY -> {
                    if (data.hasRemaining()) {
                        error(option, REP_ERR_INVALID, "structured reply takes no data");
                    } else {
                        structured = true;
                        reply(option, REP_ACK, null);
                    }
                }
                case OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT -> metaContext(option, data);
                default -> error(option, REP_ERR_UNSUP, "option " + option + " is not supported");
            }
        }
    }

    private Result result() {
        return new Result(export, structured, structured && baseAllocation, structured && allocationDepth, ch, out);
    }

    private void startTls(int option, ByteBuffer data) throws IOException {
        if (tls == null) {
            error(option, REP_ERR_UNSUP, "this server has no TLS credentials");
        } else if (tlsDone) {
            error(option, REP_ERR_INVALID, "TLS is already on");
        } else if (data.hasRemaining()) {
            error(option, REP_ERR_INVALID, "STARTTLS takes no data");
        } else {
            reply(option, REP_ACK, null);
            TlsChannel t = new TlsChannel(socket, tls.newEngine());
            try {
                t.handshake();
            } catch (javax.net.ssl.SSLException e) {
                throw new ProtocolException("TLS handshake failed: " + e.getMessage());
            }
            ch = t;
            out = t;
            tlsDone = true;
        }
    }

    private void list(int option, ByteBuffer data) throws IOException {
        if (data.hasRemaining()) {
            error(option, REP_ERR_INVALID, "list takes no data");
            return;
        }
        byte[] name = export.name().getBytes(StandardCharsets.UTF_8);
        byte[] desc = export.description() == null ? new byte[0]
                : export.description().getBytes(StandardCharsets.UTF_8);
        reply(option, REP_SERVER, ByteBuffer.allocate(4 + name.length + desc.length).putInt(name.length).put(name)
                .put(desc).flip());
        reply(option, REP_ACK, null);
    }

    /** INFO or GO; true if the export was described (for GO: the transmission phase starts). */
    private boolean info(int option, ByteBuffer data) throws IOException {
        String name = lengthPrefixedString(data);
        if (name == null || data.remaining() < 2) {
            error(option, REP_ERR_INVALID, "malformed request");
            return false;
        }
        int n = Short.toUnsignedInt(data.getShort());
        if (data.remaining() != 2 * n) {
            error(option, REP_ERR_INVALID, "malformed information requests");
            return false;
        }
        if (!name.equals(export.name())) {
            error(option, REP_ERR_UNKNOWN, "no export named '" + name + "'");
            return false;
        }
        reply(option, REP_INFO, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT).putLong(export.disk().size())
                .putShort((short) export.transmissionFlags()).flip());
        boolean sentName = false;
        boolean sentDesc = false;
        boolean sentSize = false;
        for (int i = 0; i < n; i++) {
            int type = Short.toUnsignedInt(data.getShort());
            if (type == INFO_NAME && !sentName) {
                sentName = true;
                byte[] b = export.name().getBytes(StandardCharsets.UTF_8);
                reply(option, REP_INFO, ByteBuffer.allocate(2 + b.length).putShort((short) INFO_NAME).put(b).flip());
            } else if (type == INFO_DESCRIPTION && !sentDesc && export.description() != null) {
                sentDesc = true;
                byte[] b = export.description().getBytes(StandardCharsets.UTF_8);
                reply(option, REP_INFO, ByteBuffer.allocate(2 + b.length).putShort((short) INFO_DESCRIPTION).put(b)
                        .flip());
            } else if (type == INFO_BLOCK_SIZE && !sentSize) {
                sentSize = true;
                reply(option, REP_INFO, ByteBuffer.allocate(14).putShort((short) INFO_BLOCK_SIZE).putInt(1)
                        .putInt(PREFERRED_BLOCK).putInt(MAX_PAYLOAD).flip());
            }
        }
        reply(option, REP_ACK, null);
        return true;
    }

    private void metaContext(int option, ByteBuffer data) throws IOException {
        boolean set = option == OPT_SET_META_CONTEXT;
        if (set && !structured) {
            error(option, REP_ERR_INVALID, "set meta context needs structured replies first");
            return;
        }
        String name = lengthPrefixedString(data);
        if (name == null || data.remaining() < 4) {
            error(option, REP_ERR_INVALID, "malformed request");
            return;
        }
        long queries = Integer.toUnsignedLong(data.getInt());
        List<String> asked = new ArrayList<>();
        for (long i = 0; i < queries; i++) {
            String q = lengthPrefixedString(data);
            if (q == null) {
                error(option, REP_ERR_INVALID, "malformed query");
                return;
            }
            asked.add(q);
        }
        if (data.hasRemaining()) {
            error(option, REP_ERR_INVALID, "trailing bytes");
            return;
        }
        if (!name.equals(export.name())) {
            error(option, REP_ERR_UNKNOWN, "no export named '" + name + "'");
            return;
        }
        boolean base = false;
        boolean depth = false;
        if (asked.isEmpty() && !set) {
            base = depth = true;
        }
        for (String q : asked) {
            base |= q.equals(BASE_ALLOCATION) || (!set && q.equals("base:"));
            depth |= q.equals(ALLOCATION_DEPTH) || (!set && q.equals("qemu:"));
        }
        if (set) {
            baseAllocation = base;
            allocationDepth = depth;
        }
        if (base) {
            metaContextReply(option, CONTEXT_BASE_ALLOCATION, BASE_ALLOCATION);
        }
        if (depth) {
            metaContextReply(option, CONTEXT_ALLOCATION_DEPTH, ALLOCATION_DEPTH);
        }
        reply(option, REP_ACK, null);
    }

    private void metaContextReply(int option, int id, String name) throws IOException {
        byte[] b = name.getBytes(StandardCharsets.UTF_8);
        reply(option, REP_META_CONTEXT, ByteBuffer.allocate(4 + b.length).putInt(id).put(b).flip());
    }

    /** A u32 length then that many bytes of UTF-8, or null if the length overruns the option. */
    private static String lengthPrefixedString(ByteBuffer data) {
        if (data.remaining() < 4) {
            return null;
        }
        long n = Integer.toUnsignedLong(data.getInt());
        return n > data.remaining() ? null : string(data, (int) n);
    }

    private static String string(ByteBuffer data, int n) {
        byte[] b = new byte[n];
        data.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private void reply(int option, int type, ByteBuffer payload) throws IOException {
        int len = payload == null ? 0 : payload.remaining();
        ByteBuffer h = ByteBuffer.allocate(20).putLong(OPTION_REPLY_MAGIC).putInt(option).putInt(type).putInt(len)
                .flip();
        Wire.writeFully(ch, h, payload == null ? ByteBuffer.allocate(0) : payload);
    }

    /** An error reply with a message for the user (the spec allows a UTF-8 string as the payload). */
    private void error(int option, int type, String message) throws IOException {
        reply(option, type, ByteBuffer.wrap(message.getBytes(StandardCharsets.UTF_8)));
    }
}
