package io.qcow2j.ffm;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Raw deflate (RFC 1951, no zlib header) through the system's zlib ({@code libz.so.1}), with the window size
 * chosen by the caller: {@code java.util.zip.Deflater} always uses zlib's largest window (2^15 bytes), and a
 * reader that declares a smaller one (QEMU inflates qcow2 clusters with 2^12) may not follow references that
 * reach further back. One instance is one {@code z_stream}, used by one thread at a time, reset per buffer.
 *
 * <p>{@link #open} answers empty when the library cannot be loaded or refuses the parameters; callers then
 * use {@code java.util.zip}. The {@code z_stream} structure is laid out here for LP64 Linux (the only
 * platforms {@link Platform} accepts); zlib's {@code deflateInit2_} checks the structure's size and the
 * library's major version, so a mismatch is refused, not guessed.
 */
@SuppressWarnings("restricted") // this module is the one granted native access: restricted calls are its job
public final class RawDeflater implements AutoCloseable {
    /** {@code sizeof(z_stream)} on LP64: pointers and {@code uLong} are 8 bytes, {@code uInt} 4. */
    private static final long Z_STREAM_SIZE = 112;
    private static final long NEXT_IN = 0;
    private static final long AVAIL_IN = 8;
    private static final long NEXT_OUT = 24;
    private static final long AVAIL_OUT = 32;

    private static final int Z_OK = 0;
    private static final int Z_STREAM_END = 1;
    private static final int Z_BUF_ERROR = -5;
    private static final int Z_FINISH = 4;
    private static final int Z_DEFLATED = 8;
    private static final int Z_DEFAULT_STRATEGY = 0;

    /** The library and its calls, linked on first use (a command that never compresses pays nothing). */
    private static final class Lib {
        static final MethodHandle INIT;
        static final MethodHandle DEFLATE;
        static final MethodHandle RESET;
        static final MethodHandle END;
        static final MemorySegment VERSION_STRING;

        static {
            MethodHandle init, deflate, reset, end;
            MemorySegment versionString;
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup z = SymbolLookup.libraryLookup("libz.so.1", Arena.global());
                MethodHandle version = linker.downcallHandle(z.findOrThrow("zlibVersion"), FunctionDescriptor.of(ADDRESS));
                init = linker.downcallHandle(z.findOrThrow("deflateInit2_"), FunctionDescriptor.of(JAVA_INT,
                        ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
                // not a critical call: one cluster takes up to a millisecond, too long to hold off the GC
                deflate = linker.downcallHandle(z.findOrThrow("deflate"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
                reset = linker.downcallHandle(z.findOrThrow("deflateReset"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
                end = linker.downcallHandle(z.findOrThrow("deflateEnd"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
                versionString = (MemorySegment) version.invokeExact(); // deflateInit2_ checks it against its own
            } catch (Throwable e) { // no libz.so.1 (IllegalArgumentException), or a symbol missing: not usable
                init = deflate = reset = end = null;
                versionString = null;
            }
            INIT = init;
            DEFLATE = deflate;
            RESET = reset;
            END = end;
            VERSION_STRING = versionString;
        }
    }

    /** Holds the {@code z_stream}, which must not move: zlib's state points back at it. */
    private final Arena arena;
    private final MemorySegment stream;
    private boolean open = true;

    private RawDeflater(Arena arena, MemorySegment stream) {
        this.arena = arena;
        this.stream = stream;
    }

    /** Whether the system's zlib could be loaded. */
    public static boolean available() {
        return Lib.INIT != null;
    }

    /**
     * A raw deflater with zlib's {@code level} (-1 for its default), {@code windowBits} (9 to 15: the
     * window is 2^windowBits bytes) and {@code memLevel} (1 to 9), or empty when the system has no usable
     * zlib. The caller's thread owns it; {@link #close} frees zlib's state.
     */
    public static Optional<RawDeflater> open(int level, int windowBits, int memLevel) {
        if (Lib.INIT == null) {
            return Optional.empty();
        }
        Arena a = Arena.ofConfined();
        MemorySegment s = a.allocate(Z_STREAM_SIZE, 8); // zeroed: zalloc, zfree, opaque null = zlib's own malloc
        int rc;
        try {
            rc = (int) Lib.INIT.invokeExact(s, level, Z_DEFLATED, -windowBits, memLevel, Z_DEFAULT_STRATEGY,
                    Lib.VERSION_STRING, (int) Z_STREAM_SIZE);
        } catch (Throwable e) {
            a.close();
            throw new IllegalStateException("deflateInit2_ failed", e);
        }
        if (rc != Z_OK) {
            a.close();
            return Optional.empty(); // a version or structure mismatch, bad parameters, or no memory
        }
        return Optional.of(new RawDeflater(a, s));
    }

    /**
     * Compresses all of {@code src} into {@code dst} as one complete raw deflate stream; answers the
     * compressed length, or -1 when it does not fit in {@code dst}. Both must be native segments of at most
     * 2^32 - 1 bytes.
     */
    public int deflate(MemorySegment src, MemorySegment dst) {
        if (!open) {
            throw new IllegalStateException("deflater closed");
        }
        if (!src.isNative() || !dst.isNative() || src.byteSize() > 0xffffffffL || dst.byteSize() > 0xffffffffL) {
            throw new IllegalArgumentException("deflate needs native segments below 4 GiB");
        }
        try {
            int rc = (int) Lib.RESET.invokeExact(stream);
            if (rc != Z_OK) {
                throw new IllegalStateException("deflateReset: " + rc);
            }
            stream.set(ADDRESS, NEXT_IN, src);
            stream.set(JAVA_INT, AVAIL_IN, (int) src.byteSize());
            stream.set(ADDRESS, NEXT_OUT, dst);
            stream.set(JAVA_INT, AVAIL_OUT, (int) dst.byteSize());
            rc = (int) Lib.DEFLATE.invokeExact(stream, Z_FINISH);
            if (rc == Z_STREAM_END) {
                return (int) (dst.byteSize() - Integer.toUnsignedLong(stream.get(JAVA_INT, AVAIL_OUT)));
            }
            if (rc == Z_OK || rc == Z_BUF_ERROR) {
                return -1; // the output did not fit
            }
            throw new IllegalStateException("deflate: " + rc);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** Frees zlib's state. */
    @Override
    public void close() {
        if (!open) {
            return;
        }
        open = false;
        try {
            int unused = (int) Lib.END.invokeExact(stream); // Z_DATA_ERROR only says the last stream was unfinished
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        } finally {
            arena.close();
        }
    }
}
