package io.qcow2j.proptest.driver;

import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A file that, once {@linkplain #arm armed}, holds each write until {@code parties} writes have arrived (or a
 * timeout passed), then lets them all go: threads that race to write the same cluster are made to plan their
 * writes (and read what they copy) before any of them writes, which turns a rare interleaving into the usual
 * one. Everything else is forwarded. If fewer writers come (because the engine made them wait for each other),
 * the first one goes on after the timeout.
 */
public final class RendezvousFile implements PositionalFile {
    private final PositionalFile delegate;
    private int parties;
    private int arrived;
    private long timeoutNanos;
    private long gathered;
    private long timedOut;

    public RendezvousFile(PositionalFile delegate) {
        this.delegate = Objects.requireNonNull(delegate);
    }

    /** The next {@code parties} writes wait for each other, at most {@code timeoutMillis} each. */
    public synchronized void arm(int parties, long timeoutMillis) {
        this.parties = parties;
        this.arrived = 0;
        this.timeoutNanos = timeoutMillis * 1_000_000;
        notifyAll();
    }

    /** Rendezvous where all the writers met. */
    public synchronized long gathered() {
        return gathered;
    }

    /** Rendezvous given up after the timeout. */
    public synchronized long timedOut() {
        return timedOut;
    }

    private synchronized void rendezvous() {
        if (parties == 0) {
            return;
        }
        if (++arrived >= parties) {
            parties = 0;
            gathered++;
            notifyAll();
            return;
        }
        long end = System.nanoTime() + timeoutNanos;
        long left;
        while (parties > 0 && (left = end - System.nanoTime()) > 0) {
            try {
                wait(left / 1_000_000, (int) (left % 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (parties > 0) {
            parties = 0; // give up: the others are not coming
            timedOut++;
            notifyAll();
        }
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        rendezvous();
        delegate.write(offset, src);
    }

    @Override
    public long read(long offset, MemorySegment dst) throws IOException {
        return delegate.read(offset, dst);
    }

    @Override
    public long size() throws IOException {
        return delegate.size();
    }

    @Override
    public long allocatedBytes() throws IOException {
        return delegate.allocatedBytes();
    }

    @Override
    public void truncate(long length) throws IOException {
        delegate.truncate(length);
    }

    @Override
    public void dataSync() throws IOException {
        delegate.dataSync();
    }

    @Override
    public void punchHole(long offset, long length) throws IOException {
        delegate.punchHole(offset, length);
    }

    @Override
    public long seekData(long offset) throws IOException {
        return delegate.seekData(offset);
    }

    @Override
    public long seekHole(long offset) throws IOException {
        return delegate.seekHole(offset);
    }

    @Override
    public String fallbackReason() {
        return delegate.fallbackReason();
    }

    @Override
    public Path path() {
        return delegate.path();
    }

    @Override
    public void close() throws IOException {
        delegate.close();
    }

    @Override
    public String toString() {
        return delegate + " (writes meet)";
    }
}
