# bench/lib/host.sh: the host side the nested benches share (bash; sourced by bench/boot/run and
# bench/io/run): which VMMs run (the peers), the L1 image's common parts, the L1 loop that boots
# a fresh L1 and resumes when one dies, and the counts and medians of the summary.
#
# The nested substrate fails now and then, with every VMM alike: a guest that never reaches its
# /init (it stops getting timer interrupts, or resets early), and an L1 that dies (a kernel panic
# such as "corrupted stack end detected inside scheduler" in a VMM's vCPU thread, or a vCPU that
# never comes back so L1 stops). A bench that stopped at the first such failure would seldom
# finish. So a boot that ends before the guest's /init is tried again in the same L1 (up to
# BENCH_TRIES attempts: bench/lib/l1.sh), and an L1 that panics or makes no progress for a
# bound is replaced by a fresh one that resumes at the boot it was running (bench.from=K on its
# command line); a boot running in two dead L1s is given up. The counts of retried and lost
# boots are printed next to the medians, and every L1's console is kept (l1-console.N.log).
# BENCH_L1_PANIC_AT=K in the environment makes the first L1 panic (sysrq c) as it starts boot K,
# to exercise that path.
# The caller sets repo (the repository), out (its output directory) and runs (boots per VMM);
# bench_select_peers sets peers.
# shellcheck shell=bash disable=SC2154

BENCH_TRIES=3	# attempts of one boot in one L1 (bench/lib/l1.sh)
BENCH_MAX_L1=8	# L1 boots in one bench run, at most
BENCH_ALL_PEERS=(skiff skiff-pci qemu qemu-pci kvmtool skiff-vhost qemu-vhost skiff-vmlinux qemu-vmlinux)

bench_note() { echo "bench: $*" >&2; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }

# bench_qemu_demo_bios PREFIX: builds PREFIX.bin, the skiff demo guest's greeting as a BIOS image
# for QEMU microvm (bench/boot/qemu-demo-bios.S: it leaves through isa-debug-exit at 0xf4).
bench_qemu_demo_bios() {
	cc -c -o "$1.o" "$repo/bench/boot/qemu-demo-bios.S" &&
		ld -m elf_x86_64 -Ttext=0 -o "$1.elf" "$1.o" &&
		objcopy -O binary -j .text "$1.elf" "$1.bin"
}

# bench_skiff_has_pci SKIFF: whether that skiff binary knows --enable-pci.
bench_skiff_has_pci() { "$1" run --help 2>&1 | grep -q -- '--enable-pci'; }

# bench_select_peers SKIFF ENABLE_PCI KVMTOOL FILTER [VHOST [VMLINUX]]: sets peers (the VMMs to
# run, in order) and peer_notes (why one asked for is missing). ENABLE_PCI: 1 adds skiff-pci and
# qemu-pci; KVMTOOL: the lkvm path or empty; FILTER: a comma-separated subset, or empty for all;
# VHOST: 1 adds skiff-vhost and qemu-vhost (bench/io: the kernel's vhost-net for both); VMLINUX: 1
# adds skiff-vmlinux and qemu-vmlinux (bench/boot: the same kernel as its uncompressed ELF
# vmlinux, entered through PVH; kvmtool cannot load an ELF kernel).
bench_select_peers() {
	local skiff=$1 pci=$2 kvmtool=$3 filter=$4 vhost=${5:-0} vmlinux=${6:-0} p f keep
	peers=(skiff) peer_notes=()
	if [ "$pci" = 1 ]; then
		if bench_skiff_has_pci "$skiff"; then
			peers+=(skiff-pci)
		else
			peer_notes+=("skiff has no --enable-pci: skiff-pci not run")
		fi
	fi
	peers+=(qemu)
	[ "$pci" = 1 ] && peers+=(qemu-pci)
	[ -z "$kvmtool" ] || peers+=(kvmtool)
	if [ "$vhost" = 1 ]; then
		if "$skiff" run --help 2>&1 | grep -q 'vhost=on'; then
			peers+=(skiff-vhost)
		else
			peer_notes+=("skiff has no --net vhost=on: skiff-vhost not run")
		fi
		peers+=(qemu-vhost)
	fi
	[ "$vmlinux" = 0 ] || peers+=(skiff-vmlinux qemu-vmlinux)
	[ -n "$filter" ] || return 0
	for f in ${filter//,/ }; do
		[[ " ${BENCH_ALL_PEERS[*]} " == *" $f "* ]] || { echo "unknown peer '$f' (${BENCH_ALL_PEERS[*]})" >&2; exit 2; }
	done
	keep=()
	for p in "${peers[@]}"; do [[ ",$filter," == *",$p,"* ]] && keep+=("$p"); done
	peers=("${keep[@]}")
	[ ${#peers[@]} -gt 0 ] || { echo "--peers $filter: none of them runs (see --enable-pci, --kvmtool)" >&2; exit 2; }
}

# bench_check_kvmtool PATH: refuses what is not an x86-64 lkvm.
bench_check_kvmtool() {
	[ -x "$1" ] || { echo "--kvmtool $1: no such executable (build one: bench/peers/build-kvmtool)" >&2; exit 2; }
	file -L "$1" | grep -q 'ELF 64-bit.*x86-64' || { echo "--kvmtool $1: not an x86-64 executable" >&2; exit 2; }
	"$1" version >/dev/null 2>&1 || { echo "--kvmtool $1: '$1 version' fails; is it kvmtool's lkvm?" >&2; exit 2; }
}

# bench_kernel_env: the kernel, L1's modules and the guest's (virtio_mmio and virtio_pci, so
# every VMM's guest finds its devices) that tests/nested/setup prepared.
bench_kernel_env() {
	tests/nested/setup >/dev/null
	# shellcheck source=/dev/null
	. tests/nested/cache/kernel.env
	grep -qx virtio_pci "$KERNEL_GUEST_MODULES_DIR/modules.order" ||
		{ echo "the guest's modules ($KERNEL_GUEST_MODULES_DIR) lack virtio_pci: tests/nested/setup --refresh" >&2; exit 2; }
}

# bench_add_binary STAGE BIN: BIN and the shared libraries it loads, at their own paths in STAGE.
bench_add_binary() {
	local stage=$1 bin=$2 lib
	mkdir -p "$stage$(dirname "$bin")"
	cp -L "$bin" "$stage$bin"
	for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
		[ -e "$stage$lib" ] && continue
		mkdir -p "$stage$(dirname "$lib")"
		cp -L "$lib" "$stage$lib"
	done
}

# bench_stage_l1 STAGE INIT GUEST_INITRD SKIFF KVMTOOL: what both benches' L1 holds: busybox, INIT
# as /init with bench/lib/l1.sh, L1's modules, the guest, skiff, QEMU with its firmware when a
# QEMU peer runs, lkvm when kvmtool does, and /bench/{peers,runs,tries} (the bench adds the rest).
bench_stage_l1() {
	local stage=$1 f
	mkdir -p "$stage"/{bin,dev,proc,sys,tmp,modules,guest,bench,usr/share/qemu}
	cp /bin/busybox "$stage/bin/"
	cp "$2" "$stage/init"
	chmod 755 "$stage/init"
	cp "$repo/bench/lib/l1.sh" "$stage/bench/l1.sh"
	cp "$KERNEL_MODULES_DIR"/*.ko "$KERNEL_MODULES_DIR/modules.order" "$stage/modules/"
	cp "$KERNEL_BZIMAGE" "$stage/guest/bzImage"
	[[ " ${peers[*]} " != *"-vmlinux "* ]] || cp "$KERNEL_VMLINUX" "$stage/guest/vmlinux"
	cp "$3" "$stage/guest/initrd.cpio"
	cp "$4" "$stage/bench/skiff"
	if [[ " ${peers[*]} " == *" qemu"* ]]; then
		bench_add_binary "$stage" /usr/bin/qemu-system-x86_64
		for f in bios-microvm.bin qboot.rom linuxboot_dma.bin kvmvapic.bin pvh.bin; do
			[ -e /usr/share/qemu/$f ] && cp -L /usr/share/qemu/$f "$stage/usr/share/qemu/"
		done
	fi
	[ -z "$5" ] || cp -L "$5" "$stage/bench/lkvm"
	printf '%s\n' "${peers[@]}" >"$stage/bench/peers"
	echo "$runs" >"$stage/bench/runs"
	echo "$BENCH_TRIES" >"$stage/bench/tries"
}

# bench_cpio STAGE OUT: the L1 initramfs.
bench_cpio() {
	(cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$2"
}

# bench_l1_panic CONSOLE: the first "Kernel panic - not syncing" line of L1's own (a guest's
# output reaches L1's console only as BENCH-LOG| lines, which do not count).
bench_l1_panic() {
	tr -d '\r' <"$1" | grep -a -v '^BENCH' | grep -a -m1 -o 'Kernel panic - not syncing.*' || true
}

# bench_run_l1 INITRD BOUND: boots L1s until every slot (runs x peers) has an outcome. BOUND: the
# longest one attempt may take, in seconds (L1 enforces it); with no BENCH line for BOUND + 90 s,
# L1 counts as dead. Writes $out/bench.txt (the BENCH lines of every L1, and BENCH-LOST for a
# boot given up by the host) and $out/l1.txt (one line per L1: how it ended). Returns 1 when an
# L1 could not start benching (no /dev/kvm, ...): a retry would not help.
bench_run_l1() {
	local initrd=$1 bound=$2 slots=$((runs * ${#peers[@]})) from=0 boot=0
	local console marks last quiet qemu_pid rc why running finished panic global panic_arg
	local stall=$((bound + 90))
	local -A deaths=()
	: >"$out/bench.txt"
	: >"$out/l1.txt"
	while [ "$from" -lt "$slots" ] && [ "$boot" -lt "$BENCH_MAX_L1" ]; do
		boot=$((boot + 1))
		console=$out/l1-console.$boot.log
		: >"$console"
		global=$((180 + (slots - from) * (bound * BENCH_TRIES + 30)))
		panic_arg=
		[ "$boot" != 1 ] || [ -z "${BENCH_L1_PANIC_AT:-}" ] || panic_arg=" bench.panic=$BENCH_L1_PANIC_AT"
		bench_note "L1 $boot: boots $from..$((slots - 1)) of ${slots} (console: $console)"
		timeout -k 10 "$global" qemu-system-x86_64 \
			-accel tcg,thread=multi -smp 2 -cpu EPYC,+svm,+npt -m 4G \
			-nographic -no-reboot -monitor none -serial "file:$console" -net none \
			-kernel "$KERNEL_BZIMAGE" -initrd "$initrd" \
			-append "console=ttyS0 panic=-1 quiet bench.from=$from$panic_arg" </dev/null >"$out/qemu.$boot.log" 2>&1 &
		qemu_pid=$!
		why='' last=-1 quiet=0
		while kill -0 "$qemu_pid" 2>/dev/null; do
			sleep 5
			if [ -n "$(bench_l1_panic "$console")" ]; then
				# panic=-1 reboots L1 and -no-reboot ends QEMU; should it not, end it.
				sleep 5
				why=panic
				break
			fi
			marks=$(tr -d '\r' <"$console" | grep -a -c '^BENCH' || true)
			if [ "$marks" = "$last" ]; then quiet=$((quiet + 5)); else quiet=0 last=$marks; fi
			if [ "$quiet" -ge "$stall" ]; then
				why="no progress for ${stall}s"
				break
			fi
		done
		kill "$qemu_pid" 2>/dev/null || true
		rc=0
		wait "$qemu_pid" || rc=$?
		tr -d '\r' <"$console" | grep -a '^BENCH' >>"$out/bench.txt" || true
		if tr -d '\r' <"$console" | grep -aq '^BENCH-L1 FAILED'; then
			echo "L1 $boot: $(tr -d '\r' <"$console" | grep -a -m1 '^BENCH-L1 FAILED')" | tee -a "$out/l1.txt" >&2
			return 1
		fi
		if tr -d '\r' <"$console" | grep -aq '^BENCH-DONE'; then
			echo "L1 $boot: done" >>"$out/l1.txt"
			break
		fi
		panic=$(bench_l1_panic "$console")
		if [ -n "$panic" ]; then why="panic: $panic"
		elif [ -z "$why" ]; then
			case $rc in 124 | 137) why="hit its ${global}s bound" ;; *) why="ended (QEMU status $rc)" ;; esac
		fi
		if ! tr -d '\r' <"$console" | grep -aq '^BENCH-L1 ready'; then
			echo "L1 $boot: died before it could bench: $why" | tee -a "$out/l1.txt" >&2
			return 1
		fi
		# The boot it was running: the last one started without an outcome in this L1.
		running=$(tr -d '\r' <"$console" | awk '
			/^BENCH-START / { split($2, s, "="); r = s[2] }
			/^BENCH-(END|LOST) / { split($2, s, "="); if (s[2] == r) r = "" }
			END { print r }')
		finished=$(tr -d '\r' <"$console" | awk -v f="$((from - 1))" '
			/^BENCH-(END|LOST) / { split($2, s, "="); f = s[2] } END { print f }')
		echo "L1 $boot: died ($why)${running:+ during boot $running ($(bench_slot_name "$running"))}" |
			tee -a "$out/l1.txt" >&2
		if [ -n "$running" ]; then
			deaths[$running]=$((${deaths[$running]:-0} + 1))
			from=$running
			if [ "${deaths[$running]}" -ge 2 ]; then
				echo "BENCH-LOST slot=$running $(bench_slot_name "$running") reason=two L1s died during it" >>"$out/bench.txt"
				from=$((running + 1))
			fi
		else
			from=$((finished + 1))
		fi
	done
	[ "$from" -ge "$slots" ] || tr -d '\r' <"$console" | grep -aq '^BENCH-DONE' ||
		bench_note "gave up after $boot L1 boots; boots from $from on have no figures"
	return 0
}

# bench_slot_name K: "vmm=V run=R" of slot K.
bench_slot_name() { echo "vmm=${peers[$(($1 % ${#peers[@]}))]} run=$(($1 / ${#peers[@]} + 1))"; }

# bench_counts VMM: "M measured, R retried, L lost[, F failed]" for the VMM's boots: measured,
# those that counted; retried, attempts that ended before the guest's /init or in a dead L1 and
# were run again; lost, boots with no figure (all attempts failed so); failed, boots whose guest
# reached /init and then failed (not the substrate's doing: look at their BENCH-LOG lines).
bench_counts() {
	awk -v v="vmm=$1" -v runs="$runs" '
		$1 == "BENCH-START" && $3 == v { starts++; slot[$2] = 1 }
		$1 == "BENCH-END" && $3 == v { if ($0 ~ / status=ok/) ok++; else failed++ }
		END { n = 0; for (s in slot) n++
		      printf "%d measured, %d retried, %d lost", ok, starts - n, runs - ok - failed
		      if (failed) printf ", %d failed", failed; printf "\n" }' "$out/bench.txt"
}

# bench_l1_summary: one line on the L1s of the run.
bench_l1_summary() {
	local n died
	n=$(wc -l <"$out/l1.txt")
	died=$(grep -c ': died' "$out/l1.txt" || true)
	echo "L1 boots: $n, $died died$( [ "$died" = 0 ] || echo ": $(grep ': died' "$out/l1.txt" | sed 's/^L1 [0-9]*: died //' | awk 'NR > 1 { printf "; " } { printf "%s", $0 }')")"
}
