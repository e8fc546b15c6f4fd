# bench/io/guest.sh: the guest side of bench/io, sourced by tests/nested/guest-init as
# /tests/bench-io.sh (skiff.test=bench-io). fio on /dev/vda (direct I/O, libaio), then iperf3 to
# L1's tap0 (172.16.0.1), both ways. Prints
#   BENCH-IO phase=NAME begin|end irqs=N ios=N   (L1 samples the VMM's CPU time and KVM's exit
#                                                 count at each)
#   BENCH-IO result=NAME KEY=VALUE...
# irqs: interrupts the disk's virtio device has taken (its /proc/interrupts lines, all CPUs);
# ios: reads and writes /dev/vda has completed (/sys/block/vda/stat). With bench.only=blk on
# the command line only the fio figures are taken.
# fio and iperf3 are Debian's, with their shared libraries in the image (bench/io/run).
bench_blk_irqs() {
	dev=$(basename "$(readlink /sys/block/vda/device 2>/dev/null)")
	[ -n "$dev" ] || { echo 0; return; }
	awk -v d="$dev" '$NF == d || index($NF, d "-") == 1 { for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+$/) n += $i; else break }
		END { print n + 0 }' /proc/interrupts
}
bench_blk_ios() { awk '{ print $1 + $5 }' /sys/block/vda/stat 2>/dev/null || echo 0; }
bench_phase() { echo "BENCH-IO phase=$1 $2 irqs=$(bench_blk_irqs) ios=$(bench_blk_ios)"; sleep 1; }

bench_fio() { # NAME RW BS DEPTH
	bench_phase "$1" begin
	out=$(fio --name="$1" --filename=/dev/vda --rw="$2" --bs="$3" --iodepth="$4" --ioengine=libaio \
		--direct=1 --runtime=5 --time_based --ramp_time=1 --output-format=terse 2>&1)
	bench_phase "$1" end
	case $2 in
	*read) echo "$out" | awk -F';' -v n="$1" 'NF > 50 { printf "BENCH-IO result=%s kib_s=%s iops=%s\n", n, $7, $8 }' ;;
	*) echo "$out" | awk -F';' -v n="$1" 'NF > 50 { printf "BENCH-IO result=%s kib_s=%s iops=%s\n", n, $48, $49 }' ;;
	esac
	echo "$out" | grep -q ';' || echo "BENCH-IO error=$1: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
}

bench_iperf() { # NAME [-R]
	bench_phase "$1" begin
	out=$(iperf3 -c 172.16.0.1 -t 5 -f m $2 2>&1)
	bench_phase "$1" end
	mbit=$(echo "$out" | awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") print $i }' | tail -n1)
	if [ -n "$mbit" ]; then
		echo "BENCH-IO result=$1 mbit_s=$mbit"
	else
		echo "BENCH-IO error=$1: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
	fi
}

i=0
while { [ ! -e /dev/vda ] || [ ! -e /sys/class/net/eth0 ]; } && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
ip link set lo up
ip link set eth0 up
ip addr add 172.16.0.2/24 dev eth0
ping -c 1 -W 5 172.16.0.1 >/dev/null 2>&1 || ping -c 1 -W 5 172.16.0.1 >/dev/null 2>&1 ||
	echo "BENCH-IO error=net: no answer from 172.16.0.1"
# The vhost peers measure the network only (their disks are the same as skiff's and qemu's);
# bench/io/run --blk-only measures the disk only.
if ! grep -qw bench.net_only /proc/cmdline; then
	bench_fio randread-4k randread 4k 32
	bench_fio randwrite-4k randwrite 4k 32
	bench_fio read-1m read 1m 8
	bench_fio write-1m write 1m 8
fi
if ! grep -q 'bench.only=blk' /proc/cmdline; then
	bench_iperf tcp-guest-to-host
	bench_iperf tcp-host-to-guest -R
fi
echo "BENCH-IO done"
