package io.qcow2j.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class ImageOptionsTest {
    @Test
    void defaultsAreQemus() {
        ImageOptions o = ImageOptions.defaults();
        assertThat(o.cacheCleanInterval()).isEqualTo(600);
        assertThat(o.overlapCheck()).isEqualTo(OverlapCheckMode.CACHED);
        assertThat(o.cacheMode()).isEqualTo(CacheMode.WRITEBACK);
        assertThat(o.tableStore()).isEqualTo(TableStoreKind.OFF_HEAP);
        assertThat(o.l2CacheSize()).isNull();
    }

    @Test
    void parsesQemuOptionSyntax() {
        ImageOptions o = ImageOptions.parse("driver=qcow2,file.filename=/tmp/a,,b.qcow2,l2-cache-size=1M,"
                + "l2-cache-entry-size=4k,cache-clean-interval=30,overlap-check=all,table-store=heap,cache.direct=on",
                ImageOptions.defaults());
        assertThat(o.filename()).isEqualTo("/tmp/a,b.qcow2");
        assertThat(o.l2CacheSize()).isEqualTo(1 << 20);
        assertThat(o.l2CacheEntrySize()).isEqualTo(4096);
        assertThat(o.cacheCleanInterval()).isEqualTo(30);
        assertThat(o.overlapCheck()).isEqualTo(OverlapCheckMode.ALL);
        assertThat(o.tableStore()).isEqualTo(TableStoreKind.HEAP);
        assertThat(o.cacheMode()).isEqualTo(CacheMode.NONE);
        assertThat(ImageOptions.parse("cache=unsafe", o).cacheMode()).isEqualTo(CacheMode.UNSAFE);
        assertThat(ImageOptions.parse("cache.no-flush=on", ImageOptions.defaults()).cacheMode())
                .isEqualTo(CacheMode.UNSAFE);
    }

    @Test
    void badOptionsGiveOneLine() {
        ImageOptions d = ImageOptions.defaults();
        assertThatThrownBy(() -> ImageOptions.parse("foo=1", d))
                .hasMessage("Block format 'qcow2' does not support the option 'foo'");
        assertThatThrownBy(() -> ImageOptions.parse("overlap-check=some", d))
                .hasMessageStartingWith("Unsupported value 'some' for qcow2 option 'overlap-check'");
        assertThatThrownBy(() -> ImageOptions.parse("l2-cache-size=lots", d)).hasMessageStartingWith("l2-cache-size:");
        assertThatThrownBy(() -> ImageOptions.parse("cache=fast", d)).hasMessageStartingWith("Invalid cache mode");
        assertThatThrownBy(() -> ImageOptions.parse("cache-clean-interval=-1", d)).hasMessageContaining("non-negative");
        assertThatThrownBy(() -> ImageOptions.parse("cache-clean-interval=9999999999", d))
                .hasMessage("Cache clean interval too big");
        assertThatThrownBy(() -> ImageOptions.parse("driver=raw", d)).hasMessageContaining("Unknown driver");
        assertThatThrownBy(() -> ImageOptions.parse("novalue", d)).hasMessageContaining("expected key=value");
    }
}
