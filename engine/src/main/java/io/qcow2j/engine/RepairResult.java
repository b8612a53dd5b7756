package io.qcow2j.engine;

/**
 * The outcome of a repair: the state the repair pass left ({@code result}: what is still wrong, as that
 * pass counted it) and what it repaired. {@code qemu-img check -r} checks the image again when anything
 * was repaired and reports that check instead.
 */
public record RepairResult(CheckResult result, long leaksFixed, long corruptionsFixed) {
    /** Whether anything was repaired (qemu-img then prints what, and checks the image again). */
    public boolean repairedAnything() {
        return leaksFixed != 0 || corruptionsFixed != 0;
    }
}
