package io.qcow2j.engine.chain;

import io.qcow2j.engine.ImageOptions;
import io.qcow2j.engine.format.Qcow2FormatException;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Which backing files a chain may open: QEMU's rules by default, the {@link ImageOptions#untrusted()} rules for
 * images someone else made.
 *
 * <p>Why: a qcow2 image names its backing file, and whoever wrote the image chose that name. Opened as QEMU
 * does, {@code -b /etc/shadow -F raw} makes the host file the guest's disk, readable by the guest or by an NBD
 * client. Untrusted, a backing name must be relative and free of anything QEMU could read as a protocol
 * ({@code json:}, {@code nbd:}, {@code file:} …: any {@code ':'} before the first {@code '/'}); it must stay
 * inside the top image's folder both as written ({@code ..}) and once symlinks are followed; its format must be
 * in the image (probing would let the content of an arbitrary file decide); raw is refused unless allowed
 * (a raw backing file is any file at all); and the chain is shorter.
 *
 * <p>The checks run in this order so that a refused name reveals nothing about files outside the folder:
 * the name and format first, then the lexical containment, and only then the file system (existence,
 * symlinks).
 */
final class BackingPolicy {
    private final boolean untrusted;
    private final boolean allowRaw;
    private final int maxDepth;
    /** The real folder of the top image: every file of an untrusted chain resolves inside it. */
    private final Path root;

    private BackingPolicy(ImageOptions options, Path root) {
        this.untrusted = options.untrusted();
        this.allowRaw = options.allowRawBacking();
        this.maxDepth = options.maxChainDepth();
        this.root = root;
    }

    /** The policy of a chain whose top image's real path is {@code realTop}. */
    static BackingPolicy of(ImageOptions options, Path realTop) {
        return new BackingPolicy(options, realTop.toAbsolutePath().getParent());
    }

    int maxDepth() {
        return maxDepth;
    }

    /** The one-line error of a chain deeper than the limit, naming the backing file that is one too many. */
    Qcow2FormatException tooDeep(String name) {
        return new Qcow2FormatException(name + ": backing chain deeper than " + maxDepth + " images"
                + (untrusted ? " (the limit for untrusted images)" : ""));
    }

    /**
     * The path of the backing file {@code backingName} (format {@code format}, null when the image does not say)
     * of the image whose real path is {@code image}, named {@code imageName} in errors.
     */
    Path resolve(Path image, String backingName, String format, String imageName) throws Qcow2FormatException {
        if (!untrusted) {
            return ChainOpener.resolveBacking(image, backingName, imageName);
        }
        String refused = imageName + ": backing file '" + backingName + "' refused (untrusted image): ";
        if (backingName.isEmpty()) {
            throw new Qcow2FormatException(refused + "empty name");
        }
        if (backingName.indexOf('\0') >= 0) {
            throw new Qcow2FormatException(refused + "the name contains a NUL byte");
        }
        int colon = backingName.indexOf(':');
        int slash = backingName.indexOf('/');
        if (colon >= 0 && (slash < 0 || colon < slash)) {
            throw new Qcow2FormatException(refused + "protocol and json: names are not allowed");
        }
        Path p = Path.of(backingName);
        if (p.isAbsolute()) {
            throw new Qcow2FormatException(refused + "absolute names are not allowed");
        }
        if (format == null) {
            throw new Qcow2FormatException(refused + "the image does not give the backing format (no probing)");
        }
        if (format.equals("raw") && !allowRaw) {
            throw new Qcow2FormatException(refused + "raw backing files are not allowed");
        }
        Path resolved = image.getParent().resolve(p).normalize();
        if (!resolved.startsWith(root)) {
            throw new Qcow2FormatException(refused + "it is outside the folder " + root + " of the top image");
        }
        return resolved;
    }

    /** Checks the real path (symlinks followed) of a backing file named {@code name}. */
    void checkReal(Path real, String name) throws IOException {
        if (untrusted && !real.startsWith(root)) {
            throw new Qcow2FormatException(name + ": backing file refused (untrusted image): following symlinks,"
                    + " it is outside the folder " + root + " of the top image");
        }
    }
}
