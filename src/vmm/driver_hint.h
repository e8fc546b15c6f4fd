/* The missing-driver hint. A guest whose kernel lacks the driver of a device skiff gives it (a
 * virtio disk without CONFIG_VIRTIO_BLK, any virtio-mmio device without CONFIG_VIRTIO_MMIO) boots
 * on without a word about it, and the user finds out later, from a missing /dev/vda or a root
 * file system that never mounts. So once the guest has had time to set its devices up, skiff
 * logs one warning line for each device that needs a driver of the guest's
 * (vm_device_ops.guest_driver: the virtio devices) and that the guest has not set up, naming the
 * kernel option it lacks:
 *
 *   - no device on the device's transport was ever found by the guest (virtio: none ever saw
 *     ACKNOWLEDGE): the transport's driver, CONFIG_VIRTIO_MMIO or CONFIG_VIRTIO_PCI;
 *   - otherwise, no driver took the device (virtio: DRIVER never set): the device's own,
 *     CONFIG_VIRTIO_BLK, _NET, _CONSOLE, HW_RANDOM_VIRTIO (each device kind names its option in
 *     its vm_device_ops);
 *   - a driver took it and never finished (no DRIVER_OK; FAILED, or features it refused): no
 *     option to name; the line gives the status.
 *
 * When: 5 s after the guest's first boot-timer write (devices/boot_timer.h: its userspace is
 * running, so its built-in drivers have probed and its init has had time to load modules), or
 * 60 s after the VM started, whichever comes first; time the VM spends paused does not count.
 * Once per VM: a device the guest sets up later gets no second line, nor does one still missing.
 * A device the guest set up once counts as set up for good, also after the guest reset it (a
 * driver unbound, a module removed, a kexec'd kernel): the guest had the driver, and the reset
 * was its own decision. Only for a guest kernel: a bare-metal (--raw) guest has no kernel options
 * to name, so it gets no hint.
 *
 * Threads: driver_hint_judge, _format and _due are pure functions; driver_hint_check reads the
 * devices through their guest_driver op (any thread). The run loop (vmm/run_loop.c) owns the
 * timer (driver_hint_start/_tick/_stop) on its own thread. */
#ifndef SKIFF_VMM_DRIVER_HINT_H
#define SKIFF_VMM_DRIVER_HINT_H

#include "base/device.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

#define DRIVER_HINT_AFTER_BOOT_US  5000000ULL  /* after the guest's boot-timer write */
#define DRIVER_HINT_AFTER_START_US 60000000ULL /* after the VM started */
#define DRIVER_HINT_NO_BOOT	   UINT64_MAX  /* driver_hint_due: no boot-timer write yet */

enum driver_hint_verdict {
	DRIVER_HINT_NONE,	/* set up (now or once), or nothing to judge */
	DRIVER_HINT_TRANSPORT,	/* the guest found no device on the device's transport */
	DRIVER_HINT_DRIVER,	/* no driver took the device */
	DRIVER_HINT_UNFINISHED, /* a driver took it and did not finish setting it up */
};

/* The verdict on one device: `d` as its guest_driver op gave it, `transport_found` whether the
 * guest found any device on the same transport. */
enum driver_hint_verdict driver_hint_judge(const struct vm_device_guest_driver *d,
					   bool transport_found);

/* The warning's text, without the log prefix, into buf (cut at len), for a verdict other than
 * NONE: "virtio-blk rootfs: no driver in the guest took this device (5 s after the guest's
 * boot-timer write): its kernel needs CONFIG_VIRTIO_BLK (built in, or module virtio_blk
 * loaded)". `when` says since when. */
void driver_hint_format(char *buf, size_t len, const struct vm_device *dev,
			const struct vm_device_guest_driver *d, enum driver_hint_verdict v,
			const char *when);

/* Judges every device on `list` and logs one warning line for each one not set up. Returns the
 * number of lines. */
int driver_hint_check(const struct vm_devices *list, const char *when);

/* When the check is due. Times are uptime_us() values. */
struct driver_hint_clock {
	uint64_t start_us;	 /* the VM started */
	uint64_t last_us;	 /* the last tick */
	uint64_t paused_us;	 /* paused time seen by the ticks since the start */
	uint64_t paused_at_boot; /* paused_us when a tick first saw the boot-timer write */
	bool boot_seen;
	bool done; /* the check was due once: never again */
};

void driver_hint_clock_start(struct driver_hint_clock *k, uint64_t now_us);
/* A tick at now_us, `paused` telling whether the VM is paused, boot_us when the guest wrote its
 * boot timer (DRIVER_HINT_NO_BOOT: not yet). True once, when the check is due, with *when set to
 * the text for driver_hint_check. */
bool driver_hint_due(struct driver_hint_clock *k, uint64_t now_us, bool paused, uint64_t boot_us,
		     const char **when);

/* The run loop's part: a timerfd that ticks every second until the check has run. */
struct driver_hint {
	int fd; /* the timer, for the run loop's epoll; -1 when none (done, or nothing to judge) */
	struct driver_hint_clock clock;
};

/* Starts the clock as the VM starts running. Sets h->fd to the timer, or to -1 when no device
 * of vm needs a guest driver (or no timer could be had: then no hint, after a debug line). */
void driver_hint_start(struct driver_hint *h, struct vm *vm);
/* h->fd is readable: reads it, and when the check is due runs it on vm's devices and stops the
 * timer (h->fd becomes -1). */
void driver_hint_tick(struct driver_hint *h, struct vm *vm);
void driver_hint_stop(struct driver_hint *h);

#endif
