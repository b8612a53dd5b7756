package io.qcow2j.engine.cache;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** An in-memory TableFile for unit tests: remembers contents, logs operations, can be told to fail. */
class MemoryFile implements TableFile {
    final Map<Long, byte[]> blocks = new HashMap<>();
    final List<String> log = new ArrayList<>();
    IOException failWrites;
    IOException failReads;
    IOException failFlush;
    Runnable onRead = () -> {};

    @Override
    public void read(long offset, MemorySegment dst) throws IOException {
        onRead.run();
        if (failReads != null) {
            throw failReads;
        }
        log.add("R " + offset);
        byte[] b = blocks.get(offset);
        if (b == null) {
            dst.fill((byte) 0);
        } else {
            MemorySegment.copy(MemorySegment.ofArray(b), 0, dst, 0, dst.byteSize());
        }
    }

    @Override
    public void write(long offset, MemorySegment src) throws IOException {
        if (failWrites != null) {
            throw failWrites;
        }
        log.add("W " + offset);
        blocks.put(offset, src.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }

    @Override
    public void flush() throws IOException {
        if (failFlush != null) {
            throw failFlush;
        }
        log.add("S");
    }

    /** First byte of the stored table at offset (0 if none). */
    int firstByte(long offset) {
        byte[] b = blocks.get(offset);
        return b == null ? 0 : b[0] & 0xff;
    }
}
