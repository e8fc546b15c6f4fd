/* The description of one VM, whatever produced it (the CLI, a JSON config file or the HTTP API),
 * and its validation. Validation checks what can be checked without KVM: paths are readable,
 * sizes are in range, the command line fits. Each resource in it (boot source, machine, each
 * device kind) has its own file and descriptor: see config/resource.h.
 *
 * The string fields kernel_path, initrd_path and cmdline either point at storage the caller
 * keeps alive (the CLI's argv) or, when set by vm_config_set_boot_source(), at buffers inside
 * the struct: copy a config with vm_config_copy(), never by assignment. */
#ifndef SKIFF_VM_CONFIG_H
#define SKIFF_VM_CONFIG_H

#include "base/token_bucket.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum boot_protocol {
	BOOT_PROTOCOL_AUTO = 0, /* bzImage: Linux boot protocol; ELF: PVH if it has the note */
	BOOT_PROTOCOL_LINUX64,	/* the Linux 64-bit boot protocol (boot_params) */
	BOOT_PROTOCOL_PVH,	/* the PVH entry point (Xen ELF note) */
};

#define VM_CONFIG_DEFAULT_CPUS	     1
#define VM_CONFIG_DEFAULT_MEMORY_MIB 256
#define VM_CONFIG_MAX_CMDLINE	     4096
#define VM_CONFIG_MAX_DISKS	     8
#define VM_CONFIG_MAX_NETS	     4
#define VM_CONFIG_MAX_ID	     20 /* bytes of a drive or interface id: virtio-blk's serial */
#define VM_CONFIG_MAX_PATH	     4096 /* bytes of a host path, with its NUL */
#define VM_CONFIG_MAX_PARTUUID	     36	  /* a GPT partition UUID, 8-4-4-4-12 hex digits */
#define VM_CONFIG_MAX_FS	     4
#define VM_CONFIG_MAX_FS_TAG	     36	 /* bytes of a virtio-fs tag (the device's config space) */
#define VM_CONFIG_MAX_SOCKET	     108 /* a UNIX socket path, with its NUL (sun_path) */

/* Firecracker's cache_type. skiff always offers VIRTIO_BLK_F_FLUSH and honours it with fsync, so
 * both behave as Writeback; the value is stored to be reported back. */
enum disk_cache_type {
	DISK_CACHE_UNSAFE = 0,
	DISK_CACHE_WRITEBACK,
};

/* Firecracker's io_engine. skiff has one block backend (blk_io); the value is stored to be
 * reported back. */
enum disk_io_engine {
	DISK_IO_SYNC = 0,
	DISK_IO_ASYNC,
};

/* The most request queues a disk may have (num_queues; at most the vCPU count too). */
#define DISK_MAX_QUEUES 32

/* One virtio-blk disk: --disk PATH[,ro][,id=NAME][,bw=..][,ops=..][,num_queues=N], or a
 * Firecracker drive. */
struct disk_config {
	char path[VM_CONFIG_MAX_PATH];
	bool read_only;
	char id[VM_CONFIG_MAX_ID + 1]; /* the guest sees it as the disk's serial (GET_ID) */
	/* The root device (at most one) is disks[0], so the guest sees it as /dev/vda, and the
	 * command line gets root= for it (vm_config_kernel_cmdline). */
	bool is_root;
	char partuuid[VM_CONFIG_MAX_PARTUUID + 1]; /* empty: root=/dev/vda instead */
	enum disk_cache_type cache_type;
	enum disk_io_engine io_engine;
	struct rate_limiter_config rate_limiter; /* bytes and requests; docs/rate-limiters.md */
	/* Request queues (VIRTIO_BLK_F_MQ when above 1), 1..min(vCPUs, DISK_MAX_QUEUES); 0: not
	 * given, one queue. */
	unsigned num_queues;
};

/* The most queue pairs an interface may have (queues=, "num_queues"; at most the vCPU count too).
 */
#define NET_MAX_QUEUE_PAIRS 8

/* One virtio-net interface on a tap: --net tap=NAME[,mac=MAC][,id=NAME][,vhost=on][,queues=N]. */
struct net_config {
	char tap[16]; /* IFNAMSIZ */
	bool has_mac;
	uint8_t mac[6];
	char id[VM_CONFIG_MAX_ID + 1];
	/* Into the guest (bytes and packets read from the tap) and out of it. */
	struct rate_limiter_config rx_rate_limiter, tx_rate_limiter;
	/* vhost=on, skiff's "vhost": the kernel's vhost-net moves the packets (virtio/vhost_net.h);
	 * no rate limiter then, nor dirty page tracking: skiff never sees the packets. */
	bool vhost;
	/* RX/TX queue pairs (VIRTIO_NET_F_MQ when above 1, on a multi_queue tap), 1..min(vCPUs,
	 * NET_MAX_QUEUE_PAIRS); 0: not given, one pair. */
	unsigned num_queues;
};

/* virtio-vsock with Firecracker's hybrid host side: --vsock cid=N,uds=PATH, or "vsock". The
 * guest's connections to the host's port P reach the unix socket "<uds_path>_P"; host programs
 * reach the guest through uds_path ("CONNECT <port>\n"). */
#define VM_CONFIG_VSOCK_MAX_PATH 96 /* bytes of uds_path: "_4294967295" must still fit sun_path */
struct vsock_config {
	bool enabled;
	uint32_t guest_cid; /* 3 .. 0xfffffffe */
	char uds_path[VM_CONFIG_VSOCK_MAX_PATH + 1];
	char id[VM_CONFIG_MAX_ID + 1]; /* Firecracker's vsock_id; empty when not given */
};

/* One virtio-fs device, served by a vhost-user backend (virtiofsd): --fs tag=NAME,socket=PATH
 * (a backend the user started) or --fs tag=NAME,dir=PATH (skiff starts virtiofsd on PATH).
 * Exactly one of socket and shared_dir is set. */
struct fs_config {
	char id[VM_CONFIG_MAX_ID + 1];
	char tag[VM_CONFIG_MAX_FS_TAG + 1]; /* what the guest mounts: mount -t virtiofs TAG */
	char socket[VM_CONFIG_MAX_SOCKET];
	char shared_dir[VM_CONFIG_MAX_PATH];
};

/* The memory balloon (virtio-balloon): --balloon, the "balloon" section, PUT /balloon. */
#define BALLOON_MAX_STATS_INTERVAL_S 65535 /* Firecracker's u16 */
struct balloon_config {
	bool enabled;
	uint32_t amount_mib;		   /* the target: MiB the guest should give back */
	bool deflate_on_oom;		   /* VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	uint16_t stats_polling_interval_s; /* 0: no statistics queue */
	bool free_page_reporting;	   /* VIRTIO_BALLOON_F_PAGE_REPORTING */
};

/* The interrupt controller on arm64 (--irqchip); x86 has one kind and takes only auto. */
enum irqchip_kind {
	IRQCHIP_AUTO = 0, /* arm64: GICv3, or GICv2 when the host's KVM cannot emulate a GICv3 */
	IRQCHIP_GICV3,
	IRQCHIP_GICV2,
};

/* Where the guest's console is: the 16550A UART (ttyS0) or virtio-console (hvc0). */
enum console_kind {
	CONSOLE_SERIAL = 0,
	CONSOLE_VIRTIO,
};

/* The settings both the command line and JSON (a --config-file document, an API body) give, and
 * who set each last: a message about one names it as its caller wrote it, "--memory 8 MiB" to
 * the command line's user and "mem_size_mib 8" to an API client or a config file's author (one
 * check, one message, two spellings: see vm_config_setting_name). */
enum vm_config_setting {
	VM_SETTING_CPUS,   /* --cpus N, "vcpu_count" */
	VM_SETTING_MEMORY, /* --memory N, "mem_size_mib" */
	VM_SETTING_PCI,	   /* --enable-pci, "enable_pci" */
	VM_SETTINGS
};

enum vm_config_origin {
	VM_ORIGIN_DEFAULT = 0, /* nobody set it */
	VM_ORIGIN_CLI,
	VM_ORIGIN_JSON,
};

/* --gdb tcp:HOST:PORT | unix:PATH: where the GDB stub listens (vmm/gdb_stub.h). */
struct gdb_config {
	bool enabled;
	bool is_unix;
	char path[108]; /* unix: sizeof(sun_path) */
	char host[46];	/* tcp: a numeric IPv4 or IPv6 address (INET6_ADDRSTRLEN) */
	uint16_t port;
};

struct vm_config {
	/* What to boot: a Linux kernel, a flat binary file, or an in-memory flat binary. */
	const char *kernel_path;
	const char *initrd_path;
	const char *cmdline; /* as the user gave it; see vm_config_kernel_cmdline() */
	const char *raw_path;
	/* --firmware (x86_64): a BIOS image started at the reset vector; with kernel_path, the
	 * kernel goes to the firmware through fw_cfg instead of into memory. */
	const char *firmware_path;
	const void *raw_image; /* the built-in demo guest */
	size_t raw_size;
	enum boot_protocol boot_protocol;
	enum irqchip_kind irqchip;

	int nr_cpus;
	uint64_t memory_mib;

	struct disk_config disks[VM_CONFIG_MAX_DISKS];
	int nr_disks;
	struct net_config nets[VM_CONFIG_MAX_NETS];
	int nr_nets;
	struct fs_config fs[VM_CONFIG_MAX_FS];
	int nr_fs;
	enum console_kind console;
	bool rng; /* virtio-rng */
	struct vsock_config vsock;
	/* --debug-exit (x86): QEMU's isa-debug-exit at port 0xf4, for test kernels. */
	bool debug_exit;
	struct balloon_config balloon;
	/* PUT /serial: where the serial console's output goes (empty: skiff's stdout). */
	char serial_out_path[VM_CONFIG_MAX_PATH];
	struct gdb_config gdb;
	struct rate_limiter_config rng_rate_limiter; /* bytes and requests of the rng */
	/* --enable-pci: every virtio device on PCI (virtio-pci, MSI-X), not virtio-mmio. */
	bool enable_pci;
	/* --mem-mergeable, "mem_mergeable": guest memory offered to KSM (MADV_MERGEABLE). */
	bool mem_mergeable;
	/* Firecracker's track_dirty_pages: KVM logs the guest's writes and guest_mem skiff's, for
	 * Diff snapshots (vmm/snapshot.h). */
	bool track_dirty_pages;
	/* The description of a VM restored from a snapshot (vmm/snapshot.h): nothing is booted,
	 * so the boot source is kept only to be reported, its files need not exist, and a
	 * --config-file document or snapshot without one is whole. */
	bool restored;

	/* Who set each of the settings above that both the CLI and JSON give (for messages). */
	enum vm_config_origin origin[VM_SETTINGS];

	/* Owned storage behind kernel_path, initrd_path and cmdline (vm_config_set_boot_source). */
	char kernel_path_buf[VM_CONFIG_MAX_PATH];
	char initrd_path_buf[VM_CONFIG_MAX_PATH];
	char cmdline_buf[VM_CONFIG_MAX_CMDLINE];
};

void vm_config_init_defaults(struct vm_config *cfg);

/* *dst = *src, with the string fields that point into src's own buffers pointing into dst's. */
void vm_config_copy(struct vm_config *dst, const struct vm_config *src);

/* Replaces the whole boot source with copies owned by `cfg`: `initrd` and `cmdline` may be NULL
 * (none). Returns 0, or -EINVAL (a string too long for its buffer; `cfg` unchanged). */
int vm_config_set_boot_source(struct vm_config *cfg, const char *kernel, const char *initrd,
			      const char *cmdline);

/* The device kinds' tables (config/drive.c, config/net.c). Each returns 0, or -EINVAL / -ENOSPC
 * with a one-line reason as the calling thread's last error (log_set_error, base/log.h); on
 * error `cfg` is unchanged. */

/* Adds a disk, or replaces the one with the same id in place. A root disk moves to disks[0]; a
 * second root disk is refused. */
int vm_config_put_disk(struct vm_config *cfg, const struct disk_config *d);

/* Adds an interface, or replaces the one with the same id in place; a tap or MAC address used by
 * another interface is refused. */
int vm_config_put_net(struct vm_config *cfg, const struct net_config *nc);

/* Parse the CLI's device specifications into the next free slot: "PATH[,ro][,id=NAME]" and
 * "tap=NAME[,mac=MAC][,id=NAME]". */
int vm_config_add_disk(struct vm_config *cfg, const char *spec);
int vm_config_add_net(struct vm_config *cfg, const char *spec);

/* An id is 1 to VM_CONFIG_MAX_ID bytes of letters, digits, '_' and '-'. */
bool vm_config_id_valid(const char *id);

/* A file the VM will read (and write, when `writable`): it exists, is a regular file (or, when
 * `block_ok`, a block device), is not on /proc or /sys, and is accessible. Returns 0, or -EINVAL
 * with "<what> <path>: <reason>" as the thread's last error. Never opens it (a FIFO cannot
 * block the check). */
int vm_config_check_file(const char *what, const char *path, bool block_ok, bool writable);

/* A device option's queue count, `key`=`v` in `option` `spec` (--disk SPEC's num_queues=N): 1 to
 * `max`, or -EINVAL with one line as the last error. */
int vm_config_parse_queues(const char *option, const char *spec, const char *key, const char *v,
			   unsigned max, unsigned *out);

/* "xx:xx:xx:xx:xx:xx" (hex digits). Returns 0, or -1 if `s` is not that. */
int vm_config_parse_mac(const char *s, uint8_t mac[6]);

/* A tap name: 1 to 15 bytes, no '/', no whitespace, not "." or "..". */
bool vm_config_tap_name_valid(const char *name);

/* Returns 0, or -EINVAL with a one-line reason as the thread's last error. `max_cpus` is the
 * host KVM's limit (0 if not known yet) and `host_memory_mib` the host's RAM (0 if unknown).
 * Each device kind's own checks are its resource's (config/resource.h); the architecture's are
 * not here (config does not know the architecture): vm_check_config() adds them. */
int vm_config_validate(const struct vm_config *cfg, int max_cpus, uint64_t host_memory_mib);

/* The command line the guest gets: the user's, with "console=ttyS0" (or "console=hvc0" for a
 * virtio console) appended when it names no console, and, when there is a root disk and the user
 * gave no root=, "root=/dev/vda" (or "root=PARTUUID=<partuuid>") and " ro" or " rw" as its
 * read_only says, as Firecracker does. What is appended goes before a " -- " (the arguments of
 * init). Returns 0 or -E2BIG when it would not fit in `len`. */
int vm_config_kernel_cmdline(const struct vm_config *cfg, char *out, size_t len);

/* A setting as its origin names it, for messages: "--memory" or "mem_size_mib" (and for one
 * nobody set, the command line's: a default is named in its value, see vm_config_describe). */
const char *vm_config_setting_name(const struct vm_config *cfg, enum vm_config_setting s);

/* The setting and its value as its caller wrote them, into out[len]: "--cpus 2" / "vcpu_count 2"
 * / "2 vCPUs (the default)", "--memory 8 MiB" / "mem_size_mib 8" / "256 MiB of memory (the
 * default)", "--enable-pci" / "enable_pci true". Returns out. */
const char *vm_config_describe(const struct vm_config *cfg, enum vm_config_setting s, char *out,
			       size_t len);

/* uds_path of a vsock is usable: short enough, its directory exists, and it is not a socket
 * somebody listens on (a stale socket file is replaced when the device is created). Returns 0,
 * or -EINVAL with "<what>: <reason>" as the thread's last error. */
int vm_config_check_vsock_path(const char *what, const char *path);

/* Host RAM in MiB from /proc/meminfo, 0 when it cannot be read. */
uint64_t host_memory_mib(void);

#endif
