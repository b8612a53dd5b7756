package io.qcow2j.engine;

/** Facts about this build of the engine. */
public final class Qcow2j {
    private Qcow2j() {}

    /** The engine's module version, or "dev" when run from classes without a module version. */
    public static String version() {
        return Qcow2j.class.getModule().getDescriptor() != null
                ? Qcow2j.class.getModule().getDescriptor().rawVersion().orElse("dev")
                : "dev";
    }
}
