package io.qcow2j.engine;

/**
 * The outcome of a check ({@link Qcow2Disk#check}): what {@code qemu-img check --output=json} reports.
 *
 * @param filename the image's name as it was opened
 * @param format always {@code qcow2}
 * @param checkErrors problems that kept parts of the check from being made (a refcount that could not be read)
 * @param corruptions inconsistencies that can lose data (refcounts too low, bad entries, …)
 * @param leaks clusters whose stored refcount is higher than their references (space wasted, data safe)
 * @param imageEndOffset the end of the last cluster that is referenced or has a refcount
 * @param totalClusters clusters of the virtual disk
 * @param allocatedClusters guest clusters the active L1 table maps to host clusters (or compressed data)
 * @param fragmentedClusters of these, the ones not right after the previous one of their L2 table, and
 *     every compressed one
 * @param compressedClusters guest clusters stored compressed
 */
public record CheckResult(String filename, String format, long checkErrors, long corruptions, long leaks,
        long imageEndOffset, long totalClusters, long allocatedClusters, long fragmentedClusters,
        long compressedClusters) {

    /** Neither corruptions, leaks nor check errors. */
    public boolean isClean() {
        return checkErrors == 0 && corruptions == 0 && leaks == 0;
    }

    /** {@code qemu-img check}'s exit status: 1 check errors, 2 corruptions, 3 leaks only, 0 clean. */
    public int exitCode() {
        return checkErrors != 0 ? 1 : corruptions != 0 ? 2 : leaks != 0 ? 3 : 0;
    }
}
