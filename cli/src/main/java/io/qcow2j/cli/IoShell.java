package io.qcow2j.cli;

import io.qcow2j.engine.Qcow2Disk;
import io.qcow2j.engine.ZeroFlag;
import static io.qcow2j.cli.IoArgs.EINVAL;
import static io.qcow2j.cli.IoArgs.EIO;
import static io.qcow2j.cli.IoArgs.ENOTSUP;
import static io.qcow2j.cli.IoArgs.EPERM;
import static io.qcow2j.cli.IoArgs.MAX_REQUEST;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * The command interpreter of {@code qcow2j io}: {@code qemu-io}'s {@code read}, {@code write},
 * {@code discard}, {@code flush}, {@code help} and {@code quit}, with its syntax, its output on stdout and its
 * messages. A command returns 0 or a negative errno; any failure makes the final exit status 1, and the
 * following commands still run, as in qemu-io.
 */
final class IoShell {
    /** A command of the table: qemu-io's {@code cmdinfo_t}. */
    private record Cmd(String name, String altname, int argmin, int argmax, boolean writes, String args,
            String oneline, Handler handler, String help) {}

    @FunctionalInterface
    private interface Handler {
        int run(IoShell shell, List<String> argv) throws IOException;
    }

    private static final Cmd DISCARD = new Cmd("discard", "d", 2, -1, true, "[-Cq] off len",
            "discards a number of bytes at a specified offset", IoShell::discard, """

             discards a range of bytes from the given offset

             Example:
             'discard 512 1k' - discards 1 kilobyte from 512 bytes into the file

             Discards a segment of the currently open file.
             -C, -- report statistics in a machine parsable format
             -q, -- quiet mode, do not show I/O statistics

            """);
    private static final Cmd FLUSH = new Cmd("flush", "f", 0, 0, false, null,
            "flush all in-core file state to disk", IoShell::flush, null);
    private static final Cmd HELP = new Cmd("help", "?", 0, 1, false, "[command]",
            "help for one or all commands", IoShell::help, null);
    private static final Cmd QUIT = new Cmd("quit", "q", -1, -1, false, null, "exit the program", IoShell::quit, null);
    private static final Cmd READ = new Cmd("read", "r", 2, -1, false,
            "[-abCqv] [-P pattern [-s off] [-l len]] off len", "reads a number of bytes at a specified offset",
            IoShell::read, """

             reads a range of bytes from the given offset

             Example:
             'read -v 512 1k' - dumps 1 kilobyte read from 512 bytes into the file

             Reads a segment of the currently open file, optionally dumping it to the
             standard output stream (with -v option) for subsequent inspection.
             -b, -- read from the VM state rather than the virtual disk (not supported by qcow2j)
             -C, -- report statistics in a machine parsable format
             -l, -- length for pattern verification (only with -P)
             -p, -- ignored for backwards compatibility
             -P, -- use a pattern to verify read data
             -q, -- quiet mode, do not show I/O statistics
             -s, -- start offset for pattern verification (only with -P)
             -v, -- dump buffer to standard output

            """);
    private static final Cmd WRITE = new Cmd("write", "w", 2, -1, true,
            "[-bcCfnquz] [-P pattern | -s source_file] off len", "writes a number of bytes at a specified offset",
            IoShell::write, """

             writes a range of bytes from the given offset

             Example:
             'write 512 1k' - writes 1 kilobyte at 512 bytes into the open file

             Writes into a segment of the currently open file, using a buffer
             filled with a set pattern (0xcdcdcdcd).
             -b, -- write to the VM state rather than the virtual disk (not supported by qcow2j)
             -c, -- write compressed data with bdrv_pwrite_compressed
             -f, -- use Force Unit Access semantics (a flush after the write)
             -n, -- with -z, don't allow slow fallback (not supported by qcow2j)
             -p, -- ignored for backwards compatibility
             -P, -- use different pattern to fill file
             -s, -- use a pattern file to fill the write buffer
             -C, -- report statistics in a machine parsable format
             -q, -- quiet mode, do not show I/O statistics
             -u, -- with -z, allow unmapping
             -z, -- write zeroes

            """);
    /** Sorted by name, as qemu-io's table. */
    private static final List<Cmd> COMMANDS = List.of(DISCARD, FLUSH, HELP, QUIT, READ, WRITE);

    private final Qcow2Disk image;
    private final boolean readOnly;
    private final PrintStream out;
    private final PrintStream err;
    private final String program;
    private final LongSupplier clock;
    private boolean quit;

    /**
     * @param image    the open image
     * @param readOnly whether it was opened read-only (then write and discard fail as in qemu-io)
     * @param out      where the reports go (qemu-io's stdout)
     * @param err      where the messages go (qemu-io's stderr); flushed after each
     * @param program  the name prefixing error reports ({@code qcow2j})
     * @param clock    nanoseconds, for the timing lines
     */
    IoShell(Qcow2Disk image, boolean readOnly, PrintStream out, PrintStream err, String program, LongSupplier clock) {
        this.image = image;
        this.readOnly = readOnly;
        this.out = out;
        this.err = err;
        this.program = program;
        this.clock = clock;
    }

    /** Whether a {@code quit} command ran: the caller runs no more commands. */
    boolean quitRequested() {
        return quit;
    }

    /** Runs one command line; returns 0 or a negative errno (the failure was reported). */
    int execute(String line) {
        List<String> argv = IoArgs.breakline(line);
        if (argv.isEmpty()) {
            return 0;
        }
        Cmd ct = find(argv.get(0));
        if (ct == null) {
            error("command \"" + argv.get(0) + "\" not found");
            return -EINVAL;
        }
        int args = argv.size() - 1;
        if (args < ct.argmin() || (ct.argmax() != -1 && args > ct.argmax())) {
            String expected = ct.argmax() == -1 ? "at least " + ct.argmin()
                    : ct.argmin() == ct.argmax() ? Integer.toString(ct.argmin())
                    : "between " + ct.argmin() + " and " + ct.argmax();
            error("bad argument count " + args + " to " + argv.get(0) + ", expected " + expected + " arguments");
            return -EINVAL;
        }
        if (ct.writes() && readOnly) {
            error(program + ": Block node is read-only");
            return -EPERM;
        }
        try {
            return ct.handler().run(this, argv);
        } catch (IOException | RuntimeException e) {
            // not reached by the commands' own failures (they report them); a bug or an unexpected engine error
            error(program + ": " + ct.name() + ": " + Main.describe(e));
            return -EIO;
        } finally {
            out.flush();
        }
    }

    private static Cmd find(String name) {
        for (Cmd c : COMMANDS) {
            if (c.name().equals(name) || c.altname().equals(name)) {
                return c;
            }
        }
        return null;
    }

    /** A message for stderr; stdout is flushed first, so a terminal shows both in order. */
    private void error(String message) {
        out.flush();
        err.println(message);
        err.flush();
    }

    private void warn(String message) {
        error(program + ": warning: " + message);
    }

    private int usage(Cmd ct) {
        out.println(ct.name() + " " + ct.args() + " -- " + ct.oneline());
        return -EINVAL;
    }

    /** qemu-io's cvtnum with its message on failure; returns the value or the negative errno. */
    private long number(String arg) {
        long v = IoArgs.cvtnum(arg, this::warn);
        if (v < 0) {
            out.println(IoArgs.cvtnumError(v, arg));
        }
        return v;
    }

    /** The {@code off len} operands of read, write and discard; or {@code error}, the errno already reported. */
    private record Span(long offset, long length, int error) {}

    /**
     * Parses {@code off len} as qemu-io does, refusing a length above {@link #MAX_REQUEST}; a write may exceed
     * it with {@code -n} ({@code noFallback}), and its message says so.
     */
    private Span span(List<String> ops, Cmd ct, boolean noFallback) {
        long offset = number(ops.get(0));
        if (offset < 0) {
            return new Span(0, 0, (int) offset);
        }
        long length = number(ops.get(1));
        if (length < 0) {
            return new Span(0, 0, (int) length);
        }
        if (length > MAX_REQUEST && !noFallback) {
            out.println("length cannot exceed " + MAX_REQUEST + (ct == WRITE ? " without -n" : "") + ", given "
                    + ops.get(1));
            return new Span(0, 0, -EINVAL);
        }
        return new Span(offset, length, 0);
    }

    /** Whether a request lies inside the image; else qemu's EIO (its block layer checks the range first). */
    private boolean inRange(long offset, long bytes) {
        long size = image.size();
        return offset <= size && bytes <= size - offset;
    }

    private String failure(Exception e) {
        return Main.describe(e);
    }

    // ------------------------------------------------------------------ read

    private int read(List<String> argv) throws IOException {
        boolean machine = false;
        boolean quiet = false;
        boolean verbose = false;
        boolean hasPattern = false;
        boolean hasStart = false;
        boolean hasLength = false;
        boolean vmState = false;
        int pattern = 0;
        long patternOffset = 0;
        long patternCount = 0;
        IoArgs.Getopt g = new IoArgs.Getopt(argv, "bCl:pP:qs:v", this::error);
        for (int c; (c = g.next()) != -1; ) {
            switch (c) {
                case 'b' -> vmState = true;
                case 'C' -> machine = true;
                case 'l' -> {
                    hasLength = true;
                    patternCount = number(g.optarg());
                    if (patternCount < 0) {
                        return (int) patternCount;
                    }
                }
                case 'p' -> { } // ignored, as in qemu-io
                case 'P' -> {
                    hasPattern = true;
                    pattern = IoArgs.parsePattern(g.optarg());
                    if (pattern < 0) {
                        out.println(g.optarg() + " is not a valid pattern byte");
                        return -EINVAL;
                    }
                }
                case 'q' -> quiet = true;
                case 's' -> {
                    hasStart = true;
                    patternOffset = number(g.optarg());
                    if (patternOffset < 0) {
                        return (int) patternOffset;
                    }
                }
                case 'v' -> verbose = true;
                default -> {
                    return usage(READ);
                }
            }
        }
        List<String> ops = g.operands();
        if (ops.size() != 2) {
            return usage(READ);
        }
        Span span = span(ops, READ, false);
        if (span.error() != 0) {
            return span.error();
        }
        long offset = span.offset();
        long count = span.length();
        if (!hasPattern && (hasLength || hasStart)) {
            return usage(READ);
        }
        if (!hasLength) {
            patternCount = count - patternOffset;
        }
        if (patternCount < 0 || patternCount + patternOffset > count) {
            out.println("pattern verification range exceeds end of read data");
            return -EINVAL;
        }
        if (vmState) {
            if (!sectorAligned(offset, count)) {
                return -EINVAL;
            }
            out.println("read failed: Operation not supported");
            return -ENOTSUP;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = arena.allocate(Math.max(1, count), 4096).asSlice(0, count);
            buf.fill((byte) 0xab);
            long t1 = clock.getAsLong();
            if (!inRange(offset, count)) {
                out.println("read failed: Input/output error");
                return -EIO;
            }
            try {
                image.read(offset, buf);
            } catch (IOException | RuntimeException e) {
                out.println("read failed: " + failure(e));
                return -EIO;
            }
            long t2 = clock.getAsLong();
            int ret = 0;
            if (hasPattern && !matches(buf.asSlice(patternOffset, patternCount), (byte) pattern)) {
                out.println("Pattern verification failed at offset " + (offset + patternOffset) + ", "
                        + patternCount + " bytes");
                ret = -EINVAL;
            }
            if (quiet) {
                return ret;
            }
            if (verbose) {
                IoReport.hexdump(out, buf, offset);
            }
            out.print(IoReport.report("read", elapsed(t1, t2), offset, count, count, 1, machine));
            return ret;
        }
    }

    private boolean sectorAligned(long offset, long count) {
        if ((offset & 511) != 0) {
            out.println(offset + " is not a sector-aligned value for 'offset'");
            return false;
        }
        if ((count & 511) != 0) {
            out.println(count + " is not a sector-aligned value for 'count'");
            return false;
        }
        return true;
    }

    private static long elapsed(long t1, long t2) {
        return Math.max(1, t2 - t1);
    }

    /** Whether every byte of {@code data} is {@code pattern}. */
    static boolean matches(MemorySegment data, byte pattern) {
        int chunk = (int) Math.min(data.byteSize(), 64 * 1024);
        if (chunk == 0) {
            return true;
        }
        MemorySegment expected = MemorySegment.ofArray(new byte[chunk]).fill(pattern);
        for (long pos = 0; pos < data.byteSize(); pos += chunk) {
            long n = Math.min(chunk, data.byteSize() - pos);
            if (MemorySegment.mismatch(data, pos, pos + n, expected, 0, n) >= 0) {
                return false;
            }
        }
        return true;
    }

    // ------------------------------------------------------------------ write

    private int write(List<String> argv) throws IOException {
        boolean machine = false;
        boolean quiet = false;
        boolean vmState = false;
        boolean compressed = false;
        boolean fua = false;
        boolean noFallback = false;
        boolean mayUnmap = false;
        boolean zeroes = false;
        boolean hasPattern = false;
        boolean fromFile = false;
        String fileName = null;
        int pattern = 0xcd;
        IoArgs.Getopt g = new IoArgs.Getopt(argv, "bcCfnpP:qs:uz", this::error);
        for (int c; (c = g.next()) != -1; ) {
            switch (c) {
                case 'b' -> vmState = true;
                case 'c' -> compressed = true;
                case 'C' -> machine = true;
                case 'f' -> fua = true;
                case 'n' -> noFallback = true;
                case 'p' -> { } // ignored, as in qemu-io
                case 'P' -> {
                    hasPattern = true;
                    pattern = IoArgs.parsePattern(g.optarg());
                    if (pattern < 0) {
                        out.println(g.optarg() + " is not a valid pattern byte");
                        return -EINVAL;
                    }
                }
                case 'q' -> quiet = true;
                case 's' -> {
                    fromFile = true;
                    fileName = g.optarg();
                }
                case 'u' -> mayUnmap = true;
                case 'z' -> zeroes = true;
                default -> {
                    return usage(WRITE);
                }
            }
        }
        List<String> ops = g.operands();
        if (ops.size() != 2) {
            return usage(WRITE);
        }
        if (vmState && zeroes) {
            out.println("-b and -z cannot be specified at the same time");
            return -EINVAL;
        }
        if (fua && vmState) {
            out.println("-f and -b cannot be specified at the same time");
            return -EINVAL;
        }
        if (noFallback && !zeroes) {
            out.println("-n requires -z to be specified");
            return -EINVAL;
        }
        if (mayUnmap && !zeroes) {
            out.println("-u requires -z to be specified");
            return -EINVAL;
        }
        if ((zeroes ? 1 : 0) + (hasPattern ? 1 : 0) + (fromFile ? 1 : 0) > 1) {
            out.println("Only one of -z, -P, and -s can be specified at the same time");
            return -EINVAL;
        }
        Span span = span(ops, WRITE, noFallback);
        if (span.error() != 0) {
            return span.error();
        }
        long offset = span.offset();
        long count = span.length();
        if ((vmState || compressed) && !sectorAligned(offset, count)) {
            return -EINVAL;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buf = null;
            if (!zeroes) {
                buf = arena.allocate(Math.max(1, count), 4096).asSlice(0, count);
                if (fromFile) {
                    if (!fillFromFile(buf, fileName)) {
                        return -EINVAL;
                    }
                } else {
                    buf.fill((byte) pattern);
                }
            }
            long t1 = clock.getAsLong();
            if (vmState || noFallback) {
                out.println("write failed: Operation not supported");
                return -ENOTSUP;
            }
            if (!inRange(offset, count)) {
                out.println("write failed: Input/output error");
                return -EIO;
            }
            if (compressed && !zeroes) {
                int cs = image.header().geometry().clusterSize();
                if ((offset & (cs - 1)) != 0 || ((count & (cs - 1)) != 0 && offset + count != image.size())) {
                    out.println("write failed: Invalid argument");
                    return -EINVAL;
                }
            }
            try {
                if (zeroes) {
                    image.writeZeroes(offset, count, ZeroFlag.unmapIf(mayUnmap));
                } else if (compressed) {
                    image.writeCompressed(offset, buf);
                } else {
                    image.write(offset, buf);
                }
                if (fua) {
                    image.flush();
                }
            } catch (IOException | RuntimeException e) {
                // QEMU's compressed write answers EIO for a cluster that is allocated already
                out.println("write failed: " + (compressed && !zeroes ? "Input/output error" : failure(e)));
                return -EIO;
            }
            long t2 = clock.getAsLong();
            if (!quiet) {
                out.print(IoReport.report("wrote", elapsed(t1, t2), offset, count, count, 1, machine));
            }
            return 0;
        }
    }

    /** qemu-io's {@code -s FILE}: the file's bytes, repeated to fill the buffer. */
    private boolean fillFromFile(MemorySegment buf, String fileName) {
        byte[] data;
        try (InputStream in = Files.newInputStream(Path.of(fileName))) {
            data = in.readNBytes((int) Math.min(buf.byteSize(), Integer.MAX_VALUE - 8));
        } catch (NoSuchFileException e) {
            error(fileName + ": No such file or directory");
            return false;
        } catch (IOException | RuntimeException e) {
            error(fileName + ": " + Main.describe(e));
            return false;
        }
        if (data.length == 0) {
            error(fileName + ": file is empty");
            return false;
        }
        MemorySegment src = MemorySegment.ofArray(data);
        for (long pos = 0; pos < buf.byteSize(); pos += data.length) {
            long n = Math.min(data.length, buf.byteSize() - pos);
            MemorySegment.copy(src, 0, buf, pos, n);
        }
        return true;
    }

    // ------------------------------------------------------------------ discard, flush, help, quit

    private int discard(List<String> argv) {
        boolean machine = false;
        boolean quiet = false;
        IoArgs.Getopt g = new IoArgs.Getopt(argv, "Cq", this::error);
        for (int c; (c = g.next()) != -1; ) {
            switch (c) {
                case 'C' -> machine = true;
                case 'q' -> quiet = true;
                default -> {
                    return usage(DISCARD);
                }
            }
        }
        List<String> ops = g.operands();
        if (ops.size() != 2) {
            return usage(DISCARD);
        }
        Span span = span(ops, DISCARD, false);
        if (span.error() != 0) {
            return span.error();
        }
        long offset = span.offset();
        long bytes = span.length();
        long t1 = clock.getAsLong();
        if (!inRange(offset, bytes)) {
            out.println("discard failed: Input/output error");
            return -EIO;
        }
        try {
            image.discard(offset, bytes);
        } catch (IOException | RuntimeException e) {
            out.println("discard failed: " + failure(e));
            return -EIO;
        }
        long t2 = clock.getAsLong();
        if (!quiet) {
            out.print(IoReport.report("discard", elapsed(t1, t2), offset, bytes, bytes, 1, machine));
        }
        return 0;
    }

    private static int flush(IoShell sh, List<String> argv) {
        try {
            sh.image.flush();
            return 0;
        } catch (IOException | RuntimeException e) {
            // qemu-io prints nothing here (only the exit status tells); say why on stderr
            sh.error(sh.program + ": flush failed: " + Main.describe(e));
            return -EIO;
        }
    }

    private static int quit(IoShell sh, List<String> argv) {
        sh.quit = true;
        return 0;
    }

    private static int help(IoShell sh, List<String> argv) {
        if (argv.size() == 2) {
            Cmd ct = find(argv.get(1));
            if (ct == null) {
                sh.out.println("command " + argv.get(1) + " not found");
                return -EINVAL;
            }
            sh.helpOneline(argv.get(1), ct);
            if (ct.help() != null) {
                sh.out.print(ct.help());
            }
            return 0;
        }
        for (Cmd ct : COMMANDS) {
            sh.helpOneline(ct.name(), ct);
        }
        sh.out.println();
        sh.out.println("Use 'help commandname' for extended help.");
        return 0;
    }

    private void helpOneline(String name, Cmd ct) {
        out.println(name + " " + (ct.args() != null ? ct.args() + " " : "") + "-- " + ct.oneline());
    }
}
