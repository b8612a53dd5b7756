package io.qcow2j.fuzz;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The bounded coverage-guided fuzzing run (scripts/fuzz): the targets of {@link HeaderFuzz} and {@link ImageFuzz},
 * fed mutations of their corpus; an input that reaches a JaCoCo probe never reached before joins the corpus
 * (kept in {@code target/fuzz-corpus}), an input that breaks a target's rules is written into the target's
 * regression folder ({@code src/test/resources/…/<Target>Inputs/<method>/finding-<sha1>}), which Jazzer's
 * regression mode runs in every build from then on.
 *
 * <p>Runs only when {@code QCOW2J_FUZZ_SECONDS} is set (and with the JaCoCo agent: without it the run has no
 * guidance and says so). Prints inputs executed, probes reached, corpus size and findings.
 */
class CoverageFuzzTest {
    private static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();

    interface Target {
        void run(byte[] input) throws Exception;
    }

    @Test
    void fuzz() throws Exception {
        String secs = System.getenv("QCOW2J_FUZZ_SECONDS");
        assumeTrue(secs != null && !secs.isBlank(), "QCOW2J_FUZZ_SECONDS not set: no fuzzing run");
        Coverage cov = Coverage.ofAgent();
        assumeTrue(cov != null, "no JaCoCo agent in this JVM: run scripts/fuzz");
        long seconds = Long.parseLong(secs.strip());
        HeaderFuzz header = new HeaderFuzz();
        ImageFuzz image = new ImageFuzz();
        int findings = run("HeaderFuzz", "header", header::header, seconds / 4, cov)
                + run("ImageFuzz", "image", image::image, seconds - seconds / 4, cov);
        System.out.println("fuzz: findings " + findings);
        if (findings > 0) {
            throw new AssertionError(findings + " inputs broke the targets' rules: see the finding-* files");
        }
    }

    private static int run(String target, String method, Target t, long seconds, Coverage cov) throws Exception {
        Path base = Path.of(System.getProperty("basedir", "."));
        Path inputs = base.resolve("src/test/resources/io/qcow2j/fuzz/" + target + "Inputs/" + method);
        Path kept = base.resolve("target/fuzz-corpus/" + target);
        Files.createDirectories(kept);
        List<byte[]> corpus = new ArrayList<>();
        for (Path dir : List.of(inputs, kept)) {
            try (Stream<Path> s = Files.list(dir)) {
                for (Path p : s.sorted().toList()) {
                    corpus.add(Files.readAllBytes(p));
                }
            }
        }
        Random rnd = new Random(Long.getLong("qcow2j.fuzz.seed", System.nanoTime()));
        long end = System.nanoTime() + seconds * 1_000_000_000L;
        long executed = 0;
        long slowest = 0;
        int findings = 0;
        cov.takeNew();
        while (System.nanoTime() < end) {
            byte[] in = Mutator.mutate(corpus.get(rnd.nextInt(corpus.size())), corpus, rnd);
            long t0 = System.nanoTime();
            long cpu0 = THREADS.getCurrentThreadCpuTime();
            Throwable broke = null;
            try {
                t.run(in);
            } catch (Throwable e) { // the targets let only allowed outcomes through: anything here is a finding
                broke = e;
            }
            long took = System.nanoTime() - t0;
            slowest = Math.max(slowest, took);
            executed++;
            // Slow is judged by the CPU time of this thread (the machine may be shared and loaded: a run found two
            // "slow" inputs at a load average of 20 that take milliseconds), a hang by the wall clock.
            long cpu = THREADS.getCurrentThreadCpuTime() - cpu0;
            if (broke == null && (cpu > 5_000_000_000L || took > 60_000_000_000L)) {
                broke = new AssertionError("one input took " + cpu / 1_000_000 + " ms of CPU, " + took / 1_000_000
                        + " ms in all");
            }
            if (broke != null) {
                findings++;
                Path f = inputs.resolve("finding-" + sha1(in));
                Files.write(f, in);
                System.out.println("fuzz: " + target + ": FINDING " + f.getFileName() + ": " + broke);
                broke.printStackTrace(System.out);
            }
            if (cov.takeNew() > 0) {
                corpus.add(in);
                Files.write(kept.resolve(sha1(in)), in);
            }
        }
        System.out.printf("fuzz: %s: %d inputs in %d s, %d JaCoCo probes reached (engine and fuzz classes), corpus"
                + " %d, slowest input %d ms, findings %d%n", target, executed, seconds, cov.probesSeen(),
                corpus.size(), slowest / 1_000_000, findings);
        return findings;
    }

    private static String sha1(byte[] b) throws NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-1").digest(b));
    }

    /** Mutations that reach metadata: flips, interesting big-endian values at aligned offsets, splices, cuts. */
    static final class Mutator {
        private static final long[] INTERESTING = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0x200, 0x1ff, 0x7fff, 0xffff,
            0x10000, 0x7fffffffL, 0x80000000L, 0xffffffffL, Long.MAX_VALUE, -1, 1L << 62, 1L << 63, 0x8000000000000200L,
            0x4000000000000200L, 0x200L | 1, 1L << 56};

        static byte[] mutate(byte[] seed, List<byte[]> corpus, Random rnd) {
            byte[] b = seed.clone();
            int rounds = 1 + rnd.nextInt(4);
            for (int r = 0; r < rounds && b.length > 0; r++) {
                switch (rnd.nextInt(7)) {
                    case 0 -> b[rnd.nextInt(b.length)] ^= (byte) (1 << rnd.nextInt(8));
                    case 1 -> b[rnd.nextInt(b.length)] = (byte) rnd.nextInt(256);
                    case 2, 3 -> { // a big-endian u32/u64 field set to an interesting value (qcow2 is big-endian)
                        int width = rnd.nextBoolean() ? 4 : 8;
                        int at = (rnd.nextInt(Math.max(1, b.length / width))) * width;
                        long v = INTERESTING[rnd.nextInt(INTERESTING.length)];
                        if (rnd.nextInt(4) == 0) {
                            v += rnd.nextInt(17) - 8;
                        }
                        for (int i = 0; i < width && at + i < b.length; i++) {
                            b[at + i] = (byte) (v >>> (8 * (width - 1 - i)));
                        }
                    }
                    case 4 -> { // header fields: the first 128 bytes are the densest in meaning
                        int at = rnd.nextInt(Math.min(b.length, 128));
                        b[at] = (byte) INTERESTING[rnd.nextInt(INTERESTING.length)];
                    }
                    case 5 -> { // splice a piece of another input over this one
                        byte[] o = corpus.get(rnd.nextInt(corpus.size()));
                        int len = 1 + rnd.nextInt(Math.min(512, Math.max(1, o.length)));
                        int from = rnd.nextInt(Math.max(1, o.length - len + 1));
                        int to = rnd.nextInt(Math.max(1, b.length - len + 1));
                        System.arraycopy(o, from, b, to, Math.min(len, Math.min(o.length - from, b.length - to)));
                    }
                    default -> b = java.util.Arrays.copyOf(b, rnd.nextInt(b.length + 1024)); // cut or extend
                }
            }
            return b;
        }
    }
}
