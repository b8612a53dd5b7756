package io.qcow2j.proptest.crash;

import java.util.Arrays;
import java.util.List;

/**
 * One simulated crash: the file as the disk could hold it if the machine stopped after the first {@code point}
 * log entries. Everything before the last sync ({@code lastSync}, an index in the log, or -1) is on disk; of
 * the changes after it, exactly the events at {@code kept} (indexes in the log, ascending) are, plus, if
 * {@code tear} is not null, a part of one write.
 *
 * @param point    the crash point: how many log entries happened (0 … log size)
 * @param lastSync index of the last sync before the crash point, -1 if none
 * @param mode     how the kept changes were chosen
 * @param unsynced how many changes after the last sync there were to choose from
 * @param kept     indexes of the changes after the last sync that reached the disk
 * @param tear     the torn write, or null
 */
public record CrashState(int point, int lastSync, Unsynced mode, int unsynced, int[] kept, Tear tear) {

    /** A write at log index {@code event} of which only the part before (head) or after (tail) {@code cut} is on disk. */
    public record Tear(int event, long cut, boolean head) {
        @Override
        public String toString() {
            return "write #" + event + " torn at 0x" + Long.toHexString(cut) + " (" + (head ? "head" : "tail")
                    + " on disk)";
        }
    }

    public CrashState {
        kept = kept.clone();
    }

    @Override
    public int[] kept() {
        return kept.clone();
    }

    /** A key that is equal for two states that produce the same file. */
    public List<Object> identity() {
        return List.of(point, lastSync, Arrays.stream(kept).boxed().toList(), tear == null ? "" : tear);
    }

    @Override
    public String toString() {
        return "crash after " + point + " log entries (last sync #" + lastSync + "), unsynced changes " + mode
                + ": " + kept.length + " of " + unsynced + " on disk " + Arrays.toString(kept)
                + (tear != null ? ", " + tear : "");
    }
}
