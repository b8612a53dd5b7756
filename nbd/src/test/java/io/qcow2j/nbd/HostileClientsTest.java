package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Clients that lie, stop mid-message, never read, or come by the thousand: each gets the protocol's error or a
 * closed connection, the server keeps serving, memory stays bounded and the image stays clean.
 */
@Timeout(120)
class HostileClientsTest {
    @TempDir
    Path dir;

    /** The server still serves: qemu-io writes and reads back through a new connection. */
    private void stillServes(Served s) {
        String out = Qemu.run(dir, "qemu-io", "-f", "raw", "-c", "write -P 0x61 0 4k", "-c", "read -P 0x61 0 4k",
                s.uri());
        assertThat(out).doesNotContain("fail");
    }

    @Test
    void badRequestsGetTheProtocolsErrorsAndTheConnectionGoesOn() throws Exception {
        Path img = Qemu.create(dir, "a.qcow2", null, "1M");
        try (Served s = Served.start(img, 2); TestClient c = new TestClient(s.server.address()).connect(false)) {
            assertThat(c.simpleError(CMD_READ, 0, MAX_PAYLOAD + 1L)).as("oversized read").isEqualTo(EOVERFLOW);
            assertThat(c.simpleError(CMD_READ, 1 << 20, 1)).as("read past the end").isEqualTo(EINVAL);
            assertThat(c.simpleError(CMD_READ, -4096, 8192)).as("offset near 2^64").isEqualTo(EINVAL);
            assertThat(c.simpleError(CMD_CACHE, (1 << 20) - 1, 2)).as("cache past the end").isEqualTo(EINVAL);
            assertThat(c.simpleError(99, 0, 0)).as("unknown command").isEqualTo(EINVAL);
            assertThat(c.simpleError(CMD_TRIM, 1 << 20, 4096)).as("trim past the end").isEqualTo(ENOSPC);
            assertThat(c.simpleError(CMD_WRITE_ZEROES, 0, 0xffffffffL)).as("zeroes past the end").isEqualTo(ENOSPC);
            assertThat(c.simpleError(CMD_FLUSH, 4096, 0)).as("flush with an offset").isEqualTo(EINVAL);
            assertThat(c.simpleError(CMD_BLOCK_STATUS, 0, 4096)).as("block status without context").isEqualTo(EINVAL);
            c.request(CMD_READ, CMD_FLAG_DF, 1, 0, 512, null);
            assertThat(c.reply(0).error()).as("DF without structured replies").isEqualTo(EINVAL);
            c.request(CMD_READ, 0x8000, 1, 0, 512, null);
            assertThat(c.reply(0).error()).as("unknown flag").isEqualTo(EINVAL);
            c.request(CMD_WRITE, 0, 2, (1 << 20) - 100, 200, new byte[200]);
            assertThat(c.reply(0).error()).as("write past the end (payload consumed)").isEqualTo(ENOSPC);
            c.request(CMD_READ, 0, 3, 0, 512, null);
            TestClient.Reply ok = c.reply(512);
            assertThat(ok.error()).as("the connection still works").isZero();
            assertThat(ok.cookie()).isEqualTo(3);
            c.request(CMD_WRITE, 0, 4, 0, MAX_PAYLOAD + 1L, null);
            assertThat(c.reply(0).error()).as("oversized write").isEqualTo(EOVERFLOW);
            assertThat(c.closedByServer()).as("then closed: its payload cannot be skipped").isTrue();
            stillServes(s);
        }
        Qemu.requireClean(img, "after bad requests");
    }

    @Test
    void aReadOnlyExportRefusesWritesWithEperm() throws Exception {
        Path img = Qemu.create(dir, "b.qcow2", null, "1M");
        try (Served s = Served.start(img, 1, true, false, Served.address());
                TestClient c = new TestClient(s.server.address()).connect(false)) {
            assertThat(c.flags & FLAG_READ_ONLY).isNotZero();
            assertThat(c.flags & (FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES)).isZero();
            c.request(CMD_WRITE, 0, 1, 0, 512, new byte[512]);
            assertThat(c.reply(0).error()).isEqualTo(EPERM);
            assertThat(c.simpleError(CMD_WRITE_ZEROES, 0, 512)).isEqualTo(EPERM);
            assertThat(c.simpleError(CMD_TRIM, 0, 512)).isEqualTo(EPERM);
        }
    }

    @Test
    void truncatedAndMalformedMessagesCloseOnlyThatConnection() throws Exception {
        Path img = Qemu.create(dir, "c.qcow2", null, "1M");
        try (Served s = Served.start(img, 4)) {
            try (TestClient c = new TestClient(s.server.address()).greet()) {
                c.option(OPT_GO, ByteBuffer.allocate(0)); // then a lie: 1 GiB of option data
                c.expect(REP_ERR_INVALID);
                Wire.writeFully(c.ch, ByteBuffer.allocate(16).putLong(IHAVEOPT).putInt(OPT_GO).putInt(1 << 30).flip());
                assertThat(c.optionReply().type()).isEqualTo(REP_ERR_TOO_BIG);
                assertThat(c.closedByServer()).isTrue();
            }
            try (TestClient c = new TestClient(s.server.address()).connect(false)) {
                Wire.writeFully(c.ch, ByteBuffer.allocate(28).putInt(0x12345678).rewind());
                assertThat(c.closedByServer()).as("bad request magic").isTrue();
            }
            try (TestClient c = new TestClient(s.server.address()).connect(false)) {
                Wire.writeFully(c.ch, ByteBuffer.allocate(10).putInt(REQUEST_MAGIC).rewind()); // half a header
            }
            try (TestClient c = new TestClient(s.server.address()).connect(false)) {
                // a write that stops in the middle of its payload
                c.request(CMD_WRITE, 0, 1, 0, 65536, null);
                Wire.writeFully(c.ch, ByteBuffer.wrap(new byte[1000]));
            }
            try (TestClient c = new TestClient(s.server.address())) {
                Wire.read(c.ch, 18);
                Wire.writeFully(c.ch, ByteBuffer.allocate(4).putInt(0x80).flip());
                assertThat(c.closedByServer()).as("unknown client flags").isTrue();
            }
            stillServes(s);
        }
        Qemu.requireClean(img, "after truncated messages");
    }

    @Test
    void aClientThatNeverReadsItsRepliesHoldsBoundedMemoryAndStallsOnlyItself() throws Exception {
        Path img = Qemu.create(dir, "d.qcow2", null, "64M");
        try (Served s = Served.start(img, 2); TestClient c = new TestClient(s.server.address()).connect(false)) {
            // 512 reads of 32 MiB = 16 GiB of replies: far more than the test JVM's heap, if the server held them.
            // Sent in one write: the server stops reading once two of them hold its memory, and on a Unix socket
            // each write, however small, takes ~0.8 KiB of the socket's ~208 KiB send buffer, so 512 writes of 28
            // bytes would block this client (as they should) and the test with it.
            ByteBuffer requests = ByteBuffer.allocate(512 * REQUEST_HEADER);
            for (int i = 0; i < 512; i++) {
                requests.put(TestClient.header(CMD_READ, 0, i, 0, MAX_PAYLOAD));
            }
            Wire.writeFully(c.ch, requests.flip());
            Thread.sleep(500);
            stillServes(s);
            Runtime rt = Runtime.getRuntime();
            System.gc();
            assertThat(rt.totalMemory() - rt.freeMemory()).as("heap in use").isLessThan(512L << 20);
        }
        Qemu.requireClean(img, "after a stalled client");
    }

    @Test
    void clientsThatNeverReadShareTheServersBudgetAndAreCutOffWhenOthersStarve() throws Exception {
        Path img = Qemu.create(dir, "g.qcow2", null, "64M");
        long budget = 3 * NbdServer.MIN_BUFFER; // 99 MiB over all clients; each alone could hold 96 MiB
        NbdServer.Options o = new NbdServer.Options(Served.address(), 16, true,
                Duration.ofSeconds(5)).withMaxBuffer(budget, Duration.ofSeconds(1));
        List<TestClient> stalled = new ArrayList<>();
        try (Served s = Served.start(img, o)) {
            try {
                for (int i = 0; i < 6; i++) {
                    TestClient c = new TestClient(s.server.address()).connect(false);
                    stalled.add(c);
                    for (int k = 0; k < 64; k++) { // 2 GiB of replies each, never read
                        c.request(CMD_READ, 0, k, 0, MAX_PAYLOAD, null);
                    }
                }
                Thread.sleep(1000);
                Runtime rt = Runtime.getRuntime();
                System.gc();
                // without the shared budget: 6 clients x 2 reads of 32 MiB = 384 MiB of reply buffers
                assertThat(rt.totalMemory() - rt.freeMemory()).as("heap in use").isLessThan(budget + (128L << 20));
                long t0 = System.nanoTime();
                // its 32 MiB read waits for memory until the stalled clients are cut off, then it is served
                String out = Qemu.run(dir, "qemu-io", "-f", "raw", "-c", "write -P 0x61 0 4k", "-c",
                        "read -P 0x61 0 4k", "-c", "read 0 32M", s.uri());
                assertThat(out).doesNotContain("fail").contains("read 33554432/33554432");
                assertThat((System.nanoTime() - t0) / 1e9).as("seconds until served").isLessThan(30);
                assertThat(s.log).as(String.join("\n", s.log)).anyMatch(l -> l.contains("has not read its replies"));
            } finally {
                for (TestClient c : stalled) {
                    c.close();
                }
            }
        }
        Qemu.requireClean(img, "after stalled clients");
    }

    @Test
    void aThousandConnectionsAtOnceAreAllServed() throws Exception {
        Path img = Qemu.create(dir, "e.qcow2", null, "1M");
        Qemu.io(img, "write -P 0x5c 0 4k");
        List<TestClient> clients = new ArrayList<>();
        try (Served s = Served.start(img, 1000)) {
            try {
                for (int i = 0; i < 1000; i++) {
                    clients.add(new TestClient(s.server.address()).connect(i % 2 == 0));
                }
                assertThat(s.server.clients()).isEqualTo(1000);
                for (TestClient c : clients) {
                    c.request(CMD_READ, CMD_FLAG_DF & 0, 1, 0, 4096, null);
                }
                for (TestClient c : clients) {
                    TestClient.Reply r = c.reply(4096);
                    byte[] data = r.structured() ? java.util.Arrays.copyOfRange(r.payload(), 8, 4104) : r.payload();
                    assertThat(data).containsOnly((byte) 0x5c);
                }
            } finally {
                for (TestClient c : clients) {
                    c.close();
                }
            }
            stillServes(s);
        }
        Qemu.requireClean(img, "after a thousand clients");
    }

    @Test
    void aClientThatNeverFinishesItsHandshakeIsDropped() throws Exception {
        Path img = Qemu.create(dir, "f.qcow2", null, "1M");
        try (Served s = Served.start(img, 1); TestClient idle = new TestClient(s.server.address())) {
            Wire.read(idle.ch, 18); // greeting, then silence
            long t0 = System.nanoTime();
            assertThat(idle.closedByServer()).isTrue();
            assertThat((System.nanoTime() - t0) / 1e9).isLessThan(30);
            stillServes(s); // its slot (-e 1) is free again
        }
    }
}
