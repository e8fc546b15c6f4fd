# tests/nested/scenarios.sh: the nested x86_64 scenarios, sourced by tests/nested/run (bash).
#
# A scenario is one `skiff run` inside L1, bounded by its own timeout, and what must be true of it:
#
#   scenario NAME TIMEOUT_S     start a scenario; the lines below apply to it
#   args ARG...                 skiff's arguments (besides --cmdline, which is built for you)
#   end poweroff|reboot|panic   how the guest ends (guest-init's skiff.end=); default poweroff
#   cmdline STR                 extra guest kernel command line
#   kernel_log                  the kernel's info lines on the console too (default: loglevel=4,
#                               errors and worse; each console byte costs the guest two exits)
#   rc N                        expected exit status of skiff; default 0
#   expect ERE                  a line of the scenario's log must match (guest console + skiff)
#   reject ERE                  no line of the log may match
#   range KEY MIN MAX           the guest's "SKIFF-GUEST: KEY=V" line has MIN <= V <= MAX
#   boots no                    no Linux guest: skiff refuses by design, or runs a bare-metal one
#                               (no guest lines expected, no --cmdline added)
#
# The guest command line is "skiff.test=NAME skiff.end=END panic=-1 loglevel=4 <cmdline>": panic=-1 makes an
# unexpected guest panic end the run at once (and fail on the missing lines) instead of a timeout.
# Paths are L1's: $GUEST_BZIMAGE, $GUEST_VMLINUX (ELF, decompressed from the same bzImage) and
# $GUEST_INITRD (busybox + guest-init); $GUEST_KERNEL is the vmlinux, booted by PVH (see
# arch/x86_64.sh: a bzImage's decompression costs ~4 s a boot here). Every scenario also expects the guest's "init reached" and
# "test=NAME" lines and rejects "Kernel panic" unless it ends in a panic (see run: scenario_checks).
#
# Adding a scenario: a few lines below; guest-side behaviour goes in guest-init.

# The kernel's whole log on the console (kernel_log), as a user sees it: Linux's console writes
# COM1's transmit register with the THRE interrupt off, so KVM batches those bytes (thousands
# per boot, counted in the boot breakdown) instead of exiting for each.
scenario boot-bzimage-1cpu 60
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 1
	kernel_log
	expect '^SKIFF-GUEST: cpus=1$'
	expect '^SKIFF-GUEST: cpus_online=0$'
	expect 'skiff: info: loaded .* as bzImage'
	expect 'skiff: info: guest powered off \(ACPI S5'
	# guest-init writes 123 to the boot timer first thing.
	expect 'skiff: info: guest boot time: [0-9]+ ms \(to the first userspace write'
	reject 'SKIFF-GUEST: boot timer:'
	expect 'skiff: info: boot breakdown: VMM set-up [0-9.]+ ms \(exec to the first KVM_RUN\), guest [0-9.]+ ms \(to the boot timer\), exits in the guest.s boot: [1-9][0-9]* .*, writes batched without an exit: [1-9][0-9]{3,}$'
	# Wall-clock time from skiff's RTC: the host's time, give or take the run.
	expect '^SKIFF-GUEST: rtc=rtc_cmos'
	range rtc_epoch $(($(date +%s) - 600)) $(($(date +%s) + 3600))
	# The i8042 probe: no AUX port and no 250 ms wait between the driver's first line and its
	# keyboard port. (With ACPI, Linux already skips the AUX check: the DSDT has PNP0303 and no
	# mouse. i8042.nopnp is no way to exercise the check here: the probe then fails with -22.)
	expect '^SKIFF-GUEST: i8042_aux_port=0$'
	range i8042_probe_ms 0 150

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
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cpus 1
	end poweroff
	expect '^SKIFF-GUEST: about to power off$'
	reject '^SKIFF-GUEST: still running'
	expect 'skiff: info: guest powered off \(ACPI S5'

# Linux's default reboot on a hardware-reduced ACPI platform goes EFI, then a real-mode jump to
# the BIOS reset vector (F000:FFF0), where skiff's reset stub writes the ACPI reset register.
scenario reboot 60
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cpus 1
	end reboot
	expect '^SKIFF-GUEST: about to reboot$'
	expect 'skiff: info: guest reset \(ACPI reset register\)'

# reboot=k: the i8042 keyboard controller's reset line (command 0xfe to port 0x64) only.
scenario reboot-i8042 60
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cpus 1
	end reboot
	cmdline reboot=k
	expect '^SKIFF-GUEST: about to reboot$'
	expect 'skiff: info: guest reset \(i8042 reset\)'

# A guest panic with panic=-1 resets at once: skiff must end (rc 0), not hang.
scenario panic 60
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cpus 1
	end panic
	expect '^SKIFF-GUEST: about to panic$'
	expect 'Kernel panic - not syncing'
	expect 'skiff: info: guest reset'

# 512 MiB of guest RAM: MemTotal is that less what the kernel keeps (code, reserved ranges).
scenario memory 60
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cpus 1 --memory 512
	range memtotal_kb 430000 524288

# 3.5 GiB: RAM below the 3 GiB MMIO hole plus 512 MiB above 4 GiB (the second memory region and
# its e820 entry). L1 has less RAM than that: the guest touches only what it uses.
scenario memory-above-4g 60
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cpus 1 --memory 3584
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
	args --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --rng \
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

# Firmware boot (--firmware): Debian's SeaBIOS boots a partitioned disk with syslinux to
# guest-init (built on the host and cached by its inputs; L1 gets it as a disk).
# shellcheck source=firmware-scenarios.sh
. "$here/firmware-scenarios.sh"

# skiff-jailer (docs/jailer.md): skiff jailed as 1234:1234 in its own mount and PID namespaces,
# in a cgroup with memory and pids limits and with an rlimit, boots the guest from a kernel,
# initrd and disk placed in the jail beforehand, named by their paths inside it. While the guest
# runs, L1 looks at skiff from outside: its ids, no capabilities, no_new_privs, pid 1 of its
# own PID namespace, another mount namespace whose root is the jail (a marker in L1's /etc is
# not there), its cgroup and limits. Then SIGTERM to the jailer reaches skiff, which stops the
# VM (143, the jailer's status too); the guest's write is in the jail's disk image.
scenario jailer-boot 90
	jailer --id vm1 --exec-file /vmm/skiff --uid 1234 --gid 1234 \
		--chroot-base-dir "$L1_WORK/$current/jail" --new-pid-ns --cgroup-version 2 \
		--parent-cgroup skiff-vms --cgroup memory.max=1073741824 --cgroup pids.max=64 \
		--resource-limit no-file=256
	args --log-level info --kernel /bzImage --initrd /initrd.cpio --disk /disk.img --cpus 1
	end halt
	rc 143
	expect '^SKIFF-GUEST: jail_disk=written$'
	expect 'skiff: info: loaded /bzImage as bzImage'
	expect '^SKIFF-STEP during\| jailed: Uid 1234 1234 1234 1234; Gid 1234 1234 1234 1234; Groups ; '\
'CapEff 0000000000000000; CapBnd 0000000000000000; NoNewPrivs 1; NSpid [0-9]+ 1$'
	expect '^SKIFF-STEP during\| jailed: root holds bzImage dev disk.img initrd.cpio skiff skiff.pid $'
	reject '^SKIFF-GUEST: FAILED'
	before 'root=jail/skiff/vm1/root && mkdir -p "$root" /etc'
	before 'cp "$GUEST_BZIMAGE" "$root/bzImage" && cp "$GUEST_INITRD" "$root/initrd.cpio"'
	before 'truncate -s 1M "$root/disk.img" && chown 1234:1234 "$root/disk.img"'
	before 'echo l1-only >/etc/skiff-l1-marker'
	before 'grep -q " /sys/fs/cgroup cgroup2 " /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup'
	during 'wait_for "^SKIFF-GUEST: jail_disk=written$" 80'
	during 'trap "kill -TERM \$SKIFF_PID" EXIT # also when a check fails: its reason, not a timeout'
	during 'root=jail/skiff/vm1/root && pid=$(cat "$root/skiff.pid") && st=/proc/$pid/status'
	during 'field() { sed -n "s/^$1:[[:space:]]*//p" "$st" | tr -s "\t " "  " | sed "s/ $//"; }'
	during 'line=; for f in Uid Gid Groups CapEff CapBnd NoNewPrivs NSpid; do'
	during '	line="$line$f $(field $f); "'
	during 'done'
	during 'echo "jailed: ${line%; }"'
	during 'echo "jailed: root holds $(ls "/proc/$pid/root" | tr "\n" " ")"'
	during '[ "$(field Uid)" = "1234 1234 1234 1234" ] || die "skiff runs as uid $(field Uid)"'
	during '[ "$(readlink /proc/$pid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] ||'
	during '	die "skiff is in L1 mount namespace"'
	during '[ -e /etc/skiff-l1-marker ] && [ ! -e "/proc/$pid/root/etc/skiff-l1-marker" ] ||'
	during '	die "skiff sees L1 /etc"'
	during 'grep -qx "0::/skiff-vms/vm1" "/proc/$pid/cgroup" || die "cgroup: $(cat /proc/$pid/cgroup)"'
	during '[ "$(cat /sys/fs/cgroup/skiff-vms/vm1/memory.max)" = 1073741824 ] || die memory.max'
	during '[ "$(cat /sys/fs/cgroup/skiff-vms/vm1/pids.max)" = 64 ] || die pids.max'
	during 'grep -Eq "^Max open files +256 +256 " "/proc/$pid/limits" || die "no-file limit"'
	during 'echo "jailed: checked from outside"'
	after '[ "$(head -c 14 jail/skiff/vm1/root/disk.img)" = jailed-disk-ok ] || die "disk image"'
	after 'rmdir /sys/fs/cgroup/skiff-vms/vm1 /sys/fs/cgroup/skiff-vms'

# The GDB stub (docs/debugging.md) with gdb in L1 (Debian's gdb-minimal, unpacked on the host by
# tests/nested/gdb-minimal, with the host's libraries it loads): the guest waits at its first
# instruction until gdb attaches; gdb reads rip there and detaches, and the guest boots.
# guest-init says where __x64_sys_sync and __x64_sys_reboot are (/proc/kallsyms; nokaslr as
# docs/debugging.md says) and syncs every half second; gdb attaches again (the guest stops: the
# guest debugging that the first detach switched off is on again), lists the two vCPUs as
# threads, steps twice (KVM_GUESTDBG_SINGLESTEP: rip must move each time), sets a hardware
# breakpoint (debug registers) on __x64_sys_sync and continues: its outcome is reported, not
# required; delete, continue: the guest powers off, gdb hears that it exited, skiff ends with 0.
# What this substrate (KVM's SVM in L1 under QEMU 7.2's software CPU) cannot do, December 2026:
# - software breakpoints: QEMU checks an int3 against the SVM "software interrupt" intercept
#   instead of the #BP exception intercept that KVM sets for KVM_GUESTDBG_USE_SW_BP
#   (target/i386/tcg: int3 is raised as an INT n, is_int=1, and raise_interrupt2 checks
#   SVM_EXIT_SWINT), so the int3 goes to the guest, which oopses ("int3: 0000 [#1]" at
#   __do_sys_sync+0x1 with skiff's debug log saying vCPU 0 resumed with guest debugging on and
#   1 software breakpoint). Not set here: it would kill the guest. tests/cli/gdb covers them on
#   hosts with real KVM; arm64's gdb-kernel here.
# - hardware breakpoints: QEMU's VMRUN loads the guest's DR7 from the VMCB without arming its
#   own breakpoints for it (helper_vmrun assigns env->dr[7]; cpu_x86_update_dr7 is what arms
#   them), so the guest never stops (30 s of syncs). Hence "not hit" is accepted; tests/cli/gdb
#   checks them on this machine's /dev/kvm.
scenario gdb-kernel 120
	host_prepare 'tests/nested/gdb-minimal'
	l1_tool "$NESTED_CACHE/gdb-minimal/usr/bin/gdb"
	args --log-level info --kernel "$GUEST_BZIMAGE" --initrd "$GUEST_INITRD" --cpus 2 --gdb tcp:127.0.0.1:1234
	cmdline nokaslr
	expect 'skiff: info: gdb: waiting for a debugger on tcp:127\.0\.0\.1:1234'
	expect '^SKIFF-STEP during\| gdb: first instruction at 0x[0-9a-f]+$'
	expect '^SKIFF-STEP during\| gdb: 2 vCPUs as threads$'
	expect '^SKIFF-STEP during\| gdb: stopped at 0x[0-9a-f]+, cr3 0x[0-9a-f]+, stepped to 0x[0-9a-f]+, then 0x[0-9a-f]+$'
	expect '^SKIFF-STEP during\| gdb: hardware breakpoint on __x64_sys_sync: (stopped there|not hit)$'
	expect '^SKIFF-STEP during\| gdb: the guest exited$'
	expect 'skiff: info: gdb: the debugger detached, the guest runs on'
	expect 'skiff: info: guest powered off \(ACPI S5'
	before 'ip link set lo up' # L1 brings up no interface by itself
	during 'wait_for "gdb: waiting for a debugger on tcp:127.0.0.1:1234" 30'
	during 'timeout 60 gdb -batch -nx -ex "target remote 127.0.0.1:1234" -ex "info registers rip" -ex detach >gdb1.out 2>&1 || true'
	during 'sed "s/^/gdb1: /" gdb1.out'
	during 'rip=$(awk "\$1 == \"rip\" { print \$2 }" gdb1.out) && [ -n "$rip" ] || die "gdb read no rip"'
	during 'echo "gdb: first instruction at $rip"'
	during 'wait_for "^SKIFF-GUEST: sym_reboot=" 60'
	during 'sync=0x$(guest_value sym_sync)'
	during '[ "$sync" != 0x ] || die "no kallsyms address from the guest"'
	during 'timeout 90 gdb -batch -nx -ex "target remote 127.0.0.1:1234" -ex "info threads" \'
	during '	-ex "info registers rip cr3" -ex stepi -ex "info registers rip" -ex stepi -ex "info registers rip" \'
	during '	-ex "hbreak *$sync" -ex continue -ex "info registers rip" -ex delete -ex continue >gdb2.out 2>&1 || true'
	during 'sed "s/^/gdb2: /" gdb2.out'
	during '[ "$(grep -c "^[ *] *[0-9]* *Thread " gdb2.out)" = 2 ] || die "gdb did not list 2 threads"'
	during 'echo "gdb: 2 vCPUs as threads"'
	during 'rips=$(awk "\$1 == \"rip\" { print \$2 }" gdb2.out | tr "\n" " ")'
	during 'set -- $rips'
	during '[ -n "$3" ] && [ "$2" != "$1" ] && [ "$3" != "$2" ] || die "stepi did not move: rips $rips"'
	during 'cr3=$(awk "\$1 == \"cr3\" { print \$2 }" gdb2.out)'
	during 'echo "gdb: stopped at $1, cr3 $cr3, stepped to $2, then $3"'
	during 'if [ "$4" = "$sync" ]; then hw="stopped there"; elif [ -z "$4" ]; then hw="not hit"; else die "stopped at $4, not __x64_sys_sync"; fi'
	during 'echo "gdb: hardware breakpoint on __x64_sys_sync: $hw"'
	during 'grep -q "exited normally" gdb2.out || die "gdb did not hear the guest exit"'
	during 'echo "gdb: the guest exited"'
