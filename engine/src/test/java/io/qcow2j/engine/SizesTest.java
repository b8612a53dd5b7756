package io.qcow2j.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class SizesTest {
    @Test
    void parsesQemuSuffixes() {
        assertThat(Sizes.parse("size", "4096")).isEqualTo(4096);
        assertThat(Sizes.parse("size", "512B")).isEqualTo(512);
        assertThat(Sizes.parse("size", "64k")).isEqualTo(65536);
        assertThat(Sizes.parse("size", "64K")).isEqualTo(65536);
        assertThat(Sizes.parse("size", "1M")).isEqualTo(1 << 20);
        assertThat(Sizes.parse("size", "1.5G")).isEqualTo(3L << 29);
        assertThat(Sizes.parse("size", "1T")).isEqualTo(1L << 40);
        assertThat(Sizes.parse("size", "2E")).isEqualTo(2L << 60);
    }

    @Test
    void rejectsWithOneLineNamingTheValue() {
        assertThatThrownBy(() -> Sizes.parse("l2-cache-size", "12x")).hasMessageStartingWith("l2-cache-size: '12x'");
        assertThatThrownBy(() -> Sizes.parse("size", "-1")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Sizes.parse("size", "")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Sizes.parse("size", "1.5")).hasMessageContaining("fractional");
        assertThatThrownBy(() -> Sizes.parse("size", "8E")).hasMessageContaining("below 2^63");
        assertThatThrownBy(() -> Sizes.parse("size", "1.0000001K")).hasMessageContaining("whole number");
        assertThatThrownBy(() -> Sizes.parse("size", "1..5K")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void printsLikeQemuImg() {
        assertThat(Sizes.human(512)).isEqualTo("512 B");
        assertThat(Sizes.human(65536)).isEqualTo("64 KiB");
        assertThat(Sizes.human(1L << 30)).isEqualTo("1 GiB");
        assertThat(Sizes.human(3L << 29)).isEqualTo("1.5 GiB");
        assertThat(Sizes.human(196616)).isEqualTo("192 KiB");
        assertThat(Sizes.human(1000)).isEqualTo("0.977 KiB");
        assertThat(Sizes.human(0)).isEqualTo("0 B");
    }
}
