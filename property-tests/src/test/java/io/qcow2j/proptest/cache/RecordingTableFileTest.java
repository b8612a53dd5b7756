package io.qcow2j.proptest.cache;

import io.qcow2j.ffm.Errno;
import io.qcow2j.ffm.ErrnoException;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The recording file the cache properties (and later crash-consistency tests) rely on. */
class RecordingTableFileTest {

    static MemorySegment filled(int length, int value) {
        byte[] b = new byte[length];
        Arrays.fill(b, (byte) value);
        return MemorySegment.ofArray(b);
    }

    @Test
    void readsWhatWasWrittenAndZerosElsewhereAtAnyOffset() throws Exception {
        RecordingTableFile f = new RecordingTableFile().region("L2", 4096, 8192);
        f.write(4096 + 500, filled(100, 7)); // crosses a block boundary
        MemorySegment dst = filled(1024, 9);
        f.read(4096, dst);
        byte[] b = dst.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        for (int i = 0; i < b.length; i++) {
            assertThat(b[i]).as("byte %d", i).isEqualTo((byte) (i >= 500 && i < 600 ? 7 : 0));
        }
        assertThat(f.log()).extracting(RecordingTableFile.Op::toString)
                .containsExactly("#0 write L2 0x11f4+100", "#1 read L2 0x1000+1024");
        assertThat(f.bytes(1 << 30, 4)).containsOnly(0);
    }

    @Test
    void wordsAreBigEndian() throws Exception {
        RecordingTableFile f = new RecordingTableFile();
        byte[] b = new byte[16];
        b[7] = 1;
        b[8] = (byte) 0x80;
        f.preload(512, b);
        assertThat(f.words(512, 2)).containsExactly(1L, Long.MIN_VALUE);
        assertThat(f.words(1024, 2)).containsExactly(0L, 0L);
        assertThat(f.words(512 + 8, 1)).containsExactly(Long.MIN_VALUE); // unaligned path
        assertThat(f.log()).isEmpty(); // preload and inspection are not I/O
    }

    @Test
    void injectedFailuresAreLoggedChangeNothingAndRunOut() throws Exception {
        RecordingTableFile f = new RecordingTableFile();
        f.failNextWrites(2, Errno.ENOSPC);
        f.failNextSyncs(1, Errno.EIO);
        f.failNextReads(1, Errno.EIO);
        assertThatThrownBy(() -> f.write(512, filled(512, 1))).isInstanceOfSatisfying(ErrnoException.class,
                e -> assertThat(e.errno()).isEqualTo(Errno.ENOSPC));
        assertThatThrownBy(() -> f.write(512, filled(512, 1))).isInstanceOf(ErrnoException.class);
        assertThat(f.pendingWriteFailures()).isZero();
        f.write(1024, filled(512, 2));
        assertThatThrownBy(f::flush).isInstanceOf(ErrnoException.class);
        f.flush();
        assertThatThrownBy(() -> f.read(512, filled(512, 0))).isInstanceOf(ErrnoException.class);
        assertThat(f.bytes(512, 512)).containsOnly(0);
        assertThat(f.log()).extracting(RecordingTableFile.Op::ok).containsExactly(false, false, true, false, true, false);
        assertThat(f.lastSync()).isEqualTo(4);
    }

    @Test
    void contentAfterAnyPrefixOfTheLog() throws Exception {
        RecordingTableFile f = new RecordingTableFile();
        f.preload(512, filled(512, 1).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
        f.write(512, filled(512, 2));
        f.flush();
        f.write(1024, filled(512, 3));
        assertThat(f.blocksAfter(0)).containsOnlyKeys(512L);
        assertThat(f.blocksAfter(0).get(512L)).containsOnly(1);
        assertThat(f.blocksAfter(1).get(512L)).containsOnly(2);
        assertThat(f.blocksAfter(f.lastSync() + 1)).containsOnlyKeys(512L);
        assertThat(f.blocksAfter(f.logSize())).containsOnlyKeys(512L, 1024L);
        assertThat(f.since(1)).extracting(RecordingTableFile.Op::isSync).containsExactly(true, false);
    }
}
