package io.qcow2j.nbd;

import static io.qcow2j.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.qcow2j.ffm.UnixServerSocket;
import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server on its own Unix sockets ({@link Transport}): the path rules as {@code qcow2j serve} shows them,
 * a stale socket file replaced, a client blocked in the server's read woken and dropped at stop, and a
 * depth-1 client (the one the arrival spin is for) served and verified by fio. The rest of the suite runs
 * over a Unix socket too with {@code -Dqcow2j.test.nbd.unix=true} ({@link Served#address()}).
 */
@Timeout(120)
class UnixSocketServingTest {
    @TempDir
    Path dir;

    @Test
    void aSocketPathTooLongIsRefusedInOneLineNamingIt() throws Exception {
        Path img = Qemu.create(dir, "a.qcow2", null, "1M");
        String base = dir + "/";
        Path tooLong = Path.of(base + "s".repeat(UnixServerSocket.MAX_PATH_BYTES + 1 - base.length()));
        assertThatThrownBy(() -> Served.start(img, 1, false, false, NbdServer.unixSocket(tooLong)))
                .isInstanceOf(IOException.class)
                .hasMessage("Failed to bind socket " + tooLong + ": Unix domain path too long (108 bytes, at most 107)");
    }

    @Test
    void aStaleSocketIsReplacedAndStopWakesAClientsBlockedRead() throws Exception {
        Path img = Qemu.create(dir, "b.qcow2", null, "1M");
        Path sock = dir.resolve("s.sock");
        UnixServerSocket.bind(sock, 1).close(); // what a killed server leaves: a socket file nobody listens on
        assertThat(Files.exists(sock)).isTrue();
        Served s = Served.start(img, 1, false, false, NbdServer.unixSocket(sock));
        try (TestClient c = new TestClient(s.server.address()).connect(false)) {
            c.request(CMD_READ, 0, 1, 0, 4096, null);
            assertThat(c.reply(4096).error()).isZero();
            // the server's reader now waits in read() for a request that never comes
            long t0 = System.nanoTime();
            s.close();
            assertThat((System.nanoTime() - t0) / 1e9).as("seconds to stop").isLessThan(5);
            assertThat(c.closedByServer()).isTrue();
        }
        assertThat(Files.exists(sock)).as("removed at stop").isFalse();
    }

    @Test
    void aDepthOneClientIsServedAndVerified() throws Exception {
        Path img = Qemu.create(dir, "c.qcow2", null, "16M");
        try (Served s = Served.start(img, 1, false, false, NbdServer.unixSocket(dir.resolve("d.sock")))) {
            String out = Qemu.run(dir, "fio", "--name=qd1", "--ioengine=nbd", "--uri=" + s.uri(), "--iodepth=1",
                    "--rw=randwrite", "--bs=4k", "--size=16M", "--io_size=4M", "--verify=crc32c", "--do_verify=1",
                    "--verify_fatal=1", "--randrepeat=1", "--output-format=terse");
            assertThat(out).doesNotContain("verify: bad");
        }
        Qemu.requireClean(img, "after depth-1 writes over a Unix socket");
    }
}
