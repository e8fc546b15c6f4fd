/* A virtio device as its transport sees it. A device type (blk, net, console, rng) fills in the
 * ops and its private state; the transport (virtio-mmio today, PCI later) owns the registers,
 * feature negotiation, the queues' configuration, notifications and interrupts, and calls the
 * device back:
 *
 *   - config_read/config_write on the vCPU thread that accessed the config space;
 *   - activate, queue_notify and reset on the device's worker thread (`loop`), never on a vCPU
 *     thread, so devices need no locks for their queues.
 *
 * A device can be exercised without a transport: a unit test fills in mem, queues, features,
 * loop and the three callbacks itself. */
#ifndef SKIFF_VIRTIO_DEVICE_H
#define SKIFF_VIRTIO_DEVICE_H

#include "virtio/queue.h"
#include "base/guest_mem.h"

#include <stdbool.h>
#include <stdint.h>

struct event_loop;
struct virtio_device;

struct virtio_device_ops {
	uint32_t device_id;	 /* VIRTIO_ID_* */
	uint16_t nr_queues;
	/* A saved state (virtio/core_state.h) may hold this few queues: one saved before the
	 * device had the rest, which then stay unready. 0: exactly nr_queues. */
	uint16_t min_saved_queues;
	uint16_t queue_max_size; /* a power of 2 <= VIRTQ_MAX_SIZE */
	uint32_t config_size;	 /* bytes of device config space (<= 0x100) */

	/* Device feature bits offered to the driver; the transport adds VIRTIO_F_VERSION_1,
	 * VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX. */
	uint64_t (*features)(struct virtio_device *dev);
	/* [off, off + len) lies within config_size (the transport checks). */
	void (*config_read)(struct virtio_device *dev, uint32_t off, void *data, uint32_t len);
	void (*config_write)(struct virtio_device *dev, uint32_t off, const void *data,
			     uint32_t len); /* NULL: config space is read-only */

	/* The queues are processed by a backend outside skiff (vhost-user): the core does not
	 * watch the queues' kick eventfds (the backend reads them; dev->kick_fd hands them out),
	 * and signal_used raises the interrupt whenever called (the backend has already decided
	 * that the driver wants one). queue_notify is then called only once after activate. */
	bool backend_queues;

	/* What dev->direct_irq_fd answers may have changed (the driver enabled or disabled MSI-X,
	 * assigned a vector, reset the device). Any thread, often a vCPU's with the transport's
	 * locks held: it must not block, only get the worker to look again. NULL: not asked. */
	void (*direct_irq_changed)(struct virtio_device *dev);

	/* The driver set DRIVER_OK: dev->features is final and the ready queues are activated.
	 * Returns 0, or -errno (the transport then marks the device DEVICE_NEEDS_RESET). */
	int (*activate)(struct virtio_device *dev);
	/* The driver kicked queue `q`. */
	void (*queue_notify)(struct virtio_device *dev, uint16_t q);
	/* Before its state is saved (a snapshot, with no vCPU running), on the worker: finish every
	 * request taken from the rings, its used entry written. NULL: requests never outlive the
	 * call that took them. */
	void (*quiesce)(struct virtio_device *dev);
	/* On the worker, its loop held (virtio_core_hold): `held` true, stop what the device does
	 * outside its worker (a kernel's vhost worker on the rings) until called with false. NULL:
	 * all its work is on its worker. */
	void (*hold)(struct virtio_device *dev, bool held);
	/* On the worker, after a saved state put the device back live (a snapshot restored, a live
	 * migration's destination), before any vCPU runs: the VM moved. NULL: nothing to do. */
	void (*restored)(struct virtio_device *dev);
	/* The driver reset the device (or skiff is shutting down): finish or cancel in-flight
	 * requests, forget the queues; afterwards the device is as just created. */
	void (*reset)(struct virtio_device *dev);
	/* Frees the device (after reset). Runs on the thread destroying the VM. */
	void (*destroy)(struct virtio_device *dev);
};

struct virtio_device {
	/* Set by the device type when it creates the device. */
	const struct virtio_device_ops *ops;
	void *priv;
	char name[48]; /* for log lines: "virtio-blk vda", "virtio-net eth0" */

	/* Set by the transport before activate(). */
	const struct guest_mem *mem;
	struct virtq *queues;	 /* ops->nr_queues of them */
	uint64_t features;	 /* negotiated */
	struct event_loop *loop; /* the device's worker thread */
	void *transport;
	/* Used-buffer notification for queue `q`: raises the interrupt when virtq_should_notify()
	 * says the driver wants one. */
	void (*signal_used)(struct virtio_device *dev, uint16_t q);
	/* The eventfd KVM signals when the driver kicks queue `q` (its ioeventfd; also written
	 * for a kick that arrives as a register write). For backend_queues devices. */
	int (*kick_fd)(struct virtio_device *dev, uint16_t q);
	/* An eventfd that raises queue `q`'s interrupt in the kernel, with no thread of skiff's
	 * waking (virtio-pci: the queue's MSI-X vector, an irqfd that is detached while the vector
	 * is masked, so a signal then is kept pending), or -1 when signal_used must be called
	 * instead (no vector, MSI-X off, virtio-mmio whose ISR must be set first). For a backend
	 * that signals used buffers itself (vhost-user); any thread. */
	int (*direct_irq_fd)(struct virtio_device *dev, uint16_t q);
	/* Configuration-change notification (after the device changed its config space). */
	void (*signal_config)(struct virtio_device *dev);
	/* The driver broke the rules: mark DEVICE_NEEDS_RESET and stop using the device until the
	 * driver resets it. Call through virtio_dev_fail(). */
	void (*fail)(struct virtio_device *dev, int q, const char *reason);
	bool failed; /* set by fail(); cleared by reset */
};

/* Logs "<name>: queue <q>: <reason>" once and marks the device as needing reset. q < 0 when no
 * queue is involved. Safe to call again: later calls are ignored until the device is reset. */
void virtio_dev_fail(struct virtio_device *dev, int q, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Runs fn(arg) on the device's worker, where its queues are served, and waits for it: how a
 * control-plane change (a disk swap, a rate limiter, a balloon target) reaches a running device
 * without a lock on its datapath. A device with no worker yet runs it on the caller's thread,
 * as nothing else runs on it. 0, or -errno with "NAME: the device's worker has stopped" as the
 * thread's last error. */
int virtio_dev_on_worker(struct virtio_device *dev, void (*fn)(void *arg), void *arg);

static inline bool virtio_has_feature(const struct virtio_device *dev, unsigned bit)
{
	return (dev->features >> bit) & 1;
}

#endif
