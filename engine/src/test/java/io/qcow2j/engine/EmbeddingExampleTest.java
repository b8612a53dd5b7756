package io.qcow2j.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's "Embedding" example, as a user would run it: the Java block between the
 * {@code embedding-example} markers is compiled by {@code javac} against the engine's module path (what this
 * test runs on), run by {@code java} with native access granted to {@code io.qcow2j.ffm} only, and the image
 * it makes is checked by qemu-img and read back by qemu-io.
 */
class EmbeddingExampleTest {
    @TempDir
    Path dir;

    @Test
    void theReadmeExampleCompilesRunsAndWritesAnImageQemuAccepts() throws IOException {
        String readme = Files.readString(Path.of("../README.md"));
        int start = readme.indexOf("<!-- embedding-example -->");
        int end = readme.indexOf("<!-- /embedding-example -->");
        assertThat(start).as("README marker").isGreaterThan(0);
        String block = readme.substring(start, end);
        String source = block.substring(block.indexOf("```java") + "```java".length(), block.lastIndexOf("```"));
        Path src = dir.resolve("Embedding.java");
        Files.writeString(src, source);

        String modulePath = System.getProperty("jdk.module.path");
        assertThat(modulePath).as("tests run on the module path").isNotBlank();
        Path bin = Path.of(System.getProperty("java.home"), "bin");
        Path classes = dir.resolve("classes");
        run(List.of(bin.resolve("javac").toString(), "-p", modulePath, "--add-modules", "io.qcow2j.engine",
                "-d", classes.toString(), src.toString()), "");

        Path image = dir.resolve("vm.qcow2");
        String out = run(List.of(bin.resolve("java").toString(), "--enable-native-access=io.qcow2j.ffm",
                "--illegal-native-access=deny", "-p", modulePath, "--add-modules", "io.qcow2j.engine",
                "-cp", classes.toString(), "Embedding", image.toString()), "read back what was written");
        assertThat(out.strip()).isEqualTo("read back what was written");
        assertThat(Qemu.check(image).clean()).as("qemu-img check").isTrue();
        Qemu.io(image, "read -P 0x5a 1M 4k", "read -P 0 0 1M");
        assertThat(Qemu.info(image).get("virtual-size")).isEqualTo(1L << 30);
    }

    private String run(List<String> command, String expected) throws IOException {
        List<String> cmd = new ArrayList<>(command);
        Qemu.Result r = Qemu.exec(dir, cmd.toArray(String[]::new));
        assertThat(r.exit()).as("%s\n%s", String.join(" ", cmd), r.output()).isZero();
        assertThat(r.out()).contains(expected);
        return r.out();
    }
}
