package io.qcow2j.proptest.driver;

import io.qcow2j.ffm.ForwardingFile;
import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * A file that, once {@linkplain #arm armed}, holds each write until {@code parties} writes have arrived (or a
 * timeout passed), then lets them all go: threads that race to write the same cluster are made to plan their
 * writes (and read what they copy) before any of them writes, which turns a rare interleaving into the usual
 * one. Everything else is forwarded. If fewer writers come (because the engine made them wait for each other),
 * the first one goes on after the timeout.
 */
public final class RendezvousFile extends ForwardingFile {
    private int parties;
    private int arrived;
    private long timeoutNanos;
    private long gathered;
    private long timedOut;

    public RendezvousFile(PositionalFile delegate) {
        super(delegate);
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
    public String toString() {
        return delegate + " (writes meet)";
    }
}
