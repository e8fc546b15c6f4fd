# shellcheck shell=sh disable=SC1091 # /tests/bench-fs.conf: written by bench/fs/run
# bench/fs/guest.sh: the guest side of bench/fs, sourced by tests/nested/guest-init as
# /tests/bench-fs.sh (skiff.test=bench-fs). Mounts the virtio-fs device tagged "share" (L1's
# virtiofsd, cache=none) and runs /bin/fs-bench (bench/fs/fs-bench.c) on it: metadata (create,
# stat and unlink of $files small files), then a sequential write of $mib MiB (1 MiB writes and
# fsync) and its read back after dropping the guest's page cache. /tests/bench-fs.conf sets
# files and mib. Prints
#   BENCH-FS phase=NAME begin|end          (L1 samples the VMM's and virtiofsd's CPU time)
#   BENCH-FS result=NAME KEY=VALUE...      fs-bench's figures
#   BENCH-FS result=NAME-irqs irqs=N       the device's interrupts the guest took in phase NAME
#   BENCH-FS error=NAME: ...
files=300 mib=32 # bench/fs/run's defaults; bench-fs.conf has the ones it ran with
. /tests/bench-fs.conf
bench_phase() { echo "BENCH-FS phase=$1 $2"; sleep 1; }
# The virtio-fs device's interrupts so far, all CPUs: "virtio0" (virtio-mmio) or its
# virtio0-hiprio/-requests.0/-config MSI-X vectors (virtio-pci); the guest has no other device.
fs_irqs() {
	awk '/virtio[0-9]/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i } END { print n + 0 }' /proc/interrupts
}
bench_run() { # NAME fs-bench-ARGS...
	name=$1
	shift
	bench_phase "$name" begin
	irq0=$(fs_irqs)
	out=$(fs-bench "$@" 2>&1)
	irq1=$(fs_irqs)
	bench_phase "$name" end
	echo "$out" | sed 's/^/BENCH-FS /'
	echo "BENCH-FS result=$name-irqs irqs=$((irq1 - irq0))"
}

mkdir -p /mnt/share
if mount -t virtiofs share /mnt/share; then
	mkdir -p /mnt/share/meta
	bench_run meta meta /mnt/share/meta "$files"
	bench_run seq-write write /mnt/share/big "$mib"
	bench_run seq-read read /mnt/share/big
	rm -rf /mnt/share/meta /mnt/share/big
	umount /mnt/share
	echo "BENCH-FS done"
else
	echo "BENCH-FS error=mount: mount -t virtiofs share failed"
fi
