/* The description of one VM, whatever produced it (the CLI today, a JSON config file or the HTTP
 * API later), and its validation. Validation checks what can be checked without KVM: paths are
 * readable, sizes are in range, the command line fits. */
#ifndef SKIFF_VM_CONFIG_H
#define SKIFF_VM_CONFIG_H

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

/* One virtio-blk disk: --disk PATH[,ro][,id=NAME]. */
struct disk_config {
	char path[4096];
	bool read_only;
	char id[VM_CONFIG_MAX_ID + 1]; /* the guest sees it as the disk's serial (GET_ID) */
};

/* One virtio-net interface on a tap: --net tap=NAME[,mac=MAC][,id=NAME]. */
struct net_config {
	char tap[16]; /* IFNAMSIZ */
	bool has_mac;
	uint8_t mac[6];
	char id[VM_CONFIG_MAX_ID + 1];
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

struct vm_config {
	/* What to boot: a Linux kernel, a flat binary file, or an in-memory flat binary. */
	const char *kernel_path;
	const char *initrd_path;
	const char *cmdline; /* as the user gave it; see vm_config_kernel_cmdline() */
	const char *raw_path;
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
	enum console_kind console;
	bool rng; /* virtio-rng */
};

void vm_config_init_defaults(struct vm_config *cfg);

/* Returns 0, or -EINVAL with a one-line reason in `err`. `max_cpus` is the host KVM's limit (0 if
 * not known yet) and `host_memory_mib` the host's RAM (0 if unknown). */
int vm_config_validate(const struct vm_config *cfg, int max_cpus, uint64_t host_memory_mib,
		       char *err, size_t err_len);

/* Parse the CLI's device specifications into the next free slot: "PATH[,ro][,id=NAME]" and
 * "tap=NAME[,mac=MAC][,id=NAME]". Return 0, or -EINVAL / -ENOSPC with a one-line reason. */
int vm_config_add_disk(struct vm_config *cfg, const char *spec, char *err, size_t err_len);
int vm_config_add_net(struct vm_config *cfg, const char *spec, char *err, size_t err_len);

/* The command line the guest gets: the user's, with "console=ttyS0" (or "console=hvc0" for a
 * virtio console) appended when it names no console. Returns 0 or -E2BIG when it would not fit
 * in `len`. */
int vm_config_kernel_cmdline(const struct vm_config *cfg, char *out, size_t len);

/* Host RAM in MiB from /proc/meminfo, 0 when it cannot be read. */
uint64_t host_memory_mib(void);

#endif
