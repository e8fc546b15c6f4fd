# tests/nested/scenarios.sh: the nested x86_64 scenarios, sourced by tests/nested/run (bash).
#
# A scenario is one `skiff run` inside L1, bounded by its own timeout, and what must be true of it:
#
#   scenario NAME TIMEOUT_S     start a scenario; the lines below apply to it
#   args ARG...                 skiff's arguments (besides --cmdline, which is built for you)
#   end poweroff|reboot|panic   how the guest ends (guest-init's skiff.end=); default poweroff
#   cmdline STR                 extra guest kernel command line
#   rc N                        expected exit status of skiff; default 0
#   expect ERE                  a line of the scenario's log must match (guest console + skiff)
#   reject ERE                  no line of the log may match
#   range KEY MIN MAX           the guest's "SKIFF-GUEST: KEY=V" line has MIN <= V <= MAX
#   boots no                    no Linux guest: skiff refuses by design, or runs a bare-metal one
#                               (no guest lines expected, no --cmdline added)
#
# The guest command line is "skiff.test=NAME skiff.end=END panic=-1 <cmdline>": panic=-1 makes an
# unexpected guest panic end the run at once (and fail on the missing lines) instead of a timeout.
# Paths are L1's: $GUEST_BZIMAGE, $GUEST_VMLINUX (ELF, decompressed from the same bzImage) and
# $GUEST_INITRD (busybox + guest-init); $GUEST_KERNEL is the bzImage (see arch/x86_64.sh). Every scenario also expects the guest's "init reached" and
# "test=NAME" lines and rejects "Kernel panic" unless it ends in a panic (see run: scenario_checks).
#
# Adding a scenario: a few lines below; guest-side behaviour goes in guest-init.

scenario boot-bzimage-1cpu 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 1
	expect '^SKIFF-GUEST: cpus=1$'
	expect '^SKIFF-GUEST: cpus_online=0$'
	expect 'skiff: info: loaded .* as bzImage'
	expect 'skiff: info: guest powered off \(ACPI S5'
	# guest-init writes 123 to the boot timer first thing.
	expect 'skiff: info: guest boot time: [0-9]+ ms \(to the first userspace write'
	reject 'SKIFF-GUEST: boot timer:'
	# Wall-clock time from skiff's RTC: the host's time, give or take the run.
	expect '^SKIFF-GUEST: rtc=rtc_cmos'
	range rtc_epoch $(($(date +%s) - 600)) $(($(date +%s) + 3600))

scenario boot-bzimage-2cpu 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 2
	expect '^SKIFF-GUEST: cpus=2$'
	expect '^SKIFF-GUEST: cpus_online=0-1$'

# The ELF vmlinux with the default protocol: PVH when the kernel has the Xen PVH note (Debian's
# has; tests/nested/setup reports it).
scenario boot-vmlinux-pvh 60
	args --log-level info --kernel "$GUEST_VMLINUX" --initrd "$GUEST_INITRD" --cpus 1
	expect 'skiff: info: loaded .* as ELF vmlinux \(PVH\)'

scenario boot-vmlinux-linux64 60
	args --log-level info --kernel "$GUEST_VMLINUX" --initrd "$GUEST_INITRD" --cpus 1 --boot-protocol linux64
	expect 'skiff: info: loaded .* as ELF vmlinux \(64-bit entry\)'

scenario poweroff 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 1
	end poweroff
	expect '^SKIFF-GUEST: about to power off$'
	reject '^SKIFF-GUEST: still running'
	expect 'skiff: info: guest powered off \(ACPI S5'

# Linux's default reboot on a hardware-reduced ACPI platform goes EFI, then a real-mode jump to
# the BIOS reset vector (F000:FFF0), where skiff's reset stub writes the ACPI reset register.
scenario reboot 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 1
	end reboot
	expect '^SKIFF-GUEST: about to reboot$'
	expect 'skiff: info: guest reset \(ACPI reset register\)'

# reboot=k: the i8042 keyboard controller's reset line (command 0xfe to port 0x64) only.
scenario reboot-i8042 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 1
	end reboot
	cmdline reboot=k
	expect '^SKIFF-GUEST: about to reboot$'
	expect 'skiff: info: guest reset \(i8042 reset\)'

# A guest panic with panic=-1 resets at once: skiff must end (rc 0), not hang.
scenario panic 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 1
	end panic
	expect '^SKIFF-GUEST: about to panic$'
	expect 'Kernel panic - not syncing'
	expect 'skiff: info: guest reset'

# 512 MiB of guest RAM: MemTotal is that less what the kernel keeps (code, reserved ranges).
scenario memory 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 1 --memory 512
	range memtotal_kb 430000 524288

# 3.5 GiB: RAM below the 3 GiB MMIO hole plus 512 MiB above 4 GiB (the second memory region and
# its e820 entry). L1 has less RAM than that: the guest touches only what it uses.
scenario memory-above-4g 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 1 --memory 3584
	range memtotal_kb 3300000 3670016

# The virtio scenarios, shared with arm64.
# shellcheck source=virtio-scenarios.sh
. "$here/virtio-scenarios.sh"

# The API scenarios (skiff --api-sock, --config-file), driven with curl in L1.
# shellcheck source=api-scenarios.sh
. "$here/api-scenarios.sh"

# The missing-driver hint (vmm/driver_hint.h): a guest without virtio_blk (guest-init skips the
# module) but with virtio_mmio and virtio_rng. 5 s after the guest's boot-timer write skiff logs
# one line naming the disk and CONFIG_VIRTIO_BLK, and none for the rng, which the guest set up.
# The guest stays up (end halt) and L1 stops skiff with SIGTERM once the line is there.
scenario driver-hint-no-blk 60
	before 'truncate -s 1M disk.img'
	args --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --rng \
		--disk "$L1_WORK/$current/disk.img"
	cmdline skiff.skip_modules=virtio_blk
	end halt
	rc 143
	reject '^SKIFF-GUEST: FAILED'
	reject '^SKIFF-GUEST: insmod failed'
	expect '^SKIFF-GUEST: modules skipped: virtio_blk$'
	expect '^SKIFF-GUEST: rng_current=virtio_rng'
	expect '^SKIFF-GUEST: vda=absent$'
	expect "skiff: warning: virtio-blk disk0: no driver in the guest took this device \\(5 s after the guest's boot-timer write\\): its kernel needs CONFIG_VIRTIO_BLK \\(built in, or module virtio_blk loaded\\)\$"
	reject 'skiff: warning: virtio-rng'
	reject 'CONFIG_VIRTIO_MMIO'
	during 'wait_for "skiff: warning: virtio-blk disk0: .*CONFIG_VIRTIO_BLK" 50 && sleep 1 && kill -TERM "$SKIFF_PID"'

# tools/mkrootfs's Debian image, booted to systemd's multi-user target (built on the host and
# cached by its inputs; L1 gets it as a disk).
# shellcheck source=rootfs-scenarios.sh
. "$here/rootfs-scenarios.sh"
