package io.qcow2j.ffm;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** errno is captured per thread: threads failing at the same time with different errors see their own. */
class ErrnoThreadsTest {
    private static final int ITERATIONS = 20_000;

    interface Failing {
        void call() throws ErrnoException;
    }

    @Test
    void eachThreadSeesItsOwnErrno() throws Exception {
        String missing = "/proc/self/no-such-entry-" + ProcessHandle.current().pid();
        Failing ebadf = () -> {
            try (Arena arena = Arena.ofConfined()) {
                LibC.pread(-1, arena.allocate(16), 0);
            }
        };
        Failing ebadfHeap = () -> LibC.pwrite(-1, MemorySegment.ofArray(new byte[16]), 0);
        Failing enoent = () -> LibC.open(missing, Platform.O_RDONLY | Platform.O_CLOEXEC, 0);
        Failing einval = () -> LibC.lseek(0, 0, 12345);
        record Case(String name, int errno, Failing call) {}
        List<Case> cases = List.of(
                new Case("EBADF", Errno.EBADF, ebadf),
                new Case("ENOENT", Errno.ENOENT, enoent),
                new Case("EINVAL", Errno.EINVAL, einval),
                new Case("EBADF", Errno.EBADF, ebadfHeap));

        CyclicBarrier start = new CyclicBarrier(cases.size() * 2);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicInteger checked = new AtomicInteger();
        List<Thread> threads = new ArrayList<>();
        for (int copy = 0; copy < 2; copy++) {
            for (Case c : cases) {
                threads.add(Thread.ofPlatform().start(() -> {
                    try {
                        start.await(10, TimeUnit.SECONDS);
                        for (int i = 0; i < ITERATIONS && failure.get() == null; i++) {
                            try {
                                c.call().call();
                                throw new AssertionError(c.name() + " call did not fail");
                            } catch (ErrnoException e) {
                                if (e.errno() != c.errno() || !e.getMessage().contains(c.name())) {
                                    throw new AssertionError("expected " + c.name() + " at iteration " + i
                                            + " but got: " + e.getMessage());
                                }
                                checked.incrementAndGet();
                            }
                        }
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                }));
            }
        }
        for (Thread t : threads) {
            t.join();
        }
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
        assertThat(checked.get()).isEqualTo(threads.size() * ITERATIONS);
    }

    @Test
    void virtualThreadsToo() throws Exception {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 32; t++) {
            boolean bad = t % 2 == 0;
            threads.add(Thread.ofVirtual().start(() -> {
                for (int i = 0; i < 500; i++) {
                    try {
                        if (bad) {
                            LibC.fsync(-1);
                        } else {
                            LibC.open("/proc/self/no-such-entry", Platform.O_RDONLY, 0);
                        }
                        failure.compareAndSet(null, new AssertionError("did not fail"));
                    } catch (ErrnoException e) {
                        int expected = bad ? Errno.EBADF : Errno.ENOENT;
                        if (e.errno() != expected) {
                            failure.compareAndSet(null, new AssertionError(e));
                        }
                    }
                    Thread.yield();
                }
            }));
        }
        for (Thread t : threads) {
            t.join();
        }
        assertThat(failure.get()).isNull();
    }
}
