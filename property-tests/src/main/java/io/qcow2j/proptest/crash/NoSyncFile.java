package io.qcow2j.proptest.crash;

import io.qcow2j.ffm.ForwardingFile;
import io.qcow2j.ffm.PositionalFile;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A file that forwards every call except {@link #dataSync}, which it only counts: for tests that exercise the
 * engine's logic (its syncs included) without paying for {@code fdatasync} on a real disk, and without
 * simulating crashes. The engine cannot tell the difference.
 */
public final class NoSyncFile extends ForwardingFile {
    private final AtomicLong syncs = new AtomicLong();

    public NoSyncFile(PositionalFile delegate) {
        super(delegate);
    }

    /** Syncs asked for (and skipped). */
    public long syncs() {
        return syncs.get();
    }

    @Override
    public void dataSync() {
        syncs.incrementAndGet();
    }

    @Override
    public String toString() {
        return delegate + " (syncs skipped)";
    }
}
