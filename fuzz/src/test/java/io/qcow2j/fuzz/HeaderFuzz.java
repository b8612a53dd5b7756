package io.qcow2j.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.qcow2j.engine.format.Qcow2FormatException;
import io.qcow2j.engine.format.Qcow2Header;
import io.qcow2j.engine.format.SnapshotTable;
import java.lang.foreign.MemorySegment;

/**
 * The pure parsers of the format package on the first bytes of an image file: header, header extensions
 * (backing format, feature names, bitmaps), backing file name, and the snapshot table where the header puts it.
 * The input is the whole file (seeds: qemu-img images with 512-byte clusters, see scripts/fuzz-seeds).
 */
class HeaderFuzz {
    @FuzzTest(maxDuration = "10m")
    void header(byte[] file) {
        try {
            Qcow2Header h = Qcow2Header.parse(file, file.length);
            h.extensions();
            h.backingFileName();
            if (h.nbSnapshots() > 0 && h.snapshotsOffset() < file.length) {
                SnapshotTable.parse(MemorySegment.ofArray(file).asSlice(h.snapshotsOffset()), h);
            }
        } catch (Qcow2FormatException e) {
            Outcomes.allowedError(e);
        }
    }
}
