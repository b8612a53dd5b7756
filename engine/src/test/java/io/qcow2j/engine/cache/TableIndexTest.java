package io.qcow2j.engine.cache;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TableIndexTest {
    @Test
    void agreesWithAMapUnderRandomChurnAndKeepsProbesShort() {
        for (int entries : new int[] {1, 2, 3, 16, 100, 4096}) {
            SplittableRandom rnd = new SplittableRandom(entries);
            TableIndex idx = new TableIndex(entries, 512);
            Map<Long, Integer> model = new HashMap<>();
            List<Long> keys = new ArrayList<>();
            long maxProbes = 0;
            long totalProbes = 0;
            long lookups = 0;
            for (int step = 0; step < 50_000; step++) {
                boolean full = model.size() == entries;
                if (!model.isEmpty() && (full || rnd.nextInt(3) == 0)) {
                    long k = keys.remove(rnd.nextInt(keys.size()));
                    idx.remove(k);
                    model.remove(k);
                } else {
                    // table offsets: multiples of 512, clustered like real metadata
                    long k = (1 + rnd.nextLong(1 << 22)) * 512;
                    if (!model.containsKey(k)) {
                        int slot = rnd.nextInt(entries);
                        idx.insert(k, slot);
                        model.put(k, slot);
                        keys.add(k);
                    }
                }
                long probe = rnd.nextBoolean() && !keys.isEmpty() ? keys.get(rnd.nextInt(keys.size()))
                        : (1 + rnd.nextLong(1 << 22)) * 512;
                int got = idx.find(probe);
                assertThat(got).isEqualTo(model.getOrDefault(probe, -1));
                maxProbes = Math.max(maxProbes, idx.lastProbes);
                totalProbes += idx.lastProbes;
                lookups++;
            }
            assertThat((double) totalProbes / lookups).as("mean probes, %d entries", entries).isLessThan(3.0);
            assertThat(maxProbes).as("max probes, %d entries", entries).isLessThan(64);
        }
    }

    @Test
    void sequentialTableOffsetsDoNotCluster() {
        TableIndex idx = new TableIndex(65536, 65536);
        for (int i = 1; i <= 65536; i++) {
            idx.insert(i * 65536L, i - 1);
        }
        long total = 0;
        for (int i = 1; i <= 65536; i++) {
            assertThat(idx.find(i * 65536L)).isEqualTo(i - 1);
            total += idx.lastProbes;
        }
        assertThat(total / 65536.0).isLessThan(2.0);
    }
}
