# tests/nested/arch/arm64.sh: what the nested harness does differently on arm64, sourced by
# tests/nested/run (bash). L1 is QEMU's virt machine with EL2 (virtualization=on) and a GICv3 on
# its software CPU; Debian's arm64 kernel has KVM built in (no modules), and /dev/kvm there runs
# guests with nested virtualization. No GICv2 emulation there: a GICv3 is what skiff gets.
# Everything L1 runs is aarch64: skiff is cross-built static, busybox is busybox-static:arm64.
# shellcheck shell=bash disable=SC2034
NESTED_ARCH=arm64
NESTED_SETUP=$here/arch/arm64-setup
NESTED_CACHE=$here/cache/arm64
NESTED_SCENARIOS=$here/arch/arm64-scenarios.sh
NESTED_MAKE_ARGS=(ARCH=arm64 STATIC=1 BUILD=build-arm64/static)
NESTED_VMM_BIN=build-arm64/static/skiff
NESTED_ADDR2LINE=aarch64-linux-gnu-addr2line # resolves skiff's crash reports (base/crash.h)
NESTED_CC=aarch64-linux-gnu-gcc # builds tests/nested/tools/*.c, static
NESTED_RAW_GUESTS=(build-arm64/static/guests/demo.bin # built with skiff; /vmm/demo.bin in L1
	build-arm64/static/tests/nested/guests/raw-image.bin) # /vmm/raw-image.bin: no Image header
# curl for the API scenarios and virtiofsd (Debian 12's qemu-system-common) for the fs scenario,
# from arm64 packages that arm64-setup unpacks (not installed) into tools-root.
NESTED_L1_TOOLS=(/usr/bin/curl /usr/lib/qemu/virtiofsd)
NESTED_VIRTIOFSD=/usr/bin/virtiofsd # (mkinitramfs-l1 puts --tool programs in /usr/bin)
NESTED_L1_TOOL_ROOT=$NESTED_CACHE/tools-root
NESTED_L1_TOOL_LIBDIRS=(lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu lib usr/lib)
# Paths inside L1 (see mkinitramfs-l1), used by the scenarios; GUEST_KERNEL is the kernel the
# shared scenarios (virtio-scenarios.sh) boot.
GUEST_IMAGE=/guest/Image GUEST_IMAGE_GZ=/guest/Image.gz GUEST_INITRD=/guest/initrd.cpio
GUEST_KERNEL=$GUEST_IMAGE
# How the guest finds the first virtio device: the device tree's virtio_mmio@a000000 node, SPI 16
# (GIC INTID 48), edge (guest-init's virtio0_parent and /proc/interrupts lines).
VIRTIO0_PARENT='a000000\.virtio_mmio' VIRTIO0_IRQ='GICv3 48 Edge'
# With --enable-pci (the NAME-pci variants): PCI function 00:01.0 behind the device tree's
# pci-host-ecam-generic bridge, MSI-X vectors translated by the GICv3 ITS (hwirq = requester id
# << 11 | vector), and the bridge's ECAM window (bus 0) in /proc/iomem.
NESTED_VIRTIO_PCI=yes
NESTED_VSOCK_TRANSPORT=pci # the vsock scenario's transport (x86_64's is virtio-mmio)
VIRTIO0_PCI_PARENT='0000:00:01\.0' VIRTIO0_PCI_IRQ='ITS-MSI [0-9]+ Edge'
VIRTIO_PCI_MMCONFIG='30000000-300fffff : PCI ECAM'

# L1 runs without transparent huge pages. With them, guest writes into a 2 MiB block of guest
# memory that L1's THP backs are now and then missing from KVM's dirty log: live migration's
# check (SKIFF_MIGRATION_VERIFY) found 14 to 17 pages differing from what was sent, each run's
# all in one 2 MiB block, sent in the first pass and "written since by nobody" (neither KVM's
# log nor skiff's saw it), and the migrated guests that did not fail the check oopsed on the
# lost writes; 4 of 18 migrations failed so with THP, none of 24 without (arm64 only; x86_64's
# L1, THP on, never showed it). It is in the emulated stage 2 (QEMU 7.2's TCG under L1's KVM)
# or L1's KVM, not in skiff, whose part (the pages it reads and sends) is the same either way;
# docs/migration.md has the details.
nested_qemu_cmd() {
	QEMU_CMD=(qemu-system-aarch64
		-M virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on
		-accel tcg,thread=multi -smp 2 -m 2G
		-nographic -no-reboot -monitor none -serial "file:$1" -net none
		-kernel "$KERNEL_IMAGE" -initrd "$2" -append "console=ttyAMA0 transparent_hugepage=never $3")
}
