import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * Runs the qcow2j CLI under a seccomp filter that refuses io_uring_setup (syscall 425 on x86_64) with EPERM,
 * as a container runtime's profile would: PR_SET_NO_NEW_PRIVS, then seccomp(SECCOMP_SET_MODE_FILTER, TSYNC)
 * with a five-instruction BPF program, applied to every thread of this JVM. Before handing over it shows
 * that the filter works (a direct io_uring_setup fails with EPERM). Used by IoUringRefusedTest (a child JVM:
 * a seccomp filter cannot be removed). Arguments: the CLI's.
 */
public class NoIoUring {
    private static final int PR_SET_NO_NEW_PRIVS = 38;
    private static final long SYS_SECCOMP = 317;
    private static final long SYS_IO_URING_SETUP = 425;
    private static final int SECCOMP_SET_MODE_FILTER = 1;
    private static final int SECCOMP_FILTER_FLAG_TSYNC = 1;
    private static final int AUDIT_ARCH_X86_64 = 0xC000003E;
    private static final int SECCOMP_RET_ALLOW = 0x7fff0000;
    private static final int SECCOMP_RET_ERRNO = 0x00050000;
    private static final int EPERM = 1;
    private static final short BPF_LD_W_ABS = 0x20;
    private static final short BPF_JMP_JEQ_K = 0x15;
    private static final short BPF_RET_K = 0x06;

    public static void main(String[] args) throws Throwable {
        Linker linker = Linker.nativeLinker();
        StructLayout capture = Linker.Option.captureStateLayout();
        VarHandle errno = capture.varHandle(MemoryLayout.PathElement.groupElement("errno"));
        MethodHandle prctl = linker.downcallHandle(linker.defaultLookup().find("prctl").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
                Linker.Option.captureCallState("errno"), Linker.Option.firstVariadicArg(1));
        MethodHandle syscall = linker.downcallHandle(linker.defaultLookup().find("syscall").orElseThrow(),
                FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG),
                Linker.Option.captureCallState("errno"), Linker.Option.firstVariadicArg(1));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment st = arena.allocate(capture);
            int r = (int) prctl.invokeExact(st, PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L);
            if (r != 0) {
                fail("prctl(PR_SET_NO_NEW_PRIVS): errno " + (int) errno.get(st, 0L));
            }
            // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }
            int[][] program = {
                {BPF_LD_W_ABS, 0, 0, 4},                       // A = seccomp_data.arch
                {BPF_JMP_JEQ_K, 0, 3, AUDIT_ARCH_X86_64},      // not x86_64: allow
                {BPF_LD_W_ABS, 0, 0, 0},                       // A = seccomp_data.nr
                {BPF_JMP_JEQ_K, 0, 1, (int) SYS_IO_URING_SETUP},
                {BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM},  // io_uring_setup: EPERM
                {BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW},
            };
            MemorySegment filter = arena.allocate(8L * program.length, 8);
            for (int i = 0; i < program.length; i++) {
                filter.set(JAVA_SHORT, 8L * i, (short) program[i][0]);
                filter.set(JAVA_BYTE, 8L * i + 2, (byte) program[i][1]);
                filter.set(JAVA_BYTE, 8L * i + 3, (byte) program[i][2]);
                filter.set(JAVA_INT, 8L * i + 4, program[i][3]);
            }
            MemorySegment prog = arena.allocate(16, 8); // struct sock_fprog { u16 len; struct sock_filter *filter; }
            prog.set(JAVA_SHORT, 0, (short) program.length);
            prog.set(ADDRESS, 8, filter);
            long s = (long) syscall.invokeExact(st, SYS_SECCOMP, (long) SECCOMP_SET_MODE_FILTER,
                    (long) SECCOMP_FILTER_FLAG_TSYNC, prog.address());
            if (s != 0) {
                fail("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) = " + s + ", errno " + (int) errno.get(st, 0L));
            }
            MemorySegment params = arena.allocate(120, 8);
            long u = (long) syscall.invokeExact(st, SYS_IO_URING_SETUP, 8L, params.address(), 0L);
            int e = (int) errno.get(st, 0L);
            if (u != -1 || e != EPERM) {
                fail("io_uring_setup under the filter returned " + u + ", errno " + e + " (expected -1, EPERM)");
            }
            System.err.println("seccomp: io_uring_setup refused with EPERM");
        }
        Class.forName("io.qcow2j.cli.Main").getMethod("main", String[].class).invoke(null, (Object) args);
    }

    private static void fail(String why) {
        System.err.println("NoIoUring: " + why);
        System.exit(97);
    }
}
