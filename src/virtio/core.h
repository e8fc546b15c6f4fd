/* The virtio core: what every transport of a virtio 1.x device shares, apart from how its
 * registers are laid out. A transport (virtio-mmio, virtio-pci) decodes the driver's register
 * accesses and calls the core for their meaning:
 *
 *   - the device status state machine (2.1, 3.1.1), feature negotiation (offered = the device's
 *     bits plus VIRTIO_F_VERSION_1, INDIRECT_DESC and EVENT_IDX; FEATURES_OK is refused for
 *     unoffered bits or a legacy driver), queue configuration and its state rules, the config
 *     space bounds;
 *   - the device's worker thread (an event_loop), one eventfd per queue that it watches, and the
 *     KVM ioeventfds that signal those eventfds on the addresses the transport names;
 *   - activate (at DRIVER_OK) and reset (Status 0, or teardown) run on the worker thread;
 *   - the device's signal_used/signal_config/fail callbacks: the core keeps the interrupt status
 *     (ISR) and the config generation and asks the transport to raise the interrupt.
 *
 * A device whose queues a backend process runs (ops->backend_queues: vhost-user) gets the
 * queues' eventfds through dev->kick_fd instead of kicks on its worker: the core still owns
 * them and binds them as ioeventfds, but does not read them.
 *
 * Threads: register calls (virtio_core_write_*, _read_*, _config_*) run on vCPU threads with the
 * core's lock held (virtio_core_lock), except virtio_core_notify, which takes no lock; the worker
 * never takes the lock, so a vCPU may wait for the worker while holding it. The interrupt op runs
 * on whichever thread signals (the worker, or a vCPU for a failure found in a register write).
 *
 * The driver-visible state lives in one struct (virtio_core_state) plus the queues' struct virtq,
 * so that saving and restoring a device is a copy of those. */
#ifndef SKIFF_VIRTIO_CORE_H
#define SKIFF_VIRTIO_CORE_H

#include "virtio/device.h"
#include "base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct event_loop;

/* The interrupt causes, as both transports' ISR / InterruptStatus bits number them. */
#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

/* The `q` of virtio_transport_ops.interrupt for a configuration change. */
#define VIRTIO_CONFIG_IRQ (-1)

/* Where the driver's notification of a queue arrives, for KVM_IOEVENTFD (MMIO space). */
struct virtio_notify_area {
	uint64_t addr;
	uint32_t len;	/* 1, 2, 4 or 8 */
	bool datamatch; /* only a write of `data` there is this queue's */
	uint64_t data;
};

struct virtio_transport_ops {
	/* The notification address of queue `q` now; false when it has none (a PCI BAR that is
	 * not decoded). Called with the core's lock held or during creation. */
	bool (*notify_area)(void *transport, uint16_t q, struct virtio_notify_area *area);
	/* Raises the interrupt for a used buffer in queue `q`, or for a config change
	 * (q == VIRTIO_CONFIG_IRQ). The core has set the ISR bit already. Any thread. */
	void (*interrupt)(void *transport, int q);
	/* The eventfd that raises queue `q`'s interrupt without skiff
	 * (virtio_device.direct_irq_fd), or -1. NULL: never one. The transport calls
	 * virtio_core_direct_irq_changed when the answer may change. Any thread. */
	int (*direct_irq_fd)(void *transport, uint16_t q);
};

/* Kinds of driver mistakes, each logged once per device (virtio_core_log_once). Transports use
 * the kinds from VIRTIO_LOGGED_TRANSPORT up for their own. */
enum {
	VIRTIO_LOGGED_WIDTH = 1 << 0,
	VIRTIO_LOGGED_REGISTER = 1 << 1,
	VIRTIO_LOGGED_STATE = 1 << 2,
	VIRTIO_LOGGED_CONFIG = 1 << 3,
	VIRTIO_LOGGED_QUEUE = 1 << 4,
	VIRTIO_LOGGED_FEATURES = 1 << 5,
	VIRTIO_LOGGED_NOTIFY = 1 << 6,
	VIRTIO_LOGGED_NEGOTIATION = 1 << 7,
	VIRTIO_LOGGED_DMA = 1 << 8,
	VIRTIO_LOGGED_TRANSPORT = 1 << 12,
};

/* The driver-visible state of a device apart from its queues (struct virtq in dev->queues). */
struct virtio_core_state {
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint64_t driver_features;
	bool driver_features_beyond_64; /* the driver set a bit we cannot even represent */
	/* Read without the lock; also changed by the worker thread. */
	_Atomic uint32_t status;
	_Atomic uint32_t isr; /* VIRTIO_ISR_* raised and not yet acknowledged */
	_Atomic uint32_t config_generation;
};

struct virtio_queue_notifier {
	struct virtio_core *core;
	uint16_t q;
	int fd;				/* eventfd: the driver's kicks */
	bool watched;			/* in the event loop */
	bool ioeventfd;			/* KVM signals fd on `area` */
	struct virtio_notify_area area; /* where, while ioeventfd */
};

struct virtio_core {
	struct virtio_device *dev;
	const struct virtio_transport_ops *ops;
	void *transport;
	const char *transport_name; /* "virtio-mmio", for log lines */
	/* The guest kernel's option and module for the transport's driver ("CONFIG_VIRTIO_MMIO",
	 * "virtio_mmio"), for the missing-driver hint (vmm/driver_hint.h). */
	const char *guest_option, *guest_module;
	int vm_fd;
	struct event_loop *loop;
	struct virtio_queue_notifier *notifiers; /* one per queue */

	pthread_mutex_t lock; /* serializes register accesses from several vCPUs */
	struct virtio_core_state state;
	atomic_uint logged;
	/* Cleared by a transport whose device may not touch guest memory now (PCI bus mastering
	 * off): kicks are dropped. */
	atomic_bool dma_allowed;

	bool active; /* worker thread only: activate() succeeded and no reset since */

	/* Every status bit the driver has had set since the device was created: a reset does not
	 * clear it (virtio_core_status_seen). */
	_Atomic uint32_t status_seen;
	/* Interrupts raised per cause (0: VIRTIO_ISR_QUEUE, 1: VIRTIO_ISR_CONFIG), and the counts
	 * as the driver's last virtio_core_read_isr() found them: an acknowledgement clears only
	 * the causes raised no more since (virtio_core_ack_isr). */
	_Atomic uint32_t isr_raised[2];
	uint32_t isr_read[2]; /* under `lock` */
};

struct virtio_core_params {
	int vm_fd; /* for KVM_IOEVENTFD; -1 in unit tests (kicks then come from register writes) */
	const struct guest_mem *mem;
	uint32_t max_config_size; /* the most config space the transport can window */
	const struct virtio_transport_ops *ops;
	void *transport;
	const char *transport_name;
	const char *guest_option, *guest_module; /* see struct virtio_core */
};

#define virtio_core_log_once(c, kind, level, fmt, ...)                                             \
	do {                                                                                       \
		if (!(atomic_fetch_or(&(c)->logged, (kind)) & (kind)))                             \
			log_##level("%s: " fmt, (c)->dev->name, ##__VA_ARGS__);                    \
	} while (0)

/* Checks the device's description, allocates its queues, starts its worker thread and the
 * queue eventfds, and installs the device's callbacks. No ioeventfd is bound yet
 * (virtio_core_bind_notifiers). Returns NULL after one logged line (the device is not destroyed,
 * nothing stays allocated). */
struct virtio_core *virtio_core_create(const struct virtio_core_params *p,
				       struct virtio_device *dev);
/* Undoes virtio_core_create without touching the device (a transport whose creation failed). */
void virtio_core_detach(struct virtio_core *c);
/* Unbinds, resets the device on its worker thread, stops the thread, destroys the device
 * (ops->destroy) and frees the core. No vCPU may be inside the transport any more. */
void virtio_core_destroy(struct virtio_core *c);

/* (Re)binds each queue's ioeventfd to the transport's notify_area, or unbinds them all. Without
 * a VM fd, or where KVM refuses, kicks arrive through virtio_core_notify instead. Lock held (or
 * during creation/teardown). */
void virtio_core_bind_notifiers(struct virtio_core *c);
void virtio_core_unbind_notifiers(struct virtio_core *c);

static inline void virtio_core_lock(struct virtio_core *c)
{
	pthread_mutex_lock(&c->lock);
}
static inline void virtio_core_unlock(struct virtio_core *c)
{
	pthread_mutex_unlock(&c->lock);
}

/* ---- Register semantics, lock held ---- */

/* The features offered: the device's plus the transport features. */
uint64_t virtio_core_offered_features(struct virtio_core *c);
/* The 32 offered feature bits the device feature selector points at (0 beyond 63). */
uint32_t virtio_core_read_device_features(struct virtio_core *c);
/* The 32 bits of the driver's feature selection the selector points at. */
uint32_t virtio_core_read_driver_features(struct virtio_core *c);
void virtio_core_write_driver_features(struct virtio_core *c, uint32_t value);
/* Status: 0 resets (on the worker thread); FEATURES_OK and DRIVER_OK are checked. */
void virtio_core_write_status(struct virtio_core *c, uint32_t value);
uint32_t virtio_core_status(struct virtio_core *c);
/* Every status bit the device has had since its creation (or its restore), resets included:
 * whether the guest ever found it (ACKNOWLEDGE), bound a driver (DRIVER), set it up
 * (DRIVER_OK), gave up (FAILED). Any thread, no lock needed. */
uint32_t virtio_core_status_seen(struct virtio_core *c);

/* The selected queue, or NULL when the selector points at none. */
struct virtq *virtio_core_selected_queue(struct virtio_core *c);
/* The selected queue when the driver may configure it now (`reg` names the register in the log
 * line), NULL after a logged line otherwise. */
struct virtq *virtio_core_configurable_queue(struct virtio_core *c, const char *reg, bool ready_ok);
void virtio_core_write_queue_size(struct virtio_core *c, uint32_t value);
void virtio_core_write_queue_ready(struct virtio_core *c, uint32_t value);
/* Half (`high`) of one of the selected queue's ring addresses: `which` is 0 descriptor table,
 * 1 driver (available) ring, 2 device (used) ring. */
void virtio_core_write_queue_addr(struct virtio_core *c, int which, bool high, uint32_t value);
uint32_t virtio_core_read_queue_addr(struct virtio_core *c, int which, bool high);

/* Config space [off, off + len): bounds and read-only checked (logged, then reads 0 / ignored).
 * len is 1, 2, 4 or 8 (8 as two 4-byte accesses). */
void virtio_core_config_read(struct virtio_core *c, uint64_t off, void *data, uint32_t len);
void virtio_core_config_write(struct virtio_core *c, uint64_t off, const void *data, uint32_t len);

/* The driver kicked queue `value` through a register write (no ioeventfd caught it). No lock
 * needed. */
void virtio_core_notify(struct virtio_core *c, uint32_t value);

/* ---- Interrupt status and DMA, any thread ---- */

/* The transport's direct_irq_fd may answer otherwise now: tells the device
 * (ops->direct_irq_changed), which must not block. */
void virtio_core_direct_irq_changed(struct virtio_core *c);

/* virtio-mmio's InterruptStatus and InterruptACK, with the core's lock held. The read notes
 * which interrupts the driver has now been told of; the acknowledgement clears a cause only if
 * it was not raised again since that read. So an acknowledgement that reaches the device late
 * (batched by KVM's coalesced MMIO until the guest's next exit, after the driver has already
 * looked at its queues) cannot clear a cause raised for buffers the driver never saw: its next
 * interrupt still reads the cause. */
uint32_t virtio_core_read_isr(struct virtio_core *c);
void virtio_core_ack_isr(struct virtio_core *c, uint32_t bits);
/* Returns the ISR and clears it (PCI's ISR capability is read-to-clear). */
uint32_t virtio_core_take_isr(struct virtio_core *c);

/* Whether the device may access guest memory (PCI: COMMAND's bus master bit). Turning it off
 * while the driver has the device running fails the device (DEVICE_NEEDS_RESET, logged): its
 * requests in flight could not complete without it. */
void virtio_core_set_dma_allowed(struct virtio_core *c, bool allowed);

#endif
