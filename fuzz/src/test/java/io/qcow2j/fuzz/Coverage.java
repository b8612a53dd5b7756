package io.qcow2j.fuzz;

import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;

/**
 * Branch coverage of one input, read from the JaCoCo agent running in this JVM ({@code -javaagent:…runtime.jar
 * =includes=io.qcow2j.*}, set by scripts/fuzz): each class's probe array, compared after every input with the
 * probes seen before. The agent's counters are not reset: they add up the whole run, which the agent writes at
 * exit ({@code destfile}) for scripts/fuzz's line and branch report of the engine.
 *
 * <p>Why our own: Jazzer's instrumentation (its ASM) refuses class files of Java 25 (major version 69, "Failed
 * to instrument … Unsupported class file major version 69"), so its fuzzing mode gets no coverage of the
 * engine. JaCoCo's runtime reads them. The agent is reached by reflection so that nothing here depends on it.
 */
final class Coverage {
    private final Object agent;
    private final java.lang.reflect.Method dump;
    /** Every probe seen so far, per class id. */
    private final Map<Long, BitSet> seen = new HashMap<>();
    private long probesSeen;

    private Coverage(Object agent) throws ReflectiveOperationException {
        this.agent = agent;
        this.dump = agent.getClass().getMethod("getExecutionData", boolean.class);
        dump.setAccessible(true);
    }

    /** The coverage of this JVM's JaCoCo agent, or null when the JVM runs without one. */
    static Coverage ofAgent() {
        try {
            Class<?> rt = Class.forName("org.jacoco.agent.rt.RT");
            Object agent = rt.getMethod("getAgent").invoke(null);
            Coverage c = new Coverage(agent);
            c.takeNew(); // forget what starting up covered, keep it as seen
            return c;
        } catch (ReflectiveOperationException | LinkageError e) {
            return null;
        }
    }

    long probesSeen() {
        return probesSeen;
    }

    /** The probes hit since the last call that were never hit before. */
    long takeNew() {
        byte[] exec;
        try {
            exec = (byte[]) dump.invoke(agent, false);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("JaCoCo agent: " + e, e);
        }
        long fresh = 0;
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(exec))) {
            int type;
            while ((type = in.read()) != -1) {
                switch (type) {
                    case 0x01 -> in.skipNBytes(4); // header: magic and version
                    case 0x10 -> { // session info
                        in.readUTF();
                        in.skipNBytes(16);
                    }
                    case 0x11 -> { // one class: id, name, probes
                        long id = in.readLong();
                        in.readUTF();
                        int n = varInt(in);
                        BitSet old = seen.computeIfAbsent(id, k -> new BitSet());
                        for (int i = 0; i < n; i += 8) {
                            int b = in.readUnsignedByte();
                            for (int j = 0; j < 8 && i + j < n; j++) {
                                if ((b & (1 << j)) != 0 && !old.get(i + j)) {
                                    old.set(i + j);
                                    fresh++;
                                }
                            }
                        }
                    }
                    default -> throw new IOException("unknown JaCoCo block type " + type);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("JaCoCo execution data: " + e.getMessage(), e);
        }
        probesSeen += fresh;
        return fresh;
    }

    private static int varInt(DataInputStream in) throws IOException {
        int value = 0;
        for (int shift = 0; ; shift += 7) {
            int b = in.readUnsignedByte();
            value |= (b & 0x7f) << shift;
            if ((b & 0x80) == 0) {
                return value;
            }
        }
    }
}
