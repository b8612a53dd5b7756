package io.qcow2j.proptest.crash;

import io.qcow2j.ffm.AlignedFile;
import io.qcow2j.ffm.Errno;
import io.qcow2j.ffm.ErrnoException;
import io.qcow2j.ffm.IoMode;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The recording file and the crash simulator themselves. */
class RecordingFileTest {
    @TempDir
    Path dir;

    private static MemorySegment bytes(int n, int value) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) value);
        return MemorySegment.ofArray(b);
    }

    private static byte[] read(CrashImage img) throws IOException {
        return img.toArray();
    }

    @Test
    void logsWritesAndSyncsInOrderAndReadsWhatWasWritten() throws IOException {
        RecordingFile f = RecordingFile.inMemory(dir.resolve("f"), new byte[] {1, 2, 3});
        f.write(1, bytes(2, 9));
        f.dataSync();
        f.write(5, bytes(1, 7)); // past the end: a hole of zeros
        assertThat(f.log()).hasSize(3);
        assertThat(f.log().get(0)).isInstanceOf(IoEvent.Write.class);
        assertThat(f.log().get(1)).isInstanceOf(IoEvent.Sync.class);
        assertThat(f.content()).containsExactly(1, 9, 9, 0, 0, 7);
        byte[] back = new byte[6];
        assertThat(f.read(0, MemorySegment.ofArray(back))).isEqualTo(6);
        assertThat(back).containsExactly(1, 9, 9, 0, 0, 7);
        assertThat(f.initialContent()).containsExactly(1, 2, 3);
        assertThat(f.writeCount()).isEqualTo(2);
        assertThat(f.syncCount()).isEqualTo(1);
    }

    @Test
    void crashStatesKeepTheSyncedPartAndAnySubsetOfTheRest() throws IOException {
        RecordingFile f = RecordingFile.inMemory(dir.resolve("f"), new byte[2048]);
        f.write(0, bytes(512, 1));     // #0
        f.dataSync();                   // #1
        f.write(512, bytes(1024, 2));   // #2: two sectors, tearable
        f.write(1536, bytes(100, 3));   // #3: one sector, not tearable
        CrashSimulator sim = f.crashSimulator();
        assertThat(sim.points()).isEqualTo(5);
        assertThat(sim.lastSync(4)).isEqualTo(1);
        assertThat(sim.unsynced(4)).containsExactly(2, 3);
        Random rnd = new Random(1);

        // before the sync: the write may or may not be there
        byte[] dropped0 = read(sim.image(sim.state(1, Unsynced.DROPPED, rnd), f.path()));
        assertThat(dropped0[0]).isZero();
        byte[] kept0 = read(sim.image(sim.state(1, Unsynced.KEPT, rnd), f.path()));
        assertThat(kept0[0]).isEqualTo((byte) 1);

        byte[] dropped = read(sim.image(sim.state(4, Unsynced.DROPPED, rnd), f.path()));
        assertThat(dropped[0]).isEqualTo((byte) 1);
        assertThat(dropped[512]).isZero();
        assertThat(dropped[1536]).isZero();
        byte[] kept = read(sim.image(sim.state(4, Unsynced.KEPT, rnd), f.path()));
        assertThat(kept[0]).isEqualTo((byte) 1);
        assertThat(kept[512]).isEqualTo((byte) 2);
        assertThat(kept[1535]).isEqualTo((byte) 2);
        assertThat(kept[1536]).isEqualTo((byte) 3);

        // torn: the last tearable write (#2) is cut at 1024, head or tail on disk; #3 after it is not
        CrashState torn = sim.state(4, Unsynced.TORN, rnd);
        assertThat(torn.tear()).isNotNull();
        assertThat(torn.tear().event()).isEqualTo(2);
        assertThat(torn.tear().cut()).isEqualTo(1024);
        byte[] t = read(sim.image(torn, f.path()));
        assertThat(t[0]).isEqualTo((byte) 1);
        assertThat(t[1536]).isZero();
        if (torn.tear().head()) {
            assertThat(t[512]).isEqualTo((byte) 2);
            assertThat(t[1024]).isZero();
        } else {
            assertThat(t[512]).isZero();
            assertThat(t[1024]).isEqualTo((byte) 2);
        }

        // a random subset of two changes is a proper one: exactly one of them
        CrashState sub = sim.state(4, Unsynced.RANDOM_SUBSET, rnd);
        assertThat(sub.kept()).hasSize(1);

        // all four are distinct here; with nothing unsynced there is one state
        assertThat(sim.states(4, rnd)).hasSize(4);
        assertThat(sim.states(2, rnd)).hasSize(1);
    }

    @Test
    void anImageGoesStaleWhenTheSimulatorMovesPastItsSync() throws IOException {
        RecordingFile f = RecordingFile.inMemory(dir.resolve("f"), new byte[0]);
        f.write(0, bytes(10, 1));
        f.dataSync();
        f.write(0, bytes(10, 2));
        f.dataSync();
        CrashSimulator sim = f.crashSimulator();
        Random rnd = new Random(2);
        CrashImage early = sim.image(sim.state(1, Unsynced.KEPT, rnd), f.path());
        assertThat(early.size()).isEqualTo(10);
        CrashImage late = sim.image(sim.state(4, Unsynced.DROPPED, rnd), f.path());
        assertThat(read(late)[0]).isEqualTo((byte) 2);
        assertThatThrownBy(early::size).isInstanceOf(IOException.class).hasMessageContaining("stale");
        // going back rebuilds from the start
        assertThat(read(sim.image(sim.state(0, Unsynced.KEPT, rnd), f.path()))).isEmpty();
        assertThat(read(sim.image(sim.state(2, Unsynced.DROPPED, rnd), f.path()))[0]).isEqualTo((byte) 1);
    }

    @Test
    void injectedFaultsFailTheNthCallAndChangeNothing() throws IOException {
        RecordingFile f = RecordingFile.inMemory(dir.resolve("f"), new byte[8]);
        f.failWrite(2, Errno.EIO).failSync(1, Errno.ENOSPC);
        f.write(0, bytes(1, 1));
        assertThatThrownBy(() -> f.write(1, bytes(1, 2))).isInstanceOfSatisfying(ErrnoException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.EIO));
        f.write(2, bytes(1, 3));
        assertThatThrownBy(f::dataSync).isInstanceOfSatisfying(ErrnoException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.ENOSPC));
        f.dataSync();
        assertThat(f.content()).startsWith(1, 0, 3);
        assertThat(f.faultCount()).isEqualTo(2);
        List<IoEvent> log = f.log();
        assertThat(log).hasSize(5);
        assertThat(log.get(1)).isInstanceOf(IoEvent.Fault.class);
        assertThat(log.get(3)).isInstanceOf(IoEvent.Fault.class);
        // a failed sync makes nothing durable
        assertThat(f.crashSimulator().lastSync(4)).isEqualTo(-1);

        f.failWritesFrom(f.writeCount() + 2, Errno.ENOSPC);
        f.write(3, bytes(1, 4));
        assertThatThrownBy(() -> f.write(4, bytes(1, 5))).isInstanceOf(ErrnoException.class);
        assertThatThrownBy(() -> f.write(5, bytes(1, 6))).isInstanceOf(ErrnoException.class);
        f.clearFaults();
        f.write(6, bytes(1, 7));
        assertThat(f.content()).containsExactly(1, 0, 3, 4, 0, 0, 7, 0);
    }

    @Test
    void wrapsARealFile() throws IOException {
        Path p = Files.write(dir.resolve("real"), new byte[] {5, 5, 5, 5});
        try (RecordingFile f = RecordingFile.wrapping(AlignedFile.open(p, IoMode.BUFFERED, StandardOpenOption.READ,
                StandardOpenOption.WRITE))) {
            f.write(2, bytes(4, 8));
            f.dataSync();
            f.write(0, bytes(1, 1));
            assertThat(f.initialContent()).containsExactly(5, 5, 5, 5);
            assertThat(f.content()).containsExactly(1, 5, 8, 8, 8, 8);
            CrashSimulator sim = f.crashSimulator();
            assertThat(read(sim.image(sim.state(3, Unsynced.DROPPED, new Random(3)), p))).containsExactly(5, 5, 8, 8, 8, 8);
        }
        assertThat(Files.readAllBytes(p)).containsExactly(1, 5, 8, 8, 8, 8);
    }

    @Test
    void truncationsAndHolesAreChangesToo() throws IOException {
        RecordingFile f = RecordingFile.inMemory(dir.resolve("f"), new byte[] {1, 1, 1, 1});
        f.punchHole(1, 1);
        f.truncate(2);
        f.write(3, bytes(1, 9));
        assertThat(f.content()).containsExactly(1, 0, 0, 9);
        CrashSimulator sim = f.crashSimulator();
        assertThat(read(sim.image(sim.state(3, Unsynced.KEPT, new Random(4)), f.path()))).containsExactly(1, 0, 0, 9);
        assertThat(read(sim.image(sim.state(3, Unsynced.DROPPED, new Random(4)), f.path()))).containsExactly(1, 1, 1, 1);
    }
}
