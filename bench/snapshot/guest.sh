# shellcheck shell=sh disable=SC2154 # say: guest-init's
# bench/snapshot/guest.sh: the guest side of bench/snapshot/nested, sourced by
# tests/nested/guest-init as /tests/bench-snapshot.sh (skiff.test=bench-snapshot). Fills
# $fill_mib MiB of its root file system (RAM) with random bytes, so that a snapshot or a
# migration has that much memory to carry which no VMM can skip as zero pages, then prints
#   SKIFF-GUEST: tick N
# every 20 ms until the VMM is killed. L1 times a restore or a migration to the first tick line
# the new VMM prints.
fill_mib=64
dd if=/dev/urandom of=/fill bs=1M count=$fill_mib 2>/dev/null || say "fill failed"
say "filled ${fill_mib} MiB"
i=0
while :; do
	say "tick $i"
	usleep 20000
	i=$((i + 1))
done
