package io.qcow2j.engine;

import java.io.IOException;

/** No internal snapshot has the ID or name asked for; the message is qemu-img's reason ("snapshot not found"). */
public final class SnapshotNotFoundException extends IOException {
    private static final long serialVersionUID = 1L;

    public SnapshotNotFoundException(String message) {
        super(message);
    }
}
