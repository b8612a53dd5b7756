package io.qcow2j.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A JMH CSV result ({@code -rf csv}) as a Markdown table: one row per benchmark and parameter set, its
 * score with the error, and next to it the allocation per operation ({@code gc.alloc.rate.norm}, present
 * when the run used {@code -prof gc}).
 *
 * <p>Run: {@code java -cp bench/target/benchmarks.jar io.qcow2j.bench.JmhTable RESULT.csv}.
 */
public final class JmhTable {
    private JmhTable() {}

    public static void main(String[] args) throws IOException {
        List<String> lines = Files.readAllLines(Path.of(args[0]));
        List<String> head = split(lines.get(0));
        int iBench = head.indexOf("Benchmark");
        int iScore = head.indexOf("Score");
        int iErr = head.indexOf("Score Error (99.9%)");
        int iUnit = head.indexOf("Unit");
        List<Integer> params = new ArrayList<>();
        for (int i = 0; i < head.size(); i++) {
            if (head.get(i).startsWith("Param: ")) {
                params.add(i);
            }
        }
        Map<String, String[]> rows = new LinkedHashMap<>(); // key -> {bench, params, score, alloc}
        for (String line : lines.subList(1, lines.size())) {
            List<String> f = split(line);
            if (f.size() < head.size()) {
                continue;
            }
            String bench = f.get(iBench).replace("io.qcow2j.bench.", "");
            String secondary = null;
            int colon = bench.indexOf(':');
            if (colon > 0) {
                secondary = bench.substring(colon + 1);
                bench = bench.substring(0, colon);
            }
            StringBuilder p = new StringBuilder();
            for (int i : params) {
                if (!f.get(i).isEmpty()) {
                    p.append(p.length() == 0 ? "" : ", ").append(head.get(i).substring(7)).append('=').append(f.get(i));
                }
            }
            String key = bench + "|" + p;
            String[] r = rows.computeIfAbsent(key, k -> new String[] {null, null, "", ""});
            r[0] = bench;
            r[1] = p.toString();
            if (secondary == null) {
                double err = parse(f.get(iErr));
                r[2] = String.format(Locale.ROOT, "%.1f%s %s", parse(f.get(iScore)),
                        Double.isNaN(err) ? "" : String.format(Locale.ROOT, " ± %.1f", err), f.get(iUnit));
            } else if (secondary.equals("gc.alloc.rate.norm")) {
                r[3] = String.format(Locale.ROOT, "%.1f", parse(f.get(iScore)));
            }
        }
        System.out.println("| benchmark | parameters | score | allocated B/op |");
        System.out.println("|---|---|---:|---:|");
        for (String[] r : rows.values()) {
            System.out.printf("| %s | %s | %s | %s |%n", r[0], r[1], r[2], r[3]);
        }
    }

    private static double parse(String s) {
        try {
            return Double.parseDouble(s);
        } catch (NumberFormatException e) {
            return Double.NaN;
        }
    }

    /** Splits a CSV line with double-quoted fields. */
    private static List<String> split(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (c == '"') {
                quoted = !quoted;
            } else if (c == ',' && !quoted) {
                out.add(cur.toString());
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        out.add(cur.toString());
        return out;
    }
}
