#include "virtio/mmio.h"

#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Status bits the driver may set; DEVICE_NEEDS_RESET is the device's. */
#define DRIVER_STATUS_BITS                                                                         \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FAILED)

#define TRANSPORT_FEATURES                                                                         \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_INDIRECT_DESC) |                         \
	 (1ULL << VIRTIO_F_EVENT_IDX))

/* Kinds of driver mistakes, each logged once per device. */
enum {
	LOGGED_WIDTH = 1 << 0,
	LOGGED_REGISTER = 1 << 1,
	LOGGED_STATE = 1 << 2,
	LOGGED_CONFIG = 1 << 3,
	LOGGED_QUEUE = 1 << 4,
	LOGGED_FEATURES = 1 << 5,
	LOGGED_NOTIFY = 1 << 6,
	LOGGED_NEGOTIATION = 1 << 7,
};

struct queue_notifier {
	struct virtio_mmio *t;
	uint16_t q;
	int fd;		/* eventfd: the guest's kicks */
	bool ioeventfd; /* KVM signals fd itself on a matching QueueNotify write */
	bool watched;	/* in the event loop */
};

struct virtio_mmio {
	struct virtio_device *dev;
	struct bus *bus;
	int vm_fd;
	uint64_t base;
	uint32_t gsi;
	bool on_bus;
	struct event_loop *loop;
	struct queue_notifier *notifiers; /* one per queue */
	int irq_fd;
	bool irqfd_assigned;

	/* Serializes register writes from several vCPUs (and the reads of what they write). The
	 * worker thread never takes it, so a vCPU may wait for the worker while holding it. */
	pthread_mutex_t lock;
	uint32_t device_features_sel, driver_features_sel, queue_sel, shm_sel;
	uint64_t driver_features;
	bool driver_features_beyond_64; /* the driver set a bit we cannot even represent */

	/* Read without the lock; also changed by the worker thread (DEVICE_NEEDS_RESET). */
	_Atomic uint32_t status;
	_Atomic uint32_t interrupt_status;
	_Atomic uint32_t config_generation;
	atomic_uint logged;

	/* Worker thread only: activate() succeeded and no reset since. */
	bool active;
};

#define log_once(t, kind, level, fmt, ...)                                                         \
	do {                                                                                       \
		if (!(atomic_fetch_or(&(t)->logged, (kind)) & (kind)))                             \
			log_##level("%s: " fmt, (t)->dev->name, ##__VA_ARGS__);                    \
	} while (0)

static void eventfd_signal(int fd)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: the reader is gone, nothing to tell. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("virtio-mmio: eventfd write: %s", strerror(errno));
}

static uint64_t offered_features(struct virtio_mmio *t)
{
	struct virtio_device *dev = t->dev;

	return (dev->ops->features ? dev->ops->features(dev) : 0) | TRANSPORT_FEATURES;
}

static bool device_failed(const struct virtio_device *dev)
{
	return __atomic_load_n(&dev->failed, __ATOMIC_ACQUIRE);
}

/* ---- Interrupts and failure, called by the device (usually on its worker thread) ---- */

static void raise_interrupt(struct virtio_mmio *t, uint32_t cause)
{
	atomic_fetch_or(&t->interrupt_status, cause);
	eventfd_signal(t->irq_fd);
}

static void mmio_signal_used(struct virtio_device *dev, uint16_t q)
{
	struct virtio_mmio *t = dev->transport;

	if (q < dev->ops->nr_queues && virtq_should_notify(&dev->queues[q]))
		raise_interrupt(t, VIRTIO_MMIO_INT_VRING);
}

static void mmio_signal_config(struct virtio_device *dev)
{
	struct virtio_mmio *t = dev->transport;

	atomic_fetch_add(&t->config_generation, 1);
	raise_interrupt(t, VIRTIO_MMIO_INT_CONFIG);
}

/* virtio_dev_fail() has logged the reason. */
static void mmio_fail(struct virtio_device *dev, int q, const char *reason)
{
	struct virtio_mmio *t = dev->transport;

	__atomic_store_n(&dev->failed, true, __ATOMIC_RELEASE);
	if (!(atomic_fetch_or(&t->status, VIRTIO_STATUS_DEVICE_NEEDS_RESET) &
	      VIRTIO_STATUS_DEVICE_NEEDS_RESET))
		mmio_signal_config(dev);
}

/* ---- The worker thread's side ---- */

static void queue_kicked(void *ctx, uint32_t events)
{
	struct queue_notifier *n = ctx;
	struct virtio_mmio *t = n->t;
	struct virtio_device *dev = t->dev;
	uint64_t count;

	if (read(n->fd, &count, sizeof(count)) < 0)
		return;
	if (t->active && !device_failed(dev))
		dev->ops->queue_notify(dev, n->q);
}

struct activation {
	struct virtio_mmio *t;
	int result;
};

static void activate_on_worker(void *arg)
{
	struct activation *a = arg;
	struct virtio_mmio *t = a->t;
	struct virtio_device *dev = t->dev;

	a->result = dev->ops->activate ? dev->ops->activate(dev) : 0;
	if (a->result < 0)
		return;
	t->active = true;
	/* Kicks that came before DRIVER_OK were dropped (a driver may fill a queue before it sets
	 * DRIVER_OK): have the device look at every ready queue once. */
	for (uint16_t q = 0; q < dev->ops->nr_queues && !device_failed(dev); q++)
		if (dev->queues[q].ready)
			dev->ops->queue_notify(dev, q);
}

static void reset_on_worker(void *arg)
{
	struct virtio_mmio *t = arg;
	struct virtio_device *dev = t->dev;

	t->active = false;
	if (dev->ops->reset)
		dev->ops->reset(dev);
	for (uint16_t q = 0; q < dev->ops->nr_queues; q++)
		virtq_reset(&dev->queues[q]);
	dev->features = 0;
	__atomic_store_n(&dev->failed, false, __ATOMIC_RELEASE);
}

/* ---- Status and feature negotiation (vCPU thread, lock held) ---- */

static void reset_device(struct virtio_mmio *t)
{
	int err = event_loop_call(t->loop, reset_on_worker, t);

	if (err)
		log_error("%s: reset: %s", t->dev->name, strerror(-err));
	t->device_features_sel = t->driver_features_sel = t->queue_sel = t->shm_sel = 0;
	t->driver_features = 0;
	t->driver_features_beyond_64 = false;
	atomic_store(&t->interrupt_status, 0);
	atomic_store(&t->status, 0);
}

static bool features_acceptable(struct virtio_mmio *t)
{
	uint64_t offered = offered_features(t);
	uint64_t unoffered = t->driver_features & ~offered;

	if (unoffered || t->driver_features_beyond_64) {
		log_once(t, LOGGED_NEGOTIATION, warn,
			 "driver accepted features not offered (%#llx%s); FEATURES_OK refused",
			 (unsigned long long)unoffered,
			 t->driver_features_beyond_64 ? " and bits above 63" : "");
		return false;
	}
	if (!(t->driver_features & (1ULL << VIRTIO_F_VERSION_1))) {
		log_once(t, LOGGED_NEGOTIATION, warn,
			 "driver did not accept VIRTIO_F_VERSION_1 (a legacy driver?); FEATURES_OK "
			 "refused");
		return false;
	}
	return true;
}

/* DRIVER_OK: the queues the driver enabled go live, then the device. */
static void activate_device(struct virtio_mmio *t)
{
	struct virtio_device *dev = t->dev;
	struct activation a = { .t = t };
	int err;

	dev->features = t->driver_features;
	for (uint16_t q = 0; q < dev->ops->nr_queues; q++) {
		struct virtq *vq = &dev->queues[q];

		if (vq->ready && virtq_activate(vq, dev->mem, dev->features) < 0) {
			virtio_dev_fail(dev, q, "%s", vq->error);
			return;
		}
	}
	err = event_loop_call(t->loop, activate_on_worker, &a);
	if (err == 0)
		err = a.result;
	if (err < 0)
		virtio_dev_fail(dev, -1, "activation failed: %s", strerror(-err));
}

static void write_status(struct virtio_mmio *t, uint32_t value)
{
	uint32_t old = atomic_load(&t->status);
	uint32_t set = value & ~old & DRIVER_STATUS_BITS;
	uint32_t now = old | set;

	if (value == 0) {
		reset_device(t);
		return;
	}
	if (old & ~value & DRIVER_STATUS_BITS)
		log_once(t, LOGGED_STATE, warn,
			 "driver cleared status bits %#x without a reset; ignored",
			 old & ~value & DRIVER_STATUS_BITS);

	if (set & VIRTIO_STATUS_FEATURES_OK) {
		if (!(now & VIRTIO_STATUS_DRIVER) || (old & VIRTIO_STATUS_DRIVER_OK) ||
		    !features_acceptable(t)) {
			set &= ~VIRTIO_STATUS_FEATURES_OK;
		} else {
			/* Config space may depend on the features from here on. */
			t->dev->features = t->driver_features;
		}
	}
	if ((set & VIRTIO_STATUS_DRIVER_OK) && !((old | set) & VIRTIO_STATUS_FEATURES_OK)) {
		log_once(t, LOGGED_STATE, warn, "DRIVER_OK without FEATURES_OK; ignored");
		set &= ~VIRTIO_STATUS_DRIVER_OK;
	}

	atomic_fetch_or(&t->status, set & ~VIRTIO_STATUS_DRIVER_OK);
	if (set & VIRTIO_STATUS_DRIVER_OK) {
		if (device_failed(t->dev))
			log_once(t, LOGGED_STATE, warn, "DRIVER_OK on a device that needs a reset");
		else
			activate_device(t);
		atomic_fetch_or(&t->status, VIRTIO_STATUS_DRIVER_OK);
	}
}

static void write_driver_features(struct virtio_mmio *t, uint32_t value)
{
	uint32_t status = atomic_load(&t->status);

	if (!(status & VIRTIO_STATUS_DRIVER) || (status & VIRTIO_STATUS_FEATURES_OK)) {
		log_once(t, LOGGED_FEATURES, warn,
			 "DriverFeatures written in status %#x (not between DRIVER and FEATURES_OK)"
			 "; ignored",
			 status);
		return;
	}
	switch (t->driver_features_sel) {
	case 0:
		t->driver_features = (t->driver_features & ~0xffffffffULL) | value;
		break;
	case 1:
		t->driver_features = (t->driver_features & 0xffffffffULL) | (uint64_t)value << 32;
		break;
	default:
		if (value)
			t->driver_features_beyond_64 = true;
		break;
	}
}

/* ---- Queue configuration (vCPU thread, lock held) ---- */

/* The selected queue, when the driver may configure it now; NULL (logged) otherwise. */
static struct virtq *configurable_queue(struct virtio_mmio *t, const char *reg, bool ready_ok)
{
	struct virtio_device *dev = t->dev;
	uint32_t status = atomic_load(&t->status);
	struct virtq *vq;

	if (t->queue_sel >= dev->ops->nr_queues) {
		log_once(t, LOGGED_QUEUE, warn, "%s written for queue %u, which does not exist",
			 reg, t->queue_sel);
		return NULL;
	}
	vq = &dev->queues[t->queue_sel];
	if (!(status & VIRTIO_STATUS_DRIVER) || (status & VIRTIO_STATUS_DRIVER_OK) ||
	    (vq->ready && !ready_ok)) {
		log_once(t, LOGGED_STATE, warn, "%s written for queue %u in status %#x%s; ignored",
			 reg, t->queue_sel, status, vq->ready ? " (queue ready)" : "");
		return NULL;
	}
	return vq;
}

static void write_queue_num(struct virtio_mmio *t, uint32_t value)
{
	struct virtq *vq = configurable_queue(t, "QueueNum", false);

	if (!vq)
		return;
	if (value == 0 || value > vq->max_size || (value & (value - 1))) {
		log_once(t, LOGGED_QUEUE, warn,
			 "queue %u: QueueNum %u is not a power of 2 up to %u; ignored",
			 t->queue_sel, value, vq->max_size);
		return;
	}
	vq->size = value;
}

static void write_queue_ready(struct virtio_mmio *t, uint32_t value)
{
	struct virtq *vq;

	/* Drivers tearing down after a reset write 0 to queues that are not ready: no news. */
	if (value == 0 && t->queue_sel < t->dev->ops->nr_queues &&
	    !t->dev->queues[t->queue_sel].ready)
		return;
	vq = configurable_queue(t, "QueueReady", true);
	if (vq)
		vq->ready = value & 1;
}

static void write_queue_addr(struct virtio_mmio *t, const char *reg, uint64_t *field, bool high,
			     uint32_t value)
{
	if (!configurable_queue(t, reg, false))
		return;
	if (high)
		*field = (*field & 0xffffffffULL) | (uint64_t)value << 32;
	else
		*field = (*field & ~0xffffffffULL) | value;
}

static uint64_t *queue_addr_field(struct virtq *vq, uint64_t reg)
{
	switch (reg & ~0x7ULL) {
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		return &vq->desc_gpa;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
		return &vq->avail_gpa;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
		return &vq->used_gpa;
	}
	return NULL;
}

static void write_queue_notify(struct virtio_mmio *t, uint32_t value)
{
	/* With an ioeventfd per queue, KVM handles valid kicks itself and only others land here. */
	if (value >= t->dev->ops->nr_queues) {
		log_once(t, LOGGED_NOTIFY, warn, "QueueNotify for queue %u, which does not exist",
			 value);
		return;
	}
	eventfd_signal(t->notifiers[value].fd);
}

/* ---- Register access ---- */

static uint32_t read_register(struct virtio_mmio *t, uint64_t reg)
{
	struct virtio_device *dev = t->dev;
	struct virtq *vq = t->queue_sel < dev->ops->nr_queues ? &dev->queues[t->queue_sel] : NULL;
	uint64_t *field;

	switch (reg) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return dev->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->device_features_sel > 1)
			return 0;
		return offered_features(t) >> (32 * t->device_features_sel);
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq ? vq->max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return vq ? vq->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return atomic_load(&t->interrupt_status);
	case VIRTIO_MMIO_STATUS:
		return atomic_load(&t->status);
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return atomic_load(&t->config_generation);
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		if (!vq)
			return 0;
		field = queue_addr_field(vq, reg);
		return reg & 4 ? *field >> 32 : (uint32_t)*field;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return ~0U; /* no shared memory region has this (or any) id */
	case VIRTIO_MMIO_QUEUE_RESET:
		return 0; /* VIRTIO_F_RING_RESET is not offered */
	}
	log_once(t, LOGGED_REGISTER, warn, "read of register %#llx, which is not readable",
		 (unsigned long long)reg);
	return 0;
}

static void write_register(struct virtio_mmio *t, uint64_t reg, uint32_t value)
{
	struct virtio_device *dev = t->dev;

	switch (reg) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->device_features_sel = value;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->driver_features_sel = value;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		write_driver_features(t, value);
		return;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = value;
		return;
	case VIRTIO_MMIO_QUEUE_NUM:
		write_queue_num(t, value);
		return;
	case VIRTIO_MMIO_QUEUE_READY:
		write_queue_ready(t, value);
		return;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		if (t->queue_sel < dev->ops->nr_queues)
			write_queue_addr(t, "a queue address",
					 queue_addr_field(&dev->queues[t->queue_sel], reg), reg & 4,
					 value);
		else
			configurable_queue(t, "a queue address", false); /* logs */
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		write_queue_notify(t, value);
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		atomic_fetch_and(&t->interrupt_status, ~value);
		return;
	case VIRTIO_MMIO_STATUS:
		write_status(t, value);
		return;
	case VIRTIO_MMIO_SHM_SEL:
		t->shm_sel = value;
		return;
	}
	log_once(t, LOGGED_REGISTER, warn, "write of %#x to register %#llx, which is not writable",
		 value, (unsigned long long)reg);
}

static bool config_access_ok(struct virtio_mmio *t, uint64_t off, uint32_t len, bool is_write)
{
	if (off + len > t->dev->ops->config_size) {
		log_once(t, LOGGED_CONFIG, warn,
			 "config %s of %u bytes at %#llx beyond its %u bytes; ignored",
			 is_write ? "write" : "read", len, (unsigned long long)off,
			 t->dev->ops->config_size);
		return false;
	}
	return true;
}

static bool valid_width(uint32_t len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

/* Registers take aligned 32-bit accesses; config space 1, 2, 4 or 8 bytes (valid_width). */
static bool register_access_ok(struct virtio_mmio *t, uint64_t offset, uint32_t len,
			       bool is_write)
{
	if (offset >= VIRTIO_MMIO_CONFIG) {
		log_once(t, LOGGED_WIDTH, warn, "%u-byte config %s at %#llx; %s", len,
			 is_write ? "write" : "read", (unsigned long long)offset,
			 is_write ? "ignored" : "read as 0");
		return false;
	}
	if (len != 4 || (offset & 3)) {
		log_once(t, LOGGED_WIDTH, warn, "%u-byte %s at %#llx: registers are 32-bit; %s",
			 len, is_write ? "write" : "read", (unsigned long long)offset,
			 is_write ? "ignored" : "read as 0");
		return false;
	}
	return true;
}

static void mmio_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	struct virtio_device *dev = t->dev;

	memset(data, 0, len);
	if (offset >= VIRTIO_MMIO_CONFIG && valid_width(len)) {
		uint64_t off = offset - VIRTIO_MMIO_CONFIG;

		if (!dev->ops->config_read || !config_access_ok(t, off, len, false))
			return;
		pthread_mutex_lock(&t->lock);
		if (len == 8) {
			dev->ops->config_read(dev, off, data, 4);
			dev->ops->config_read(dev, off + 4, (uint8_t *)data + 4, 4);
		} else {
			dev->ops->config_read(dev, off, data, len);
		}
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (!register_access_ok(t, offset, len, false))
		return;
	pthread_mutex_lock(&t->lock);
	*(uint32_t *)data = read_register(t, offset);
	pthread_mutex_unlock(&t->lock);
}

static void mmio_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	struct virtio_device *dev = t->dev;
	uint32_t value;

	if (offset >= VIRTIO_MMIO_CONFIG && valid_width(len)) {
		uint64_t off = offset - VIRTIO_MMIO_CONFIG;

		if (!config_access_ok(t, off, len, true))
			return;
		if (!dev->ops->config_write) {
			log_once(t, LOGGED_CONFIG, warn,
				 "config write at %#llx: config space is read-only; ignored",
				 (unsigned long long)off);
			return;
		}
		pthread_mutex_lock(&t->lock);
		if (len == 8) {
			dev->ops->config_write(dev, off, data, 4);
			dev->ops->config_write(dev, off + 4, (const uint8_t *)data + 4, 4);
		} else {
			dev->ops->config_write(dev, off, data, len);
		}
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (!register_access_ok(t, offset, len, true))
		return;
	memcpy(&value, data, 4);
	/* A kick needs no transport state: keep it off the lock. */
	if (offset == VIRTIO_MMIO_QUEUE_NOTIFY) {
		write_queue_notify(t, value);
		return;
	}
	pthread_mutex_lock(&t->lock);
	write_register(t, offset, value);
	pthread_mutex_unlock(&t->lock);
}

const struct bus_device_ops virtio_mmio_ops = { .read = mmio_read, .write = mmio_write };

/* ---- Creation and teardown ---- */

static int assign_ioeventfd(struct virtio_mmio *t, struct queue_notifier *n, bool assign)
{
	struct kvm_ioeventfd io = {
		.datamatch = n->q,
		.addr = t->base + VIRTIO_MMIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = n->fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(t->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int assign_irqfd(struct virtio_mmio *t, bool assign)
{
	struct kvm_irqfd irqfd = {
		.fd = t->irq_fd,
		.gsi = t->gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(t->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

int virtio_mmio_connect_irq(struct virtio_mmio *t)
{
	int err;

	if (t->vm_fd < 0 || t->irqfd_assigned)
		return 0;
	err = assign_irqfd(t, true);
	if (err) {
		log_error("%s: KVM_IRQFD on GSI %u: %s", t->dev->name, t->gsi, strerror(-err));
		return err;
	}
	t->irqfd_assigned = true;
	return 0;
}

/* Undoes whatever virtio_mmio_create() and virtio_mmio_connect_irq() got done, resetting the device first when asked; does
 * not destroy the device. */
static void teardown(struct virtio_mmio *t, bool reset)
{
	struct virtio_device *dev = t->dev;
	uint16_t nr = dev->ops->nr_queues;

	if (t->on_bus)
		bus_unregister(t->bus, t->base); /* returns once no vCPU is inside */
	for (uint16_t q = 0; t->notifiers && q < nr; q++) {
		struct queue_notifier *n = &t->notifiers[q];
		int err = n->ioeventfd ? assign_ioeventfd(t, n, false) : 0;

		if (err)
			log_warn("%s: queue %u: KVM_IOEVENTFD deassign: %s", dev->name, q,
				 strerror(-err));
		if (n->watched)
			event_loop_del(t->loop, n->fd);
	}
	if (t->irqfd_assigned) {
		int err = assign_irqfd(t, false);

		if (err)
			log_warn("%s: KVM_IRQFD deassign: %s", dev->name, strerror(-err));
	}
	if (t->loop) {
		if (reset)
			event_loop_call(t->loop, reset_on_worker, t);
		event_loop_destroy(t->loop);
	}
	dev->loop = NULL;
}

static void free_resources(struct virtio_mmio *t, struct virtq *queues, uint16_t nr)
{
	for (uint16_t q = 0; t->notifiers && q < nr; q++)
		if (t->notifiers[q].fd >= 0)
			close(t->notifiers[q].fd);
	if (t->irq_fd >= 0)
		close(t->irq_fd);
	free(t->notifiers);
	free(queues);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static bool ops_valid(const struct virtio_device *dev)
{
	const struct virtio_device_ops *ops = dev->ops;
	uint16_t max = ops->queue_max_size;

	return ops->nr_queues > 0 && max > 0 && max <= VIRTQ_MAX_SIZE && !(max & (max - 1)) &&
	       ops->config_size <= VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG && ops->queue_notify;
}

/* "virtio-blk vda" -> "vio-blk-vda" (the kernel keeps 15 characters of a thread name). */
static void loop_name(const struct virtio_device *dev, char *name, size_t size)
{
	const char *s = dev->name;

	if (strncmp(s, "virtio-", 7) == 0)
		s += 7;
	snprintf(name, size, "vio-%s", s);
	for (char *c = name; *c; c++)
		if (*c == ' ')
			*c = '-';
}

static int setup_notifications(struct virtio_mmio *t)
{
	struct virtio_device *dev = t->dev;
	int via_kvm = 0, err;

	for (uint16_t q = 0; q < dev->ops->nr_queues; q++) {
		struct queue_notifier *n = &t->notifiers[q];

		n->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->fd < 0) {
			err = -errno;
			log_error("%s: queue %u: eventfd: %s", dev->name, q, strerror(errno));
			return err;
		}
		err = event_loop_add(t->loop, n->fd, EPOLLIN, queue_kicked, n);
		if (err) {
			log_error("%s: queue %u: cannot watch its eventfd: %s", dev->name, q,
				  strerror(-err));
			return err;
		}
		n->watched = true;
		if (t->vm_fd >= 0) {
			err = assign_ioeventfd(t, n, true);
			if (err == 0) {
				n->ioeventfd = true;
				via_kvm++;
			} else {
				log_debug("%s: queue %u: KVM_IOEVENTFD refused (%s)", dev->name, q,
					  strerror(-err));
			}
		}
	}
	if (via_kvm == dev->ops->nr_queues)
		log_debug("%s: queue notifications through KVM ioeventfds", dev->name);
	else
		log_debug("%s: queue notifications through MMIO exits for %d of %u queues",
			  dev->name, dev->ops->nr_queues - via_kvm, dev->ops->nr_queues);
	return 0;
}

struct virtio_mmio *virtio_mmio_create(const struct virtio_mmio_params *p,
				       struct virtio_device *dev)
{
	uint16_t nr = dev->ops->nr_queues;
	struct virtio_mmio *t;
	char name[64];
	int err;

	if (!ops_valid(dev)) {
		log_error("%s: invalid device description (queues, queue size, config size)",
			  dev->name);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		goto nomem;
	t->dev = dev;
	t->bus = p->bus;
	t->vm_fd = p->vm_fd;
	t->base = p->base;
	t->gsi = p->gsi;
	t->irq_fd = -1;
	pthread_mutex_init(&t->lock, NULL);
	t->notifiers = calloc(nr, sizeof(*t->notifiers));
	dev->queues = calloc(nr, sizeof(*dev->queues));
	if (!t->notifiers || !dev->queues) {
		free_resources(t, dev->queues, nr);
		dev->queues = NULL;
		goto nomem;
	}
	for (uint16_t q = 0; q < nr; q++) {
		t->notifiers[q] = (struct queue_notifier){ .t = t, .q = q, .fd = -1 };
		dev->queues[q].max_size = dev->ops->queue_max_size;
		virtq_reset(&dev->queues[q]);
	}
	dev->mem = p->mem;
	dev->features = 0;
	dev->failed = false;
	dev->transport = t;
	dev->signal_used = mmio_signal_used;
	dev->signal_config = mmio_signal_config;
	dev->fail = mmio_fail;

	loop_name(dev, name, sizeof(name));
	t->loop = event_loop_create(name);
	if (!t->loop)
		goto fail;
	dev->loop = t->loop;

	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irq_fd < 0) {
		log_error("%s: interrupt eventfd: %s", dev->name, strerror(errno));
		goto fail;
	}
	if (setup_notifications(t) < 0)
		goto fail;
	err = bus_register(t->bus, t->base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops, t, dev->name);
	if (err) {
		log_error("%s: cannot register MMIO range %#llx+%#x: %s", dev->name,
			  (unsigned long long)t->base, VIRTIO_MMIO_SIZE, strerror(-err));
		goto fail;
	}
	t->on_bus = true;
	log_debug("%s: virtio-mmio at %#llx, GSI %u", dev->name, (unsigned long long)t->base,
		  t->gsi);
	return t;

fail:
	teardown(t, false);
	free_resources(t, dev->queues, nr);
	dev->queues = NULL;
	dev->transport = NULL;
	return NULL;
nomem:
	log_error("%s: out of memory", dev->name);
	return NULL;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	struct virtio_device *dev;
	struct virtq *queues;
	uint16_t nr;

	if (!t)
		return;
	dev = t->dev;
	queues = dev->queues;
	nr = dev->ops->nr_queues;
	teardown(t, true);
	if (dev->ops->destroy)
		dev->ops->destroy(dev); /* frees dev: nothing of it is used below */
	free_resources(t, queues, nr);
}

int virtio_mmio_irq_eventfd(const struct virtio_mmio *t)
{
	return t->irq_fd;
}
