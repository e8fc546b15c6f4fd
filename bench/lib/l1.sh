# bench/lib/l1.sh: the L1 side the benches share (busybox sh; sourced by bench/boot/l1-init and
# bench/io/l1-init as /bench/l1.sh). bench_l1_setup mounts, loads the kvm modules and says
# whether /dev/kvm works; bench_l1_slots runs the boots, each bench's bench_attempt doing one.
#
# A slot is one boot of one VMM: slot K is run K / npeers + 1 of the VMM at K % npeers in
# /bench/peers, so the VMMs alternate. L1 starts at slot bench.from=K of its kernel command line
# (0 by default): a fresh L1 resumes where a dead one stopped (bench/lib/host.sh).
# bench_attempt VMM RUN (the bench's) boots once, with the VMM's output in $log, its figures as
# "KEY=VALUE..." lines in $lines, and sets status: ok; early (the guest never reached /init, the
# nested substrate's way of failing: see bench_not_reached); failed (the VMM's own failure, or
# one after /init: not the substrate's doing, so not retried). An early attempt is tried again,
# up to /bench/tries attempts in all.
#
# Console protocol (parsed by bench/lib/host.sh), on ttyS0:
#   BENCH-L1 ready uptime=S | BENCH-L1 FAILED: reason
#   BENCH-WARMUP ms=T rc=N init_reached=0|1            an unmeasured first boot (bench_warmup)
#   BENCH-START slot=K vmm=V run=R try=T                an attempt begins
#   BENCH-RETRY slot=K vmm=V run=R try=T reason=...     it ended before /init; tried again
#   BENCH vmm=V run=R slot=K tries=T KEY=VALUE...       the figures of the attempt that counted
#   BENCH-END slot=K vmm=V run=R tries=T status=ok|failed [reason=...]
#   BENCH-LOST slot=K vmm=V run=R tries=T reason=...    every attempt ended before /init
#   BENCH-LOG| ...                                      the VMM output's tail of an attempt
#                                                       that did not count
#   BENCH-DONE
# shellcheck shell=sh

bench_l1_setup() {
	/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin /tmp /run
	/bin/busybox --install -s
	export PATH=/bench:/bin:/sbin:/usr/bin:/usr/sbin
	export HOME=/tmp # lkvm keeps its sockets in $HOME/.lkvm
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev 2>/dev/null
	mount -t tmpfs tmpfs /tmp
	# Kernel messages stay off the console but for emergencies (a panic is one).
	dmesg -n 1
	echo
	bench_l1_failed=
	for m in $(cat /modules/modules.order); do
		out=$(insmod "/modules/$m.ko" 2>&1) || { bench_l1_failed="insmod $m: $out"; break; }
	done
	[ -n "$bench_l1_failed" ] || [ -c /dev/kvm ] || bench_l1_failed="no /dev/kvm"
	if [ -n "$bench_l1_failed" ]; then
		echo "BENCH-L1 FAILED: $bench_l1_failed"
		echo "BENCH-DONE"
		poweroff -f
	fi
	echo "BENCH-L1 ready uptime=$(cut -d' ' -f1 /proc/uptime)"
}

# bench_not_reached RC WHAT: the attempt's guest never reached /init; was that the substrate
# (status=early, tried again) or the VMM (status=failed, e.g. QEMU refusing its options)? The
# substrate's ways: a guest reset (every VMM here ends on one, with status 0), a hang (killed at
# the bound: 137), a triple fault or a KVM internal error that the VMM reports. RC: the VMM's
# exit status; WHAT: words for the reason.
bench_not_reached() {
	reason="rc=$1${2:+ $2}: the guest never reached /init"
	case $1 in
	0 | 137) status=early ;;
	*)
		if grep -qiE 'triple fault|internal error|KVM_EXIT_SHUTDOWN' "$log"; then
			status=early
		else
			status=failed reason="$reason: $(tr -d '\r' <"$log" | grep -v '^\s*$' | tail -n 1)"
		fi
		;;
	esac
}

bench_now_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

# bench_show_log: the last lines of the attempt's VMM output, for the host's log.
bench_show_log() { tr -d '\r' <"$log" | grep -v '^\s*$' | tail -n 15 | sed 's/^/BENCH-LOG| /'; }

# bench_warmup: one boot of skiff to the guest's /init and its poweroff, not measured. The first
# boot in a fresh L1 was the slowest of its VMM in every run so far (skiff's: 11.6, 16.2 and
# 16.5 s to /init where the later ones took 7.7-8.0 s), which would tilt small medians.
bench_warmup() {
	t0=$(bench_now_ms)
	rc=0
	timeout -k 5 120 /bench/skiff run --kernel /guest/bzImage --initrd /guest/initrd.cpio \
		--cmdline "console=ttyS0 quiet skiff.test=warmup skiff.end=poweroff panic=-1" \
		>/tmp/warmup.log 2>&1 </dev/null || rc=$?
	echo "BENCH-WARMUP ms=$(($(bench_now_ms) - t0)) rc=$rc init_reached=$(grep -c 'SKIFF-GUEST: init reached' /tmp/warmup.log)"
}

bench_l1_slots() {
	runs=$(cat /bench/runs)
	tries=$(cat /bench/tries)
	peers=$(tr '\n' ' ' </bench/peers)
	npeers=$(echo "$peers" | wc -w)
	k=0 panic_at=
	for arg in $(cat /proc/cmdline); do
		case $arg in
		bench.from=*) k=${arg#bench.from=} ;;
		bench.panic=*) panic_at=${arg#bench.panic=} ;;
		esac
	done
	log=/tmp/attempt.log lines=/tmp/attempt.lines
	bench_warmup
	while [ "$k" -lt $((runs * npeers)) ]; do
		run=$((k / npeers + 1))
		vmm=$(echo "$peers" | cut -d' ' -f$((k % npeers + 1)))
		try=1
		while :; do
			echo "BENCH-START slot=$k vmm=$vmm run=$run try=$try"
			# BENCH_L1_PANIC_AT (bench/lib/host.sh): die as the substrate's L1 sometimes does.
			[ "$k" != "$panic_at" ] || echo c >/proc/sysrq-trigger
			: >"$log"
			: >"$lines"
			status=failed reason=
			bench_attempt "$vmm" "$run"
			[ "$status" = early ] && [ "$try" -lt "$tries" ] || break
			echo "BENCH-RETRY slot=$k vmm=$vmm run=$run try=$try reason=$reason"
			bench_show_log
			try=$((try + 1))
		done
		tag="slot=$k vmm=$vmm run=$run tries=$try"
		case $status in
		ok)
			sed "s/^/BENCH vmm=$vmm run=$run slot=$k tries=$try /" "$lines"
			echo "BENCH-END $tag status=ok"
			;;
		early)
			bench_show_log
			echo "BENCH-LOST $tag reason=$reason"
			;;
		*)
			sed "s/^/BENCH-PARTIAL vmm=$vmm run=$run slot=$k /" "$lines"
			bench_show_log
			echo "BENCH-END $tag status=failed reason=$reason"
			;;
		esac
		k=$((k + 1))
	done
	echo "BENCH-DONE"
	poweroff -f
}
