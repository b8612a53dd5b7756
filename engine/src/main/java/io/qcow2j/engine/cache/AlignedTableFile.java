package io.qcow2j.engine.cache;

import io.qcow2j.ffm.PositionalFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** A {@link TableFile} over an image file (any {@link PositionalFile}); off-heap tables are page-aligned, so
 * {@code O_DIRECT} needs no bounce buffer. */
public final class AlignedTableFile implements TableFile {
    private final PositionalFile file;
    private final boolean sync;
    private final java.util.concurrent.atomic.LongAdder syncs = new java.util.concurrent.atomic.LongAdder();

    /** @param sync whether {@link #flush} syncs ({@code false} for QEMU's {@code cache=unsafe}) */
    public AlignedTableFile(PositionalFile file, boolean sync) {
        this.file = file;
        this.sync = sync;
    }

    /** {@code fdatasync} calls made through {@link #flush}. */
    public long syncs() {
        return syncs.sum();
    }

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        long n = file.read(offset, dst);
        if (n < dst.byteSize()) {
            dst.asSlice(n).fill((byte) 0); // past the end of the file reads as zeros, as in QEMU
        }
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        file.write(offset, src);
    }

    @Override
    public void flush() throws IOException {
        if (sync) {
            file.dataSync();
            syncs.increment();
        }
    }
}
