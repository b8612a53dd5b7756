package io.qcow2j.cli;

import java.util.List;
import java.util.Map;

/**
 * Writes JSON the way {@code qemu-img --output=json} does: objects with four-space indentation and
 * {@code "key": value}, keys in the order given. Values: {@link Map} (ordered), {@link List}, String, Number,
 * Boolean, null.
 */
final class JsonWriter {
    private JsonWriter() {}

    /** Pretty form, as {@code qemu-img info --output=json} prints it. */
    static String pretty(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, 0, true);
        return sb.toString();
    }

    /** One line, as {@code qemu-img map --output=json} prints each extent: {@code { "a": 1, "b": 2}}. */
    static String inline(Map<String, ?> map) {
        StringBuilder sb = new StringBuilder("{");
        boolean first = true;
        for (Map.Entry<String, ?> e : map.entrySet()) {
            sb.append(first ? " " : ", ");
            first = false;
            string(sb, e.getKey());
            sb.append(": ");
            write(sb, e.getValue(), 0, false);
        }
        return sb.append('}').toString();
    }

    private static void write(StringBuilder sb, Object v, int indent, boolean pretty) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof String s) {
            string(sb, s);
        } else if (v instanceof Number || v instanceof Boolean) {
            sb.append(v);
        } else if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) {
                sb.append('{');
                newlineOrNothing(sb, indent, pretty);
                sb.append('}');
                return;
            }
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                sb.append(first ? "" : ",");
                first = false;
                newline(sb, indent + 1, pretty);
                string(sb, String.valueOf(e.getKey()));
                sb.append(": ");
                write(sb, e.getValue(), indent + 1, pretty);
            }
            newline(sb, indent, pretty);
            sb.append('}');
        } else if (v instanceof List<?> l) {
            if (l.isEmpty()) {
                sb.append('[');
                newlineOrNothing(sb, indent, pretty);
                sb.append(']');
                return;
            }
            sb.append('[');
            boolean first = true;
            for (Object o : l) {
                sb.append(first ? "" : ",");
                first = false;
                newline(sb, indent + 1, pretty);
                write(sb, o, indent + 1, pretty);
            }
            newline(sb, indent, pretty);
            sb.append(']');
        } else {
            throw new IllegalArgumentException("not a JSON value: " + v.getClass());
        }
    }

    /** QEMU's pretty writer closes an empty container on a new line too: {@code [\n    ]}. */
    private static void newlineOrNothing(StringBuilder sb, int indent, boolean pretty) {
        if (pretty) {
            sb.append('\n').append("    ".repeat(indent));
        }
    }

    private static void newline(StringBuilder sb, int indent, boolean pretty) {
        if (pretty) {
            sb.append('\n').append("    ".repeat(indent));
        } else {
            sb.append(' ');
        }
    }

    /**
     * A string as QEMU's JSON writer quotes it: the usual short escapes, and {@code \\uXXXX} (upper-case hex)
     * for control characters and everything outside printable ASCII (pairs of surrogates beyond the BMP).
     */
    private static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20 || c >= 0x7f) {
                        sb.append(String.format("\\u%04X", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /**
     * The human form QEMU prints for "Format specific information" ({@code dump_qobject}): one
     * {@code key: value} line per entry, dashes in keys shown as spaces, nested objects and lists indented by
     * four spaces per level, list items as {@code [i]:}.
     */
    static String human(Map<String, ?> map, int indent) {
        StringBuilder sb = new StringBuilder();
        humanValue(sb, map, indent);
        return sb.toString();
    }

    private static void humanValue(StringBuilder sb, Object v, int indent) {
        if (v instanceof Map<?, ?> m) {
            for (Map.Entry<?, ?> e : m.entrySet()) {
                boolean composite = e.getValue() instanceof Map || e.getValue() instanceof List;
                sb.append("    ".repeat(indent)).append(String.valueOf(e.getKey()).replace('-', ' ')).append(':')
                        .append(composite ? '\n' : ' ');
                humanValue(sb, e.getValue(), indent + 1);
                if (!composite) {
                    sb.append('\n');
                }
            }
        } else if (v instanceof List<?> l) {
            int i = 0;
            for (Object o : l) {
                boolean composite = o instanceof Map || o instanceof List;
                sb.append("    ".repeat(indent)).append('[').append(i++).append("]:").append(composite ? '\n' : ' ');
                humanValue(sb, o, indent + 1);
                if (!composite) {
                    sb.append('\n');
                }
            }
        } else {
            sb.append(v);
        }
    }
}
