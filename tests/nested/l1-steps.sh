# tests/nested/l1-steps.sh: helpers for the L1-side steps of the scenarios (`before`, `during`,
# `input`, `after` in scenarios.sh). l1-init runs each step as a busybox sh script that sources
# this file, with `set -e`, in the scenario's own empty directory $WORK, with:
#   SCENARIO   the scenario's name
#   LOG        the VMM's output so far (guest console and skiff's messages)
#   SKIFF_PID  (during, input) the VMM's process id
#   TIMEOUT    the scenario's bound in seconds
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
