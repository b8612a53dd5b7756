package io.qcow2j.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.GatheringByteChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedTransferQueue;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Writes the replies of one connection in the transmission phase ({@link Replies} builds them). Requests
 * finish in any order and on any thread, possibly one that must not block on a socket (an I/O completion
 * thread of the engine): {@link #send} only queues the reply, and this connection's writer thread (virtual)
 * takes every reply queued by then and writes them in one gathering write, so replies that finish together
 * cost one system call. The connection's reader writes the replies of the requests it served itself on its
 * own thread, saving the hand-off: {@link #hold} keeps them until {@link #flushHeld} (called before the
 * reader would block: on the socket, on memory) writes them all in one gathering write, so a client's
 * pipelined requests served together are answered with one system call too.
 *
 * <p>Each reply is written whole under {@link #lock}, so replies never interleave mid-message. A
 * {@link ReentrantLock} rather than {@code synchronized}: a virtual thread blocked on a slow client parks
 * instead of pinning its carrier. Every reply's {@code done} runs exactly once, after it was written or once
 * writing failed (then the connection is closed and later replies are dropped: their client is gone).
 */
final class ReplyWriter {
    /** A reply waiting for the writer thread, and what to run once it is written. */
    private record Pending(ByteBuffer[] parts, Runnable done) {}

    private static final Pending STOP = new Pending(new ByteBuffer[0], () -> { });
    /** At most this many queued replies go into one gathering write. */
    private static final int BATCH = 64;
    /** Held replies are written once they reach this many bytes (bounds the latency of the first). */
    private static final long HOLD_BYTES = 512 << 10;

    private final GatheringByteChannel ch;
    private final Consumer<IOException> failed;
    /** Guards the channel's write side: one reply (or batch of whole replies) at a time. */
    private final ReentrantLock lock = new ReentrantLock();
    private final LinkedTransferQueue<Pending> queue = new LinkedTransferQueue<>();
    /** Replies of requests the reader served, not yet written; touched by the reader's thread only. */
    private final List<Pending> held = new ArrayList<>();
    /** Bytes of {@link #held}. */
    private long heldBytes;
    /** Set once a write failed: replies are dropped from then on. */
    private volatile boolean broken;
    /** System.nanoTime() when the write in progress started, 0 when none is: how long a client has stalled us. */
    private volatile long writingSince;

    /**
     * {@code failed} is told (once) when a write fails; it should close the connection. {@code thread} makes
     * the writer thread: virtual unless a write blocked on the socket would pin its carrier.
     */
    ReplyWriter(GatheringByteChannel ch, Consumer<IOException> failed, Thread.Builder thread) {
        this.ch = ch;
        this.failed = failed;
        thread.name("nbd-replies").start(this::writeLoop);
    }

    /** Queues {@code reply} for the writer thread; never blocks. */
    void send(ByteBuffer[] reply, Runnable done) {
        queue.add(new Pending(reply, done));
    }

    /** Writes {@code reply} on this thread (which may block on the socket), then runs {@code done}. */
    void sendNow(ByteBuffer[] reply, Runnable done) {
        write(List.of(new Pending(reply, done)));
    }

    /**
     * Keeps {@code reply} to be written by {@link #flushHeld} (then {@code done} runs); writes what is held at
     * once when it is many replies or bytes. Only the connection's reader calls this, and it must call
     * {@link #flushHeld} before it blocks: held replies hold memory and their clients wait for them.
     */
    void hold(ByteBuffer[] reply, Runnable done) {
        held.add(new Pending(reply, done));
        for (ByteBuffer b : reply) {
            heldBytes += b.remaining();
        }
        if (held.size() >= BATCH || heldBytes >= HOLD_BYTES) {
            flushHeld();
        }
    }

    /** Writes the replies {@link #hold} kept, in one gathering write (on this thread, which may block). */
    void flushHeld() {
        if (!held.isEmpty()) {
            try {
                write(held);
            } finally {
                held.clear();
                heldBytes = 0;
            }
        }
    }

    /** Nanoseconds the write in progress has been waiting for the client, 0 if none is. */
    long stalledNanos() {
        long since = writingSince;
        return since == 0 ? 0 : Math.max(1, System.nanoTime() - since);
    }

    /** Ends the writer thread once what is queued is written; call when no more replies will come. */
    void stop() {
        queue.add(STOP);
    }

    private void writeLoop() {
        List<Pending> batch = new ArrayList<>();
        while (true) {
            Pending first;
            try {
                first = queue.take();
            } catch (InterruptedException e) {
                continue; // only stop() ends this thread
            }
            batch.add(first);
            queue.drainTo(batch, BATCH - 1);
            boolean stop = batch.remove(STOP);
            write(batch);
            batch.clear();
            if (stop) {
                return;
            }
        }
    }

    private void write(List<Pending> replies) {
        lock.lock();
        try {
            if (!broken) {
                ByteBuffer[] bufs = gather(replies);
                writingSince = System.nanoTime();
                try {
                    long left = 0;
                    for (ByteBuffer b : bufs) {
                        left += b.remaining();
                    }
                    while (left > 0) {
                        left -= ch.write(bufs);
                    }
                } catch (IOException e) {
                    broken = true;
                    failed.accept(e);
                } finally {
                    writingSince = 0;
                }
            }
        } finally {
            lock.unlock();
            for (Pending p : replies) {
                p.done().run();
            }
        }
    }

    private static ByteBuffer[] gather(List<Pending> replies) {
        if (replies.size() == 1) {
            return replies.get(0).parts();
        }
        int n = 0;
        for (Pending p : replies) {
            n += p.parts().length;
        }
        ByteBuffer[] all = new ByteBuffer[n];
        int at = 0;
        for (Pending p : replies) {
            System.arraycopy(p.parts(), 0, all, at, p.parts().length);
            at += p.parts().length;
        }
        return all;
    }
}
