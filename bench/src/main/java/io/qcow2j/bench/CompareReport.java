package io.qcow2j.bench;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

/**
 * Turns the rows {@code bench/compare.sh} records ({@code runs.tsv}: fs, scenario, tool, rep, metric,
 * value) into a Markdown report (medians over the repetitions, ratios qcow2j/QEMU and qcow2j/raw, the
 * issue's targets met or missed) and PNG charts (xchart).
 *
 * <p>Run: {@code java -cp bench/target/benchmarks.jar io.qcow2j.bench.CompareReport RESULTS_DIR OUT_DIR
 * [PREFIX]}: reads {@code RESULTS_DIR/runs.tsv} and {@code RESULTS_DIR/env.txt}, writes
 * {@code OUT_DIR/PREFIX.md} and {@code OUT_DIR/PREFIX-*.png} (PREFIX defaults to {@code compare}).
 */
public final class CompareReport {
    static final String RAW = "raw";
    static final String QEMU = "qemu";
    static final String HEAP = "qcow2j-heap";
    static final String OFF = "qcow2j-off-heap";
    static final List<String> TOOLS = List.of(RAW, QEMU, HEAP, OFF);
    static final Map<String, String> TOOL_LABEL = Map.of(RAW, "raw pread/pwrite", QEMU, "qemu-img bench",
            HEAP, "qcow2j heap", OFF, "qcow2j off-heap");

    /** What each scenario is, in the order the report lists them. */
    static final Map<String, String> SCENARIOS = new LinkedHashMap<>();
    /** The target for a scenario: {min ratio to QEMU, min ratio to raw}; 0 = none. */
    static final Map<String, double[]> TARGETS = new LinkedHashMap<>();

    static {
        SCENARIOS.put("covered-d1", "4 KiB reads, L2 cache covers the image, depth 1");
        SCENARIOS.put("covered-d16", "4 KiB reads, L2 cache covers the image, depth 16");
        SCENARIOS.put("miss-tables-64k", "miss-heavy, stride cycles L2 tables, 64 KiB entries");
        SCENARIOS.put("miss-tables-4k", "miss-heavy, stride cycles L2 tables, 4 KiB slices");
        SCENARIOS.put("miss-slices-64k", "miss-heavy, stride cycles L2 slices, 64 KiB entries");
        SCENARIOS.put("miss-slices-4k", "miss-heavy, stride cycles L2 slices, 4 KiB slices");
        SCENARIOS.put("alloc-seq64k-d16", "allocating 64 KiB sequential writes, depth 16");
        SCENARIOS.put("alloc-4k-new-cluster-d16", "allocating 4 KiB writes, each in a new cluster, depth 16");
        SCENARIOS.put("flush-alloc", "4 KiB allocating writes, flush after each, depth 1");
        SCENARIOS.put("flush-alloc-lazy", "as flush-alloc, lazy_refcounts=on");
        TARGETS.put("covered-d16", new double[] {3, 0.9});
        TARGETS.put("miss-tables-4k", new double[] {3, 0});
        TARGETS.put("miss-slices-4k", new double[] {3, 0});
        TARGETS.put("alloc-seq64k-d16", new double[] {2, 0});
        TARGETS.put("alloc-4k-new-cluster-d16", new double[] {2, 0});
    }

    private CompareReport() {}

    record Row(String fs, String scenario, String tool, int rep, String metric, double value) {}

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: CompareReport RESULTS_DIR OUT_DIR [PREFIX]");
            System.exit(2);
        }
        System.setProperty("java.awt.headless", "true");
        Path results = Path.of(args[0]);
        Path out = Path.of(args[1]);
        String prefix = args.length > 2 ? args[2] : "compare";
        Files.createDirectories(out);
        List<Row> rows = new ArrayList<>();
        for (String line : Files.readAllLines(results.resolve("runs.tsv"))) {
            String[] f = line.split("\t");
            if (f.length != 6 || f[0].equals("fs")) {
                continue;
            }
            rows.add(new Row(f[0], f[1], f[2], Integer.parseInt(f[3]), f[4], Double.parseDouble(f[5])));
        }
        Map<String, String> env = new LinkedHashMap<>();
        Path envFile = results.resolve("env.txt");
        if (Files.exists(envFile)) {
            for (String line : Files.readAllLines(envFile)) {
                int c = line.indexOf(':');
                if (c > 0) {
                    env.put(line.substring(0, c).trim(), line.substring(c + 1).trim());
                }
            }
        }
        StringBuilder md = new StringBuilder();
        new CompareReport.Writer(rows, env, out, prefix, md).write();
        Files.writeString(out.resolve(prefix + ".md"), md);
        System.out.println("wrote " + out.resolve(prefix + ".md"));
    }

    static final class Writer {
        final List<Row> rows;
        final Map<String, String> env;
        final Path out;
        final String prefix;
        final StringBuilder md;
        final List<String> fss;

        Writer(List<Row> rows, Map<String, String> env, Path out, String prefix, StringBuilder md) {
            this.rows = rows;
            this.env = env;
            this.out = out;
            this.prefix = prefix;
            this.md = md;
            Set<String> f = new LinkedHashSet<>();
            rows.forEach(r -> f.add(r.fs));
            this.fss = new ArrayList<>(f);
        }

        List<Double> values(String fs, String scenario, String tool, String metric) {
            List<Double> v = new ArrayList<>();
            for (Row r : rows) {
                if (r.fs.equals(fs) && r.scenario.equals(scenario) && r.tool.equals(tool) && r.metric.equals(metric)) {
                    v.add(r.value);
                }
            }
            return v;
        }

        double median(String fs, String scenario, String tool, String metric) {
            List<Double> v = values(fs, scenario, tool, metric);
            if (v.isEmpty()) {
                return Double.NaN;
            }
            v.sort(null);
            int n = v.size();
            return n % 2 == 1 ? v.get(n / 2) : (v.get(n / 2 - 1) + v.get(n / 2)) / 2;
        }

        void line(String fmt, Object... a) {
            md.append(String.format(Locale.ROOT, fmt, a)).append('\n');
        }

        void write() throws IOException {
            line("<!-- generated by io.qcow2j.bench.CompareReport from bench/compare.sh's runs.tsv: do not edit -->");
            line("");
            env.forEach((k, v) -> line("- %s: %s", k, v));
            line("");
            for (String fs : fss) {
                boolean any = rows.stream().anyMatch(r -> r.fs.equals(fs) && r.metric.equals("iops")
                        && SCENARIOS.containsKey(r.scenario));
                if (any) {
                    iopsSection(fs);
                }
            }
            syncSection();
            memorySection();
        }

        static String fmt(double v) {
            if (Double.isNaN(v)) {
                return "–";
            }
            return v >= 100 ? String.format(Locale.ROOT, "%,.0f", v) : String.format(Locale.ROOT, "%.2f", v);
        }

        static String ratio(double a, double b) {
            return Double.isNaN(a) || Double.isNaN(b) || b == 0 ? "–" : String.format(Locale.ROOT, "%.2f×", a / b);
        }

        String spread(String fs, String sc, String tool, String metric) {
            List<Double> v = values(fs, sc, tool, metric);
            if (v.size() < 2) {
                return "";
            }
            double min = v.stream().mapToDouble(d -> d).min().orElse(0);
            double max = v.stream().mapToDouble(d -> d).max().orElse(0);
            double med = median(fs, sc, tool, metric);
            return String.format(Locale.ROOT, " ±%.0f%%", 100 * Math.max(med - min, max - med) / med);
        }

        void iopsSection(String fs) throws IOException {
            line("### IOPS on %s", fs);
            line("");
            line("Medians over the repetitions (n = %d; ± is the largest distance of a run from the median).",
                    values(fs, "covered-d1", QEMU, "iops").size());
            line("");
            line("| scenario | raw | QEMU | qcow2j heap | qcow2j off-heap | off-heap / QEMU | off-heap / raw | heap / QEMU | heap / raw | target | met |");
            line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
            Map<String, double[]> chart = new LinkedHashMap<>();
            for (String sc : SCENARIOS.keySet()) {
                double[] m = new double[4];
                boolean any = false;
                for (int i = 0; i < 4; i++) {
                    m[i] = median(fs, sc, TOOLS.get(i), "iops");
                    any |= !Double.isNaN(m[i]);
                }
                if (!any) {
                    continue;
                }
                chart.put(sc, m);
                double[] t = TARGETS.get(sc);
                String target = "";
                String met = "";
                if (t != null) {
                    List<String> parts = new ArrayList<>();
                    List<String> verdict = new ArrayList<>();
                    if (t[0] > 0) {
                        parts.add(String.format(Locale.ROOT, "≥ %.0f× QEMU", t[0]));
                    }
                    if (t[1] > 0) {
                        parts.add(String.format(Locale.ROOT, "≥ %.1f× raw", t[1]));
                    }
                    for (int s = 2; s < 4; s++) {
                        boolean ok = (t[0] == 0 || m[s] / m[1] >= t[0]) && (t[1] == 0 || m[s] / m[0] >= t[1]);
                        verdict.add((s == 2 ? "heap " : "off-heap ") + (ok ? "**met**" : "**missed**"));
                    }
                    target = String.join(", ", parts);
                    met = String.join(", ", verdict);
                }
                line("| %s | %s%s | %s%s | %s%s | %s%s | %s | %s | %s | %s | %s | %s |", SCENARIOS.get(sc),
                        fmt(m[0]), spread(fs, sc, RAW, "iops"), fmt(m[1]), spread(fs, sc, QEMU, "iops"),
                        fmt(m[2]), spread(fs, sc, HEAP, "iops"), fmt(m[3]), spread(fs, sc, OFF, "iops"),
                        ratio(m[3], m[1]), ratio(m[3], m[0]), ratio(m[2], m[1]), ratio(m[2], m[0]), target, met);
            }
            line("");
            // L2 hit rates qcow2j saw: tells whether a "miss-heavy" run really missed.
            List<String> hr = new ArrayList<>();
            for (String sc : chart.keySet()) {
                double hits = median(fs, sc, OFF, "l2-hits");
                double misses = median(fs, sc, OFF, "l2-misses");
                if (!Double.isNaN(hits) && hits + misses > 0) {
                    hr.add(String.format(Locale.ROOT, "%s %.1f%%", sc, 100 * hits / (hits + misses)));
                }
            }
            if (!hr.isEmpty()) {
                line("L2 cache hit rate qcow2j reported (off-heap): %s.", String.join(", ", hr));
                line("");
            }
            String png = prefix + "-iops-" + slug(fs) + ".png";
            iopsChart(fs, chart, out.resolve(png));
            line("![IOPS relative to qemu-img bench on %s](%s)", fs, png);
            line("");
        }

        void iopsChart(String fs, Map<String, double[]> data, Path file) throws IOException {
            CategoryChart c = new CategoryChartBuilder().width(1100).height(520)
                    .title("IOPS relative to qemu-img bench (= 1), " + fs).xAxisTitle("scenario")
                    .yAxisTitle("IOPS / QEMU IOPS").build();
            style(c);
            List<String> cats = new ArrayList<>(data.keySet());
            for (int i = 0; i < 4; i++) {
                List<Double> ys = new ArrayList<>();
                for (String sc : cats) {
                    double[] m = data.get(sc);
                    ys.add(Double.isNaN(m[i]) || Double.isNaN(m[1]) ? 0.0 : m[i] / m[1]);
                }
                c.addSeries(TOOL_LABEL.get(TOOLS.get(i)), cats, ys);
            }
            BitmapEncoder.saveBitmap(c, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        }

        void syncSection() throws IOException {
            Map<String, double[]> chart = new TreeMap<>();
            List<String> lines = new ArrayList<>();
            for (String fs : fss) {
                for (String sc : List.of("flush-alloc", "flush-alloc-lazy")) {
                    double[] s = new double[4];
                    boolean any = false;
                    for (int i = 0; i < 4; i++) {
                        s[i] = median(fs, sc, TOOLS.get(i), "syncs-per-flush");
                        any |= !Double.isNaN(s[i]);
                    }
                    if (!any) {
                        continue;
                    }
                    chart.put(fs + " " + sc, s);
                    String met = "";
                    if (!Double.isNaN(s[1])) {
                        met = (s[3] <= s[1] + 0.05 ? "off-heap **met**" : "off-heap **missed**") + ", "
                                + (s[2] <= s[1] + 0.05 ? "heap **met**" : "heap **missed**");
                    }
                    lines.add(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s |", fs, SCENARIOS.get(sc),
                            fmt(s[0]), fmt(s[1]), fmt(s[2]), fmt(s[3]), met));
                }
            }
            if (lines.isEmpty()) {
                return;
            }
            line("### fdatasync calls per flush");
            line("");
            line("Counted with `strace -f -c -e trace=fdatasync` for every tool, as (calls in a run of 2N flushes −"
                    + " calls in a run of N flushes) / N, so the syncs of open and close cancel out.");
            line("");
            line("| fs | scenario | raw | QEMU | qcow2j heap | qcow2j off-heap | target ≤ QEMU |");
            line("|---|---|---:|---:|---:|---:|---|");
            lines.forEach(l -> md.append(l).append('\n'));
            line("");
            CategoryChart c = new CategoryChartBuilder().width(900).height(450).title("fdatasync calls per flush")
                    .xAxisTitle("").yAxisTitle("fdatasync / flush").build();
            style(c);
            List<String> cats = new ArrayList<>(chart.keySet());
            for (int i = 0; i < 4; i++) {
                List<Double> ys = new ArrayList<>();
                for (String k : cats) {
                    double v = chart.get(k)[i];
                    ys.add(Double.isNaN(v) ? 0.0 : v);
                }
                c.addSeries(TOOL_LABEL.get(TOOLS.get(i)), cats, ys);
            }
            String png = prefix + "-syncs.png";
            BitmapEncoder.saveBitmap(c, out.resolve(png).toString(), BitmapEncoder.BitmapFormat.PNG);
            line("![fdatasync calls per flush](%s)", png);
            line("");
        }

        void memorySection() throws IOException {
            List<String> tools = List.of(QEMU, HEAP, OFF);
            String fs = null;
            for (Row r : rows) {
                if (r.scenario.equals("memory")) {
                    fs = r.fs;
                    break;
                }
            }
            if (fs == null) {
                return;
            }
            line("### Memory: 32 MiB L2 cache filled, then idle past cache-clean-interval (%s)", fs);
            line("");
            line("RSS in MiB (VmRSS); medians. QEMU is `qemu-system-x86_64 -machine none` with the image as a `-blockdev`, filled with the same reads through the monitor's `qemu-io` command (in qemu-io and qemu-img QEMU's cleaner never runs: its timer is on the virtual clock, which ticks only while a VM runs), RSS read from /proc.");
            line("");
            line("The heap store allocates (and zeroes) its whole `long[]` when the image is opened, so its cache"
                    + " memory is already in \"after open\"; it never gives it back.");
            line("");
            line("| tool | after open | L2 cache full | after clean | full − open | clean − open | given back |");
            line("|---|---:|---:|---:|---:|---:|---:|");
            CategoryChart c = new CategoryChartBuilder().width(900).height(450)
                    .title("RSS: 32 MiB L2 cache filled, then cleaned").xAxisTitle("").yAxisTitle("RSS (MiB)").build();
            style(c);
            List<String> phases = List.of("after open", "cache full", "after clean");
            for (String t : tools) {
                double o = median(fs, "memory", t, "rss-open-mib");
                double f = median(fs, "memory", t, "rss-full-mib");
                double cl = median(fs, "memory", t, "rss-clean-mib");
                if (Double.isNaN(o)) {
                    continue;
                }
                String label = t.equals(QEMU) ? "QEMU (qemu-system)" : TOOL_LABEL.get(t);
                String back = f - o >= 4 ? String.format(Locale.ROOT, "%.0f%%", 100 * (f - cl) / (f - o)) : "–";
                line("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %s |", label, o, f, cl, f - o, cl - o, back);
                c.addSeries(label, phases, List.of(o, f, cl));
            }
            line("");
            String png = prefix + "-memory.png";
            BitmapEncoder.saveBitmap(c, out.resolve(png).toString(), BitmapEncoder.BitmapFormat.PNG);
            line("![RSS before and after the cache is cleaned](%s)", png);
            line("");
        }

        static void style(CategoryChart c) {
            c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
            c.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
            c.getStyler().setChartBackgroundColor(Color.WHITE);
            c.getStyler().setPlotGridVerticalLinesVisible(false);
            c.getStyler().setXAxisLabelRotation(15);
            c.getStyler().setSeriesColors(new Color[] {new Color(0x888888), new Color(0xd95f02), new Color(0x7570b3),
                new Color(0x1b9e77)});
            c.getStyler().setLabelsVisible(false);
        }

        static String slug(String s) {
            return s.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("^-|-$", "");
        }
    }
}
