package io.qcow2j.cli;

import io.qcow2j.engine.Disk;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Sizes;
import io.qcow2j.engine.SnapshotNotFoundException;
import io.qcow2j.engine.Snapshots;
import io.qcow2j.engine.format.Qcow2Snapshot;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code qcow2j snapshot}: {@code qemu-img snapshot} — list ({@code -l}), create ({@code -c TAG}), apply
 * ({@code -a ID|TAG}) or delete ({@code -d TAG}) internal snapshots of a qcow2 image through
 * {@link Snapshots}. One action at most (none: nothing is done, exit 0); qemu-img's messages and exit
 * statuses, including for images that have no snapshots (raw).
 */
@Command(name = "snapshot", mixinStandardHelpOptions = true, sortOptions = false,
        header = "List, create, apply or delete internal snapshots of a qcow2 image, as qemu-img snapshot does.",
        description = {
            "List (-l), create (-c), apply (-a) or delete (-d) an internal snapshot of a qcow2 image, as qemu-img "
                    + "snapshot does. -a finds a snapshot by ID, then by name; -d by name.",
            "Exit status: 0 success, 1 failure."
        })
final class SnapshotCommand implements Callable<Integer>, OpensChain {
    private static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss", Locale.ROOT);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "-l", description = "List the snapshots.")
    boolean[] list = {};

    @Option(names = "-c", paramLabel = "SNAPSHOT", description = "Create a snapshot named SNAPSHOT.")
    List<String> create = List.of();

    @Option(names = "-a", paramLabel = "SNAPSHOT", description = "Apply (revert the disk to) a snapshot, by ID or name.")
    List<String> apply = List.of();

    @Option(names = "-d", paramLabel = "SNAPSHOT", description = "Delete the snapshot named SNAPSHOT.")
    List<String> delete = List.of();

    @Option(names = "-q", description = "Quiet.")
    boolean quiet;

    @Option(names = {"-U", "--force-share"}, description = "Open the image in shared mode (listing only).")
    boolean forceShare;

    @Parameters(paramLabel = "IMAGE", description = "The image file.")
    String image;

    @Override
    public String imageName() {
        return image;
    }

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        int actions = list.length + create.size() + apply.size() + delete.size();
        if (actions > 1) {
            err.println("qcow2j: Cannot mix '-l', '-a', '-c', '-d'");
            err.println("Try 'qcow2j snapshot --help' for more information.");
            err.flush();
            return 1;
        }
        if (actions == 0) {
            return 0;
        }
        Path path = Path.of(image);
        if (list.length == 0 && forceShare) {
            throw new CommandFailure("Could not open '" + image + "': force-share=on can only be used with read-only images");
        }
        boolean qcow2;
        try (Disk d = Images.open(path, Main.imageOptions().readOnly(true).build())) {
            qcow2 = d.format().equals("qcow2");
        }
        if (list.length > 0) {
            if (qcow2) {
                print(out, Snapshots.list(path, Main.imageOptions().build()));
            }
            return 0;
        }
        if (!create.isEmpty()) {
            String tag = create.get(0);
            if (!qcow2) {
                throw new CommandFailure("Could not create snapshot '" + tag + "': -95 (Operation not supported)");
            }
            run(() -> Snapshots.create(path, tag, Main.imageOptions().build()), "create", tag);
        } else if (!apply.isEmpty()) {
            String tag = apply.get(0);
            if (!qcow2) {
                throw new CommandFailure("Could not apply snapshot '" + tag + "': Block driver does not support snapshots");
            }
            run(() -> Snapshots.apply(path, tag, Main.imageOptions().build()), "apply", tag);
        } else {
            String tag = delete.get(0);
            if (!qcow2) {
                throw new CommandFailure("Could not delete snapshot '" + tag + "': snapshot not found");
            }
            run(() -> Snapshots.delete(path, tag, Main.imageOptions().build()), "delete", tag);
        }
        return 0;
    }

    private interface Action {
        void run() throws IOException;
    }

    /** qemu-img's "Could not VERB snapshot 'TAG': REASON" for a failure of the engine. */
    private static void run(Action action, String verb, String tag) throws IOException {
        try {
            action.run();
        } catch (SnapshotNotFoundException e) {
            throw new CommandFailure("Could not " + verb + " snapshot '" + tag + "': " + e.getMessage(), e);
        } catch (IOException e) {
            String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            throw new CommandFailure("Could not " + verb + " snapshot '" + tag + "': " + m, e);
        }
    }

    /** qemu-img's table (block/qapi.c's bdrv_snapshot_dump); nothing at all when there is no snapshot. */
    static void print(PrintWriter out, List<Qcow2Snapshot> snapshots) {
        if (snapshots.isEmpty()) {
            return;
        }
        out.println("Snapshot list:");
        out.println(String.format(Locale.ROOT, "%-10s%-17s%8s%20s%13s%11s", "ID", "TAG", "VM SIZE", "DATE",
                "VM CLOCK", "ICOUNT"));
        for (Qcow2Snapshot sn : snapshots) {
            out.println(row(sn));
        }
        out.flush();
    }

    static String row(Qcow2Snapshot sn) {
        String date = DATE.format(Instant.ofEpochSecond(sn.dateSeconds()).atZone(ZoneId.systemDefault()));
        long secs = Long.divideUnsigned(sn.vmClockNanos(), 1_000_000_000L);
        String clock = String.format(Locale.ROOT, "%02d:%02d:%02d.%03d", secs / 3600, (secs / 60) % 60, secs % 60,
                Long.remainderUnsigned(sn.vmClockNanos(), 1_000_000_000L) / 1_000_000);
        String icount = sn.hasIcount() ? Long.toString(sn.icount()) : "";
        return String.format(Locale.ROOT, "%-9s %-16s %8s%20s%13s%11s", sn.id(), sn.name(), sizeToString(sn.vmStateSize()),
                date, clock, icount);
    }

    /** QEMU's size_to_str, as qemu-img prints the VM state size. */
    static String sizeToString(long bytes) {
        return Sizes.human(bytes);
    }
}
