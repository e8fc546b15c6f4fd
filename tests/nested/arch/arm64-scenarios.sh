# tests/nested/arch/arm64-scenarios.sh: the nested arm64 scenarios, sourced by tests/nested/run
# (bash) with --arch arm64. The format is scenarios.sh's (see there); these are the x86_64
# scenarios that apply to arm64 (boot on 1 and 2 vCPUs, power-off, reset, panic, memory, and
# every virtio scenario on both transports: virtio-scenarios.sh, shared), plus arm64's own: a
# gzip-compressed Image, earlycon through /chosen/stdout-path, the --irqchip choice, PCI's ITS
# and host bridge from the device tree (pci-its) and the hostile PCI guest (pci-hostile). x86-only ones (PVH and linux64 ELF
# entry, i8042, ACPI, memory above 4 GiB) have no arm64 counterpart. raw-kernel and
# raw-kernel-too-large: a --kernel without the Image header (a test image, as kvmtool runs them). Paths are L1's:
# $GUEST_IMAGE (Debian's arm64 Image), $GUEST_IMAGE_GZ (the same, gzip-compressed), $GUEST_INITRD
# (busybox + guest-init).
# shellcheck shell=bash

scenario boot-1cpu 60
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 1
	expect '^SKIFF-GUEST: cpus=1$'
	expect '^SKIFF-GUEST: cpus_online=0$'
	expect 'skiff: info: loaded .* as Image at 0x80000000'
	expect 'skiff: info: interrupt controller: in-kernel GICv3 \(--irqchip auto\)'
	expect 'skiff: info: guest powered off \(firmware SYSTEM_OFF\)'

# The secondary vCPU starts powered off and comes up through the guest's PSCI CPU_ON.
scenario boot-2cpu 60
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 2
	expect '^SKIFF-GUEST: cpus=2$'
	expect '^SKIFF-GUEST: cpus_online=0-1$'
	reject 'failed to come online'
	# fw_cfg at its device-tree node: "QEMU" and the CPU count through the MMIO registers.
	expect '^SKIFF-GUEST: fw_cfg signature=0x554D4551 nb_cpus=0x0002$'

# Debian ships some arm64 kernels as gzip-compressed Images: skiff inflates them itself.
scenario boot-gzip 60
	args --log-level info --kernel "$GUEST_IMAGE_GZ" --initrd "$GUEST_INITRD" --cpus 1
	expect 'skiff: info: loaded .* as gzip-compressed Image'

# `earlycon` with no argument finds the UART through /chosen/stdout-path.
scenario earlycon 60
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 1
	cmdline earlycon
	kernel_log
	expect 'earlycon: ns16550a0 at MMIO 0x0*9000000'
	# Both consoles write the UART's transmit register with its THRE interrupt off: KVM
	# batches those MMIO writes (coalesced MMIO) instead of exiting for each byte.
	expect 'skiff: info: boot breakdown: .*, writes batched without an exit: [1-9][0-9]{3,}$'

scenario poweroff 60
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 1
	end poweroff
	expect '^SKIFF-GUEST: about to power off$'
	reject '^SKIFF-GUEST: still running'
	expect 'skiff: info: guest powered off \(firmware SYSTEM_OFF\)'

# Linux's reboot on arm64 is PSCI SYSTEM_RESET: like Firecracker, a reset ends the VM.
scenario reboot 60
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 1
	end reboot
	expect '^SKIFF-GUEST: about to reboot$'
	expect 'skiff: info: guest reset \(firmware SYSTEM_RESET\)'

# A guest panic with panic=-1 resets at once: skiff must end (rc 0), not hang.
scenario panic 60
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 1
	end panic
	expect '^SKIFF-GUEST: about to panic$'
	expect 'Kernel panic - not syncing'
	expect 'skiff: info: guest reset'

scenario memory 60
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 1 --memory 512
	range memtotal_kb 430000 524288

# The built-in demo guest: AArch64 code that writes its greeting to the UART's MMIO registers and
# ends with PSCI SYSTEM_OFF, on a VM without an interrupt controller.
scenario demo 30
	args --log-level info
	boots no
	expect '^Hello from the skiff demo guest!'
	expect 'Now the guest calls PSCI'
	expect 'skiff: info: guest powered off \(firmware SYSTEM_OFF\)'

# The same binary from a file: --raw loads it at the start of RAM.
scenario raw 30
	args --log-level info --raw /vmm/demo.bin
	boots no
	expect '^Hello from the skiff demo guest!'
	expect 'skiff: info: guest powered off \(firmware SYSTEM_OFF\)'

# A --kernel without the Image header (tests/nested/guests/raw-image-arm64.S): a raw image at
# RAM + 0x80000 with the whole platform and x0 = the device tree, as kvmtool loads
# kvm-unit-tests; its bootargs are the user's alone. It checks all that and powers off (PSCI).
scenario raw-kernel 30
	args --log-level info --kernel /vmm/raw-image.bin --cmdline 'skiff.raw=1 two'
	boots no
	expect 'skiff: info: /vmm/raw-image.bin has no arm64 Image header: loaded as a raw image at 0x80080000'
	expect '^RAW-TEST: pass'
	reject 'RAW-TEST: FAIL'
	expect 'skiff: info: guest powered off \(firmware SYSTEM_OFF\)'

# A raw image too large for guest RAM below the device tree: one line, exit status 1.
scenario raw-kernel-too-large 30
	before 'head -c 31457280 /dev/zero >big.raw'
	args --kernel "$L1_WORK/$current/big.raw" --memory 32
	boots no
	rc 1
	expect '^skiff: kernel: a raw image \(no arm64 Image header\) of 31457280 bytes does not fit in guest RAM'

# L1's KVM (nested, on QEMU's GICv3) cannot emulate a GICv2: skiff says so in one line, exit 1.
scenario irqchip-gicv2-unavailable 30
	args --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --irqchip gicv2
	boots no
	rc 1
	expect '^skiff: cannot create a GICv2 in KVM: .*try --irqchip gicv3'

# The guest's boot time without its console backlog: every byte on ttyS0 is two MMIO exits
# (LSR, THR), which the nested substrate makes expensive. The uptime is for the report.
scenario boot-quiet 60
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 1
	cmdline quiet
	expect '^SKIFF-GUEST: uptime=[0-9.]+$'

# --enable-pci, arm64's own pieces: skiff makes a GICv3 ITS; the guest's ITS driver and
# pci-host-generic take the device tree's nodes (the ITS below the GIC, the ECAM of bus 0, one
# 32-bit memory window that the guest assigns the BARs from); two functions (a disk and an rng)
# have requester ids 00:01.0 and 00:02.0, which msi-map makes ITS device ids 8 and 16 (the
# guest's hwirq is the device id << 11 | vector). Both probe through their queues' vectors, on
# two vCPUs (two redistributors as ITS collections). No INTx: nothing parses an interrupt-map.
scenario pci-its 60
	before 'truncate -s 1M disk.img'
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 2 --enable-pci \
		--disk "$L1_WORK/$current/disk.img" --rng
	kernel_log
	expect 'skiff: info: GICv3 ITS at 0x8080000: PCI MSIs'
	expect 'skiff: info: pci: host bridge, ECAM at 0x30000000'
	expect 'ITS@0x0*8080000: allocated [0-9]+ Devices'
	expect 'PCI/MSI: /intc@8000000/msi-controller@8080000 domain created'
	expect 'pci-host-generic 30000000\.pcie: ECAM at \[mem 0x30000000-0x300fffff\] for \[bus 00\]'
	expect 'pci 0000:00:01\.0: BAR [0-9] \[mem 0x[12][0-9a-f]{7}-0x[12][0-9a-f]{7}.*\]: assigned'
	expect 'pci 0000:00:02\.0: BAR [0-9] \[mem 0x[12][0-9a-f]{7}-0x[12][0-9a-f]{7}.*\]: assigned'
	expect '^SKIFF-GUEST: pci 0000:00:0[12]\.0 0x1af4:0x1042 '
	expect '^SKIFF-GUEST: pci 0000:00:0[12]\.0 0x1af4:0x1044 '
	expect '^SKIFF-GUEST: irq [0-9]+:( [0-9]+){2} ITS-MSI 16384 Edge virtio[01]-config$'
	expect '^SKIFF-GUEST: irq [0-9]+:( [0-9]+){2} ITS-MSI 32768 Edge virtio[01]-config$'
	# Interrupts came in on the queue vectors of both (a count column that is not 0).
	expect '^SKIFF-GUEST: irq [0-9]+:( [0-9]+)* [1-9][0-9]*( [0-9]+)* ITS-MSI 1638[5-9] Edge virtio[01]-[a-z]+(\.[0-9]+)?$'
	expect '^SKIFF-GUEST: irq [0-9]+:( [0-9]+)* [1-9][0-9]*( [0-9]+)* ITS-MSI 3276[9] Edge virtio[01]-[a-z]+(\.[0-9]+)?$'
	expect '^SKIFF-GUEST: virtio_devices=2$'
	reject 'of_irq_parse_pci|INTx|interrupt-map|ITS.*(failed|error)'
	reject 'skiff: (warn|error)'
	reject '^SKIFF-GUEST: irq .* GICv3 [0-9]+ Edge virtio'

# The hostile guest over PCI on arm64 (x86_64's pci-hostile in virtio-scenarios.sh, with what
# reaches a VMM here: an unaligned access to device memory faults in the guest's own CPU, an
# 8-byte one does not): an 8-byte ECAM read and an absent function read all ones, an MSI-X entry
# aimed at the ITS's control frame instead of its doorbell is refused (the queue's vector still
# works), bus mastering turned off under the running driver fails the device; each refusal is
# one log line, and the VM goes on to power off.
scenario pci-hostile 60
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --rng --enable-pci
	cmdline iomem=relaxed
	reject '^SKIFF-GUEST: FAILED'
	expect '^SKIFF-GUEST: ecam_vendor=0x10441AF4$'
	expect '^SKIFF-GUEST: ecam_oversized64=0xFFFFFFFFFFFFFFFF$'
	expect '^SKIFF-GUEST: ecam_absent=0xFFFFFFFF$'
	expect 'skiff: warning: pci: 8-byte config read at (0x)?0: config space takes 1, 2 or 4; all ones'
	expect 'skiff: warning: virtio-rng: MSI-X vector 0: message address 0x8080000 .*vector refused'
	expect '^SKIFF-GUEST: rng_after_bad_msix=ok$'
	expect '^SKIFF-GUEST: command_after: master=0 memory=2$'
	expect 'skiff: virtio-rng: bus mastering turned off while the driver runs the device'
	expect 'skiff: info: guest powered off'

# The virtio scenarios, shared with x86_64 (there: $GUEST_KERNEL is $GUEST_IMAGE).
# shellcheck source=../virtio-scenarios.sh
. "$here/virtio-scenarios.sh"
# shellcheck source=../api-scenarios.sh
. "$here/api-scenarios.sh"

# The GDB stub on arm64 (docs/debugging.md), driven by a protocol client with busybox nc
# (l1-steps.sh's rsp helpers; L1 has no arm64 gdb): at the first instruction, the target
# description is aarch64 and pc is the Image's entry; detach, the guest boots and says where
# __arm64_sys_sync and __arm64_sys_reboot are (/proc/kallsyms); attached again (guest debugging,
# which the detach switched off, is on again), two threads; a software breakpoint (brk #0,
# trapped to L1's KVM by MDCR_EL2.TDE) on __arm64_sys_sync stops the guest there when it calls it;
# one single step: pc moves by 4, or, when an interrupt was pending (the usual case here: the
# timer's interrupt comes due while the guest is stopped), to the kernel's IRQ vector
# (VBAR_EL1 + 0x280: KVM's step does not mask interrupts), and one more step from there (where
# interrupts are masked) must move pc by 4; a hardware breakpoint (DBGBCR/DBGBVR) on
# __arm64_sys_reboot, which the guest's power-off calls, must stop it there; continue: the guest
# powers off (W00), skiff ends with 0.
scenario gdb-kernel 120
	args --log-level info --kernel "$GUEST_IMAGE" --initrd "$GUEST_INITRD" --cpus 2 --gdb tcp:127.0.0.1:1234
	expect 'skiff: info: gdb: waiting for a debugger on tcp:127\.0\.0\.1:1234'
	expect '^SKIFF-STEP during\| rsp: first instruction at 0x0000000080000000, aarch64$'
	expect '^SKIFF-STEP during\| rsp: threads m1,2$'
	expect '^SKIFF-STEP during\| rsp: software breakpoint: stopped in __arm64_sys_sync, stepped (by 4|into the IRQ vector, then by 4)$'
	expect '^SKIFF-STEP during\| rsp: hardware breakpoint on __arm64_sys_reboot: stopped there$'
	expect '^SKIFF-STEP during\| rsp: W00$'
	expect 'skiff: info: guest powered off \(firmware SYSTEM_OFF\)'
	before 'ip link set lo up' # L1 brings up no interface by itself
	during 'wait_for "gdb: waiting for a debugger on tcp:127.0.0.1:1234" 30'
	during 'rsp_open 127.0.0.1 1234'
	during 'xml=$(rsp "qXfer:features:read:target.xml:0,fff")'
	during 'case $xml in *"<architecture>aarch64</architecture>"*) ;; *) die "target.xml: $xml" ;; esac'
	during 'rsp "?" >/dev/null'
	during 'pc=$(rsp_le64 "$(rsp g)" 256)'
	during 'echo "rsp: first instruction at $pc, aarch64"'
	during '[ "$(rsp D)" = OK ] || die "detach refused"'
	during 'exec 3>&-'
	during 'wait_for "^SKIFF-GUEST: sym_reboot=" 60'
	during 'sync=$(guest_value sym_sync) reboot=$(guest_value sym_reboot)'
	during '[ -n "$sync" ] && [ -n "$reboot" ] || die "no kallsyms addresses from the guest"'
	during 'rsp_open 127.0.0.1 1234'
	during 'rsp "?" >/dev/null'
	during 'echo "rsp: threads $(rsp qfThreadInfo)"'
	during '[ "$(rsp "Z0,$sync,4")" = OK ] || die "Z0 refused"'
	during 'stop=$(rsp c)'
	during 'case $stop in T05thread:*) ;; *) die "after c: $stop" ;; esac'
	during 'tid=${stop#T05thread:} && tid=${tid%%;*}'
	during '[ "$(rsp "Hg$tid")" = OK ] || die "Hg$tid refused"'
	during 'pc=$(rsp_le64 "$(rsp g)" 256)'
	during '[ "$pc" = "0x$sync" ] || die "stopped at $pc, not __arm64_sys_sync (0x$sync)"'
	during '[ "$(rsp "z0,$sync,4")" = OK ] || die "z0 refused"'
	during 'case $(rsp s) in T05thread:*) ;; *) die "step did not stop" ;; esac'
	during 'pc2=$(rsp_le64 "$(rsp g)" 256)'
	during 'moved=$((0x${pc2#0x????????} - 0x${pc#0x????????})) # low halves: sh arithmetic is signed 64-bit'
	during 'how="stepped by 4"'
	during 'if [ "$moved" != 4 ]; then'
	during '	[ $((0x${pc2#0x????????} & 0x7ff)) = $((0x280)) ] || die "stepped from $pc to $pc2"'
	during '	case $(rsp s) in T05thread:*) ;; *) die "step in the IRQ vector did not stop" ;; esac'
	during '	pc3=$(rsp_le64 "$(rsp g)" 256)'
	during '	[ $((0x${pc3#0x????????} - 0x${pc2#0x????????})) = 4 ] || die "stepped from $pc2 (IRQ vector) to $pc3"'
	during '	how="stepped into the IRQ vector, then by 4"'
	during 'fi'
	during 'echo "rsp: software breakpoint: stopped in __arm64_sys_sync, $how"'
	during '[ "$(rsp "Z1,$reboot,4")" = OK ] || die "Z1 refused"'
	during 'stop=$(rsp c)'
	during 'case $stop in'
	during 'T05thread:*)'
	during '	tid=${stop#T05thread:} && tid=${tid%%;*} && rsp "Hg$tid" >/dev/null'
	during '	pc=$(rsp_le64 "$(rsp g)" 256)'
	during '	[ "$pc" = "0x$reboot" ] || die "stopped at $pc ($stop), not __arm64_sys_reboot (0x$reboot)"'
	during '	echo "rsp: hardware breakpoint on __arm64_sys_reboot: stopped there"'
	during '	[ "$(rsp "z1,$reboot,4")" = OK ] || die "z1 refused"'
	during '	stop=$(rsp c) ;;'
	during '*) die "the hardware breakpoint on __arm64_sys_reboot did not stop the guest: $stop" ;;'
	during 'esac'
	during 'echo "rsp: $stop"'
