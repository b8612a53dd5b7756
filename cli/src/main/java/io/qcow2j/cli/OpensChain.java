package io.qcow2j.cli;

/**
 * A command that opens IMAGE with its backing chain through the engine (the surgery commands). When a
 * backing file is missing, the engine names only that file; {@link Main} then reports it as qemu-img does,
 * from IMAGE down ({@link ImageSource#missingBackingReason}).
 */
interface OpensChain {
    /** IMAGE as given on the command line, or null before the arguments are read. */
    String imageName();
}
