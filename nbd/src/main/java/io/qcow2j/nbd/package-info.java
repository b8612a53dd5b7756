/**
 * The NBD server. Owns the protocol (constants in {@link io.qcow2j.nbd.NbdProtocol}), the option haggling
 * ({@link io.qcow2j.nbd.Handshake}), TLS ({@link io.qcow2j.nbd.TlsCredentials}, {@link io.qcow2j.nbd.TlsChannel}),
 * the transmission phase of a connection ({@link io.qcow2j.nbd.Connection}, {@link io.qcow2j.nbd.RequestReader},
 * {@link io.qcow2j.nbd.Replies}, {@link io.qcow2j.nbd.ReplyWriter}), the execution of requests on the disk
 * ({@link io.qcow2j.nbd.RequestDispatcher}), the memory budget ({@link io.qcow2j.nbd.MemoryBudget}) and the
 * listener and the sockets ({@link io.qcow2j.nbd.NbdServer}, {@link io.qcow2j.nbd.Transport}).
 * May use only the engine's public API ({@code io.qcow2j.engine}), the JDK, and the Unix-domain sockets of
 * the FFM bindings ({@code io.qcow2j.ffm.UnixServerSocket}, {@code UnixStreamSocket}: the JDK's cannot say
 * how many bytes have arrived).
 */
package io.qcow2j.nbd;
