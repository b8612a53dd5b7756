package io.qcow2j.ffm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The pool of {@link AsyncReads} groups: exactly as many groups as asked for, none handed
 * out twice while in flight, each back after its read completed or was abandoned, also with threads racing.
 */
class AsyncReadsPoolTest {

    @Test
    void handsOutEachGroupOnceUntilItComesBack() throws Exception {
        try (TestDirs dirs = TestDirs.disk(); AsyncIo io = AsyncIo.open("io_uring", 16); Arena arena = Arena.ofShared();
                AlignedFile f = AlignedFile.open(dirs.file("a"), IoMode.BUFFERED, StandardOpenOption.CREATE,
                        StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            f.write(0, arena.allocate(1 << 16).fill((byte) 7));
            AsyncReads<Object> reads = new AsyncReads<>(new AsyncFile(f, io), 3, 1, Object::new, () -> { });
            Set<AsyncReads.Group<Object>> out = new HashSet<>();
            for (int i = 0; i < 3; i++) {
                assertTrue(out.add(assertNotNullGroup(reads.begin())), "a group handed out twice");
            }
            assertNull(reads.begin(), "a fourth group from a pool of three");
            AsyncReads.Group<Object> g = out.iterator().next();
            g.abandon();
            assertEquals(g, reads.begin(), "the abandoned group is the free one");
            // a submitted read gives its group back once it completed
            MemorySegment dst = arena.allocate(4096);
            assertTrue(g.add(0, dst));
            g.submit().join();
            assertEquals(7, dst.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 4095));
            assertEquals(g, reads.begin());
            assertNull(reads.begin());
        }
    }

    @Test
    void racingThreadsNeverShareAGroup() throws Exception {
        try (TestDirs dirs = TestDirs.disk(); AsyncIo io = AsyncIo.open("io_uring", 16);
                AlignedFile f = AlignedFile.open(dirs.file("a"), IoMode.BUFFERED, StandardOpenOption.CREATE,
                        StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            int groups = 4;
            AsyncReads<Object> reads = new AsyncReads<>(new AsyncFile(f, io), groups, 1, Object::new, () -> { });
            Set<AsyncReads.Group<Object>> inUse = ConcurrentHashMap.newKeySet();
            Set<AsyncReads.Group<Object>> seen = ConcurrentHashMap.newKeySet();
            AtomicReference<String> bad = new AtomicReference<>();
            AtomicInteger got = new AtomicInteger();
            List<CompletableFuture<Void>> threads = new ArrayList<>();
            for (int t = 0; t < 6; t++) {
                threads.add(CompletableFuture.runAsync(() -> {
                    for (int i = 0; i < 200_000; i++) {
                        AsyncReads.Group<Object> g = reads.begin();
                        if (g == null) {
                            continue;
                        }
                        got.incrementAndGet();
                        seen.add(g);
                        if (!inUse.add(g)) {
                            bad.compareAndSet(null, "group handed out while in use");
                        }
                        inUse.remove(g);
                        g.abandon();
                    }
                }, Thread::startVirtualThread));
            }
            CompletableFuture.allOf(threads.toArray(CompletableFuture[]::new)).join();
            assertNull(bad.get());
            assertTrue(got.get() > 0);
            assertTrue(seen.size() <= groups, "no group but the pool's");
            IdentityHashMap<Object, Boolean> back = new IdentityHashMap<>();
            for (int i = 0; i < groups; i++) {
                back.put(assertNotNullGroup(reads.begin()), true);
            }
            assertEquals(groups, back.size(), "all groups free again, each once");
            assertNull(reads.begin());
        }
    }

    private static <A> AsyncReads.Group<A> assertNotNullGroup(AsyncReads.Group<A> g) {
        assertNotNull(g);
        return g;
    }
}
