package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The handshake and the transmission phase byte by byte: what real clients rely on but do not show. */
@Timeout(120)
class ProtocolTest {
    @TempDir
    Path dir;

    @Test
    void optionsAreAnsweredAsTheSpecSays() throws Exception {
        Path img = Qemu.create(dir, "a.qcow2", null, "1M");
        try (Served s = Served.start(img, 1); TestClient c = new TestClient(s.server.address()).greet()) {
            c.option(42, ByteBuffer.wrap(new byte[] {1, 2, 3}));
            assertThat(c.optionReply().type()).as("unknown option").isEqualTo(REP_ERR_UNSUP);
            c.option(OPT_STARTTLS, ByteBuffer.allocate(0));
            assertThat(c.optionReply().type()).as("no TLS").isEqualTo(REP_ERR_UNSUP);
            c.option(OPT_SET_META_CONTEXT, TestClient.nameAndQueries("", BASE_ALLOCATION));
            assertThat(c.optionReply().type()).as("set meta context before structured replies")
                    .isEqualTo(REP_ERR_INVALID);
            c.option(OPT_LIST, ByteBuffer.allocate(0));
            TestClient.OptionReply server = c.expect(REP_SERVER);
            ByteBuffer p = ByteBuffer.wrap(server.payload());
            assertThat(p.getInt()).as("name length").isZero();
            assertThat(new String(server.payload(), 4, server.payload().length - 4, StandardCharsets.UTF_8))
                    .isEqualTo("a test export");
            c.expect(REP_ACK);
            c.option(OPT_INFO, ByteBuffer.allocate(10).putInt(3).put("bad".getBytes()).putShort((short) 0).flip());
            assertThat(c.optionReply().type()).as("unknown export").isEqualTo(REP_ERR_UNKNOWN);
            c.option(OPT_INFO, ByteBuffer.allocate(6).putInt(100).putShort((short) 0).flip());
            assertThat(c.optionReply().type()).as("name length past the option").isEqualTo(REP_ERR_INVALID);
            c.option(OPT_INFO, ByteBuffer.allocate(8).putInt(0).putShort((short) 1).putShort((short) INFO_BLOCK_SIZE)
                    .flip());
            ByteBuffer export = ByteBuffer.wrap(c.expect(REP_INFO).payload());
            assertThat(export.getShort()).isEqualTo((short) INFO_EXPORT);
            assertThat(export.getLong()).isEqualTo(1 << 20);
            ByteBuffer bs = ByteBuffer.wrap(c.expect(REP_INFO).payload());
            assertThat(bs.getShort()).isEqualTo((short) INFO_BLOCK_SIZE);
            assertThat(List.of(bs.getInt(), bs.getInt(), bs.getInt())).containsExactly(1, 4096, MAX_PAYLOAD);
            c.expect(REP_ACK);
            c.option(OPT_LIST_META_CONTEXT, TestClient.nameAndQueries("", "base:"));
            assertThat(new String(c.expect(REP_META_CONTEXT).payload(), 4, BASE_ALLOCATION.length(),
                    StandardCharsets.UTF_8)).isEqualTo(BASE_ALLOCATION);
            c.expect(REP_ACK);
            c.option(OPT_ABORT, ByteBuffer.allocate(0));
            c.expect(REP_ACK);
            assertThat(c.closedByServer()).as("closed after abort").isTrue();
        }
    }

    @Test
    void exportNameWithNoZeroesEntersTransmission() throws Exception {
        Path img = Qemu.create(dir, "b.qcow2", null, "2M");
        try (Served s = Served.start(img, 1); TestClient c = new TestClient(s.server.address()).greet()) {
            c.option(OPT_EXPORT_NAME, ByteBuffer.allocate(0));
            ByteBuffer r = Wire.read(c.ch, 10);
            assertThat(r.getLong()).isEqualTo(2 << 20);
            int flags = Short.toUnsignedInt(r.getShort());
            assertThat(flags & (FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES))
                    .isEqualTo(FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES);
            assertThat(flags & (FLAG_READ_ONLY | FLAG_CAN_MULTI_CONN)).isZero();
            byte[] data = new byte[4096];
            java.util.Arrays.fill(data, (byte) 9);
            c.request(CMD_WRITE, CMD_FLAG_FUA, 1, 4096, 4096, data);
            assertThat(c.reply(0).error()).isZero();
            c.request(CMD_READ, 0, 2, 4096, 4096, null);
            TestClient.Reply rd = c.reply(4096);
            assertThat(rd.cookie()).isEqualTo(2);
            assertThat(rd.payload()).isEqualTo(data);
            c.request(CMD_DISC, 0, 3, 0, 0, null);
            assertThat(c.closedByServer()).isTrue();
        }
        Qemu.requireClean(img, "after a write with FUA");
    }

    @Test
    void structuredReadsSendHolesAndBlockStatusDescribesTheImage() throws Exception {
        Path img = Qemu.create(dir, "c.qcow2", null, "4M");
        Qemu.io(img, "write -P 7 64k 64k");
        try (Served s = Served.start(img, 1); TestClient c = new TestClient(s.server.address()).connect(true)) {
            c.request(CMD_READ, 0, 5, 0, 256 << 10, null);
            List<String> chunks = new ArrayList<>();
            TestClient.Reply r;
            do {
                r = c.reply(0);
                ByteBuffer p = ByteBuffer.wrap(r.payload());
                long off = p.getLong();
                chunks.add((r.type() == REPLY_TYPE_OFFSET_HOLE ? "hole " + off + "+" + p.getInt()
                        : "data " + off + "+" + (r.payload().length - 8)));
            } while (!r.done());
            assertThat(chunks).containsExactly("hole 0+65536", "data 65536+65536", "hole 131072+131072");
            c.request(CMD_READ, CMD_FLAG_DF, 6, 0, 256 << 10, null);
            r = c.reply(0);
            assertThat(r.done()).as("DF: one chunk").isTrue();
            assertThat(r.type()).isEqualTo(REPLY_TYPE_OFFSET_DATA);
            assertThat(r.payload()[8 + (64 << 10)]).isEqualTo((byte) 7);
            c.request(CMD_BLOCK_STATUS, 0, 8, 0, 4 << 20, null);
            r = c.reply(0);
            ByteBuffer p = ByteBuffer.wrap(r.payload());
            assertThat(p.getInt()).isEqualTo(CONTEXT_BASE_ALLOCATION);
            List<String> ext = new ArrayList<>();
            while (p.hasRemaining()) {
                ext.add(p.getInt() + ":" + p.getInt());
            }
            assertThat(ext).containsExactly("65536:3", "65536:0", (4 << 20) - (128 << 10) + ":3");
            c.request(CMD_BLOCK_STATUS, CMD_FLAG_REQ_ONE, 9, 0, 4 << 20, null);
            assertThat(c.reply(0).payload()).hasSize(12);
        }
    }

    @Test
    void requestsArePipelinedAndRepliedOutOfOrder() throws Exception {
        Path img = Qemu.create(dir, "d.qcow2", null, "64M");
        Qemu.io(img, "write -P 3 0 32M");
        try (Served s = Served.start(img, 1); TestClient c = new TestClient(s.server.address()).connect(false)) {
            boolean reordered = false;
            for (int round = 0; round < 20 && !reordered; round++) {
                // a 32 MiB read, then 64 small ones, all sent at once before any reply is read
                ByteBuffer burst = ByteBuffer.allocate(65 * REQUEST_HEADER);
                burst.put(TestClient.header(CMD_READ, 0, 1000, 0, 32 << 20));
                for (int i = 0; i < 64; i++) {
                    burst.put(TestClient.header(CMD_READ, 0, i, 40 << 20, 512));
                }
                Wire.writeFully(c.ch, burst.flip());
                Set<Long> seen = new HashSet<>();
                for (int i = 0; i < 65; i++) {
                    TestClient.Reply r = c.reply(0);
                    assertThat(r.error()).isZero();
                    Wire.read(c.ch, r.cookie() == 1000 ? 32 << 20 : 512);
                    if (r.cookie() != 1000 && !seen.contains(1000L)) {
                        reordered = true;
                    }
                    seen.add(r.cookie());
                }
                assertThat(seen).hasSize(65);
            }
            assertThat(reordered).as("a small read overtook the big one sent before it").isTrue();
        }
    }
}
