/** The {@code qcow2j} command, with the conventions of {@code qemu-img} and {@code qemu-io}. */
module io.qcow2j.cli {
    requires io.qcow2j.engine;
    requires io.qcow2j.nbd;
    requires info.picocli;
    opens io.qcow2j.cli to info.picocli;
}
