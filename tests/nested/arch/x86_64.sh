# tests/nested/arch/x86_64.sh: what the nested harness does differently on x86_64, sourced by
# tests/nested/run (bash). L1 is QEMU's software CPU emulating AMD SVM with nested paging, whose
# Debian kernel loads kvm-amd (and its dependencies) from the modules tests/nested/setup picked.
# shellcheck shell=bash disable=SC2034
NESTED_ARCH=x86_64
NESTED_SETUP=$here/setup			# prepares the kernel; writes $NESTED_CACHE/kernel.env
NESTED_CACHE=$here/cache
NESTED_SCENARIOS=$here/scenarios.sh
NESTED_MAKE_ARGS=(STATIC=1 BUILD=build/static)	# how to build the static skiff ...
NESTED_VMM_BIN=build/static/skiff		# ... and where it lands, relative to the repo
NESTED_ADDR2LINE=addr2line # resolves skiff's crash reports (base/crash.h)
NESTED_CC=gcc # builds tests/nested/tools/*.c, static
NESTED_RAW_GUESTS=()
NESTED_EXTRA_PROGRAMS=(build/static/skiff-jailer) # built with skiff; /vmm/skiff-jailer in L1
# Dynamic tools for L1's steps (mkinitramfs-l1 --tool): the host's own, with their libraries.
NESTED_L1_TOOLS=(/usr/bin/curl /usr/lib/qemu/virtiofsd)
# virtio-fs's backend in L1 (Debian 12's qemu-system-common): the fs scenario runs with it.
NESTED_VIRTIOFSD=/usr/bin/virtiofsd # (mkinitramfs-l1 puts --tool programs in /usr/bin)
NESTED_L1_TOOL_ROOT=/
NESTED_L1_TOOL_LIBDIRS=(lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu)
# Paths inside L1 (see mkinitramfs-l1), used by the scenarios; GUEST_KERNEL is the kernel the
# shared scenarios (virtio-scenarios.sh) boot.
GUEST_BZIMAGE=/guest/bzImage GUEST_VMLINUX=/guest/vmlinux GUEST_INITRD=/guest/initrd.cpio
# The scenarios that test nothing of the boot path boot the ELF vmlinux by PVH: a bzImage spends
# ~4 s of every nested boot decompressing itself (to the boot timer: 3.3 s by PVH, 7.5 s as a
# bzImage, both with loglevel=4). The boot-* scenarios and the jailer boot the bzImage.
GUEST_KERNEL=$GUEST_VMLINUX
# How the guest finds the first virtio device: ACPI's LNRO0005 (instance 0), IOAPIC pin 5, edge
# (guest-init's virtio0_parent and /proc/interrupts lines; virtio-scenarios.sh expects them).
VIRTIO0_PARENT='LNRO0005:00' VIRTIO0_IRQ='IO-APIC 5-edge'
# With --enable-pci (the NAME-pci variants): PCI function 00:01.0, MSI-X vectors, and the ECAM
# window from the MCFG (src/arch/x86/layout.h).
NESTED_VIRTIO_PCI=yes
# L1 has the vhost_net module (tests/nested/setup): the net-vhost scenarios run.
NESTED_VHOST_NET=yes
VIRTIO0_PCI_PARENT='0000:00:01\.0' VIRTIO0_PCI_IRQ='PCI-MSI[^ ]* [0-9]+-edge'
VIRTIO_PCI_MMCONFIG='e0000000-e00fffff : PCI MMCONFIG 0000 \[bus 00'

# nested_qemu_cmd CONSOLE_FILE INITRD APPEND: sets QEMU_CMD, the L1 command line. QEMU's monitor
# listens on CONSOLE_FILE.monitor: on a stall tests/nested/run sends an NMI there, and L1, with
# unknown_nmi_panic, panics and prints where its CPUs were (panic_print=0x40: every CPU's
# backtrace, not only the one that took the NMI).
nested_qemu_cmd() {
	QEMU_CMD=(qemu-system-x86_64
		-accel tcg,thread=multi -smp 2 -cpu EPYC,+svm,+npt -m 4G
		-nographic -no-reboot -monitor "unix:$1.monitor,server=on,wait=off"
		-serial "file:$1" -net none
		-kernel "$KERNEL_BZIMAGE" -initrd "$2" -append "console=ttyS0 unknown_nmi_panic panic_print=0x40 $3")
}
