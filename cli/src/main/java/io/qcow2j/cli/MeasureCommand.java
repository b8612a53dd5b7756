package io.qcow2j.cli;

import io.qcow2j.engine.CreateOptions;
import io.qcow2j.engine.Images;
import io.qcow2j.engine.Measurement;
import io.qcow2j.engine.Sizes;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code qcow2j measure}: qemu-img measure's "required size" and "fully allocated size". */
@Command(name = "measure", sortOptions = false, mixinStandardHelpOptions = true,
        header = "Compute the size of a new image for a size or a source, as qemu-img measure does.",
        description = "Print the file size a new image needs: for --size N, or to hold FILENAME's data.")
final class MeasureCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json.")
    String output = "human";

    @Option(names = "-O", paramLabel = "OUTPUT_FMT", description = "Format of the new image: raw (default) or qcow2.")
    String outputFormat = "raw";

    @Option(names = "-o", paramLabel = "OPTIONS", description = "Options of the new image, as create's.")
    String options;

    @Option(names = "--size", paramLabel = "N", description = "Measure an empty image of this size.")
    String size;

    @Option(names = "-l", paramLabel = "SNAPSHOT", description = "Not supported.")
    String snapshot;

    @Mixin
    ImageSource source = new ImageSource();

    @Parameters(arity = "0..1", paramLabel = "FILENAME")
    String file;

    @Override
    public Integer call() throws IOException {
        if (size == null && file == null) {
            throw new CommandFailure("Either --size N or one filename must be specified.");
        }
        if (size != null && file != null) {
            throw new CommandFailure("--size N cannot be used together with a filename.");
        }
        if (!output.equals("human") && !output.equals("json")) {
            throw new CommandFailure("--output must be used with human or json as argument.");
        }
        long n = 0;
        if (size != null) {
            try {
                n = Sizes.parse("size", size);
            } catch (IllegalArgumentException e) {
                throw new CommandFailure("Invalid image size specified. Must be between 0 and 9223372036854775807.");
            }
        }
        Measurement m;
        if (file == null) {
            m = measure(null, n);
        } else {
            try (ImageSource.Chain c = source.openGuestDisk(file, Main.imageOptions().readOnly(true).build())) {
                m = measure(c, c.top().size());
            }
        }
        PrintWriter out = spec.commandLine().getOut();
        if (output.equals("json")) {
            out.println("{");
            if (m.bitmaps() >= 0) {
                out.println("    \"bitmaps\": " + m.bitmaps() + ",");
            }
            out.println("    \"required\": " + m.required() + ",");
            out.println("    \"fully-allocated\": " + m.fullyAllocated());
            out.println("}");
        } else {
            out.println("required size: " + m.required());
            out.println("fully allocated size: " + m.fullyAllocated());
            if (m.bitmaps() >= 0) {
                out.println("bitmaps size: " + m.bitmaps());
            }
        }
        out.flush();
        return 0;
    }

    private Measurement measure(ImageSource.Chain c, long n) throws IOException {
        if (outputFormat.equals("raw")) {
            return new Measurement(n, n, -1);
        }
        if (!outputFormat.equals("qcow2")) {
            throw new CommandFailure("Unknown file format '" + outputFormat + "'");
        }
        // falloc and full preallocation count every data cluster (SizeMeasure takes them as one flag)
        List<String> kept = new ArrayList<>();
        boolean full = false;
        for (String part : (options == null ? "" : options).split(",")) {
            if (part.equals("preallocation=falloc") || part.equals("preallocation=full")) {
                full = true;
            } else if (!part.isEmpty()) {
                kept.add(part);
            }
        }
        CreateOptions o;
        try {
            o = CreateOptions.parse(String.join(",", kept), CreateOptions.defaults());
            return Images.measure(o, full, c == null ? null : c.top(), n);
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(e.getMessage());
        }
    }
}
