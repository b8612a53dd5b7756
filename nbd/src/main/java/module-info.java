/**
 * The NBD server behind {@code qcow2j serve}: exports one {@link io.qcow2j.engine.Disk} over the network block
 * device protocol (fixed newstyle handshake, structured replies, base:allocation). Uses only the engine's API.
 */
module io.qcow2j.nbd {
    requires io.qcow2j.engine;
    exports io.qcow2j.nbd;
}
