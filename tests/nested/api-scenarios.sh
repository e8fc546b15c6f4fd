# tests/nested/api-scenarios.sh: the scenarios of skiff's Firecracker-compatible API, sourced by
# scenarios.sh, in its format. skiff starts with no VM (`skiff --api-sock PATH`, or
# `skiff run --api-sock PATH`); the `during` step configures and starts it with curl in L1 (the
# api_* helpers of l1-steps.sh print "API: METHOD PATH -> STATUS body" lines and fail the step on
# an unexpected status), checks what it answers, and tells the guest when it did something by
# writing a word to a small control disk (drive "ctl") that the guest side polls (guest-init's
# wait_word). `api` (see run) makes args skiff's whole command line and hands the guest command
# line to the steps as $BOOT_ARGS; every API scenario also checks that skiff removed its socket.
# shellcheck shell=bash

# api_scenario NAME BOUND: a scenario driven through the API; $sock is its socket path in L1.
api_scenario() {
	scenario "$@"
	api
	sock=$L1_WORK/$1/api.sock
	reject '^SKIFF-GUEST: FAILED'
	reject '^SKIFF-GUEST: insmod failed'
	before 'truncate -s 1M ctl.img'
	after 'expect_no_socket'
}
# The usual configuration before InstanceStart: kernel, initrd, $BOOT_ARGS, 2 vCPUs, 256 MiB and
# the control disk; a scenario adds its drives between api_setup and api_start.
api_setup='wait_api && api_state_is "Not started" && api_boot_source &&
	api_put /machine-config "{\"vcpu_count\": 2, \"mem_size_mib\": 256}" &&
	api_drive ctl "$WORK/ctl.img"'
api_start='api_put /actions "{\"action_type\": \"InstanceStart\"}"'

# Configured and started with curl alone; then what must be refused once it runs; the guest's
# power-off ends skiff (status 0) and its socket is gone.
api_scenario api-boot 90
	args --api-sock "$sock" --log-level info
	during "$api_setup"
	during 'api_get /machine-config
		[ "$(api_body | json_num vcpu_count)" = 2 ] || die "GET /machine-config: vcpu_count is not 2"
		[ "$(api_body | json_num mem_size_mib)" = 256 ] || die "GET /machine-config: mem_size_mib is not 256"'
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: api boot ready$" 60'
	during 'api_state_is Running'
	during 'api_get /; echo "id=$(api_body | json_str id) app_name=$(api_body | json_str app_name) vmm_version=$(api_body | json_str vmm_version)" >&2'
	during 'api_fault PUT /actions "{\"action_type\": \"InstanceStart\"}"'
	during 'api_fault PUT /boot-source "{\"kernel_image_path\": \"$GUEST_KERNEL\"}"'
	during 'api_fault PUT /machine-config "{\"vcpu_count\": 1, \"mem_size_mib\": 128}"'
	during 'api_state_is Running'
	during 'signal_guest ctl.img stop'
	expect '^SKIFF-GUEST: cpus=2$'
	range memtotal_kb 200000 262144
	expect '^SKIFF-GUEST: got stop$'
	expect '^SKIFF-STEP during\| API: PUT /actions -> 204'
	expect '^SKIFF-STEP during\| ok: state Running$'
	expect '^SKIFF-STEP during\| id=[^ ]+ app_name=[^ ]+ vmm_version=[^ ]+$'
	expect '^SKIFF-STEP after\| ok: API socket removed$'

# PATCH /vm pauses the vCPUs: no tick line for 5 s, GET / says Paused; after the resume ticks
# come again, and the guest's uptime moved by much less than the paused time (skiff restores the
# guest clock at the resume). `skiff run --api-sock` is the other spelling of the command.
api_scenario api-pause-resume 120
	args run --api-sock "$sock" --log-level info
	during "$api_setup"
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: tick 10 " 90'
	during 'api_patch /vm "{\"state\": \"Paused\"}"
		t0=$(now_s)
		api_state_is Paused
		sleep 1
		k=$(last_tick)
		n1=$(count_lines "^SKIFF-GUEST: tick ")
		sleep 5
		n2=$(count_lines "^SKIFF-GUEST: tick ")
		[ "$n2" = "$n1" ] || die "$((n2 - n1)) tick lines came while the VM was paused"
		echo "paused: no tick line in 6 s (last tick $k)" >&2'
	during 'api_patch /vm "{\"state\": \"Resumed\"}"
		t1=$(now_s)
		api_state_is Running
		wait_for "^SKIFF-GUEST: tick $((k + 3)) " 20
		before=$(tick_near $((k - 1)) -1) after=$(tick_near $((k + 1)) 1)
		k0=${before%% *} u0=${before#* } k1=${after%% *} u1=${after#* }
		[ -n "$u0" ] && [ -n "$u1" ] || die "no uptime for ticks around $((k - 1)) and $((k + 1))"
		echo "pause: L1 paused $t0 .. $t1; guest uptime tick $k0 $u0, tick $k1 $u1" >&2
		awk -v h0="$t0" -v h1="$t1" -v g0="$u0" -v g1="$u1" "BEGIN { exit !(g1 - g0 < h1 - h0 - 3) }" ||
			die "the guest clock jumped: it moved $u0 -> $u1 across a pause of $t0 -> $t1"
		echo "pause: ok, the guest clock did not jump" >&2'
	during 'signal_guest ctl.img stop'
	expect '^SKIFF-GUEST: cpus=2$'
	expect '^SKIFF-STEP during\| ok: state Paused$'
	expect '^SKIFF-STEP during\| pause: ok'
	expect '^SKIFF-GUEST: ticks done'

# Snapshots: the guest ticks (track_dirty_pages on); L1 pauses it and takes a Full snapshot,
# lets it tick twice more, pauses it again and takes a Diff and then a second Full at that same
# point. `skiff snapshot-merge` puts the Diff's memory onto the first Full's, which must then
# equal the second Full's byte for byte (cmp). L1 kills skiff with SIGKILL, waits 5 s and
# restores the Diff's state with the merged memory in a new skiff (--restore --resume
# --clock-realtime, in the after step), whose guest goes on ticking from the next tick with no
# reboot, does I/O on its restored
# disk and powers off: the new skiff ends with status 0. The guest's wall clock moved across the
# snapshot by L1's real time since it (within 2 s): on x86_64 kvmclock moved on, on arm64 the
# virtual counter. On x86_64, whose guest read the RTC at boot, it is also within 2 s of L1's.
# snapshot-restore-pci (arm64): the control disk is a virtio-pci function whose MSI-X goes
# through the GICv3 ITS as an LPI, so the restored disk I/O needs the ITS's tables and the LPIs'
# pending and configuration tables back; and the new skiff loads the snapshot through
# PUT /snapshot/load (resume_vm, clock_realtime) rather than --restore.
# Clones must know (x86_64, whose Debian 6.1 guest has the vmgenid driver; arm64's reads the
# device-tree node only from 6.10): the guest's vmgenid driver is bound at boot and reads the ID
# skiff wrote there; after the restore the ID is a new one and the guest kernel says "crng
# reseeded due to virtual machine fork" (what Linux's add_vmfork_randomness prints when the
# VMGenID notify arrives and the ID changed, a notice: hence kernel_log), which the first skiff's
# guest must not have said. A second clone restored from the same files (its control disk says
# stop already, so it ends at once) gets an ID of its own and reseeds too.
# (Not api_scenario: the killed skiff leaves its socket behind, which expect_no_socket refuses.)
snapshot_scenario() {
	scenario "$1" 120
	api
	sock=$L1_WORK/$1/api.sock
	reject '^SKIFF-GUEST: FAILED'
	reject '^SKIFF-GUEST: insmod failed'
	before 'truncate -s 1M ctl.img
		ip link del tap0 2>/dev/null || :
		tunctl -t tap0 >/dev/null && ip addr add 172.16.0.1/24 dev tap0 && ip link set tap0 up'
	args run --api-sock "$sock" --log-level info
	rc 137
	during "$api_setup$2"' && api_patch /machine-config "{\"track_dirty_pages\": true}" && api_put /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}"'
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: tick 5 " 90'
	during 'api_patch /vm "{\"state\": \"Paused\"}"
		api_put /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$WORK/base.state\", \"mem_file_path\": \"$WORK/vm.mem\"}"
		api_patch /vm "{\"state\": \"Resumed\"}"
		k=$(log_lines | sed -n "s/^SKIFF-GUEST: tick \([0-9]*\) .*/\1/p" | tail -n1)
		wait_for "^SKIFF-GUEST: tick $((k + 2)) " 60
		# No packet from L1 between the Diff and the second Full: devices keep running while
		# the VM is paused, and a frame the tap delivered into the guest'"'"'s RX buffer then
		# would be in the second Full and not in the Diff (one CI run differed by one page).
		ip link set tap0 down
		api_patch /vm "{\"state\": \"Paused\"}"
		date +%s >"$WORK/snap.date"
		api_put /snapshot/create "{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"$WORK/vm.state\", \"mem_file_path\": \"$WORK/diff.mem\"}"
		api_put /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$WORK/full2.state\", \"mem_file_path\": \"$WORK/full2.mem\"}"
		diff_kib=$(($(stat -c %b "$WORK/diff.mem") * 512 / 1024)) full_kib=$(($(stat -c %b "$WORK/full2.mem") * 512 / 1024))
		/vmm/skiff snapshot-merge "$WORK/vm.mem" "$WORK/diff.mem" >&2 || die "skiff snapshot-merge failed"
		cmp "$WORK/vm.mem" "$WORK/full2.mem" >&2 || die "the Diff merged onto its Full base differs from a Full snapshot taken at the same point"
		echo "diff: $diff_kib KiB on disk (a Full: $full_kib KiB); merged onto its Full base it equals a Full taken at the same point" >&2
		rm -f "$WORK/diff.mem" "$WORK/full2.mem" "$WORK/full2.state" "$WORK/base.state"
		ip link set tap0 up
		# The last whole tick line: the pause may cut the one being printed, and the VMM
		# log line after it then ends it ("date=9skiff: info: VM paused").
		log_lines | sed -n "s/^SKIFF-GUEST: tick \([0-9]*\) uptime=[0-9.]* date=[0-9]*\$/\1/p" | tail -n1 >"$WORK/snap.tick"
		k=$(cat "$WORK/snap.tick")
		log_lines | sed -n "s/^SKIFF-GUEST: tick $k .* date=\([0-9]*\)\$/\1/p" | head -n1 >"$WORK/snap.gdate"
		guest_value "vmgenid boot" >"$WORK/vmgenid.boot"
		echo "snapshot: taken at tick $k (guest date $(cat "$WORK/snap.gdate"), L1 date $(cat "$WORK/snap.date")), state $(stat -c %s "$WORK/vm.state") bytes, memory $(($(stat -c %b "$WORK/vm.mem") * 512 / 1024)) KiB on disk" >&2
		kill -9 "$SKIFF_PID"'
	after "RESTORE_BY=${3:-cli}"'
		k=$(cat snap.tick) g0=$(cat snap.gdate) l0=$(cat snap.date)
		sleep 5
		t0=$(now_s)
		: >restored.out
		if [ "$RESTORE_BY" = api ]; then
			API_SOCK=$WORK/restored.sock
			timeout -k 5 90 /vmm/skiff --api-sock "$API_SOCK" --log-level info >restored.out 2>&1 &
			pid=$! SKIFF_PID=$!
			wait_api
			api_put /snapshot/load "{\"snapshot_path\": \"$WORK/vm.state\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"$WORK/vm.mem\"}, \"resume_vm\": true, \"clock_realtime\": true}"
		else
			timeout -k 5 90 /vmm/skiff run --restore "$WORK/vm.state" --mem-file "$WORK/vm.mem" --resume \
				--clock-realtime --log-level info >restored.out 2>&1 &
			pid=$!
		fi
		LOG=$WORK/restored.out
		wait_for "^SKIFF-GUEST: tick $((k + 3)) " 60
		ldate=$(date +%s)
		echo "restore: the guest ticked again $(awk -v a="$t0" -v b="$(now_s)" "BEGIN { printf \"%.2f\", b - a }") s after the restore began" >&2
		first=$(log_lines | sed -n "s/^SKIFF-GUEST: tick \([0-9]*\) .*/\1/p" | head -n1)
		# k + 2 when the last tick line was cut short by the pause (and so not counted).
		[ "$first" = $((k + 1)) ] || [ "$first" = $((k + 2)) ] ||
			die "the restored guest ticked $first first; paused at $k"
		! grep -q "Linux version" restored.out || die "the restored guest booted again"
		gdate=$(log_lines | sed -n "s/^SKIFF-GUEST: tick $((k + 3)) .* date=\([0-9]*\)\$/\1/p" | head -n1)
		echo "restore: guest date $g0 at tick $k and $gdate at tick $((k + 3)); L1 date $l0 at the snapshot, $ldate now" >&2
		[ -n "$g0" ] && [ -n "$gdate" ] || die "no guest date at tick $k or $((k + 3))"
		moved=$((gdate - g0)) real=$((ldate - l0))
		[ $((moved - real)) -le 2 ] && [ $((real - moved)) -le 2 ] ||
			die "the restored guest clock moved $moved s across the snapshot, L1 $real s"
		if [ "${NESTED_ARCH:-}" = x86_64 ]; then
			[ $((ldate - gdate)) -le 2 ] && [ $((gdate - ldate)) -le 2 ] ||
				die "the restored guest clock is off: guest $gdate, L1 $ldate"
		fi
		signal_guest ctl.img stop
		rc=0
		wait "$pid" || rc=$?
		log_lines | sed -n "s/^\(SKIFF-GUEST: \(ticks done\|vmgenid reseed\|restored disk\|restored ping\|FAILED\).*\)/restored| \1/p" >&2
		[ "$rc" = 0 ] || { tail -n 25 restored.out | sed "s/^/restored| /" >&2; die "the restored skiff ended with status $rc"; }
		echo "restore: ok, counted on from tick $first, the clock moved $moved s in $real s, powered off with status 0" >&2'
	expect '^SKIFF-STEP during\| snapshot: taken at tick [0-9]+'
	expect '^SKIFF-STEP during\| diff: [0-9]+ KiB on disk .* it equals a Full taken at the same point$'
	expect 'skiff: info: snapshot: state in '
	expect '^SKIFF-STEP after\| restored\| SKIFF-GUEST: restored disk io ok'
	expect '^SKIFF-STEP after\| restored\| SKIFF-GUEST: restored ping ok'
	expect '^SKIFF-STEP after\| restore: ok'
	[ "${NESTED_ARCH:-}" = x86_64 ] || { after 'ip link del tap0'; return 0; }
	kernel_log
	after 'boot_id=$(cat vmgenid.boot) new_id=$(guest_value "vmgenid restored")
		echo "vmgenid: at boot $boot_id, after the restore $new_id" >&2
		case $boot_id in *[1-9a-f]*) ;; *) die "no VMGenID at boot: \"$boot_id\"" ;; esac
		[ ${#boot_id} = 32 ] && [ ${#new_id} = 32 ] || die "the guest could not read the VMGenID"
		[ "$new_id" != "$boot_id" ] || die "the restored guest sees the VMGenID of the snapshot"
		grep -m1 "crng reseeded due to virtual machine fork" restored.out | sed "s/^/restored| /" >&2
		grep -q "crng reseeded due to virtual machine fork" restored.out ||
			die "the restored guest kernel did not reseed its RNG (no VMGenID notify)"
		echo "vmgenid: ok, a new ID and the guest reseeded" >&2
		: >clone2.out
		timeout -k 5 60 /vmm/skiff run --restore "$WORK/vm.state" --mem-file "$WORK/vm.mem" --resume \
			--log-level info >clone2.out 2>&1 &
		pid=$!
		rc=0
		wait "$pid" || rc=$?
		LOG=$WORK/clone2.out
		clone_id=$(guest_value "vmgenid restored")
		echo "vmgenid: a second clone of the same snapshot: $clone_id (status $rc)" >&2
		[ "$rc" = 0 ] || { tail -n 25 clone2.out | sed "s/^/clone2| /" >&2; die "the second clone ended with status $rc"; }
		[ ${#clone_id} = 32 ] && [ "$clone_id" != "$boot_id" ] && [ "$clone_id" != "$new_id" ] ||
			die "the second clone has the VMGenID \"$clone_id\" (boot $boot_id, first clone $new_id)"
		said=$(log_lines | sed -n "s/^SKIFF-GUEST: \(vmgenid reseed .*\)/\1/p" | tail -n1)
		grep -q "crng reseeded due to virtual machine fork" clone2.out || {
			tr -d "\r" <clone2.out | grep -a "vmgenid\|crng\|ticks done\|skiff: \|FAILED\|Power" |
				tail -n 20 | sed "s/^/clone2| /" >&2
			die "the second clone did not reseed its RNG (the guest: $said)"
		}
		echo "vmgenid: ok, two clones of one snapshot have their own IDs and both reseeded (the second: $said)" >&2'
	expect '^SKIFF-GUEST: vmgenid driver=bound$'
	reject '^\[ *[0-9.]+\] random: crng reseeded due to virtual machine fork'
	expect '^SKIFF-STEP after\| restored\| .*random: crng reseeded due to virtual machine fork'
	expect '^SKIFF-STEP after\| vmgenid: ok, a new ID'
	expect '^SKIFF-STEP after\| vmgenid: ok, two clones'
	after 'ip link del tap0'
}
snapshot_scenario snapshot-restore ''
if [ "${NESTED_ARCH:-}" = arm64 ]; then
	snapshot_scenario snapshot-restore-pci ' && api_patch /machine-config "{\"enable_pci\": true}"' api
	expect 'GICv3 ITS at 0x'
fi

# Live migration (docs/migration.md) between two skiff processes in the same L1 over a unix
# socket. The source is started in the before step (its own API socket, the usual
# configuration, the control disk): its guest ticks to 5. The scenario's VMM is the destination,
# `skiff run --migrate-from unix:...`; the during step sends the source's VM to it with
# PUT /migration/send and waits for the source to end with status 0 and log its downtime. The
# guest then ticks on in the destination from the next tick, with no reboot, does I/O on the
# same (shared) disk, and powers off: the destination ends with status 0. The source runs with
# SKIFF_MIGRATION_VERIFY: paused, after its last pages, it compares its memory with every page it
# sent and must find none that differs (a write the dirty log missed), whether or not the guest
# would have tripped over it. migrate_scenario NAME DOWNTIME_MS.
# migrate-unix-multipass asks for a 1 ms downtime, so that the source goes over the memory again
# and again (up to 30 passes) while the guest (guest-init's test_migrate_unix_multipass) keeps
# its disk and timers busy.
migrate_scenario() {
	scenario "$1" 150
	api
	sock=$L1_WORK/$1/api.sock
	reject '^SKIFF-GUEST: FAILED'
	reject '^SKIFF-GUEST: insmod failed'
	reject 'Linux version'
	# The VMM's own log begins after the move: the boot lines are the source's (checked in
	# the during step).
	boots no
	args run --migrate-from "unix:$L1_WORK/$1/mig.sock" --log-level info
	before 'truncate -s 1M ctl.img
		( SKIFF_MIGRATION_VERIFY=1 /vmm/skiff run --api-sock "$API_SOCK" --log-level info >"$WORK/src.out" 2>&1 </dev/null
		  echo $? >"$WORK/src.rc" ) &
		SKIFF_PID=$! # for wait_api: the source (its subshell), not an earlier scenario VMM
		LOG=$WORK/src.out
		'"$api_setup"' && '"$api_start"'
		wait_boot "^SKIFF-GUEST: tick 5 " 100'
	during 'dest_log=$LOG LOG=$WORK/src.out
		n=0; while [ ! -S "$WORK/mig.sock" ] && [ $n -lt 100 ]; do usleep 100000; n=$((n + 1)); done
		[ -S "$WORK/mig.sock" ] || die "the destination does not listen"
		log_lines | grep -q "^SKIFF-GUEST: test='"$1"'\$" || die "the source guest is not this scenario'"'"'s"
		downtime='"$2"'
		api_put /migration/send "{\"destination_url\": \"unix:$WORK/mig.sock\", \"downtime_ms\": ${downtime:-300}}"
		n=0; while [ ! -f "$WORK/src.rc" ] && [ $n -lt 600 ]; do usleep 100000; n=$((n + 1)); done
		[ "$(cat "$WORK/src.rc" 2>/dev/null)" = 0 ] || die "the source ended with status $(cat "$WORK/src.rc" 2>/dev/null || echo none)"
		source_migrated unix
		k=$(log_lines | sed -n "s/^SKIFF-GUEST: tick \([0-9]*\) uptime=.*/\1/p" | tail -n1)
		LOG=$dest_log
		wait_for "^SKIFF-GUEST: tick $((k + 3)) " 60
		first=$(log_lines | sed -n "s/^SKIFF-GUEST: tick \([0-9]*\) .*/\1/p" | head -n1)
		# k + 2 when the last tick line was cut short by the pause (and so not counted).
		[ "$first" = $((k + 1)) ] || [ "$first" = $((k + 2)) ] ||
			die "the migrated guest ticked $first first; the source stopped at $k"
		echo "migrate: ok, the source stopped at tick $k, the destination went on from $first" >&2
		signal_guest ctl.img stop'
	expect '^SKIFF-STEP during\| migrate: source: completed in [0-9.]+ ms, downtime [0-9.]+ ms'
	expect '^SKIFF-STEP during\| migrate: ok'
	expect 'skiff: info: migration from unix:.*: completed in'
	expect '^SKIFF-GUEST: restored disk io ok'
	expect '^SKIFF-STEP during\| source\| skiff: info: migration: verify: 0 pages differ'
}
migrate_scenario migrate-unix 300
migrate_scenario migrate-unix-multipass 1

# Live migration over TCP loopback with the network side (docs/migration.md), twice: the guest
# moves from the source (API socket src.sock, started in the before step) to a middle skiff
# (mid.sock), and from there to the scenario's VMM. The source has its virtio-net on tap0 (L1
# 172.16.0.1/24); the guest ticks and streams numbered lines over one TCP connection to L1's nc.
# Each destination takes the stream with PUT /migration/receive and network_overrides: the
# middle one puts eth0 on tap1 (same MAC as tap0, no address: another port of the same network)
# on tcp:127.0.0.1:4444, the last one puts it back on tap0 on port 4445. After each move the
# guest must announce itself (VIRTIO_NET_F_GUEST_ANNOUNCE): garp-watch sees its gratuitous ARP
# on the new tap, and only then does L1 route 172.16.0.2 through it, as a switch learns where a
# MAC went; and the guest must acknowledge the announcement on the control queue. The second
# acknowledgement is the guest's second control command: a device that does not ask for the
# next kick (VIRTIO_F_EVENT_IDX) never sees it, and Linux spins for the answer under rtnl_lock.
# Each move: the count goes on without a reboot, the TCP stream goes on with no line missing
# (one connection: nc -l takes only one), and the downtimes are printed.
scenario migrate-tcp 150
	api
	sock=$L1_WORK/migrate-tcp/api.sock
	reject '^SKIFF-GUEST: FAILED'
	reject '^SKIFF-GUEST: insmod failed'
	reject 'Linux version'
	boots no
	args run --api-sock "$sock" --log-level info
	# L1 brings up no loopback by itself: the migration stream needs 127.0.0.1.
	before 'ip link set lo up
		{ ip link del tap0 2>/dev/null || :; ip link del tap1 2>/dev/null || :; }
		tunctl -t tap0 >/dev/null && tunctl -t tap1 >/dev/null &&
		ip addr add 172.16.0.1/24 dev tap0 &&
		ip link set tap1 address "$(cat /sys/class/net/tap0/address)" &&
		ip link set tap0 up && ip link set tap1 up'
	before '(sleep 600 | nc -l -p 5003 >"$WORK/stream.out") &'
	# Packets for the guest all along (a kilobyte every 10 ms): the devices must be held
	# through each handoff, or the source's verify finds RX buffers and used entries written
	# after the last pages went (a packet landing behind the saved ring indices' back).
	before '(while head -c 1024 /dev/zero; do usleep 10000; done | nc -l -p 5004 >/dev/null) &'
	before 'truncate -s 1M ctl.img
		( SKIFF_MIGRATION_VERIFY=1 /vmm/skiff run --api-sock "$WORK/src.sock" --log-level info >"$WORK/src.out" 2>&1 </dev/null
		  echo $? >"$WORK/src.rc" ) &
		SKIFF_PID=$! API_SOCK=$WORK/src.sock LOG=$WORK/src.out
		'"$api_setup"' &&
		api_put /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"52:54:00:12:34:57\"}" &&
		'"$api_start"'
		wait_boot "^SKIFF-GUEST: tick 5 " 100
		wait_for "^SKIFF-GUEST: stream started" 20'
	before '( SKIFF_MIGRATION_VERIFY=1 /vmm/skiff run --api-sock "$WORK/mid.sock" --log-level info >"$WORK/mid.out" 2>&1 </dev/null
		  echo $? >"$WORK/mid.rc" ) &'
	during 'end_vmm_on_failure
		dest_log=$LOG dest_sock=$API_SOCK
		# hop FROM TO PORT TAP: the guest moves from skiff FROM to skiff TO (each named by its
		# API socket and output, $WORK/NAME.sock and .out) over tcp:127.0.0.1:PORT, its eth0
		# onto TAP; the checks above.
		hop() {
			from_sock=$WORK/$1.sock from_log=$WORK/$1.out port=$3
			if [ "$2" = dest ]; then to_sock=$dest_sock to_log=$dest_log; else to_sock=$WORK/$2.sock to_log=$WORK/$2.out; fi
			API_SOCK=$to_sock LOG=$to_log
			wait_api
			api_put /migration/receive "{\"receiver_url\": \"tcp:127.0.0.1:${port:-4444}\", \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"$4\"}]}"
			API_SOCK=$from_sock LOG=$from_log
			n=0; while [ "$(wc -l <"$WORK/stream.out")" -lt 10 ] && [ $n -lt 100 ]; do usleep 100000; n=$((n + 1)); done
			[ "$(wc -l <"$WORK/stream.out")" -ge 10 ] || die "the guest does not stream to L1: $(wc -l <"$WORK/stream.out") lines"
			# Once the guest says where it is: L1 routes 172.16.0.2 through TAP (through tap0
			# by its /24 alone, so the host route to tap1 goes).
			if [ "$4" = tap0 ]; then route="ip route del 172.16.0.2/32 dev tap1"; else route="ip route add 172.16.0.2/32 dev $4"; fi
			rm -f "$WORK/garp.out"
			( /vmm/garp-watch "$4" 172.16.0.2 100 >"$WORK/garp.out" 2>&1 && $route ) &
			usleep 300000
			echo "migrate: before the move L1 sent the guest $(cat /sys/class/net/tap0/statistics/tx_packets) packets on tap0, $(cat /sys/class/net/tap1/statistics/tx_packets) on tap1" >&2
			api_put /migration/send "{\"destination_url\": \"tcp:127.0.0.1:${port:-4444}\", \"downtime_ms\": 300}"
			n=0; while [ ! -f "$WORK/$1.rc" ] && [ $n -lt 600 ]; do usleep 100000; n=$((n + 1)); done
			if [ "$(cat "$WORK/$1.rc" 2>/dev/null)" != 0 ]; then
				# Why, in the words of the source (one that gave up runs on).
				[ -f "$WORK/$1.rc" ] || api_call GET /migration
				tail -n 15 "$from_log" | sed "s/^/$1| /" >&2
				die "the source ($1) ended with status $(cat "$WORK/$1.rc" 2>/dev/null || echo none)"
			fi
			moved_at=$(wc -l <"$WORK/stream.out")
			source_migrated tcp
			k=$(log_lines | sed -n "s/^SKIFF-GUEST: tick \([0-9]*\) uptime=.*/\1/p" | tail -n1)
			API_SOCK=$to_sock LOG=$to_log
			wait_for "^SKIFF-GUEST: tick $((k + 3)) " 60
			first=$(log_lines | sed -n "s/^SKIFF-GUEST: tick \([0-9]*\) .*/\1/p" | head -n1)
			[ "$first" = $((k + 1)) ] || [ "$first" = $((k + 2)) ] ||
				die "the migrated guest ticked $first first; the source stopped at $k"
			echo "migrate: ok, $1 stopped at tick $k, $2 went on from $first" >&2
			api_call GET /migration
			echo "migrate: $2 downtime $(api_body | json_num downtime_ms) ms" >&2
			api_call GET /vm/config
			api_body | tr -d " \n" | grep -q "\"host_dev_name\":\"$4\"" || die "$2 does not have eth0 on $4"
			n=0; while [ ! -s "$WORK/garp.out" ] && [ $n -lt 400 ]; do usleep 100000; n=$((n + 1)); done
			sed "s/^/migrate: to $4: /" "$WORK/garp.out" >&2
			grep -q "^garp: 172.16.0.2 is at 52:54:00:12:34:57" "$WORK/garp.out" || die "no gratuitous ARP from the guest on $4"
			n=0; until log_lines | grep -q "the guest acknowledged the announcement"; do
				[ $n -lt 100 ] || die "$2: the guest did not acknowledge its announcement on the control queue"
				usleep 100000; n=$((n + 1))
			done
			echo "migrate: $2: the guest acknowledged its announcement" >&2
			want=$((moved_at + 30))
			n=0; while [ "$(wc -l <"$WORK/stream.out")" -lt $want ] && [ $n -lt 300 ]; do usleep 100000; n=$((n + 1)); done
			got=$(wc -l <"$WORK/stream.out")
			[ "$got" -ge $want ] || die "the TCP stream stopped: $got lines, $moved_at at the move"
			# Whole lines only: the last one may still be on its way.
			head -n "$got" "$WORK/stream.out" |
				awk "\$1 != \"line\" || \$2 != NR - 1 { print \"line \" NR \": \" \$0; exit 1 }" >&2 ||
				die "the TCP stream lost or garbled lines"
			echo "migrate: ok, the TCP stream went on to $2: $moved_at lines at the move, $got now, none missing" >&2
		}
		LOG=$WORK/src.out
		log_lines | grep -q "^SKIFF-GUEST: test=migrate-tcp\$" || die "the source guest is not this scenario'"'"'s"
		# For a vCPU RIP in a stop line: where the guest'"'"'s modules are.
		log_lines | grep -m1 "^SKIFF-GUEST: module_text " >&2 || :
		f=$(guest_value eth0_features)
		[ "$(echo "$f" | cut -c18)" = 1 ] && [ "$(echo "$f" | cut -c22)" = 1 ] ||
			die "the guest did not negotiate CTRL_VQ and GUEST_ANNOUNCE: features $f"
		hop src mid 4444 tap1
		hop mid dest 4445 tap0
		signal_guest ctl.img stop'
	expect '^SKIFF-STEP during\| migrate: source: completed in [0-9.]+ ms, downtime [0-9.]+ ms'
	expect '^SKIFF-STEP during\| migrate: mid downtime [0-9.]+ ms'
	expect '^SKIFF-STEP during\| migrate: dest downtime [0-9.]+ ms'
	expect '^SKIFF-STEP during\| migrate: to tap1: garp: 172.16.0.2 is at 52:54:00:12:34:57'
	expect '^SKIFF-STEP during\| migrate: to tap0: garp: 172.16.0.2 is at 52:54:00:12:34:57'
	expect '^SKIFF-STEP during\| migrate: mid: the guest acknowledged its announcement'
	expect '^SKIFF-STEP during\| migrate: dest: the guest acknowledged its announcement'
	expect '^SKIFF-STEP during\| migrate: ok, the TCP stream went on to mid'
	expect '^SKIFF-STEP during\| migrate: ok, the TCP stream went on to dest'
	expect 'skiff: info: migration from tcp:127.0.0.1:4445: completed in'
	expect '^SKIFF-STEP during\| source\| skiff: info: migration: verify: 0 pages differ'
	expect '^SKIFF-GUEST: restored disk io ok'
	after 'ip link del tap0; ip link del tap1'

# PATCH /drives/data after boot: the same disk now has image B's size and content (read with
# O_DIRECT). A missing file or an unknown drive is refused, and the images are left alone.
api_scenario api-drive-swap 90
	args --api-sock "$sock" --log-level info
	before 'truncate -s 1M a.img && put a.img 0 daA 1024 && truncate -s 2M b.img && put b.img 0 dbB 2048'
	during "$api_setup"' && api_drive data "$WORK/a.img"'
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: swap ready$" 60'
	during 'api_fault PATCH /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$WORK/nosuch.img\"}"'
	during 'api_fault PATCH /drives/nosuch "{\"drive_id\": \"nosuch\", \"path_on_host\": \"$WORK/b.img\"}"'
	during 'api_patch /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$WORK/b.img\"}"'
	during 'signal_guest ctl.img swapped'
	expect '^SKIFF-GUEST: data_sectors_before=2048$'
	expect '^SKIFF-GUEST: before_content=A$'
	expect '^SKIFF-GUEST: data_sectors_after=4096$'
	expect '^SKIFF-GUEST: after_content=B$'
	after 'expect_pattern a.img 0 daA 1024 && expect_pattern b.img 0 dbB 2048'

# Rate limiters (docs/rate-limiters.md), measured by the guest (rates in bytes/s from its
# uptime): disk "data" unthrottled first (its rate must leave room for the limits), eth0 with
# the rx limit of its PUT (128 000 B/s: 16384 bytes per 128 ms); then PATCH both (disk 1 024 000,
# eth0 192 000, over 1 MiB so that the connection's start weighs less: at 256 000 over 768 KiB
# arm64 measured 15.1% below) and measure again; then PATCH the disk to 2 048 000 and measure a third time.
# The limits sit well below what the substrate moves unthrottled (measured December 2026: disk
# 3.5 MB/s on x86_64 and 3.9 on arm64, TCP into the guest about 0.7 MB/s on arm64). Each limited rate is within 15% of its limit; a bad bucket and a PATCH of an
# unknown interface are refused; GET /vm/config shows the limits as PATCHed.
api_scenario rate-limit 150
	args --api-sock "$sock" --log-level info
	before 'truncate -s 20M data.img'
	before '{ ip link del tap0 2>/dev/null || :; }; tunctl -t tap0 >/dev/null && ip addr add 172.16.0.1/24 dev tap0 && ip link set tap0 up'
	before 'pattern rl1 512 >to-guest1 && pattern rl2 1024 >to-guest2'
	before '(nc -l -p 5001 <to-guest1 >/dev/null) &'
	before '(nc -l -p 5002 <to-guest2 >/dev/null) &'
	during "$api_setup"' && api_drive data "$WORK/data.img"'
	during 'api_fault PUT /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 65536, \"refill_time\": 0}}}"'
	during 'api_put /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"52:54:00:12:34:56\", \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 16384, \"refill_time\": 128}}}"'
	during 'api_fault PATCH /drives/data "{\"drive_id\": \"data\", \"rate_limiter\": {\"bandwidth\": {\"size\": 1, \"refill_time\": 1}}}"'
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: phase1 done$" 90'
	during 'api_fault PATCH /network-interfaces/eth9 "{\"iface_id\": \"eth9\", \"rx_rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": 1}}}"'
	during 'api_patch /drives/data "{\"drive_id\": \"data\", \"rate_limiter\": {\"bandwidth\": {\"size\": 65536, \"refill_time\": 64}}}"'
	during 'api_patch /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 24576, \"refill_time\": 128}}}"'
	during 'signal_guest ctl.img limited'
	during 'wait_for "^SKIFF-GUEST: phase2 done$" 90'
	during 'api_patch /drives/data "{\"drive_id\": \"data\", \"rate_limiter\": {\"bandwidth\": {\"size\": 131072, \"refill_time\": 64}}}"'
	during 'api_get /vm/config
		api_body | grep -q "\"rate_limiter\":{\"bandwidth\":{\"size\":131072,\"refill_time\":64},\"ops\":null}" || die "GET /vm/config lacks the PATCHed disk limit"
		api_body | grep -q "\"rx_rate_limiter\":{\"bandwidth\":{\"size\":24576,\"refill_time\":128},\"ops\":null}" || die "GET /vm/config lacks the PATCHed rx limit"
		echo "ok: GET /vm/config shows the limits" >&2'
	during 'signal_guest ctl.img faster'
	expect '^SKIFF-GUEST: rate limit done$'
	expect '^SKIFF-GUEST: net1_bytes=524288$'
	expect '^SKIFF-GUEST: net2_bytes=1048576$'
	expect '^SKIFF-STEP during\| ok: GET /vm/config shows the limits$'
	after 'for r in blk_free net1 blk1 net2 blk2; do echo "$r: $(guest_value "${r}_bps")"; done'
	after 'free=$(guest_value blk_free_bps | cut -d" " -f1)
		[ "$free" -ge 3072000 ] || die "the unthrottled disk reads $free B/s: too slow to test a limit of 2 048 000"'
	after 'expect_rate net1 128000 && expect_rate blk1 1024000 && expect_rate net2 192000 && expect_rate blk2 2048000'

# PUT /metrics before the start; FlushMetrics once the guest (guest-init, at its start) wrote the boot timer: a JSON line
# with the vCPU, block and boot-time figures, exits counted; skiff writes a last line as it ends.
api_scenario api-metrics 90
	args --api-sock "$sock" --log-level info
	before ': >metrics.json'
	during 'wait_api && api_put /metrics "{\"metrics_path\": \"$WORK/metrics.json\"}"'
	during "$api_setup"
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: metrics ready$" 60'
	during 'n0=$(wc -l <metrics.json)
		api_put /actions "{\"action_type\": \"FlushMetrics\"}"
		[ "$(wc -l <metrics.json)" -gt "$n0" ] || die "FlushMetrics wrote no line to metrics.json"
		line=$(tail -n1 metrics.json)
		echo "metrics: $(echo "$line" | head -c 600)" >&2
		case $line in "{"*"}") ;; *) die "the metrics line is not a JSON object" ;; esac
		for key in vcpu block boot_time_us; do
			echo "$line" | grep -q "\"$key\"" || die "no \"$key\" in the metrics line"
		done
		echo "$line" | grep -Eq "\"exits\": *\{[^}]*\": *[1-9]" || die "no non-zero VM exit count in the metrics line"
		echo "$line" | grep -Eq "\"ctl\": *\{\"read_requests\": *[1-9]" || die "no read requests counted for drive ctl"
		bt=$(echo "$line" | json_num boot_time_us)
		[ -n "$bt" ] && [ "$bt" != 0 ] || die "boot_time_us is \"$bt\" after the guest wrote the boot timer"
		echo "metrics: ok (boot_time_us=$bt)" >&2'
	during 'signal_guest ctl.img stop'
	reject 'SKIFF-GUEST: boot timer:'
	expect 'skiff: info: guest boot time: '
	expect '^SKIFF-STEP during\| metrics: ok'
	after '[ "$(wc -l <metrics.json)" -ge 2 ] || die "metrics.json has $(wc -l <metrics.json) line(s): no last line at the end"'
	after 'grep -v "^{.*}$" metrics.json | head -n1 | grep . && die "metrics.json has a line that is not a JSON object" || true'

# The balloon (virtio-balloon, PUT /balloon before the start; deflate_on_oom off, statistics
# every second): statistics arrive (total_memory); what may not change after the start is
# refused; PATCH /balloon to 64 MiB: the guest's driver inflates to it, the guest's MemTotal drops
# by at least 64 MiB and so does skiff's guest_resident_bytes in the metrics (FlushMetrics before
# and after: the pages go back to L1 with MADV_DONTNEED; the guest touched all but 4 MiB of its
# free memory first, so that the pages the balloon takes were resident; what of the guest's
# memory was still never resident is allowed for: 0 on x86_64, under 4 MiB on arm64); PATCH back
# to 0: the balloon deflates and MemTotal is back.
# On arm64 the balloon is a PCI function (enable_pci, behind the ITS), on x86_64 virtio-mmio.
balloon_pci=false balloon_transport='api_patch /machine-config "{\"enable_pci\": false}"'
if [ "${NESTED_ARCH:-}" = arm64 ]; then
	balloon_pci=true balloon_transport='api_patch /machine-config "{\"enable_pci\": true}"'
fi
api_scenario api-balloon 180
	args --api-sock "$sock" --log-level info
	before ': >metrics.json'
	during 'wait_api && api_put /metrics "{\"metrics_path\": \"$WORK/metrics.json\"}"'
	during "$api_setup && $balloon_transport"' && api_put /balloon "{\"amount_mib\": 0, \"deflate_on_oom\": false, \"stats_polling_interval_s\": 1}"'
	during 'api_fault PATCH /balloon "{\"amount_mib\": 64}"'
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: balloon ready$" 90
		n=40
		until api_get /balloon/statistics 2>/dev/null && [ "$(api_body | json_num total_memory)" -gt 0 ] 2>/dev/null; do
			n=$((n - 1)); [ "$n" -gt 0 ] || die "no statistics from the guest in 20 s: $(api_body)"
			usleep 500000
		done
		echo "balloon: statistics arrived: $(api_body)" >&2'
	during 'api_fault PATCH /balloon "{\"amount_mib\": 257}"
		api_fault PATCH /balloon/statistics "{\"stats_polling_interval_s\": 0}"
		api_fault PUT /balloon "{\"amount_mib\": 1, \"deflate_on_oom\": true}"
		api_patch /balloon/statistics "{\"stats_polling_interval_s\": 2}"'
	during 'rss0=$(vmm_rss_kb) res0=$(guest_resident_kb)
		api_patch /balloon "{\"amount_mib\": 64}"
		balloon_wait_actual 64 100
		sleep 1
		rss1=$(vmm_rss_kb) res1=$(guest_resident_kb)
		# A page never resident cannot be given back: of the 256 MiB, those the guest had not
		# touched (0 on x86_64, 3 868 kB on arm64 in one run) may be among the pages the balloon took.
		untouched=$((256 * 1024 - res0))
		echo "balloon: guest_resident_bytes $res0 kB before ($untouched kB never touched), $res1 kB inflated: $((res0 - res1)) kB given back (VmRSS $rss0 kB, $rss1 kB)" >&2
		[ $((res0 - res1)) -ge $((65536 - untouched)) ] || die "skiff gave back only $((res0 - res1)) kB of guest memory for a 64 MiB balloon ($untouched kB were never resident)"
		signal_guest ctl.img inflated
		wait_for "^SKIFF-GUEST: memtotal_inflated_kb=" 30
		m0=$(guest_value memtotal_before_kb) m1=$(guest_value memtotal_inflated_kb)
		echo "balloon: guest MemTotal $m0 kB before, $m1 kB inflated" >&2
		[ $((m0 - m1)) -ge 65536 ] || die "the guest MemTotal dropped by $((m0 - m1)) kB only"
		api_get /balloon
		[ "$(api_body | json_num amount_mib)" = 64 ] || die "GET /balloon: amount_mib is not 64"'
	during 'api_patch /balloon "{\"amount_mib\": 0}"
		balloon_wait_actual 0 100
		signal_guest ctl.img deflated
		wait_for "^SKIFF-GUEST: memtotal_deflated_kb=" 30
		m0=$(guest_value memtotal_before_kb) m2=$(guest_value memtotal_deflated_kb)
		echo "balloon: guest MemTotal $m2 kB deflated" >&2
		[ "$m2" -ge "$m0" ] || die "MemTotal $m2 kB after deflating, $m0 kB before"
		echo "balloon: ok" >&2'
	expect 'skiff: info: virtio-balloon at '
	[ "$balloon_pci" = false ] || expect '^SKIFF-GUEST: pci 0000:00:0[0-9]\.0 0x1af4:0x1045 '
	expect '^SKIFF-STEP during\| balloon: statistics arrived'
	expect '^SKIFF-STEP during\| balloon: ok$'
	reject 'virtio-balloon: queue'

# SendCtrlAltDel (x86_64: the i8042; arm64: the PL061's gpio-keys Ctrl, Alt and Delete): the
# guest's init gets SIGINT and powers off.
api_scenario api-ctrl-alt-del 90
	args --api-sock "$sock" --log-level info
	during "$api_setup"
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: ctrl-alt-del ready$" 60 && sleep 1'
	during 'api_put /actions "{\"action_type\": \"SendCtrlAltDel\"}"'
	expect '^SKIFF-GUEST: got ctrl-alt-del$'
	expect '^SKIFF-GUEST: about to power off$'

# Bad requests while the VM runs, each refused with a 4xx and a fault_message (those that name
# "Paused" would pause the VM if skiff took them), a client that sends nothing is dropped and
# does not block the others; the VM keeps running and powers off normally. It runs well past the
# missing-driver hint's check (5 s after the boot-timer write): the guest set its disk up, so
# no hint names it.
api_scenario api-bad-input 150
	args --api-sock "$sock" --log-level info
	expect 'skiff: info: guest boot time'
	reject 'skiff: warning: .*(no driver in the guest|found no virtio|did not finish setting)'
	during "$api_setup"
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: bad input ready$" 60'
	during 'api_fault PATCH /vm "{\"state\": \"Paused\"" "4??"'
	during 'api_fault PATCH /vm "{\"state\": \"Paused\", \"bogus\": 1}" "4??"'
	during 'api_fault PATCH /vm "{\"state\": 1}" "4??"'
	during 'api_fault PATCH /vm "[\"Paused\"]" "4??"'
	during 'api_fault PUT /actions "{\"action_type\": \"Explode\"}" "4??"'
	during 'api_fault PUT /actions "" "4??"'
	during 'awk "BEGIN { printf \"{\\\"state\\\": \\\"Paused\\\", \\\"pad\\\": \\\"\"; for (i = 0; i < 61440; i++) printf \"x\"; printf \"\\\"}\" }" >big.json
		api_fault PATCH /vm @big.json "4??"'
	during 'api_fault GET /nosuch "" "4??"'
	during 'api_fault PUT /nosuch "{}" "4??"'
	during 'api_fault DELETE / "" "4??"'
	during 'api_fault PUT /drives/nosuch "{\"drive_id\": \"other\", \"path_on_host\": \"$WORK/ctl.img\", \"is_root_device\": false, \"is_read_only\": false}" "4??"'
	during 'curl -sS --max-time 15 --unix-socket "$API_SOCK" -i "gopher://localhost/_GARBAGE%0D%0A%0D%0A" >garbage.out 2>&1 || true
		echo "garbage: $(head -n1 garbage.out)" >&2
		grep -q "^HTTP/1\.[01] 4[0-9][0-9]" garbage.out || die "a garbage request got no 4xx: $(head -c 200 garbage.out)"
		grep -q "\"fault_message\"" garbage.out || die "a garbage request got no fault_message"'
	during 'curl -sS --max-time 15 --unix-socket "$API_SOCK" -o hdr.out -w "%{http_code}" -H "X-Big: $(awk "BEGIN { for (i = 0; i < 10240; i++) printf \"h\" }")" http://localhost/ >hdr.code 2>&1 || true
		echo "API: GET / with a 10 KiB header -> $(cat hdr.code)" >&2
		case $(cat hdr.code) in 4??) ;; *) die "a 10 KiB header got $(cat hdr.code)" ;; esac'
	during '(sleep 40 | curl -sS --max-time 45 --unix-socket "$API_SOCK" telnet://localhost >silent.out 2>&1) &
		sleep 1
		api_state_is Running
		echo "ok: the API answers while a silent client is connected" >&2
		wait_for "skiff: info: api: dropping a client .*no progress for" 30
		echo "ok: the silent client was dropped" >&2'
	during 'api_state_is Running'
	during 'signal_guest ctl.img stop'
	expect '^SKIFF-GUEST: got stop$'
	expect '^SKIFF-STEP during\| ok: the silent client was dropped'
	expect '^SKIFF-GUEST: about to power off$'

# An interface with two queue pairs ("num_queues": 2, skiff creates tap0 multi_queue): GET
# /vm/config shows num_queues; the guest's eth0 has two RX queues; a snapshot of the paused VM is
# refused with one fault_message (the pairs the driver put in use are not in the saved device
# state), and so is a live migration of the running VM; the VM goes on and powers off normally.
api_scenario api-net-mq-snapshot 90
	args --api-sock "$sock" --log-level info
	before '{ ip link del tap0 2>/dev/null || :; }'
	during "$api_setup"' && api_put /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"num_queues\": 2}"'
	during 'api_get /vm/config
		api_body | grep -q "\"num_queues\": *2" || die "GET /vm/config has no num_queues 2"'
	during "$api_start"
	during 'wait_for "^SKIFF-GUEST: mq snapshot ready$" 60'
	during 'api_patch /vm "{\"state\": \"Paused\"}"'
	during 'api_fault PUT /snapshot/create "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"$WORK/vm.state\", \"mem_file_path\": \"$WORK/vm.mem\"}"'
	during 'api_patch /vm "{\"state\": \"Resumed\"}"'
	during 'api_fault PUT /migration/send "{\"destination_url\": \"unix:$WORK/mig.sock\", \"downtime_ms\": 300}"'
	during 'api_state_is Running'
	during 'signal_guest ctl.img stop'
	expect 'skiff: info: virtio-net eth0 .*: tap tap0, 2 queue pairs$'
	expect '^SKIFF-STEP during\| API: PUT /migration/send -> 400 .*network interface eth0 has several queue pairs \(queues=N\): skiff cannot snapshot or migrate a multiqueue interface'
	expect '^SKIFF-GUEST: eth0_rx_queues=rx-0 rx-1 $'
	expect '^SKIFF-STEP during\| API: PUT /snapshot/create -> 400 .*network interface eth0 has several queue pairs \(queues=N\): skiff cannot snapshot or migrate a multiqueue interface'
	expect '^SKIFF-STEP during\| ok: state Running$'
	expect '^SKIFF-GUEST: about to power off$'

# `skiff run --config-file FILE --no-api`: one JSON document instead of the API; no socket.
scenario config-file 90
	api
	reject '^SKIFF-GUEST: FAILED'
	before 'truncate -s 1M data.img && put data.img 0 cf1 1024'
	before 'cat >vm.json <<JSON
{
  "boot-source": {"kernel_image_path": "$GUEST_KERNEL", "initrd_path": "$GUEST_INITRD",
                  "boot_args": "$BOOT_ARGS"},
  "machine-config": {"vcpu_count": 2, "mem_size_mib": 256},
  "drives": [{"drive_id": "data", "path_on_host": "$WORK/data.img", "is_root_device": false,
              "is_read_only": true}],
  "network-interfaces": []
}
JSON'
	args run --config-file "$L1_WORK/config-file/vm.json" --no-api --log-level info
	expect '^SKIFF-GUEST: cpus=2$'
	range memtotal_kb 200000 262144
	expect '^SKIFF-GUEST: data_content=ok$'
	after '[ -z "$(find /tmp -type s)" ] || die "a socket appeared with --no-api: $(find /tmp -type s)"'
	after 'expect_pattern data.img 0 cf1 1024'

# The same document with machine-config's "enable_pci": the drive is a virtio-pci function.
if [ "${NESTED_VIRTIO_PCI:-no}" = yes ]; then
	scenario config-file-pci 90
	api
	reject '^SKIFF-GUEST: FAILED'
	before 'truncate -s 1M data.img && put data.img 0 cf1 1024'
	before 'cat >vm.json <<JSON
{
  "boot-source": {"kernel_image_path": "$GUEST_KERNEL", "initrd_path": "$GUEST_INITRD",
                  "boot_args": "$BOOT_ARGS"},
  "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "enable_pci": true},
  "drives": [{"drive_id": "data", "path_on_host": "$WORK/data.img", "is_root_device": false,
              "is_read_only": true}],
  "network-interfaces": []
}
JSON'
	args run --config-file "$L1_WORK/config-file-pci/vm.json" --no-api --log-level info
	expect 'skiff: info: virtio-blk data at PCI 00:01\.0 \(virtio-pci, MSI-X\)'
	expect '^SKIFF-GUEST: pci 0000:00:01\.0 0x1af4:0x1042 '
	expect '^SKIFF-GUEST: data_content=ok$'
	after 'expect_pattern data.img 0 cf1 1024'
fi
