/* A VM's devices as one list: platform devices (16550 UART, i8042, CMOS RTC, ACPI PM, PL061,
 * boot timer, fw_cfg, VMGenID) and virtio devices alike. struct vm owns the list (vm->devices); each
 * device embeds a struct vm_device and fills in its kind, id and ops when it is created, and
 * whoever places it on the VM (the arch code, vm.c, vmm/virtio_devices.c) adds it. From then on
 * the VM reaches it only through the ops: metrics ask it for stats, the API's drive swap and rate-limiter PATCHes
 * ask it to update, teardown destroys the list in the reverse order of creation, and snapshots will
 * save and restore it.
 * Nothing outside a device reads its internals.
 *
 * Threads: the list is built while the VM is created and torn down when it is destroyed, on the
 * thread doing that; in between it does not change, so any thread may walk it and look things up.
 * What an op may do concurrently with the guest is the op's to say (see each one below).
 *
 * The kind numbers are part of the saved state's layout (base/state.h tags sections with them):
 * never renumber one. */
#ifndef SKIFF_BASE_DEVICE_H
#define SKIFF_BASE_DEVICE_H

#include "base/token_bucket.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t; /* jansson's json_t */
struct state_reader;
struct state_writer;
struct vm_device;

enum vm_device_kind {
	VM_DEVICE_SERIAL_8250 = 1,
	VM_DEVICE_I8042 = 2,
	VM_DEVICE_RTC_CMOS = 3,
	VM_DEVICE_ACPI_PM = 4,
	VM_DEVICE_PL061 = 5,
	VM_DEVICE_BOOT_TIMER = 6,
	VM_DEVICE_PCI_HOST = 7,
	VM_DEVICE_VIRTIO_PCI = 8, /* a virtio-pci function's transport state (virtio/pci.h) */
	VM_DEVICE_FW_CFG = 9,
	VM_DEVICE_DEBUG_EXIT = 10, /* x86 --debug-exit (devices/debug_exit.h) */
	VM_DEVICE_VMGENID = 11,	   /* devices/vmgenid.h */
	VM_DEVICE_VIRTIO_CONSOLE = 16,
	VM_DEVICE_VIRTIO_BLK = 17,
	VM_DEVICE_VIRTIO_NET = 18,
	VM_DEVICE_VIRTIO_RNG = 19,
	VM_DEVICE_VIRTIO_VSOCK = 20,
	VM_DEVICE_VIRTIO_FS = 26, /* the virtio device id */
	VM_DEVICE_VIRTIO_BALLOON = 21,
};

/* A new rate limiter for a running device: the buckets named in `which` (1 bandwidth, 2 ops;
 * 0: no change) take cfg's, the others keep their state. */
struct vm_device_rate_limit {
	const struct rate_limiter_config *cfg;
	unsigned which;
};

/* A change to a running device asked for through the API; a kind takes what applies to it. */
struct vm_device_update {
	const char *backing_path; /* virtio-blk: the disk's new backing file */
	/* virtio-blk, for live migration: -1 lets go of the image's lock (the destination takes
	 * it), +1 takes it again (a migration that failed); 0 leaves it. */
	int disk_lock;
	/* virtio-balloon: a new target (PATCH /balloon), a new statistics polling interval
	 * (PATCH /balloon/statistics). */
	bool balloon_target;
	uint32_t balloon_amount_mib;
	bool balloon_stats_interval;
	uint16_t balloon_stats_interval_s;
	struct vm_device_rate_limit rate_limiter; /* virtio-blk */
	struct vm_device_rate_limit rx_rate_limiter, tx_rate_limiter; /* virtio-net */
};

/* How far the guest's drivers got with a device that needs a driver of the guest's own (virtio),
 * since the VM started: what the missing-driver hint (vmm/driver_hint.h) judges. */
struct vm_device_guest_driver {
	/* The transport the guest finds the device on, with the guest kernel's option and module
	 * for its driver: "virtio-mmio", "CONFIG_VIRTIO_MMIO", "virtio_mmio". */
	const char *transport, *transport_option, *transport_module;
	bool found;	 /* the transport's driver found the device (virtio: ACKNOWLEDGE) */
	bool taken;	 /* a driver for the device took it (virtio: DRIVER) */
	bool ready;	 /* that driver set the device up (virtio: DRIVER_OK) */
	bool failed;	 /* that driver gave up on it (virtio: FAILED) */
	uint32_t status; /* the device's status now, for the log line */
};

/* Every op but destroy may be NULL: the device has nothing of the sort. */
struct vm_device_ops {
	const char *name; /* of the kind, for log lines: "serial-8250", "virtio-blk" */

	/* Back to the state after creation, as a machine reset would leave it. Only while no vCPU
	 * runs. */
	void (*reset)(struct vm_device *dev);
	/* Frees the device (and whatever it owns: its worker thread, its transport). */
	void (*destroy)(struct vm_device *dev);

	/* What the metrics line prints for it: a new JSON object (the caller takes the reference)
	 * or NULL for nothing now. Any thread, while the VM runs. stats_group names the metrics
	 * object the result goes into, keyed by the device's id ("block", "net"); NULL: values the
	 * metrics line places itself (the boot timer's boot_time_us; vmm/metrics.c) or that
	 * another reader asks for (the balloon's, for GET /balloon/statistics). */
	struct json_t *(*stats)(struct vm_device *dev);
	const char *stats_group;

	/* Its state as one section of the saved-state layout, tagged with its kind (base/state.h).
	 * save: 0 or -errno (the writer's failure); restore: 0 or the reader's failure, with
	 * nothing changed on a failure. Only while no vCPU runs. */
	int (*save)(struct vm_device *dev, struct state_writer *w);
	int (*restore)(struct vm_device *dev, struct state_reader *r);
	/* Stops (held true) or lets go the work the device does on its own, driven by its
	 * backend (a packet, a connection, a timer): while held it writes no guest memory and
	 * raises no interrupt, and save and update still work. 0 or -errno. NULL: a device that
	 * works only when a vCPU asks. */
	int (*hold)(struct vm_device *dev, bool held);

	/* Applies `up` (the API's thread, the VM running). 0, or -errno with the reason as the
	 * thread's last error (base/log.h). */
	int (*update)(struct vm_device *dev, const struct vm_device_update *up);

	/* A device the guest needs a driver of its own for: the guest kernel's option and module
	 * for that driver ("CONFIG_VIRTIO_BLK", "virtio_blk"), and guest_driver, which fills in
	 * how far the guest got with it and returns true (false: nothing to judge, e.g. an entry
	 * without a transport). Any thread. */
	const char *guest_option, *guest_module;
	bool (*guest_driver)(struct vm_device *dev, struct vm_device_guest_driver *out);
};

#define VM_DEVICE_ID_SIZE 24

struct vm_device {
	const struct vm_device_ops *ops;
	enum vm_device_kind kind;
	char id[VM_DEVICE_ID_SIZE]; /* the config's id of a disk or interface, else "" */

	/* A virtio-mmio device's register window and interrupt line, which the arch describes to
	 * the guest (ACPI tables, device tree); set by vmm/virtio_devices.c. */
	bool virtio_mmio;
	uint64_t mmio_base;
	uint32_t gsi;

	struct vm_device *prev, *next; /* the list's */
};

struct vm_devices {
	struct vm_device *first, *last;
	int nr;
};

/* Fills in a device's header (id may be NULL: ""). */
void vm_device_init(struct vm_device *dev, enum vm_device_kind kind,
		    const struct vm_device_ops *ops, const char *id);

/* Appends `dev`; the list owns it from here (vm_devices_destroy destroys it). */
void vm_device_add(struct vm_devices *list, struct vm_device *dev);

/* The first device of `kind` whose id is `id`, or with id NULL the first of `kind`; NULL when
 * there is none (also for the empty id). */
struct vm_device *vm_device_find(const struct vm_devices *list, enum vm_device_kind kind,
				 const char *id);

/* In the order of creation. */
#define vm_devices_for_each(list, dev) for ((dev) = (list)->first; (dev); (dev) = (dev)->next)

/* The kind's name, or the id when it has one: "rootfs", "serial-8250". */
const char *vm_device_label(const struct vm_device *dev);

/* The ops, with what a missing op means: stats NULL; update -ENOTSUP with a reason (the
 * thread's last error); save and restore -ENOTSUP. */
struct json_t *vm_device_stats(struct vm_device *dev);
int vm_device_update(struct vm_device *dev, const struct vm_device_update *up);
int vm_device_save(struct vm_device *dev, struct state_writer *w);
int vm_device_restore(struct vm_device *dev, struct state_reader *r);

/* Every device's state, in the order of creation: one section each (what snapshots are made
 * of). Returns 0, or -ENOTSUP (after a logged line naming it) for a device that cannot save its
 * state, or the first device's failure. */
int vm_devices_save(struct vm_devices *list, struct state_writer *w);
/* Reads what vm_devices_save() wrote into a list built the same way (same devices, same order).
 * Returns 0, or the failure: the reader's (its reason in state_reader_error()), -EBADMSG for
 * bytes left over, -ENOTSUP for a device that cannot restore. Devices before the one that failed
 * have been restored. */
int vm_devices_restore(struct vm_devices *list, struct state_reader *r);

/* Holds every device (held true) or lets them all go (device ops: hold). A snapshot holds the
 * devices from before their state is saved until guest memory is written, a live migration's
 * handoff until the last pages are out, so that memory and the saved rings' indices agree:
 * pausing stops only the vCPUs. Returns 0, or the first failure, with the devices held before it
 * let go again. Letting go goes on past a failure and returns the first. */
int vm_devices_hold(struct vm_devices *list, bool held);

/* Resets every device that has a reset op, in the order of creation. */
void vm_devices_reset(struct vm_devices *list);
/* Destroys every device, the last created first, and leaves the list empty. */
void vm_devices_destroy(struct vm_devices *list);

#endif
