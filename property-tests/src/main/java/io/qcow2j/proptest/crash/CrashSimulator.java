package io.qcow2j.proptest.crash;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import java.util.Set;

/**
 * Builds the files a crash could leave behind, from a {@link RecordingFile}'s initial content and log.
 *
 * <p>A crash point {@code k} (0 … log size) means the first {@code k} log entries happened. The disk then holds
 * everything written before the last sync among them, plus any subset of the changes made since (the page
 * cache may have written back some of them, in any order, or be cut in the middle of a write): see
 * {@link Unsynced} and {@link #states}. {@link #image} makes such a file, as a read-only in-memory
 * {@link CrashImage} that the engine can open through its file opener, and that can be written to disk for
 * {@code qemu-img check}.
 *
 * <p>The durable part is kept in one buffer that moves forward with the crash points, so visiting them in
 * ascending order costs one pass over the log; going back rebuilds it from the start. An image is valid until
 * the next call of {@link #image} that needs another durable part.
 */
public final class CrashSimulator {
    private final byte[] initial;
    private final List<IoEvent> log;
    /** {@code lastSync[k]}: index of the last sync among the first k entries, or -1. */
    private final int[] lastSync;
    private ByteStore durable;
    /** The events [0, durableUpTo) are applied to {@link #durable}. */
    private int durableUpTo;
    private int generation;

    public CrashSimulator(byte[] initial, List<IoEvent> log) {
        this.initial = initial.clone();
        this.log = List.copyOf(log);
        this.lastSync = new int[this.log.size() + 1];
        int s = -1;
        for (int k = 0; k <= this.log.size(); k++) {
            lastSync[k] = s;
            if (k < this.log.size() && this.log.get(k) instanceof IoEvent.Sync) {
                s = k;
            }
        }
        this.durable = new ByteStore(this.initial);
    }

    /** The log this simulator replays. */
    public List<IoEvent> log() {
        return log;
    }

    /** Number of crash points: log size + 1 (crash before anything happened … after everything). */
    public int points() {
        return log.size() + 1;
    }

    /** Index of the last sync among the first {@code point} log entries, or -1. */
    public int lastSync(int point) {
        return lastSync[Objects.checkIndex(point, points())];
    }

    /** Indexes of the changes made after the last sync, before crash point {@code point}. */
    public int[] unsynced(int point) {
        int from = lastSync(point) + 1;
        return java.util.stream.IntStream.range(from, point).filter(i -> log.get(i).mutates()).toArray();
    }

    /** The crash state at {@code point} for one way of treating the unsynced changes. */
    public CrashState state(int point, Unsynced mode, Random rnd) {
        int s = lastSync(point);
        int[] unsynced = unsynced(point);
        int[] kept;
        CrashState.Tear tear = null;
        switch (mode) {
            case DROPPED -> kept = new int[0];
            case KEPT -> kept = unsynced;
            case RANDOM_SUBSET -> {
                kept = subset(unsynced, rnd);
                // when there is a choice, prefer a proper subset: the other modes cover none and all
                for (int t = 0; t < 8 && unsynced.length >= 2 && (kept.length == 0 || kept.length == unsynced.length); t++) {
                    kept = subset(unsynced, rnd);
                }
            }
            case TORN -> {
                int torn = -1;
                for (int j = unsynced.length - 1; j >= 0; j--) {
                    if (log.get(unsynced[j]) instanceof IoEvent.Write w && w.tearable()) {
                        torn = j;
                        break;
                    }
                }
                if (torn < 0) {
                    kept = unsynced; // nothing to tear: the crash came after the last change
                } else {
                    IoEvent.Write w = (IoEvent.Write) log.get(unsynced[torn]);
                    long first = (w.offset() + 512) & -512L;
                    long cuts = (w.end() - 1 - first) / 512 + 1; // boundaries strictly inside the write
                    long cut = first + 512 * (long) rnd.nextInt((int) Math.min(cuts, Integer.MAX_VALUE));
                    tear = new CrashState.Tear(unsynced[torn], cut, rnd.nextBoolean());
                    kept = Arrays.copyOf(unsynced, torn);
                }
            }
            default -> throw new AssertionError(mode);
        }
        return new CrashState(point, s, mode, unsynced.length, kept, tear);
    }

    private static int[] subset(int[] all, Random rnd) {
        return Arrays.stream(all).filter(i -> rnd.nextBoolean()).toArray();
    }

    /**
     * The distinct crash states at {@code point}: one per {@link Unsynced} mode, without duplicates (with no
     * change since the last sync, all four are the same state).
     */
    public List<CrashState> states(int point, Random rnd) {
        List<CrashState> out = new ArrayList<>();
        Set<List<Object>> seen = new HashSet<>();
        for (Unsynced mode : Unsynced.values()) {
            CrashState st = state(point, mode, rnd);
            if (seen.add(st.identity())) {
                out.add(st);
            }
        }
        return out;
    }

    /**
     * The file of crash state {@code state}, named {@code path}: valid until this simulator builds an image with
     * another durable part (a later sync).
     */
    public CrashImage image(CrashState state, Path path) {
        int target = Math.max(0, state.lastSync());
        if (target < durableUpTo) {
            durable = new ByteStore(initial);
            durableUpTo = 0;
            generation++;
        }
        if (target > durableUpTo) {
            for (int i = durableUpTo; i < target; i++) {
                apply(durable, log.get(i));
            }
            durableUpTo = target;
            generation++;
        }
        List<IoEvent> overlay = new ArrayList<>();
        int[] kept = state.kept();
        CrashState.Tear tear = state.tear();
        int ti = tear == null ? Integer.MAX_VALUE : tear.event();
        boolean tearAdded = false;
        for (int i : kept) {
            if (!tearAdded && ti < i) {
                overlay.add(tornPart(tear));
                tearAdded = true;
            }
            overlay.add(log.get(i));
        }
        if (tear != null && !tearAdded) {
            overlay.add(tornPart(tear));
        }
        return new CrashImage(path, state, durable, this::generation, generation, overlay);
    }

    private int generation() {
        return generation;
    }

    private IoEvent.Write tornPart(CrashState.Tear tear) {
        IoEvent.Write w = (IoEvent.Write) log.get(tear.event());
        int at = (int) (tear.cut() - w.offset());
        return tear.head() ? new IoEvent.Write(w.offset(), Arrays.copyOfRange(w.data(), 0, at))
                : new IoEvent.Write(tear.cut(), Arrays.copyOfRange(w.data(), at, w.data().length));
    }

    /** Applies a change to a store (syncs and faults change nothing). */
    static void apply(ByteStore s, IoEvent e) {
        switch (e) {
            case IoEvent.Write w -> s.write(w.offset(), w.data());
            case IoEvent.Truncate t -> s.truncate(t.length());
            case IoEvent.PunchHole p -> s.zero(p.offset(), p.length());
            case IoEvent.Sync _ -> { }
            case IoEvent.Fault _ -> { }
        }
    }
}
