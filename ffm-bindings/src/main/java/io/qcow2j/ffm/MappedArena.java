package io.qcow2j.ffm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * One page-aligned anonymous private mapping, exposed as a bounds-checked {@link MemorySegment}.
 *
 * <p>Pages cost memory only once touched. {@link #release} hands whole pages back to the kernel with
 * {@code madvise(MADV_DONTNEED)}: they read back as zeros and stop counting in the process RSS until
 * written again. {@link #close} unmaps once; the segment then refuses access (an
 * {@link IllegalStateException}, never a crash), because it is bound to a shared arena closed first.
 *
 * <p>Thread safety: the segment may be read and written from any thread. {@code release} and
 * {@code close} are serialized with each other, so a release never madvises memory unmapped by a close.
 */
@SuppressWarnings("restricted") // this module is the one granted native access: restricted calls are its job
public final class MappedArena implements AutoCloseable {
    private final Arena scope;
    private final MemorySegment segment;
    private final long mappedLength;
    private final long pageSize;
    /** Guarded by {@code this}. */
    private boolean closed;
    /** Total bytes handed back by {@link #release}; guarded by {@code this}. */
    private long releasedBytes;

    private MappedArena(Arena scope, MemorySegment segment, long mappedLength, long pageSize) {
        this.scope = scope;
        this.segment = segment;
        this.mappedLength = mappedLength;
        this.pageSize = pageSize;
    }

    /**
     * Maps {@code size} bytes (rounded up to whole pages for the mapping; the segment has exactly
     * {@code size} bytes). Fails with an {@link ErrnoException} ({@code ENOMEM}) rather than aborting when
     * the address space cannot hold it.
     */
    public static MappedArena map(long size) throws ErrnoException {
        if (size <= 0) {
            throw new IllegalArgumentException("arena size must be positive: " + size);
        }
        long page = LibC.pageSize();
        if (size > Long.MAX_VALUE - page) {
            throw new IllegalArgumentException("arena size too large: " + size);
        }
        long mapped = (size + page - 1) & -page;
        MemorySegment base = LibC.mmapAnonymous(mapped);
        Arena scope = Arena.ofShared();
        MemorySegment seg = base.reinterpret(size, scope, null);
        return new MappedArena(scope, seg, mapped, page);
    }

    /** The mapping; invalid (access throws) after {@link #close}. Its base address is page-aligned. */
    public MemorySegment segment() {
        return segment;
    }

    public long size() {
        return segment.byteSize();
    }

    public long pageSize() {
        return pageSize;
    }

    /**
     * Releases the whole pages inside {@code [offset, offset + length)} of the segment (see
     * {@link PageSpan#inside}); partial pages at the ends are kept. Returns the number of bytes released.
     */
    public synchronized long release(long offset, long length) throws ErrnoException {
        if (closed) {
            throw new IllegalStateException("mapped arena is closed");
        }
        if (offset < 0 || length < 0 || offset > segment.byteSize() - length) {
            throw new IndexOutOfBoundsException(
                    "release of " + length + " bytes at " + offset + " outside arena of " + segment.byteSize());
        }
        PageSpan span = PageSpan.inside(offset, length, pageSize);
        if (span.isEmpty()) {
            return 0;
        }
        LibC.madvise(segment.asSlice(span.start(), span.length()), span.length(), Platform.MADV_DONTNEED);
        releasedBytes += span.length();
        return span.length();
    }

    /** Bytes released so far (cumulative; pages released twice count twice). */
    public synchronized long releasedBytes() {
        return releasedBytes;
    }

    public synchronized boolean isClosed() {
        return closed;
    }

    /**
     * Unmaps the memory. Idempotent.
     *
     * @throws IllegalStateException if another thread is using the segment in a native call right now; the
     *         arena is then still open and close may be called again later
     */
    @Override
    public synchronized void close() throws ErrnoException {
        if (closed) {
            return;
        }
        long address = segment.address();
        // Invalidates every view of the segment before the memory goes away. It throws while a downcall in
        // another thread holds the segment: then nothing is unmapped and the arena must stay open, so the
        // flag is set only after it succeeded (else a retried close would return and leak the mapping).
        scope.close();
        closed = true;
        LibC.munmap(MemorySegment.ofAddress(address), mappedLength);
    }
}
