# tests/nested/rootfs-scenarios.sh: tools/mkrootfs's Debian 12 image booted by skiff as a user
# boots it (scenarios.sh's format; sourced by scenarios.sh, x86_64 only).
#
# The image (~270 MiB used of a sparse 1 GiB ext4 file) and the kernel and initrd it came with
# are built on the host by rootfs-image, once per hash of their inputs (tools/mkrootfs,
# rootfs-image, the options below), into $NESTED_CACHE/rootfs/HASH. L1 gets the image as a
# virtio disk of its own (l1_drive: snapshot=on, so the cached file never changes) rather than in
# its initramfs, and the kernel and initrd in its initramfs (l1_file, 12 MiB).
# shellcheck shell=bash

# The key is a public key whose private half was thrown away: sshd must take it, nobody logs in.
rootfs_opts=(--size 1G --dns 172.16.0.1 --ssh-key tests/nested/rootfs-test-key.pub)
rootfs_key=$(cat "$repo/tools/mkrootfs" "$here/rootfs-image" "$here/rootfs-test-key.pub" \
	<(printf '%s\n' "${rootfs_opts[@]}") | sha256sum | cut -c1-16)
ROOTFS_DIR=$NESTED_CACHE/rootfs/$rootfs_key

# Boots the image with its own kernel and initrd, the README's way (root=/dev/vda rw, a tap at
# 172.16.0.1): systemd reaches multi-user.target, the serial getty logs root in, the guest's
# eth0 came up as tools/mkrootfs set it (L1 pings 172.16.0.2, the guest pings 172.16.0.1), sshd
# answers on port 22 with host keys made at this boot and root's authorized key, every unit
# started, and `systemctl poweroff` typed at the root shell ends skiff with 0 through ACPI.
scenario rootfs-debian 300
	host_prepare "tests/nested/rootfs-image $(q "$ROOTFS_DIR") ${rootfs_opts[*]}"
	l1_drive rootfs "$ROOTFS_DIR/rootfs.ext4"
	l1_file "$ROOTFS_DIR/rootfs.vmlinuz" /guest/debian/vmlinuz
	l1_file "$ROOTFS_DIR/rootfs.initrd.img" /guest/debian/initrd.img
	boots no # not guest-init: systemd, judged by its own console lines
	before '{ ip link del tap0 2>/dev/null || :; }; tunctl -t tap0 >/dev/null && ip addr add 172.16.0.1/24 dev tap0 && ip link set tap0 up'
	before 'ln -s "$(l1_drive rootfs)" rootfs.ext4'
	args --log-level info --kernel /guest/debian/vmlinuz --initrd /guest/debian/initrd.img \
		--cmdline "root=/dev/vda rw" --memory 512 --disk "$L1_WORK/$current/rootfs.ext4" \
		--net tap=tap0,mac=06:00:ac:10:00:02
	# The typed commands echo back on the console (after bash's bracketed-paste escape, so no
	# marker is at the start of its line): the markers are split in them ("ok""-..."), or their
	# values are $(...) there and a word in the output.
	input 'end_vmm_on_failure'
	input 'wait_for "Reached target .*multi-user\.target" 270'
	input 'wait_for "root@skiff:~# " 120'
	input 'echo "ping -c 2 -W 5 172.16.0.1 && echo SKIFF-ROOTFS: ping-""ok"'
	input 'wait_for "SKIFF-ROOTFS: ping-ok" 120'
	input 'echo "echo SKIFF-ROOTFS: state=\$(systemctl is-system-running --wait)"'
	input 'wait_for "SKIFF-ROOTFS: state=[a-z]" 120'
	input 'echo "echo SKIFF-ROOTFS: analyze=\$(systemd-analyze | head -n1)"'
	input 'wait_for "SKIFF-ROOTFS: analyze=[A-Z]" 120'
	input 'echo "echo SKIFF-ROOTFS: key=\$(ssh-keygen -lf /root/.ssh/authorized_keys | cut -d\" \" -f3)"'
	input 'wait_for "SKIFF-ROOTFS: key=[a-z]" 120'
	input 'echo "echo SKIFF-ROOTFS: hostkeys=\$(ls /etc/ssh/ssh_host_*_key | wc -l)"'
	input 'wait_for "SKIFF-ROOTFS: hostkeys=[0-9]" 120'
	input 'echo "systemctl poweroff"'
	# ...until skiff ends: its stdin must stay open.
	input 'while kill -0 "$SKIFF_PID" 2>/dev/null; do sleep 1; done'
	during 'wait_for "Reached target .*multi-user\.target" 270 && ping -c 3 -W 5 172.16.0.2'
	during 'banner=$(echo | nc -w 10 172.16.0.2 22 | head -n1); echo "sshd: $banner"; case $banner in SSH-2.0-OpenSSH*) ;; *) die "no SSH banner from 172.16.0.2:22" ;; esac'
	expect 'skiff: info: virtio-blk'
	expect 'skiff: info: virtio-net'
	expect 'Reached target .*multi-user\.target'
	expect 'skiff login: root \(automatic login\)'
	expect 'SKIFF-ROOTFS: ping-ok'
	# Every unit started: "running" (not "degraded").
	expect 'SKIFF-ROOTFS: state=running$'
	expect 'SKIFF-ROOTFS: key=skiff-nested-test$'
	expect 'SKIFF-ROOTFS: hostkeys=[1-9]'
	expect '^SKIFF-STEP during\| sshd: SSH-2.0-OpenSSH'
	expect 'skiff: info: guest powered off \(ACPI S5'
	reject 'Failed to start'
	reject 'Failed to connect to bus'
	reject 'Kernel panic'
	# skiff's warnings are not refused: on this substrate, under load, Debian's initrd loaded
	# virtio_mmio more than 30 s after the start once, and the missing-driver hint spoke early.
