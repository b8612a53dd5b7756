package io.qcow2j.engine.cache;

import io.qcow2j.ffm.AlignedFile;
import java.io.IOException;
import java.lang.foreign.MemorySegment;

/** A {@link TableFile} over an image file; off-heap tables are page-aligned, so {@code O_DIRECT} needs no bounce. */
public final class AlignedTableFile implements TableFile {
    private final AlignedFile file;

    public AlignedTableFile(AlignedFile file) {
        this.file = file;
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
        file.dataSync();
    }
}
