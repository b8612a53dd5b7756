package io.qcow2j.engine.cache;

import java.io.IOException;

/** Image metadata is corrupt (QEMU answers EIO here); the image should be marked corrupt. */
public class CorruptMetadataException extends IOException {
    private static final long serialVersionUID = 1L;

    public CorruptMetadataException(String message) {
        super(message);
    }
}
