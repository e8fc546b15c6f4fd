# tests/nested/virtio-scenarios.sh: the virtio scenarios of both architectures, sourced by
# scenarios.sh (x86_64) and arch/arm64-scenarios.sh, in scenarios.sh's format. What differs per
# architecture comes from arch/<arch>.sh: $GUEST_KERNEL (the x86 vmlinux by PVH, the arm64 Image) and how the
# guest finds the first device, $VIRTIO0_PARENT (ACPI's LNRO0005 on x86_64, a device-tree node on
# arm64) and $VIRTIO0_IRQ (its /proc/interrupts chip, line and trigger). The rest is what the
# guest and L1 see of the devices, the same on both.
# shellcheck shell=bash

# --- virtio devices ---------------------------------------------------------------------------
# Guest sides: guest-init's test_<name>. L1 sides: the before/during/input/after steps (run in
# $L1_WORK/NAME, helpers in l1-steps.sh). Every one rejects the guest's "FAILED:" lines and module
# load failures, and checks skiff's info line for the device it made.
# virtio_scenario NAME TIMEOUT PCI_ID: PCI_ID is the device's PCI device id (1041 net, ...).
virtio_transport=mmio
virtio_scenario() {
	local suffix=
	[ "$virtio_transport" = pci ] && suffix=-pci
	scenario "$1$suffix" "$2"
	reject '^SKIFF-GUEST: FAILED'
	reject '^SKIFF-GUEST: insmod failed'
	if [ "$virtio_transport" = pci ]; then
		args --enable-pci
		expect "skiff: info: virtio-.* at PCI 00:01\.0 \(virtio-pci, MSI-X\)"
		expect "^SKIFF-GUEST: pci 0000:00:01\.0 0x1af4:0x$3 "
		expect "^SKIFF-GUEST: virtio0_parent=$VIRTIO0_PCI_PARENT\$"
		expect "^SKIFF-GUEST: irq [0-9]+:( [0-9]+)+ $VIRTIO0_PCI_IRQ virtio0-config\$"
		# Every queue has a vector of its own too.
		expect "^SKIFF-GUEST: irq [0-9]+:( [0-9]+)+ $VIRTIO0_PCI_IRQ virtio0-[a-z]+(\.[0-9]+)?\$"
		expect "^SKIFF-GUEST: mmconfig=$VIRTIO_PCI_MMCONFIG"
		reject "^SKIFF-GUEST: irq .* virtio0\$"
	else
		# The first device is where the platform description (arch/<arch>.sh) says, on its
		# line.
		expect "^SKIFF-GUEST: virtio0_parent=$VIRTIO0_PARENT\$"
		expect "^SKIFF-GUEST: irq [0-9]+:( [0-9]+)+ $VIRTIO0_IRQ virtio0\$"
		reject "^SKIFF-GUEST: pci .* 0x1af4:"
	fi
}

# Every virtio scenario, for the transport in $virtio_transport.
define_virtio_scenarios() {
	# The guest writes 4 MiB of a pattern at 1 MiB of a sparse 64 MiB image and flushes; L1 finds
	# exactly those bytes there, and zeros everywhere else.
	virtio_scenario blk-write-pattern 60 1042
		before 'truncate -s 64M disk.img'
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
			--disk "$L1_WORK/$current/disk.img"
		expect 'skiff: info: virtio-blk'
		expect '^SKIFF-GUEST: vda_sectors=131072$'
		after 'expect_pattern disk.img 1024 wp1 4096'
		after '[ "$(guest_value readback_sha256)" = "$(pattern wp1 4096 | sha)" ] || die "the guest read back $(guest_value readback_sha256)"'
		after 'expect_zeros disk.img 0 1024'
		after 'expect_zeros disk.img 5120 60416'
		after '[ "$(stat -c %s disk.img)" = 67108864 ] || die "the image changed size"'

	# L1 writes a pattern before the boot; the guest reads the same checksum.
	virtio_scenario blk-read 60 1042
		before 'truncate -s 64M disk.img && put disk.img 0 rd1 4096'
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
			--disk "$L1_WORK/$current/disk.img"
		expect '^SKIFF-GUEST: vda_sectors=131072$'
		after '[ "$(guest_value read_sha256)" = "$(pattern rd1 4096 | sha)" ] || die "the guest read $(guest_value read_sha256)"'

	# ,ro: the guest sees a read-only disk, its write fails, it still reads, the image is unchanged.
	virtio_scenario blk-readonly 60 1042
		before 'truncate -s 64M disk.img && put disk.img 0 ro1 4096 && sha <disk.img >before.sha'
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
			--disk "$L1_WORK/$current/disk.img,ro"
		expect 'skiff: info: virtio-blk.*\(read-only\)'
		expect '^SKIFF-GUEST: vda_ro=1$'
		expect '^SKIFF-GUEST: write_failed=yes'
		after '[ "$(guest_value read_sha256)" = "$(pattern ro1 4096 | sha)" ] || die "the guest read $(guest_value read_sha256)"'
		after '[ "$(sha <disk.img)" = "$(cat before.sha)" ] || die "the read-only image changed"'

	# The guest discards 4 MiB at 1 MiB of 8 MiB of data: the image has a hole there (4 MiB fewer
	# blocks allocated), and the data around it is intact.
	virtio_scenario blk-discard 60 1042
		before 'truncate -s 64M disk.img && put disk.img 0 dc1 8192 && blocks disk.img >before.blocks'
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
			--disk "$L1_WORK/$current/disk.img"
		expect '^SKIFF-GUEST: discard=ok$'
		reject '^SKIFF-GUEST: discard_max_bytes=0$'
		after 'echo "blocks: $(cat before.blocks) before, $(blocks disk.img) after"'
		after '[ $(($(cat before.blocks) - $(blocks disk.img))) -ge 8192 ] || die "no 4 MiB hole: $(cat before.blocks) blocks before, $(blocks disk.img) after"'
		after 'expect_range disk.img 0 1024 "$(pattern dc1 8192 | head -c 1048576 | sha)" "data before the hole"'
		after 'expect_range disk.img 5120 3072 "$(pattern dc1 8192 | tail -c 3145728 | sha)" "data after the hole"'

	# Two disks: ids become serials (the second has the default one), each gets its own data.
	# The second has two request queues (num_queues=2, on 2 vCPUs): the guest's blk-mq has two
	# hardware queues (vCPU 0 on the first, vCPU 1 on the second), each vCPU writes through its
	# own with O_DIRECT and reads the other's data back (over PCI both queues' vectors fired);
	# its io_uring (depth 2 x 256) is the tuned one (SINGLE_ISSUER, COOP_TASKRUN) on L1's kernel.
	virtio_scenario blk-two-disks 60 1042
		before 'truncate -s 16M a.img b.img'
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cpus 2 \
			--disk "$L1_WORK/$current/a.img,id=sys" \
			--disk "$L1_WORK/$current/b.img,num_queues=2"
		expect 'skiff: info: virtio-blk disk[0-9]+: asynchronous I/O through io_uring \(depth 512, single issuer, cooperative task run\)'
		expect '^SKIFF-GUEST: vda_serial=sys$'
		expect '^SKIFF-GUEST: vdb_serial=disk[0-9]+$'
		expect '^SKIFF-GUEST: written=yes$'
		expect '^SKIFF-GUEST: vda_mq=1$'
		expect '^SKIFF-GUEST: vdb_mq=2$'
		expect '^SKIFF-GUEST: vdb_queues_verified=yes$'
		expect '^SKIFF-GUEST: vdb_mq_cpus=0,1$'
		if [ "$virtio_transport" = pci ]; then
			# a vector per queue, each of which fired (on some vCPU)
			expect '^SKIFF-GUEST: vdb_irq [0-9]+:( +[0-9]+)*( +[1-9][0-9]*)( +[0-9]+)* .*virtio[0-9]+-req\.0$'
			expect '^SKIFF-GUEST: vdb_irq [0-9]+:( +[0-9]+)*( +[1-9][0-9]*)( +[0-9]+)* .*virtio[0-9]+-req\.1$'
		fi
		after 'expect_pattern a.img 0 ta1 1024 && expect_zeros a.img 1024 15360'
		after 'expect_pattern b.img 0 tb2 1024 && expect_pattern b.img 1024 tb3 1024'
		after 'expect_zeros b.img 2048 14336'

	# Data the guest flushed survives a SIGKILL of the VMM right after the flush completed.
	virtio_scenario blk-kill-flushed 60 1042
		before 'truncate -s 64M disk.img'
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
			--disk "$L1_WORK/$current/disk.img"
		end halt
		rc 137
		during 'wait_for "^SKIFF-GUEST: flushed$" && kill -9 "$SKIFF_PID" && echo "killed $SKIFF_PID"'
		after 'expect_pattern disk.img 0 kf1 4096'

	# virtio-net on L1's tap0: ping both ways, then 4 MiB over TCP from L1 to the guest and back
	# (busybox nc), checksums compared on both sides.
	virtio_scenario net-ping-tcp 60 1041
		# (A retry after a substrate fault finds tap0 from the first try: start afresh.)
		before '{ ip link del tap0 2>/dev/null || :; }; tunctl -t tap0 >/dev/null && ip addr add 172.16.0.1/24 dev tap0 && ip link set tap0 up'
		before 'pattern nt1 4096 >to-guest'
		# Receives what the guest sends back; stdin never ends, so nc does not half-close early.
		before '(sleep 600 | nc -l -p 5002 >from-guest) &'
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
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

	# --net queues=2 on 2 vCPUs (multiqueue virtio-net). skiff creates tap0 itself, multi_queue
	# with two queues (busybox cannot make one; `during` gives it L1's address). The guest's
	# eth0 has rx-0, rx-1, tx-0 and tx-1 (its driver asks for both pairs with VQ_PAIRS_SET 2:
	# skiff serves pair 1 only after that); the guest pings L1 and moves 4 MiB in on a flow pinned to vCPU 0 and
	# back out on one pinned to vCPU 1. skiff's metrics then show each pair carried some of the
	# bulk data (at least 1 MiB) and something each way: with multiqueue broken everything would
	# be on pair 0. (Over PCI pair 0 takes the 4 MiB in and pair 1 sends them back, as pinned;
	# over virtio-mmio the device's one interrupt lands on vCPU 0, so TCP may move some of the
	# vCPU 1 flow's sends, made from that softirq, to TX queue 0: XPS re-picks a queue when
	# nothing is in flight.) Over PCI the second pair's queues have vectors that fired.
	virtio_scenario net-mq 90 1041
		# Warnings and the lines printed at the default level too: a soft lockup's
		# backtrace (seen once in 30 runs, the sending vCPU stuck during the 4 MiB to L1).
		cmdline loglevel=5
		before '{ ip link del tap0 2>/dev/null || :; }; : >metrics.json'
		before 'pattern nq1 4096 >to-guest'
		before '(sleep 600 | nc -l -p 5002 >from-guest) &'
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --cpus 2 \
			--net tap=tap0,mac=52:54:00:12:34:58,queues=2 \
			--metrics-path "$L1_WORK/$current/metrics.json"
		expect 'skiff: info: virtio-net net0 .*: tap tap0, 2 queue pairs$'
		expect '^SKIFF-GUEST: eth0_mac=52:54:00:12:34:58$'
		expect '^SKIFF-GUEST: eth0_queues=rx-0 rx-1 tx-0 tx-1 $'
		expect '^SKIFF-GUEST: ping=ok'
		expect '^SKIFF-GUEST: rx_bytes=4194304$'
		expect '^SKIFF-GUEST: tx=done$'
		if [ "$virtio_transport" = pci ]; then
			expect '^SKIFF-GUEST: mq_irq [0-9]+:( +[0-9]+)*( +[1-9][0-9]*)( +[0-9]+)* .*virtio0-input\.1$'
			expect '^SKIFF-GUEST: mq_irq [0-9]+:( +[0-9]+)*( +[1-9][0-9]*)( +[0-9]+)* .*virtio0-output\.1$'
		fi
		during 'i=0; until [ -e /sys/class/net/tap0 ]; do i=$((i + 1)); [ $i -lt 100 ] || die "skiff made no tap0"; usleep 100000; done
			ip addr add 172.16.0.1/24 dev tap0 && ip link set tap0 up && echo "tap0 up: $(cat /sys/class/net/tap0/tun_flags)"'
		during 'wait_for "^SKIFF-GUEST: net up$"'
		during 'ping -c 3 -W 5 172.16.0.2'
		during 'nc -l -p 5001 <to-guest'
		after '[ "$(guest_value rx_sha256)" = "$(sha <to-guest)" ] || die "the guest received $(guest_value rx_sha256)"'
		after '[ "$(sha <from-guest)" = "$(sha <to-guest)" ] || die "L1 received $(wc -c <from-guest) bytes back, sha256 $(sha <from-guest)"'
		# Bulk data on both pairs over PCI; over virtio-mmio XPS may move nearly all of the
		# vCPU 1 flow to TX queue 0 (above: pair 1 once sent 0.46 MiB of the 4), so there each
		# pair must only have carried packets both ways, which a device using pair 0 alone fails.
		bulk=0
		[ "$virtio_transport" != pci ] || bulk=1048576
		after 'line=$(tail -n1 metrics.json); net=$(echo "$line" | grep -o "\"net0\":{[^}]*}"); echo "metrics: $net"
			v() { echo "$net" | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
			for q in 0 1; do
				[ -n "$(v rx_bytes_q$q)" ] && [ -n "$(v tx_bytes_q$q)" ] || die "no counters for pair $q"
				[ $(($(v rx_bytes_q$q) + $(v tx_bytes_q$q))) -ge '"$bulk"' ] || die "pair $q moved less than '"$bulk"' bytes"
				[ "$(v rx_packets_q$q)" -gt 0 ] && [ "$(v tx_packets_q$q)" -gt 0 ] || die "pair $q moved nothing one way"
			done'

	# --net vhost=on: the same traffic as net-ping-tcp, moved by L1's vhost-net (the vhost_net
	# module, tests/nested/setup). The kernel's worker for skiff (vhost-PID) exists while the
	# data moves; skiff's own counters for the interface stay at 0 (its worker moved no packet)
	# while tap0 counted the 4 MiB both ways; both checksums match. Then the guest rebinds its
	# driver (a reset: the rings go back to skiff and new ones to vhost-net) and pings L1 again.
	# The kernel's used-buffer notifications go straight to the guest's interrupt (skiff logs it).
	# Once L1 has sent the guest 256 KiB of the 4 MiB, a Full snapshot through the API (paused,
	# created, resumed), which must come before the transfer ends: the kernel gives the rings
	# back for the hold and takes them again at the release, or the transfer stalls and the
	# checksums below fail.
	# L1 needs the vhost_net module: tests/nested/setup extracts it on x86_64 only
	# (arch/x86_64.sh sets NESTED_VHOST_NET).
	if [ "${NESTED_VHOST_NET:-no}" = yes ]; then
	virtio_scenario net-vhost 60 1041
		before '[ -c /dev/vhost-net ] || die "no /dev/vhost-net in L1 (is vhost_net in tests/nested/setup?)"'
		before '{ ip link del tap0 2>/dev/null || :; }; tunctl -t tap0 >/dev/null && ip addr add 172.16.0.1/24 dev tap0 && ip link set tap0 up'
		before 'pattern nv1 4096 >to-guest && : >metrics.json'
		before '(sleep 600 | nc -l -p 5002 >from-guest) &'
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
			--net tap=tap0,mac=52:54:00:12:34:57,vhost=on --metrics-path "$L1_WORK/$current/metrics.json" \
			--api-sock "$L1_WORK/$current/api.sock"
		expect 'skiff: info: virtio-net'
		expect 'skiff: info: snapshot: state in .*vm\.state'
		expect '^SKIFF-GUEST: eth0_mac=52:54:00:12:34:57$'
		expect '^SKIFF-GUEST: ping=ok'
		expect '^SKIFF-GUEST: rx_bytes=4194304$'
		expect '^SKIFF-GUEST: tx=done$'
		expect 'SKIFF-STEP during\| vhost worker vhost-[0-9]+ ticks=[0-9]+$'
		expect 'skiff: info: virtio-net net0 .*: tap tap0, vhost-net$'
		# The kernel signals the irqfds itself (virtio-mmio: the device's line; virtio-pci: the
		# queues' MSI-X vectors): an interrupt lost there hangs the transfer.
		expect 'skiff: info: virtio-net net0: vhost-net interrupts the guest itself on 2 of 2 queues \(irqfd\)'
		expect '^SKIFF-GUEST: rebound ping=ok$'
		# With --api-sock the VM the options describe waits for InstanceStart.
		during 'API_SOCK=$WORK/api.sock; wait_api; api_put /actions "{\"action_type\": \"InstanceStart\"}"'
		during 'wait_for "^SKIFF-GUEST: net up$"'
		during 'ping -c 3 -W 5 172.16.0.2'
		# The kernel's worker, found once the ping went through it and before the transfer: by
		# the transfer's end the guest may have rebound its driver (a new worker) or powered
		# off. It is named after the thread that made skiff its owner: the main thread, or the
		# API thread that built the VM (InstanceStart). Its CPU ticks are read as it is found.
		during 'st=; for f in /proc/[0-9]*/comm; do
				read -r c 2>/dev/null <"$f" || continue
				case $c in vhost-*)
					[ -d "/proc/$SKIFF_PID/task/${c#vhost-}" ] && st=$(cat "${f%/comm}/stat" 2>/dev/null) && n=$c ;;
				esac
			done
			[ -n "$st" ] || die "no vhost-TID kernel worker for a thread of skiff ($SKIFF_PID) while the guest moves data"
			# utime + stime (fields 14 and 15) from the copy read above, by the shell: once,
			# with awk, the count came out empty and awk named the worker'"'"'s stat file.
			ticks=$(set -- $st; [ $# -ge 15 ] && shift 13 && echo $(($1 + $2))) ||
				die "no CPU ticks in the stat of $n: $st"
			echo "vhost worker $n ticks=$ticks"'
		during 'base=$(cat /sys/class/net/tap0/statistics/tx_bytes)
			( API_SOCK=$WORK/api.sock n=0
			while [ $(($(cat /sys/class/net/tap0/statistics/tx_bytes) - base)) -lt 262144 ] && [ $n -lt 3000 ]; do usleep 10000; n=$((n + 1)); done
			echo "paused with $(($(cat /sys/class/net/tap0/statistics/tx_bytes) - base)) bytes sent to the guest"
			api_patch /vm "{\"state\": \"Paused\"}" &&
			api_put /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$WORK/vm.state\", \"mem_file_path\": \"$WORK/vm.mem\"}" &&
			api_patch /vm "{\"state\": \"Resumed\"}" && echo "snapshot during the transfer: done" ) >"$WORK/snap.out" 2>&1 &'
		during 'nc -l -p 5001 <to-guest'
		after 'sed "s/^/snapshot| /" "$WORK/snap.out" >&2; grep -q "^snapshot during the transfer: done" "$WORK/snap.out" || die "the snapshot during the transfer did not go through"
			sent=$(sed -n "s/^paused with \([0-9]*\) bytes.*/\1/p" "$WORK/snap.out")
			[ "${sent:-0}" -lt 4194304 ] || die "the pause came after the transfer (${sent:-no} bytes sent): it held nothing"'
		after '[ "$(guest_value rx_sha256)" = "$(sha <to-guest)" ] || die "the guest received $(guest_value rx_sha256)"'
		after '[ "$(sha <from-guest)" = "$(sha <to-guest)" ] || die "L1 received $(wc -c <from-guest) bytes back, sha256 $(sha <from-guest)"'
		after 'line=$(tail -n1 metrics.json); echo "metrics: $(echo "$line" | grep -o "\"net\":{[^}]*}")"
			echo "$line" | grep -Eq "\"net0\":\{\"rx_packets\":0,\"rx_bytes\":0,[^}]*\"tx_packets\":0,\"tx_bytes\":0," ||
				die "skiff counted packets of a vhost=on interface: $(echo "$line" | grep -o "\"net0\":{[^}]*}")"'
		after 'rx=$(cat /sys/class/net/tap0/statistics/rx_bytes) tx=$(cat /sys/class/net/tap0/statistics/tx_bytes)
			echo "tap0: rx_bytes=$rx tx_bytes=$tx"
			[ "$rx" -gt 4194304 ] && [ "$tx" -gt 4194304 ] || die "tap0 moved rx=$rx tx=$tx bytes, not 4 MiB each way"'
	fi

	# --console virtio: the guest's console is hvc0 (skiff appends console=hvc0), so every
	# SKIFF-GUEST line came through it; and a shell on hvc0 runs what L1 types into skiff's stdin.
	virtio_scenario console-hvc0 60 1043
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --console virtio
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
	virtio_scenario rng 60 1044
		args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --rng
		expect 'skiff: info: virtio-rng'
		expect '^SKIFF-GUEST: rng_current=virtio_rng'
		expect '^SKIFF-GUEST: rng=ok'
}

virtio_transport=mmio
define_virtio_scenarios
if [ "${NESTED_VIRTIO_PCI:-no}" = yes ]; then
	virtio_transport=pci
	define_virtio_scenarios
	virtio_transport=mmio
fi

# --vsock (Firecracker's hybrid vsock), one scenario per architecture on the transport
# arch/<arch>.sh names (virtio-mmio on x86_64, virtio-pci on arm64): 100 KB echoed intact from L1
# through uds_path by a listener in the guest; a guest connection to the host's port 6000 reaches
# L1's listener on <uds_path>_6000; connections nobody listens for are refused both ways. The
# test programs are tests/nested/tools/vsock-test.c.
virtio_transport=${NESTED_VSOCK_TRANSPORT:-mmio}
virtio_scenario vsock 90 1053
	before '/vmm/vsock-test uds-serve "$WORK/v.sock_6000" >uds-serve.out 2>&1 &'
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
		--vsock "cid=3,uds=$L1_WORK/$current/v.sock"
	expect 'skiff: info: virtio-vsock .*guest CID 3, host side /tmp/work/vsock[-a-z]*/v.sock'
	expect '^SKIFF-GUEST: vsock listening$'
	expect '^SKIFF-GUEST: vsock_guest_connect: reply=pong: hello from the guest$'
	expect '^SKIFF-GUEST: vsock_guest_refused: refused: Connection reset by peer$'
	expect '^SKIFF-GUEST: vsock_echo: served 102400$'
	expect 'SKIFF-STEP during\| echo ok: 102400 bytes intact$'
	expect 'SKIFF-STEP during\| refused ok: closed without an answer$'
	during 'wait_for "^SKIFF-GUEST: vsock listening$"'
	during '/vmm/vsock-test uds-refused "$WORK/v.sock" 5001'
	during '/vmm/vsock-test uds-echo "$WORK/v.sock" 5000 102400'
	after 'cat uds-serve.out; grep -qx "served: hello from the guest" uds-serve.out'
	after '[ ! -e v.sock ] || die "skiff left v.sock behind"'
virtio_transport=mmio

# virtio-fs (vhost-user) with Debian's virtiofsd in L1 ($NESTED_VIRTIOFSD, from arch/<arch>.sh):
# "share" is served by a virtiofsd skiff starts (dir=), "ext" by one L1 starts (socket=) and kills
# once the guest has used both. The guest reads L1's files, writes a pattern and copies a tree of
# 1000 files that L1 finds intact; after the kill, "ext" fails with an error (skiff logs the lost
# backend) while "share" goes on, and the guest powers off with skiff exiting 0. It runs where
# arch/<arch>.sh names a virtiofsd for L1: x86_64 (the host's; `fs` over virtio-mmio, where the
# backend signals the device's irqfd itself and InterruptStatus always says a used buffer, and
# `fs-pci` over virtio-pci, where the backend signals the MSI-X vectors' irqfds itself) and arm64 (qemu-system-common:arm64's, with its
# libraries, unpacked by arch/arm64-setup; `fs` over virtio-pci, irqfds too). Its bound, 240 s, is
# ~3x its slowest run seen (x86_64 26-85 s, arm64 72-83 s): the longest scenario bound also sets
# how long a silent L1 runs on before the harness calls it stalled (run: stall_limit), ~once a CI
# run on this substrate.
# fs_scenario NAME TRANSPORT: TRANSPORT is mmio or pci.
fs_scenario() {
	scenario "$1" 240
	# L1's root is an initramfs, where virtiofsd's default sandbox (namespaces and pivot_root)
	# cannot work: the virtiofsd skiff finds on PATH is a wrapper that asks for its chroot one.
	before "[ -e $NESTED_VIRTIOFSD.bin ] || { mv $NESTED_VIRTIOFSD $NESTED_VIRTIOFSD.bin && printf '#!/bin/sh\\nexec $NESTED_VIRTIOFSD.bin \"\$@\" -o sandbox=chroot\\n' >$NESTED_VIRTIOFSD && chmod +x $NESTED_VIRTIOFSD; }"
	before 'mkdir share ext && echo "hello from L1" >share/hello.txt && echo "ext side" >ext/hello.txt'
	before 'pattern bg1 1024 >share/big'
	before "($NESTED_VIRTIOFSD.bin --socket-path=\$PWD/ext.sock -o source=\$PWD/ext -o sandbox=chroot >ext.log 2>&1 & echo \$! >ext.pid)"
	before 'i=0; while [ ! -S ext.sock ] && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done; [ -S ext.sock ] || die "virtiofsd in L1 opened no socket: $(cat ext.log)"'
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
		--fs "tag=share,dir=$L1_WORK/$1/share" --fs "tag=ext,socket=$L1_WORK/$1/ext.sock"
	[ "$2" = pci ] && args --enable-pci
	# The backend signals the irqfds itself (virtio-pci: the queues' MSI-X vectors; virtio-mmio:
	# the device's line): an interrupt lost there (a vector masked or handed over wrongly, an
	# InterruptStatus without the used-buffer bit) hangs the guest's requests.
	expect 'skiff: info: virtio-fs share: the backend interrupts the guest itself on 2 of 2 queues \(irqfd\)'
	expect 'skiff: info: virtio-fs ext: the backend interrupts the guest itself on 2 of 2 queues \(irqfd\)'
	reject '^SKIFF-GUEST: FAILED'
	reject '^SKIFF-GUEST: insmod failed'
	expect 'skiff: info: virtio-fs share: started .*virtiofsd \(pid [0-9]+\)'
	expect 'skiff: info: virtio-fs share at .*vhost-user'
	expect 'skiff: info: virtio-fs ext at .*vhost-user .*ext\.sock'
	expect '^SKIFF-GUEST: mounts=2$'
	expect '^SKIFF-GUEST: hello=hello from L1$'
	expect '^SKIFF-GUEST: ext_hello=ext side$'
	expect '^SKIFF-GUEST: tree_count=1000$'
	expect '^SKIFF-GUEST: fs ready for kill$'
	expect 'skiff: virtio-fs ext: the vhost-user backend is gone'
	expect '^SKIFF-GUEST: after_kill_error=.*(I/O error|Input/output error)'
	expect '^SKIFF-GUEST: after_kill_write_error='
	expect '^SKIFF-GUEST: share_after=hello from L1$'
	expect 'skiff: info: guest powered off'
	during 'wait_for "^SKIFF-GUEST: fs ready for kill$" && kill -9 "$(cat ext.pid)" && echo "killed virtiofsd $(cat ext.pid)"'
	after '[ "$(guest_value big_sha256)" = "$(pattern bg1 1024 | sha)" ] || die "the guest read $(guest_value big_sha256)"'
	after '[ "$(sha <share/from-guest)" = "$(pattern fw1 1024 | sha)" ] || die "from-guest has sha256 $(sha <share/from-guest)"'
	after '[ "$(ls share/tree | wc -l)" = 1000 ] || die "share/tree has $(ls share/tree | wc -l) files"'
	after 'i=0; while [ $i -lt 1000 ]; do [ "$(cat share/tree/f$i)" = "file $i" ] || die "share/tree/f$i: $(cat share/tree/f$i)"; i=$((i + 1)); done'
	after '[ "$(guest_value tree_sha256)" = "$(cat share/tree/* | sha)" ] || die "the tree differs between the guest and L1"'
	after '[ ! -e ext/after-kill ] || die "a write after the kill reached ext"'
}
if [ -n "${NESTED_VIRTIOFSD:-}" ]; then
	if [ "${NESTED_ARCH:-}" = x86_64 ]; then
		fs_scenario fs mmio
		fs_scenario fs-pci pci
	else
		fs_scenario fs pci
	fi
fi

# pci=off: a guest that does not look for PCI at all still has its virtio-mmio devices.
virtio_scenario blk-read-pci-off 60 1042
	before 'truncate -s 64M disk.img && put disk.img 0 rd1 4096'
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" \
		--disk "$L1_WORK/$current/disk.img"
	cmdline pci=off
	expect '^SKIFF-GUEST: cmdline=.* pci=off'
	expect '^SKIFF-GUEST: vda_sectors=131072$'
	after '[ "$(guest_value read_sha256)" = "$(pattern rd1 4096 | sha)" ] || die "the guest read $(guest_value read_sha256)"'

# The hostile guest over PCI (x86_64): unaligned and absent config reads through ECAM read all
# ones, an MSI-X entry with a bad address is refused (the device's other vector still works),
# bus mastering turned off under the running driver fails the device; each refusal is one log
# line, and the VM goes on to power off.
if [ "${NESTED_VIRTIO_PCI:-no}" = yes ] && [ "${NESTED_ARCH:-}" = x86_64 ]; then
	scenario pci-hostile 60
	args --log-level info --kernel "$GUEST_KERNEL" --initrd "$GUEST_INITRD" --rng --enable-pci
	cmdline iomem=relaxed
	reject '^SKIFF-GUEST: FAILED'
	expect '^SKIFF-GUEST: ecam_vendor=0x10441AF4$'
	expect '^SKIFF-GUEST: ecam_unaligned16=0xFFFF$'
	expect '^SKIFF-GUEST: ecam_unaligned32=0xFFFFFFFF$'
	expect '^SKIFF-GUEST: ecam_absent=0xFFFFFFFF$'
	expect 'skiff: warning: pci: unaligned 2-byte config read at 0x1; all ones'
	expect 'skiff: warning: virtio-rng: MSI-X vector 0: message address 0x1000 .*vector refused'
	expect '^SKIFF-GUEST: rng_after_bad_msix=ok$'
	expect '^SKIFF-GUEST: command_after: master=0 memory=2$'
	expect 'skiff: virtio-rng: bus mastering turned off while the driver runs the device'
	expect 'skiff: info: guest powered off'
fi
