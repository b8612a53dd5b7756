package io.qcow2j.cli;

import io.qcow2j.engine.ConvertOptions;
import io.qcow2j.engine.CreateOptions;
import io.qcow2j.engine.Disk;
import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Sizes;
import io.qcow2j.engine.SnapshotRef;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code qcow2j convert -O qcow2}: the options of {@link ConvertCommand} turned into {@link Images#convert}. */
final class Qcow2Output {
    private Qcow2Output() {}

    static int convert(ConvertCommand c, List<String> sources, SnapshotRef snapshot) throws IOException {
        PrintWriter out = c.spec.commandLine().getOut();
        String opts = c.outputOptions == null ? "" : c.outputOptions;
        if (CreateOptions.splitOptions(opts).containsKey("help") || CreateOptions.splitOptions(opts).containsKey("?")) {
            out.println("Supported qcow2 options:");
            for (CreateOptions.OptionHelp h : CreateOptions.supportedOptions()) {
                out.printf("  %-22s - %s%n", h.name() + "=<" + h.type() + ">", h.description());
            }
            out.flush();
            return 0;
        }
        CreateOptions create;
        try {
            create = CreateOptions.parse(opts, CreateOptions.defaults());
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(e.getMessage());
        }
        if (c.backingFile != null) {
            if (create.backingFile() != null) {
                throw new CommandFailure("-B and -o backing_file cannot be used at the same time");
            }
            create = create.toBuilder().backingFile(c.backingFile)
                    .backingFormat(c.backingFormat != null ? c.backingFormat : create.backingFormat()).build();
        }
        if (c.noCreate && c.outputOptions != null) {
            throw new CommandFailure("-o has no effect when skipping image creation");
        }
        if (c.targetIsZero && !c.noCreate) {
            throw new CommandFailure("--target-is-zero requires use of -n flag");
        }
        if (c.noCreate && !Files.exists(Path.of(c.dst))) {
            throw new CommandFailure("Could not open '" + c.dst + "': No such file or directory");
        }
        long sparse = ConvertOptions.DEFAULT_SPARSE_SIZE;
        if (c.sparse != null) {
            try {
                sparse = Sizes.parse("sparse", c.sparse);
            } catch (IllegalArgumentException e) {
                throw new CommandFailure("Invalid buffer size for sparse output specified. Valid sizes are"
                        + " multiples of 512 up to 2MiB.");
            }
            if (sparse % 512 != 0 || sparse > (2 << 20)) {
                throw new CommandFailure("Invalid buffer size for sparse output specified. Valid sizes are"
                        + " multiples of 512 up to 2MiB.");
            }
        }
        int m = ConvertOptions.DEFAULT_PARALLEL;
        if (c.parallel != null) {
            try {
                m = Integer.parseInt(c.parallel);
            } catch (NumberFormatException e) {
                m = -1;
            }
            if (m < 1 || m > ConvertOptions.MAX_PARALLEL) {
                throw new CommandFailure("Invalid number of coroutines. Allowed number of coroutines is between 1"
                        + " and " + ConvertOptions.MAX_PARALLEL);
            }
        }
        Progress progress = new Progress(out, c.progress && !c.quiet && Progress.onTerminal());
        ConvertOptions co = ConvertOptions.builder().compress(c.compress).targetExists(c.noCreate)
                .targetIsZero(c.targetIsZero).topOnly(create.backingFile() != null).sparseSize(sparse).parallel(m)
                .outOfOrder(c.outOfOrder).cacheMode(ImageSource.cacheMode(c.cache))
                .progress(p -> {
                    synchronized (progress) {
                        progress.set((float) p);
                    }
                }).build();
        ImageOptions srcOptions = Main.imageOptions().cacheMode(ImageSource.cacheMode(c.sourceCache)).build();
        List<ImageSource.Chain> chains = new ArrayList<>();
        try {
            List<Disk> disks = new ArrayList<>();
            for (String name : sources) {
                ImageOptions o = chains.isEmpty() ? srcOptions.toBuilder().snapshot(snapshot).build() : srcOptions;
                ImageSource.Chain chain = c.source.openGuestDisk(name, o);
                chains.add(chain);
                disks.add(chain.top());
            }
            try {
                Images.convert(disks, Path.of(c.dst), create, co);
            } catch (IllegalArgumentException e) {
                throw new CommandFailure(c.dst + ": error while converting qcow2: " + e.getMessage(), e);
            } catch (IOException e) {
                throw new CommandFailure("error while converting to " + c.dst + ": " + Main.describe(e), e);
            }
        } finally {
            for (ImageSource.Chain ch : chains) {
                ch.close();
            }
        }
        progress.set(100);
        progress.end();
        return 0;
    }
}
