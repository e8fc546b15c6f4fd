# tests/nested/firmware-scenarios.sh: skiff --firmware with Debian's SeaBIOS booting an ordinary
# partitioned disk image (scenarios.sh's format; sourced by scenarios.sh, x86_64 only).
#
# firmware-image builds the disk on the host (syslinux's MBR, a FAT partition with syslinux, the
# guest kernel and initramfs, a syslinux.cfg with the guest command line), once per hash of its
# inputs, into $NESTED_CACHE/firmware/HASH; L1 gets it as a disk of its own (l1_drive:
# snapshot=on) and SeaBIOS's bios.bin in its initramfs.
# shellcheck shell=bash

fw_append="skiff.test=firmware-boot skiff.end=poweroff panic=-1 console=ttyS0 quiet"
# shellcheck source=/dev/null
fw_key=$( (cat "$here/firmware-image" "$here/mkinitramfs-guest" "$here/guest-init" \
	"$NESTED_CACHE/kernel.env"; echo "$fw_append") | sha256sum | cut -c1-16)
FIRMWARE_DIR=$NESTED_CACHE/firmware/$fw_key

# No --kernel: SeaBIOS (--firmware, which implies --enable-pci) finds the virtio-blk PCI disk,
# runs its MBR, syslinux loads the kernel and initramfs from the FAT partition and prints its
# banner on the serial port, the kernel finds the ACPI tables skiff handed over through fw_cfg's
# table loader (the guest powers off through them: status 0), and guest-init runs with
# syslinux's command line (BOOT_IMAGE=vmlinuz first).
scenario firmware-boot 180
	host_prepare "tests/nested/firmware-image $(q "$FIRMWARE_DIR") $(q "$fw_append")"
	l1_drive fwdisk "$FIRMWARE_DIR/disk.img"
	l1_file /usr/share/seabios/bios.bin /guest/bios.bin
	boots firmware
	before 'ln -s "$(l1_drive fwdisk)" disk.img'
	args --log-level info --firmware /guest/bios.bin --disk "$L1_WORK/$current/disk.img"
	expect '^skiff: info: firmware /guest/bios.bin: 128 KiB at 0xfffe0000, started at the reset vector$'
	expect 'SeaBIOS \(version '
	expect 'Booting from Hard Disk\.\.\.'
	expect '^SYSLINUX [0-9.]+ '
	expect '^SKIFF-GUEST: cmdline=BOOT_IMAGE=vmlinuz skiff\.test=firmware-boot '
	expect '^SKIFF-GUEST: pci 0000:00:01\.0 0x1af4:0x1042 '
	expect '^SKIFF-GUEST: vda_sectors=[1-9][0-9]*$'
	expect '^SKIFF-GUEST: acpi_rsdp=ACPI: RSDP 0x00000000000F[0-9A-F]{4} 000024 \(v02 SKIFF '
	reject '^SKIFF-GUEST: FAILED'
