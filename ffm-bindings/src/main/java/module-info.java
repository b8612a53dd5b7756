/**
 * libc through the Foreign Function and Memory API: file I/O (buffered or {@code O_DIRECT}), asynchronous
 * file I/O on io_uring (with a thread-pool fallback), anonymous mappings released with
 * {@code madvise(MADV_DONTNEED)}, errno turned into typed exceptions, raw deflate through the system's
 * zlib with a chosen window ({@code RawDeflater}, for QEMU's compressed clusters), and Unix-domain stream
 * sockets that can say what has arrived ({@code UnixServerSocket}, {@code UnixStreamSocket}, for the NBD
 * server).
 * Knows nothing of qcow2. This is the only module that makes restricted (native) calls, so it is the only
 * one that needs {@code --enable-native-access}.
 */
module io.qcow2j.ffm {
    exports io.qcow2j.ffm;
}
