# tests/nested/l1-steps.sh: helpers for the L1-side steps of the scenarios (`before`, `during`,
# `input`, `after` in scenarios.sh). l1-init runs each step as a busybox sh script that sources
# this file, with `set -e`, in the scenario's own empty directory $WORK, with:
#   SCENARIO   the scenario's name
#   LOG        the VMM's output so far (guest console and skiff's messages)
#   SKIFF_PID  (during, input) the VMM's process id
#   TIMEOUT    the scenario's bound in seconds
#   TRY        1, or 2 when l1-init tries the scenario a second time
# The helpers' own messages go to stderr: an `input` step's stdout is the VMM's stdin.

die() { echo "FAILED: $*" >&2; exit 1; }

# pattern SEED KIB: the same generator as guest-init's: KIB KiB of 512-byte lines.
pattern() {
	awk -v s="$1" -v n=$(($2 * 2)) 'BEGIN { f = ""; while (length(f) < 495) f = f "0123456789abcdef"
		f = substr(f, 1, 495); for (i = 0; i < n; i++) printf "%s-%011d-%s\n", s, i, f }'
}
sha() { sha256sum | cut -c1-64; }
# range_sha FILE OFFSET_KIB LEN_KIB (multiples of 64)
range_sha() { dd if="$1" bs=64k skip=$(($2 / 64)) count=$(($3 / 64)) 2>/dev/null | sha; }
# put FILE OFFSET_KIB SEED KIB: write a pattern into an image, keeping its size
put() { pattern "$3" "$4" | dd of="$1" bs=64k seek=$(($2 / 64)) conv=notrunc 2>/dev/null; }
# expect_range FILE OFFSET_KIB LEN_KIB SHA WHAT: fail unless the range has that checksum
expect_range() {
	got=$(range_sha "$1" "$2" "$3")
	[ "$got" = "$4" ] || die "$5: $1 bytes [$2 KiB, +$3 KiB) have sha256 $got, expected $4"
	echo "ok: $5 ($1 [$2 KiB, +$3 KiB))" >&2
}
# expect_pattern FILE OFFSET_KIB SEED KIB
expect_pattern() { expect_range "$1" "$2" "$4" "$(pattern "$3" "$4" | sha)" "pattern $3"; }
# expect_zeros FILE OFFSET_KIB LEN_KIB (cmp against /dev/zero: far cheaper than a checksum)
expect_zeros() {
	out=$(dd if="$1" bs=64k skip=$(($2 / 64)) count=$(($3 / 64)) 2>/dev/null | cmp - /dev/zero 2>&1) || true
	case $out in
	*"EOF on -"*) echo "ok: zeros ($1 [$2 KiB, +$3 KiB))" >&2 ;;
	*) die "$1 [$2 KiB, +$3 KiB) is not all zeros: $out" ;;
	esac
}
# blocks FILE: 512-byte blocks allocated to FILE (sparse files have fewer than their size)
blocks() { stat -c %b "$1"; }

# log_lines: the VMM's output without carriage returns
log_lines() { tr -d '\r' <"$LOG"; }
# guest_value KEY: the value of the guest's last "SKIFF-GUEST: KEY=VALUE" line
guest_value() { log_lines | sed -n "s/^SKIFF-GUEST: $1=//p" | tail -n1; }
# wait_for ERE [SECONDS]: wait until a line of the VMM's output matches (default: the bound)
wait_for() {
	n=$((${2:-$TIMEOUT} * 2))
	while ! log_lines | grep -Eq -- "$1"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "no line matched /$1/ in time"
		usleep 500000
	done
	echo "seen: /$1/" >&2
}
# wait_boot ERE [SECONDS]: wait_for, for the first lines of a guest that this step booted itself
# (a migration's source, started through its API). A guest that has printed no "SKIFF-GUEST: "
# line at all by then never reached /init: the substrate's boot hang, which l1-init tries once
# more when the scenario's own VMM times out that way. The step ends with 75 (l1-init's "a
# guest a step booted never reached /init", retried the same way) and shows the guest's last
# lines; a guest that did reach /init fails the step as wait_for does.
wait_boot() {
	case "$TRY $(cat /proc/cmdline) " in
	"1 "*" skiff.boothang=$SCENARIO "*)
		# tests/nested/run's SKIFF_NESTED_BOOT_HANG: the first try ends here as a hang would.
		echo "FAILED: the guest never reached /init (SKIFF_NESTED_BOOT_HANG)" >&2
		exit 75 ;;
	esac
	n=$((${2:-$TIMEOUT} * 2))
	while ! log_lines | grep -Eq -- "$1"; do
		n=$((n - 1))
		if [ "$n" -le 0 ]; then
			log_lines | grep -q '^SKIFF-GUEST: ' && die "no line matched /$1/ in time"
			echo "FAILED: no line matched /$1/ in time: the guest never reached /init; its output ends:" >&2
			log_lines | grep -v '^\s*$' | tail -n 12 | sed 's/^/  | /' >&2
			exit 75
		fi
		usleep 500000
	done
	echo "seen: /$1/" >&2
}

# source_migrated SCHEME: the migration's source ($LOG, started with SKIFF_MIGRATION_VERIFY)
# logged its migration over SCHEME (unix, tcp), which is printed, and found every page of its
# paused memory as it had sent it.
source_migrated() {
	line=$(log_lines | grep -E "migration to $1:.*: completed in" | tail -n1)
	[ -n "$line" ] || die "the source did not log its migration"
	echo "migrate: source: $(echo "$line" | sed "s/.*: completed in/completed in/")" >&2
	log_lines | grep -i "verify" | sed "s/^/source| /" >&2
	log_lines | grep -q "migration: verify: 0 pages differ from what was sent" ||
		die "the source found guest memory that was not sent as it is"
}

# --- the API scenarios (api-scenarios.sh): a client of the VMM's API socket ----------------------
# $API_SOCK is the socket the scenario gives skiff (--api-sock), $BOOT_ARGS the guest command line
# for PUT /boot-source, $GUEST_KERNEL and $GUEST_INITRD the guest's files in L1.
# Every call prints "API: METHOD PATH -> STATUS" and the answer's body (if any) on stderr, and
# leaves the body in $WORK/api.body (api_body prints it).
#
# api_call METHOD PATH [BODY [EXPECTED]]: one request with curl; EXPECTED is a shell pattern for
# the HTTP status (204, 4??; default 2??); anything else fails the step, with the body.
api_call() {
	_m=$1 _p=$2 _b=${3-} _e=${4:-2??}
	set -- -sS --max-time 15 --unix-socket "$API_SOCK" -X "$_m" -o "$WORK/api.body" -w '%{http_code}'
	[ -z "$_b" ] || set -- "$@" -H 'Content-Type: application/json' --data-binary "$_b"
	: >"$WORK/api.body"
	_s=$(curl "$@" "http://localhost$_p" 2>"$WORK/api.err") || _s="curl failed ($?): $(cat "$WORK/api.err")"
	echo "API: $_m $_p -> $_s $(head -c 300 "$WORK/api.body" | tr '\n' ' ')" >&2
	# shellcheck disable=SC2254 # the pattern is the caller's
	case $_s in
	$_e) ;;
	*) die "$_m $_p: status $_s, expected $_e: $(head -c 300 "$WORK/api.body")" ;;
	esac
}
api_body() { cat "$WORK/api.body"; }
api_get() { api_call GET "$1" '' "${2:-200}"; }
api_put() { api_call PUT "$1" "$2" "${3:-204}"; }
api_patch() { api_call PATCH "$1" "$2" "${3:-204}"; }
# api_fault METHOD PATH BODY [EXPECTED]: a request that must be refused (default 400) with a
# {"fault_message": "..."} body.
api_fault() {
	api_call "$1" "$2" "$3" "${4:-400}"
	api_body | grep -Eq '"fault_message" *: *"[^"]' ||
		die "$1 $2: no fault_message in the answer: $(head -c 300 "$WORK/api.body")"
}
# json_str KEY: the string value of KEY in the JSON on stdin (the first; no jq in L1)
json_str() { tr -d '\n' | grep -o "\"$1\" *: *\"[^\"]*\"" | head -n1 | sed 's/^[^:]*: *"//; s/"$//'; }
# json_num KEY: the number value of KEY in the JSON on stdin (the first)
json_num() { tr -d '\n' | grep -o "\"$1\" *: *-\{0,1\}[0-9][0-9.]*" | head -n1 | sed 's/^[^:]*: *//'; }
# api_state_is STATE: GET / answers {"state": STATE} ("Not started", "Running", "Paused")
api_state_is() {
	api_get /
	_st=$(api_body | json_str state)
	[ "$_st" = "$1" ] || die "GET /: state \"$_st\", expected \"$1\""
	echo "ok: state $1" >&2
}
# wait_api [SECONDS]: wait until skiff listens on $API_SOCK (default 20 s)
wait_api() {
	n=$((${1:-20} * 5))
	until [ -S "$API_SOCK" ] && curl -sS --max-time 5 --unix-socket "$API_SOCK" -o /dev/null \
		http://localhost/ 2>/dev/null; do
		kill -0 "$SKIFF_PID" 2>/dev/null || die "the VMM ended before its API socket answered"
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "no API socket at $API_SOCK after ${1:-20} s"
		usleep 200000
	done
	echo "API socket up: $API_SOCK" >&2
}
# api_boot_source: PUT /boot-source with the guest's kernel, initrd and $BOOT_ARGS (plus $1)
api_boot_source() {
	api_put /boot-source "{\"kernel_image_path\": \"$GUEST_KERNEL\", \"initrd_path\": \"$GUEST_INITRD\", \"boot_args\": \"$BOOT_ARGS${1:+ $1}\"}"
}
# api_drive ID FILE [RO]: PUT /drives/ID, not the root device; RO true for read-only
api_drive() {
	api_put "/drives/$1" "{\"drive_id\": \"$1\", \"path_on_host\": \"$2\", \"is_root_device\": false, \"is_read_only\": ${3:-false}}"
}
# signal_guest FILE WORD: write WORD (and a newline) at the start of a control disk image the
# guest polls with O_DIRECT reads (guest-init's wait_word), keeping the image's size
signal_guest() {
	printf '%s\n' "$2" | dd of="$1" bs=512 conv=notrunc,sync 2>/dev/null
	sync
	echo "signalled the guest: $2" >&2
}
# expect_no_socket: the VMM removed its API socket when it ended
expect_no_socket() {
	[ ! -e "$API_SOCK" ] || die "the API socket $API_SOCK is still there after the VMM ended"
	echo "ok: API socket removed" >&2
}
# end_vmm_on_failure: from here on, a failure of this step stops the VMM (SIGTERM) at once
# instead of leaving it to the bound (a guest that waits for typed input never ends by itself)
end_vmm_on_failure() {
	trap '_rc=$?; [ "$_rc" = 0 ] || kill -TERM "$SKIFF_PID" 2>/dev/null; exit "$_rc"' EXIT
}
# l1_drive NAME: the /dev/vdX of L1's disk with serial NAME (a scenario's l1_drive)
l1_drive() {
	for _d in /sys/block/vd*; do
		[ "$(cat "$_d/serial" 2>/dev/null)" = "$1" ] && { echo "/dev/${_d##*/}"; return 0; }
	done
	die "L1 has no disk with serial $1 (modules virtio_pci and virtio_blk loaded?)"
}
# count_lines ERE: how many lines of the VMM's output match
count_lines() { log_lines | grep -Ec -- "$1" || true; }
# expect_rate NAME BPS: the guest's NAME_bps (rate-limit) is within 15% of BPS
expect_rate() {
	_r=$(guest_value "$1_bps" | cut -d' ' -f1)
	[ -n "$_r" ] || die "the guest said no $1_bps"
	[ "$_r" -ge $(($2 * 85 / 100)) ] && [ "$_r" -le $(($2 * 115 / 100)) ] ||
		die "$1: $_r B/s, not within 15% of $2"
	echo "ok: $1 $_r B/s, limit $2" >&2
}
# now_s: L1's uptime in seconds (fractional)
now_s() { cut -d' ' -f1 /proc/uptime; }
# last_tick: the number of the guest's last "tick N uptime=U" line (api-pause-resume)
last_tick() { log_lines | sed -n 's/^SKIFF-GUEST: tick \([0-9]*\) uptime=[0-9.]*$/\1/p' | tail -n1; }
# tick_uptime N: the guest uptime on its tick N line
tick_uptime() { log_lines | sed -n "s/^SKIFF-GUEST: tick $1 uptime=\\([0-9.]*\\)\$/\\1/p" | head -n1; }
# tick_near N STEP: "M UPTIME" of the first of ticks N, N+STEP, N+2*STEP with a whole line: skiff's
# own log lines (stderr, in the same file) can land in the middle of a guest line and split it.
tick_near() {
	local i u
	for i in 0 1 2; do
		u=$(tick_uptime $(($1 + i * $2)))
		[ -z "$u" ] || { echo "$(($1 + i * $2)) $u"; return; }
	done
}
# vmm_rss_kb: the VMM's resident memory (VmRSS of $SKIFF_PID), in KiB
vmm_rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$SKIFF_PID/status"; }
# guest_resident_kb: skiff's guest_resident_bytes (vmm section of the metrics), in KiB, from a
# FlushMetrics into $WORK/metrics.json (the scenario PUTs /metrics there)
guest_resident_kb() {
	api_put /actions "{\"action_type\": \"FlushMetrics\"}"
	_b=$(tail -n1 "$WORK/metrics.json" | json_num guest_resident_bytes)
	[ -n "$_b" ] || die "no guest_resident_bytes in the last metrics line: $(tail -c 300 "$WORK/metrics.json")"
	echo $((_b / 1024))
}
# balloon_wait_actual MIB SECONDS: poll GET /balloon/statistics until actual_mib is MIB
balloon_wait_actual() {
	n=$(($2 * 2))
	while :; do
		api_get /balloon/statistics 2>/dev/null
		[ "$(api_body | json_num actual_mib)" = "$1" ] && break
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "the balloon did not reach $1 MiB in $2 s: $(api_body)"
		usleep 500000
	done
	echo "balloon: actual_mib=$1: $(api_body)" >&2
}

# --- a GDB remote protocol client with busybox nc (arm64's gdb-kernel: L1 has no arm64 gdb) -------
# rsp_open HOST PORT connects; rsp PACKET sends one packet and prints the payload of the stub's
# next reply (bounded: 60 s); rsp_send PACKET only sends (c, s: the reply comes later, rsp_next
# waits for it); rsp_le64 HEX OFFSET prints the little-endian 64-bit value at byte OFFSET of a
# register block, as 0x%016x.
rsp_open() {
	rm -f rsp.in rsp.out
	mkfifo rsp.in
	nc "$1" "$2" <rsp.in >rsp.out &
	exec 3>rsp.in
	echo 0 >rsp.seen # a file: rsp is mostly called in $(...), a subshell
}
rsp_send() {
	cs=$(printf '%s' "$1" | od -An -tu1 -v | awk '{ for (i = 1; i <= NF; i++) s += $i }
		END { printf "%02x", s % 256 }')
	printf '$%s#%s' "$1" "$cs" >&3
}
rsp_next() {
	n=120 seen=$(cat rsp.seen)
	while :; do
		count=$(tr -d '+\n' <rsp.out | grep -o '\$[^#]*#..' | wc -l)
		[ "$count" -gt "$seen" ] && break
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "no reply from the GDB stub in time ($seen replies so far)"
		usleep 500000
	done
	seen=$((seen + 1))
	echo "$seen" >rsp.seen
	tr -d '+\n' <rsp.out | grep -o '\$[^#]*#..' | sed -n "${seen}p" | sed 's/^\$//; s/#..$//'
}
rsp() { rsp_send "$1" && rsp_next; }
rsp_le64() {
	echo "$1" | awk -v off="$2" '{ h = substr($0, off * 2 + 1, 16); r = "";
		for (i = 15; i >= 1; i -= 2) r = r substr(h, i, 2); print "0x" r }'
}
