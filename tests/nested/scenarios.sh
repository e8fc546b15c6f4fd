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
# $GUEST_INITRD (busybox + guest-init). Every scenario also expects the guest's "init reached" and
# "test=NAME" lines and rejects "Kernel panic" unless it ends in a panic (see run: scenario_checks).
#
# Adding a scenario: a few lines below; guest-side behaviour goes in guest-init.

scenario boot-bzimage-1cpu 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 1
	expect '^SKIFF-GUEST: cpus=1$'
	expect '^SKIFF-GUEST: cpus_online=0$'
	expect 'skiff: info: loaded .* as bzImage'
	expect 'skiff: info: guest powered off \(ACPI S5'
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

# --- virtio devices ---------------------------------------------------------------------------
# Guest sides: guest-init's test_<name>. L1 sides: the before/during/input/after steps (run in
# $L1_WORK/NAME, helpers in l1-steps.sh). Every one rejects the guest's "FAILED:" lines and module
# load failures, and checks skiff's info line for the device it made.
virtio_scenario() {
	scenario "$@"
	reject '^SKIFF-GUEST: FAILED'
	reject '^SKIFF-GUEST: insmod failed'
}

# The guest writes 4 MiB of a pattern at 1 MiB of a sparse 64 MiB image and flushes; L1 finds
# exactly those bytes there, and zeros everywhere else.
virtio_scenario blk-write-pattern 60
	before 'truncate -s 64M disk.img'
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" \
		--disk "$L1_WORK/blk-write-pattern/disk.img"
	expect 'skiff: info: virtio-blk'
	expect '^SKIFF-GUEST: vda_sectors=131072$'
	after 'expect_pattern disk.img 1024 wp1 4096'
	after '[ "$(guest_value readback_sha256)" = "$(pattern wp1 4096 | sha)" ] || die "the guest read back $(guest_value readback_sha256)"'
	after 'expect_zeros disk.img 0 1024'
	after 'expect_zeros disk.img 5120 60416'
	after '[ "$(stat -c %s disk.img)" = 67108864 ] || die "the image changed size"'

# L1 writes a pattern before the boot; the guest reads the same checksum.
virtio_scenario blk-read 60
	before 'truncate -s 64M disk.img && put disk.img 0 rd1 4096'
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" \
		--disk "$L1_WORK/blk-read/disk.img"
	expect '^SKIFF-GUEST: vda_sectors=131072$'
	after '[ "$(guest_value read_sha256)" = "$(pattern rd1 4096 | sha)" ] || die "the guest read $(guest_value read_sha256)"'

# ,ro: the guest sees a read-only disk, its write fails, it still reads, the image is unchanged.
virtio_scenario blk-readonly 60
	before 'truncate -s 64M disk.img && put disk.img 0 ro1 4096 && sha <disk.img >before.sha'
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" \
		--disk "$L1_WORK/blk-readonly/disk.img,ro"
	expect 'skiff: info: virtio-blk.*\(read-only\)'
	expect '^SKIFF-GUEST: vda_ro=1$'
	expect '^SKIFF-GUEST: write_failed=yes'
	after '[ "$(guest_value read_sha256)" = "$(pattern ro1 4096 | sha)" ] || die "the guest read $(guest_value read_sha256)"'
	after '[ "$(sha <disk.img)" = "$(cat before.sha)" ] || die "the read-only image changed"'

# The guest discards 4 MiB at 1 MiB of 8 MiB of data: the image has a hole there (4 MiB fewer
# blocks allocated), and the data around it is intact.
virtio_scenario blk-discard 60
	before 'truncate -s 64M disk.img && put disk.img 0 dc1 8192 && blocks disk.img >before.blocks'
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" \
		--disk "$L1_WORK/blk-discard/disk.img"
	expect '^SKIFF-GUEST: discard=ok$'
	reject '^SKIFF-GUEST: discard_max_bytes=0$'
	after 'echo "blocks: $(cat before.blocks) before, $(blocks disk.img) after"'
	after '[ $(($(cat before.blocks) - $(blocks disk.img))) -ge 8192 ] || die "no 4 MiB hole: $(cat before.blocks) blocks before, $(blocks disk.img) after"'
	after 'expect_range disk.img 0 1024 "$(pattern dc1 8192 | head -c 1048576 | sha)" "data before the hole"'
	after 'expect_range disk.img 5120 3072 "$(pattern dc1 8192 | tail -c 3145728 | sha)" "data after the hole"'

# Two disks: ids become serials (the second has the default one), each gets its own data.
virtio_scenario blk-two-disks 60
	before 'truncate -s 16M a.img b.img'
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" \
		--disk "$L1_WORK/blk-two-disks/a.img,id=sys" --disk "$L1_WORK/blk-two-disks/b.img"
	expect '^SKIFF-GUEST: vda_serial=sys$'
	expect '^SKIFF-GUEST: vdb_serial=disk[0-9]+$'
	expect '^SKIFF-GUEST: written=yes$'
	after 'expect_pattern a.img 0 ta1 1024 && expect_zeros a.img 1024 15360'
	after 'expect_pattern b.img 0 tb2 1024 && expect_zeros b.img 1024 15360'

# Data the guest flushed survives a SIGKILL of the VMM right after the flush completed.
virtio_scenario blk-kill-flushed 60
	before 'truncate -s 64M disk.img'
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" \
		--disk "$L1_WORK/blk-kill-flushed/disk.img"
	end halt
	rc 137
	during 'wait_for "^SKIFF-GUEST: flushed$" && kill -9 "$SKIFF_PID" && echo "killed $SKIFF_PID"'
	after 'expect_pattern disk.img 0 kf1 4096'

# virtio-net on L1's tap0: ping both ways, then 4 MiB over TCP from L1 to the guest and back
# (busybox nc), checksums compared on both sides.
virtio_scenario net-ping-tcp 60
	# (A retry after a substrate fault finds tap0 from the first try: start afresh.)
	before 'ip link del tap0 2>/dev/null; tunctl -t tap0 >/dev/null && ip addr add 172.16.0.1/24 dev tap0 && ip link set tap0 up'
	before 'pattern nt1 4096 >to-guest'
	# Receives what the guest sends back; stdin never ends, so nc does not half-close early.
	before '(sleep 600 | nc -l -p 5002 >from-guest) &'
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" \
		--net tap=tap0,mac=52:54:00:12:34:56
	expect 'skiff: info: virtio-net'
	expect '^SKIFF-GUEST: eth0_mac=52:54:00:12:34:56$'
	expect '^SKIFF-GUEST: ping=ok'
	expect '^SKIFF-GUEST: rx_bytes=4194304$'
	expect '^SKIFF-GUEST: tx=done$'
	during 'wait_for "^SKIFF-GUEST: net up$"'
	during 'ping -c 3 -W 5 172.16.0.2'
	# The guest retries until this listener is up: so it has answered L1's pings before.
	during 'nc -l -p 5001 <to-guest'
	after '[ "$(guest_value rx_sha256)" = "$(sha <to-guest)" ] || die "the guest received $(guest_value rx_sha256)"'
	after '[ "$(sha <from-guest)" = "$(sha <to-guest)" ] || die "L1 received $(wc -c <from-guest) bytes back, sha256 $(sha <from-guest)"'

# --console virtio: the guest's console is hvc0 (skiff appends console=hvc0), so every
# SKIFF-GUEST line came through it; and a shell on hvc0 runs what L1 types into skiff's stdin.
virtio_scenario console-hvc0 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --console virtio
	expect 'skiff: info: virtio-console'
	expect '^SKIFF-GUEST: cmdline=.*console=hvc0'
	expect '^SKIFF-GUEST: consoles=hvc0'
	expect '^SKIFF-GUEST: stdout=/dev/hvc0$'
	expect '^typed: 42$'
	expect '^SKIFF-GUEST: console shell done: rc=0$'
	input 'wait_for "^SKIFF-GUEST: console shell ready$"'
	input 'sleep 1; echo "echo typed: \$((6 * 7))"; sleep 1; echo exit'
	# Hold skiff's stdin open until the VMM ends (its EOF is not what is tested here).
	input 'while kill -0 "$SKIFF_PID" 2>/dev/null; do sleep 1; done'

# --rng: /dev/hwrng is virtio-rng, and gives bytes that are not zero and differ between reads.
virtio_scenario rng 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --rng
	expect 'skiff: info: virtio-rng'
	expect '^SKIFF-GUEST: rng_current=virtio_rng'
	expect '^SKIFF-GUEST: rng=ok'

