package io.qcow2j.cli;

import io.qcow2j.testsupport.Qemu;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoCommandTest {
    @TempDir
    Path dir;

    @Test
    void demoRunsTheWholeJobAndLeavesAnImageQemuFindsClean() throws Exception {
        String[] r = BenchCommandTest.run("demo", "--dir", dir.toString(), "--keep", "--size", "256M",
                "-o", "l2-cache-size=8k,l2-cache-entry-size=4k,table-store=heap");
        assertThat(r[0]).as(r[2]).isEqualTo("0");
        assertThat(r[1]).contains("1. created").contains("every byte as written")
                .contains("5. check: no errors were found on the image").contains("L2 cache:       hits")
                .contains("heap store").containsPattern("flush: [12] fdatasync");
        Path img = dir.resolve("demo.qcow2");
        assertThat(img).exists();
        assertThat(Qemu.check(img).output()).contains("No errors were found on the image.");
        assertThat(Files.size(img)).isPositive();
    }
}
