# bench/vsock/guest.sh: the guest side of bench/vsock, sourced by tests/nested/guest-init as
# /tests/bench-vsock.sh (skiff.test=bench-vsock). Streams 64 MiB to the host's port 7000, then
# receives 64 MiB from the host on its port 7001 (tests/nested/tools/vsock-test.c). Prints
#   BENCH-VSOCK phase=NAME begin|end        (L1 samples the VMM's CPU time at each)
#   BENCH-VSOCK ready                       the guest listens on 7001: L1 may send
#   BENCH-VSOCK result=NAME mb_s=RATE
bench_phase() { echo "BENCH-VSOCK phase=$1 $2"; sleep 1; }
bench_rate() { # NAME OUTPUT
	rate=$(echo "$2" | sed -n 's/.*: \([0-9.]*\) MB\/s$/\1/p' | tail -n1)
	if [ -n "$rate" ]; then
		echo "BENCH-VSOCK result=$1 mb_s=$rate"
	else
		echo "BENCH-VSOCK error=$1: $(echo "$2" | tail -n 2 | tr '\n' ' ')"
	fi
}

i=0
while [ ! -e /dev/vsock ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
bench_phase guest-to-host begin
out=$(vsock-test send 2 7000 65536 2>&1)
bench_phase guest-to-host end
bench_rate guest-to-host "$out"

bench_phase host-to-guest begin
vsock-test sink 7001 >/tmp/sink.out 2>&1 &
sink=$!
i=0
while ! grep -q listening /tmp/sink.out && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
echo "BENCH-VSOCK ready"
i=0
while kill -0 $sink 2>/dev/null && [ $i -lt 1200 ]; do usleep 100000; i=$((i + 1)); done
kill $sink 2>/dev/null
bench_phase host-to-guest end
bench_rate host-to-guest "$(cat /tmp/sink.out)"
echo "BENCH-VSOCK done"
