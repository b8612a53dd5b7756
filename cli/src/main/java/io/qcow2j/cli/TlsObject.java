package io.qcow2j.cli;

import java.util.HashMap;
import java.util.Map;

/**
 * One {@code --object tls-creds-x509,...} of qemu-nbd's command line: the id, the credentials directory, the
 * endpoint and {@code verify-peer} (on by default, as QEMU). Other object types and properties are refused
 * with a one-line error rather than ignored.
 */
record TlsObject(String id, String dir, boolean server, boolean verifyPeer) {
    static TlsObject parse(String def) {
        String[] parts = def.split(",", -1);
        if (!parts[0].equals("tls-creds-x509")) {
            throw new CommandFailure("Invalid object type '" + parts[0] + "' (qcow2j serve knows tls-creds-x509)");
        }
        Map<String, String> props = new HashMap<>();
        for (int i = 1; i < parts.length; i++) {
            int eq = parts[i].indexOf('=');
            if (eq <= 0) {
                throw new CommandFailure("Invalid parameter '" + parts[i] + "' in --object " + def);
            }
            String key = parts[i].substring(0, eq);
            if (!key.equals("id") && !key.equals("dir") && !key.equals("endpoint") && !key.equals("verify-peer")) {
                throw new CommandFailure("Property '" + key + "' of tls-creds-x509 is not supported (qcow2j serve"
                        + " knows id, dir, endpoint and verify-peer)");
            }
            props.put(key, parts[i].substring(eq + 1));
        }
        String id = props.get("id");
        if (id == null || id.isEmpty()) {
            throw new CommandFailure("Parameter 'id' is missing");
        }
        String dir = props.get("dir");
        if (dir == null || dir.isEmpty()) {
            throw new CommandFailure("Parameter 'dir' is missing in --object " + def);
        }
        String endpoint = props.getOrDefault("endpoint", "client");
        if (!endpoint.equals("server") && !endpoint.equals("client")) {
            throw new CommandFailure("Parameter 'endpoint' does not accept value '" + endpoint + "'");
        }
        return new TlsObject(id, dir, endpoint.equals("server"), bool(props.getOrDefault("verify-peer", "on")));
    }

    private static boolean bool(String v) {
        return switch (v) {
            case "on", "yes", "true", "y" -> true;
            case "off", "no", "false", "n" -> false;
            default -> throw new CommandFailure("Parameter 'verify-peer' expects 'on' or 'off'");
        };
    }
}
