package io.qcow2j.ffm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.BindException;
import java.net.SocketException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link UnixServerSocket} and {@link UnixStreamSocket} against themselves and against the JDK's Unix-domain
 * channel: bytes arrive whole and in order both ways (heap and direct buffers, gathering writes), a peer's
 * close is end of input, {@code close()} wakes blocked reads, writes and accepts, {@code available()}
 * counts what waits, and the path rules (length, stale socket files, paths in use).
 */
class UnixSocketTest {
    /** A thread per task: the common pool may have one thread on 2 cores, and these tasks block. */
    private static final Executor THREAD = r -> Thread.ofPlatform().daemon().start(r);
    @TempDir
    Path dir;
    private UnixServerSocket server;
    private Path path;

    @BeforeEach
    void listen() throws IOException {
        path = dir.resolve("s.sock");
        server = UnixServerSocket.bind(path, 8);
    }

    @AfterEach
    void stop() {
        server.close();
    }

    @Test
    void bytesGoBothWaysWholeAndInOrderThroughHeapAndDirectBuffers() throws Exception {
        byte[] up = new byte[3 << 20];
        byte[] down = new byte[3 << 20];
        new Random(1).nextBytes(up);
        new Random(2).nextBytes(down);
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(path));
                UnixStreamSocket s = server.accept()) {
            // the client sends while the server sends too: neither may wait for the other to read
            CompletableFuture<byte[]> sent = CompletableFuture.supplyAsync(() -> {
                try {
                    ByteBuffer header = ByteBuffer.wrap(up, 0, 20);
                    ByteBuffer direct = ByteBuffer.allocateDirect(100_000).put(up, 20, 100_000).flip();
                    ByteBuffer rest = ByteBuffer.wrap(up, 100_020, up.length - 100_020);
                    ByteBuffer[] parts = {header, direct, ByteBuffer.allocate(0), rest};
                    while (rest.hasRemaining()) {
                        client.write(parts);
                    }
                    return readAll(client, down.length);
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            }, THREAD);
            ByteBuffer[] replies = {ByteBuffer.wrap(down, 0, 16),
                    ByteBuffer.allocateDirect(4096).put(down, 16, 4096).flip(),
                    ByteBuffer.wrap(down, 4112, down.length - 4112)};
            CompletableFuture<Void> wrote = CompletableFuture.runAsync(() -> {
                try {
                    while (replies[2].hasRemaining()) {
                        s.write(replies);
                    }
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            }, THREAD);
            ByteBuffer got = ByteBuffer.allocate(up.length);
            ByteBuffer direct = ByteBuffer.allocateDirect(64 << 10);
            while (got.hasRemaining()) {
                direct.clear().limit(Math.min(direct.capacity(), got.remaining()));
                if (got.position() % 2 == 0) { // alternately into a direct buffer and straight into the heap one
                    assertThat(s.read(direct)).isPositive();
                    got.put(direct.flip());
                } else {
                    assertThat(s.read(got)).isPositive();
                }
            }
            assertThat(got.array()).isEqualTo(up);
            wrote.get(30, TimeUnit.SECONDS);
            assertThat(sent.get(30, TimeUnit.SECONDS)).isEqualTo(down);
        }
    }

    @Test
    void aPeersCloseIsEndOfInputAndAWriteToItAnErrorNotASignal() throws Exception {
        try (UnixStreamSocket client = UnixStreamSocket.connect(path); UnixStreamSocket s = server.accept()) {
            client.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
            client.close();
            ByteBuffer b = ByteBuffer.allocate(8);
            assertThat(s.read(b)).isEqualTo(3);
            assertThat(s.read(b)).as("the peer left").isEqualTo(-1);
            assertThatThrownBy(() -> {
                for (int i = 0; i < 1000; i++) {
                    s.write(ByteBuffer.allocateDirect(64 << 10));
                }
            }).isInstanceOf(ErrnoException.class).hasMessageContaining("EPIPE");
            assertThatThrownBy(() -> client.read(ByteBuffer.allocate(1))).isInstanceOf(ClosedChannelException.class);
        }
    }

    @Test
    void closeWakesABlockedReadABlockedWriteAndABlockedAccept() throws Exception {
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
            UnixStreamSocket reader = server.accept();
            CompletableFuture<Object> read = CompletableFuture.supplyAsync(() -> attempt(() -> reader.read(
                    ByteBuffer.allocateDirect(16))), THREAD);
            Thread.sleep(200);
            assertThat(read).as("blocked: nothing was sent").isNotDone();
            reader.close();
            assertThat(read.get(5, TimeUnit.SECONDS)).isInstanceOf(AsynchronousCloseException.class);
            assertThat(reader.isOpen()).isFalse();
        }
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(path))) {
            UnixStreamSocket writer = server.accept();
            ByteBuffer big = ByteBuffer.allocate(64 << 20); // far more than the socket buffers: the write blocks
            CompletableFuture<Object> wrote = CompletableFuture.supplyAsync(() -> attempt(() -> {
                while (big.hasRemaining()) {
                    writer.write(big);
                }
                return big.position();
            }), THREAD);
            Thread.sleep(200);
            assertThat(wrote).as("blocked: the client reads nothing").isNotDone();
            writer.close();
            // woken (or, if a part had gone, refused at its next call)
            assertThat(wrote.get(5, TimeUnit.SECONDS)).isInstanceOf(ClosedChannelException.class);
        }
        CompletableFuture<Object> accepted = CompletableFuture.supplyAsync(() -> attempt(server::accept), THREAD);
        Thread.sleep(200);
        assertThat(accepted).as("blocked: no client").isNotDone();
        server.close();
        assertThat(accepted.get(5, TimeUnit.SECONDS)).isInstanceOf(AsynchronousCloseException.class);
        assertThatThrownBy(server::accept).isInstanceOf(ClosedChannelException.class);
    }

    @Test
    void availableCountsTheBytesWaitingWithoutReadingThem() throws Exception {
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(path));
                UnixStreamSocket s = server.accept()) {
            assertThat(s.available()).isZero();
            client.write(ByteBuffer.allocate(28));
            assertThat(s.available()).isEqualTo(28);
            assertThat(s.read(ByteBuffer.allocate(10))).isEqualTo(10);
            assertThat(s.available()).isEqualTo(18);
            s.close();
            assertThatThrownBy(s::available).isInstanceOf(ClosedChannelException.class);
        }
    }

    @Test
    void aPathLongerThanSunPathIsRefusedInOneLine() throws Exception {
        String base = dir.toString() + "/";
        Path fits = Path.of(base + "a".repeat(UnixServerSocket.MAX_PATH_BYTES - base.length()));
        try (UnixServerSocket s = UnixServerSocket.bind(fits, 1)) {
            assertThat(Files.exists(fits)).isTrue();
        }
        Path tooLong = Path.of(base + "a".repeat(UnixServerSocket.MAX_PATH_BYTES + 1 - base.length()));
        assertThatThrownBy(() -> UnixServerSocket.bind(tooLong, 1)).isInstanceOf(SocketException.class)
                .hasMessage("Unix domain path too long (108 bytes, at most 107)");
        assertThat(Files.exists(tooLong)).isFalse();
    }

    @Test
    void aStaleSocketFileIsReplacedButALiveOneOrAnotherFileIsNot() throws Exception {
        assertThatThrownBy(() -> UnixServerSocket.bind(path, 1)).as("a server listens there")
                .isInstanceOf(BindException.class).hasMessage("Address already in use");
        server.close();
        assertThat(Files.exists(path)).as("the file of a closed server stays").isTrue();
        server = UnixServerSocket.bind(path, 8); // stale: replaced
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(path));
                UnixStreamSocket s = server.accept()) {
            client.write(ByteBuffer.wrap(new byte[] {7}));
            assertThat(s.read(ByteBuffer.allocate(1))).isEqualTo(1);
        }
        Path file = Files.writeString(dir.resolve("file.sock"), "data");
        assertThatThrownBy(() -> UnixServerSocket.bind(file, 1)).isInstanceOf(BindException.class)
                .hasMessage("Address already in use");
        assertThat(Files.readString(file)).as("not a socket: left alone").isEqualTo("data");
    }

    @Test
    void theDescriptorIsClosedOnlyAfterItsLastUserLeft() throws Exception {
        int[] released = {0};
        FdLifetime life = new FdLifetime(() -> released[0]++);
        life.enter();
        assertThat(life.close()).isTrue();
        assertThat(life.close()).as("once").isFalse();
        life.leave(); // close()'s own use
        assertThat(released[0]).as("a user is still in a call").isZero();
        assertThatThrownBy(life::enter).isInstanceOf(ClosedChannelException.class);
        life.leave();
        assertThat(released[0]).isEqualTo(1);
    }

    private interface Call {
        Object run() throws IOException;
    }

    /** What {@code c} returned, or the exception it threw. */
    private static Object attempt(Call c) {
        try {
            return c.run();
        } catch (IOException e) {
            return e;
        }
    }

    private static byte[] readAll(SocketChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new IOException("end of input after " + b.position());
            }
        }
        return b.array();
    }
}
