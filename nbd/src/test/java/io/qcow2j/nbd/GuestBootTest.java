package io.qcow2j.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.qcow2j.testsupport.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A Linux guest on our export: qemu-system-x86_64 (TCG: KVM guests hang on this machine) boots Debian's cloud
 * kernel with a busybox initramfs built here; its virtio-blk disk is the NBD export of a qcow2 image holding
 * an ext4 file system made on the host. The guest checks a host file, writes a file and its checksum, syncs,
 * unmounts and powers off; the host then checks the image (qemu-img check, e2fsck) and the guest's checksum.
 */
@Timeout(300)
class GuestBootTest {
    /** The virtio modules Debian's cloud kernel needs, in load order (ext4 is built in). */
    private static final String[] MODULES = {"virtio/virtio_ring", "virtio/virtio", "virtio/virtio_pci_legacy_dev",
        "virtio/virtio_pci_modern_dev", "virtio/virtio_pci", "block/virtio_blk"};

    @TempDir
    Path dir;

    /** The newest /boot/vmlinuz-VERSION whose module tree is installed. */
    private static Optional<String> kernelVersion() throws IOException {
        if (!Files.isDirectory(Path.of("/boot"))) {
            return Optional.empty();
        }
        try (Stream<Path> s = Files.list(Path.of("/boot"))) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("vmlinuz-"))
                    .map(n -> n.substring("vmlinuz-".length()))
                    .filter(v -> Files.isReadable(Path.of("/boot/vmlinuz-" + v))
                            && Files.exists(Path.of("/lib/modules/" + v + "/kernel/drivers/block/virtio_blk.ko")))
                    .sorted().reduce((a, b) -> b);
        }
    }

    @Test
    void aLinuxGuestBootsWritesAndPowersOffOnTheExport() throws Exception {
        Optional<String> version = kernelVersion();
        assumeTrue(version.isPresent(), "no readable /boot/vmlinuz-* with uncompressed virtio modules in /lib/modules"
                + " (install linux-image-cloud-amd64)");
        assumeTrue(Files.isExecutable(Path.of("/bin/busybox")), "busybox-static is not installed");
        String v = version.get();

        // The disk: ext4 made on the host with one file in it, converted to qcow2.
        Path content = Files.createDirectories(dir.resolve("content"));
        Files.writeString(content.resolve("hello.txt"), "from the host\n");
        Path raw = dir.resolve("fs.raw");
        Qemu.run(dir, "truncate", "-s", "64M", raw.toString());
        Qemu.run(dir, "mkfs.ext4", "-q", "-F", "-d", content.toString(), raw.toString());
        Path img = dir.resolve("disk.qcow2");
        Qemu.img(dir, "convert", "-f", "raw", "-O", "qcow2", raw.toString(), img.toString());

        Path initrd = initramfs(v);
        Path sock = dir.resolve("nbd.sock");
        String console;
        try (Served s = Served.start(img, 1, false, false, NbdServer.unixSocket(sock))) {
            Qemu.Result r = Qemu.exec(dir, "timeout", "110", "qemu-system-x86_64", "-accel", "tcg", "-m", "256",
                    "-nographic", "-no-reboot", "-kernel", "/boot/vmlinuz-" + v, "-initrd", initrd.toString(),
                    "-append", "console=ttyS0 panic=-1 loglevel=3",
                    "-drive", "driver=raw,if=virtio,cache=none,file.driver=nbd,file.server.type=unix,file.server.path="
                            + sock);
            console = r.output();
        }
        assertThat(console).contains("GUEST: host file ok", "GUEST: done");
        Qemu.requireClean(img, "after the guest");
        Path after = dir.resolve("after.raw");
        Qemu.img(dir, "convert", "-f", "qcow2", "-O", "raw", img.toString(), after.toString());
        Qemu.run(dir, "e2fsck", "-f", "-n", after.toString());
        Qemu.run(dir, "debugfs", "-R", "dump /guest.bin " + dir.resolve("guest.bin"), after.toString());
        Qemu.run(dir, "debugfs", "-R", "dump /guest.sha " + dir.resolve("guest.sha"), after.toString());
        String sum = Qemu.run(dir, "sha256sum", dir.resolve("guest.bin").toString()).split(" ")[0];
        assertThat(Files.readString(dir.resolve("guest.sha")).split(" ")[0]).isEqualTo(sum);
        assertThat(Files.size(dir.resolve("guest.bin"))).isEqualTo(8 << 20);
    }

    private Path initramfs(String version) throws IOException {
        Path root = Files.createDirectories(dir.resolve("initramfs"));
        for (String d : new String[] {"bin", "lib", "proc", "sys", "dev", "mnt"}) {
            Files.createDirectories(root.resolve(d));
        }
        Files.copy(Path.of("/bin/busybox"), root.resolve("bin/busybox"));
        StringBuilder insmod = new StringBuilder();
        for (String m : MODULES) {
            String name = m.substring(m.indexOf('/') + 1) + ".ko";
            Files.copy(Path.of("/lib/modules/" + version + "/kernel/drivers/" + m + ".ko"), root.resolve("lib/" + name));
            insmod.append("insmod /lib/").append(name).append('\n');
        }
        String init = """
                #!/bin/busybox sh
                /bin/busybox --install -s /bin
                mount -t proc proc /proc
                mount -t sysfs sys /sys
                mount -t devtmpfs dev /dev
                %s
                i=0; while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
                mount -t ext4 /dev/vda /mnt || echo GUEST: mount failed
                [ "$(cat /mnt/hello.txt)" = "from the host" ] && echo GUEST: host file ok
                dd if=/dev/urandom of=/mnt/guest.bin bs=1M count=8 2>/dev/null
                sha256sum /mnt/guest.bin > /mnt/guest.sha
                sync
                umount /mnt && echo GUEST: done
                poweroff -f
                """.formatted(insmod);
        Path initFile = root.resolve("init");
        Files.writeString(initFile, init);
        Files.setPosixFilePermissions(initFile, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path out = dir.resolve("initrd.cpio");
        Qemu.run(root, "sh", "-c", "find . | cpio -o -H newc --quiet > " + out);
        return out;
    }
}
