package io.qcow2j.engine.format;

/** The compression method of all compressed clusters of an image (header byte 104, version 3). */
public enum CompressionType {
    /** Raw deflate (zlib without header), window of 2^12 bytes; the default and the only one in version 2. */
    ZLIB(0, "zlib"),
    /** Zstandard frames; needs incompatible feature bit 3. */
    ZSTD(1, "zstd");

    private final int code;
    private final String qemuName;

    CompressionType(int code, String qemuName) {
        this.code = code;
        this.qemuName = qemuName;
    }

    /** The value stored in the header. */
    public int code() {
        return code;
    }

    /** The name {@code qemu-img} uses ({@code compression_type=zstd}, {@code "compression-type": "zstd"}). */
    public String qemuName() {
        return qemuName;
    }
}
