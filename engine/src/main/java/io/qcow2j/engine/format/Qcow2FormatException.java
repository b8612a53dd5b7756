package io.qcow2j.engine.format;

import java.io.IOException;

/**
 * The image is not a valid qcow2 image, uses a feature this engine refuses, or has corrupt metadata.
 *
 * <p>The message is always a single line that names the offending field and its value (for example
 * {@code qcow2 header: cluster_bits 30 out of range (9..21)}), so that it can be shown to a user or logged
 * as is. Text taken from the image (feature names, file names) is quoted with control characters escaped,
 * which keeps a hostile image from breaking that promise.
 */
public final class Qcow2FormatException extends IOException {
    private static final long serialVersionUID = 1L;

    public Qcow2FormatException(String message) {
        super(oneLine(message));
    }

    /**
     * Escapes control characters (and the Unicode line and paragraph separators) so the message stays on
     * one line whatever the image contained.
     */
    static String oneLine(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isISOControl(c) || c == '\u2028' || c == '\u2029') {
                if (b == null) {
                    b = new StringBuilder(s.length() + 8).append(s, 0, i);
                }
                b.append(c <= 0xff ? String.format("\\x%02x", (int) c) : String.format("\\u%04x", (int) c));
            } else if (b != null) {
                b.append(c);
            }
        }
        return b == null ? s : b.toString();
    }
}
