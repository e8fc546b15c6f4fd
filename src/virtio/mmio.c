#include "virtio/mmio.h"

#include "virtio/core.h"
#include "virtio/virtio.h"
#include "base/log.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct virtio_mmio {
	struct virtio_core *core;
	struct virtio_device *dev;
	struct bus *bus;
	int vm_fd;
	uint64_t base;
	uint32_t gsi;
	bool on_bus;
	int irq_fd;
	bool irqfd_assigned;
	uint32_t shm_sel;
	/* virtio_mmio_batch_ack(): asked once, at the first DRIVER_OK (under the core's lock). */
	int (*batch_ack)(void *ctx, bool on);
	void *batch_ack_ctx;
	bool batch_ack_asked;
};

/* ---- The transport ops the core calls ---- */

/* QueueNotify, with the queue's index as the value written. */
static bool mmio_notify_area(void *transport, uint16_t q, struct virtio_notify_area *area)
{
	struct virtio_mmio *t = transport;

	*area = (struct virtio_notify_area){
	    .addr = t->base + VIRTIO_MMIO_QUEUE_NOTIFY,
	    .len = 4,
	    .datamatch = true,
	    .data = q,
	};
	return true;
}

/* One line for every cause: the driver reads InterruptStatus to tell them apart. */
static void mmio_interrupt(void *transport, int q)
{
	struct virtio_mmio *t = transport;

	/* Only fails when the counter would overflow: the reader is gone, nothing to tell. */
	if (eventfd_write(t->irq_fd, 1) < 0 && errno != EAGAIN)
		log_error("%s: interrupt eventfd write: %s", t->dev->name, strerror(errno));
}

/* A backend that runs the device's queues (vhost-user, ops->backend_queues) may signal the
 * device's irqfd itself, so that no thread of skiff's wakes per interrupt. The line has no cause
 * of its own to tell then: InterruptStatus always has the used-buffer bit for such a device
 * (read_register). The specification asks the device to set it before a used-buffer notification,
 * which this does; a driver that finds no new used buffer in its queues does nothing more. */
static int mmio_direct_irq_fd(void *transport, uint16_t q)
{
	struct virtio_mmio *t = transport;

	if (!t->dev->ops->backend_queues || !__atomic_load_n(&t->irqfd_assigned, __ATOMIC_ACQUIRE))
		return -1;
	return t->irq_fd;
}

static const struct virtio_transport_ops mmio_transport_ops = {
    .notify_area = mmio_notify_area,
    .interrupt = mmio_interrupt,
    .direct_irq_fd = mmio_direct_irq_fd,
};

/* ---- Register access ---- */

/* 0 descriptor table, 1 driver ring, 2 device ring (virtio_core_write_queue_addr). */
static int queue_addr_which(uint64_t reg)
{
	switch (reg & ~0x7ULL) {
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		return 0;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
		return 1;
	default:
		return 2;
	}
}

static uint32_t read_register(struct virtio_mmio *t, uint64_t reg)
{
	struct virtio_core *c = t->core;
	struct virtq *vq = virtio_core_selected_queue(c);

	switch (reg) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->dev->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return virtio_core_read_device_features(c);
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq ? vq->max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return vq ? vq->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return virtio_core_read_isr(c) |
		       (mmio_direct_irq_fd(t, 0) >= 0 ? (uint32_t)VIRTIO_ISR_QUEUE : 0);
	case VIRTIO_MMIO_STATUS:
		return virtio_core_status(c);
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return atomic_load(&c->state.config_generation);
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		return virtio_core_read_queue_addr(c, queue_addr_which(reg), reg & 4);
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return ~0U; /* no shared memory region has this (or any) id */
	case VIRTIO_MMIO_QUEUE_RESET:
		return 0; /* VIRTIO_F_RING_RESET is not offered */
	}
	virtio_core_log_once(c, VIRTIO_LOGGED_REGISTER, warn,
			     "read of register %#llx, which is not readable",
			     (unsigned long long)reg);
	return 0;
}

static void write_register(struct virtio_mmio *t, uint64_t reg, uint32_t value)
{
	struct virtio_core *c = t->core;

	switch (reg) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		c->state.device_features_sel = value;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		c->state.driver_features_sel = value;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		virtio_core_write_driver_features(c, value);
		return;
	case VIRTIO_MMIO_QUEUE_SEL:
		c->state.queue_sel = value;
		return;
	case VIRTIO_MMIO_QUEUE_NUM:
		virtio_core_write_queue_size(c, value);
		return;
	case VIRTIO_MMIO_QUEUE_READY:
		virtio_core_write_queue_ready(c, value);
		return;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		virtio_core_write_queue_addr(c, queue_addr_which(reg), reg & 4, value);
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		virtio_core_notify(c, value);
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		virtio_core_ack_isr(c, value);
		return;
	case VIRTIO_MMIO_STATUS:
		virtio_core_write_status(c, value);
		if (value == 0)
			t->shm_sel = 0;
		if (t->batch_ack && !t->batch_ack_asked &&
		    (virtio_core_status(c) & VIRTIO_STATUS_DRIVER_OK)) {
			t->batch_ack_asked = true;
			/* Refused (-ENOTSUP: no coalesced MMIO): acknowledgements exit as before. */
			t->batch_ack(t->batch_ack_ctx, true);
		}
		return;
	case VIRTIO_MMIO_SHM_SEL:
		t->shm_sel = value;
		return;
	}
	virtio_core_log_once(c, VIRTIO_LOGGED_REGISTER, warn,
			     "write of %#x to register %#llx, which is not writable", value,
			     (unsigned long long)reg);
}

static bool valid_width(uint32_t len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

/* Registers take aligned 32-bit accesses; config space 1, 2, 4 or 8 bytes (valid_width). */
static bool register_access_ok(struct virtio_mmio *t, uint64_t offset, uint32_t len, bool is_write)
{
	if (offset >= VIRTIO_MMIO_CONFIG) {
		virtio_core_log_once(t->core, VIRTIO_LOGGED_WIDTH, warn,
				     "%u-byte config %s at %#llx; %s", len,
				     is_write ? "write" : "read", (unsigned long long)offset,
				     is_write ? "ignored" : "read as 0");
		return false;
	}
	if (len != 4 || (offset & 3)) {
		virtio_core_log_once(t->core, VIRTIO_LOGGED_WIDTH, warn,
				     "%u-byte %s at %#llx: registers are 32-bit; %s", len,
				     is_write ? "write" : "read", (unsigned long long)offset,
				     is_write ? "ignored" : "read as 0");
		return false;
	}
	return true;
}

static void mmio_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	struct virtio_core *c = t->core;

	memset(data, 0, len);
	if (offset >= VIRTIO_MMIO_CONFIG && valid_width(len)) {
		virtio_core_lock(c);
		virtio_core_config_read(c, offset - VIRTIO_MMIO_CONFIG, data, len);
		virtio_core_unlock(c);
		return;
	}
	if (!register_access_ok(t, offset, len, false))
		return;
	virtio_core_lock(c);
	*(uint32_t *)data = read_register(t, offset);
	virtio_core_unlock(c);
}

static void mmio_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct virtio_mmio *t = opaque;
	struct virtio_core *c = t->core;
	uint32_t value;

	if (offset >= VIRTIO_MMIO_CONFIG && valid_width(len)) {
		virtio_core_lock(c);
		virtio_core_config_write(c, offset - VIRTIO_MMIO_CONFIG, data, len);
		virtio_core_unlock(c);
		return;
	}
	if (!register_access_ok(t, offset, len, true))
		return;
	memcpy(&value, data, 4);
	/* A kick needs no transport state: keep it off the lock. */
	if (offset == VIRTIO_MMIO_QUEUE_NOTIFY) {
		virtio_core_notify(c, value);
		return;
	}
	virtio_core_lock(c);
	write_register(t, offset, value);
	virtio_core_unlock(c);
}

const struct bus_device_ops virtio_mmio_ops = {.read = mmio_read, .write = mmio_write};

/* ---- Creation and teardown ---- */

static int assign_irqfd(struct virtio_mmio *t, bool assign)
{
	struct kvm_irqfd irqfd = {
	    .fd = t->irq_fd,
	    .gsi = t->gsi,
	    .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(t->vm_fd, KVM_IRQFD, &irqfd) < 0 ? -errno : 0;
}

void virtio_mmio_batch_ack(struct virtio_mmio *t, int (*set)(void *ctx, bool on), void *ctx)
{
	t->batch_ack = set;
	t->batch_ack_ctx = ctx;
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
	__atomic_store_n(&t->irqfd_assigned, true, __ATOMIC_RELEASE);
	return 0;
}

/* Takes the registers off the bus (returns once no vCPU is inside) and the irqfd off KVM. */
static void unplug(struct virtio_mmio *t)
{
	if (t->on_bus)
		bus_unregister(t->bus, t->base);
	t->on_bus = false;
	if (t->irqfd_assigned) {
		int err = assign_irqfd(t, false);

		if (err)
			log_warn("%s: KVM_IRQFD deassign: %s", t->dev->name, strerror(-err));
	}
	__atomic_store_n(&t->irqfd_assigned, false, __ATOMIC_RELEASE);
}

static void free_transport(struct virtio_mmio *t)
{
	if (t->irq_fd >= 0)
		close(t->irq_fd);
	free(t);
}

struct virtio_mmio *virtio_mmio_create(const struct virtio_mmio_params *p,
				       struct virtio_device *dev)
{
	struct virtio_core_params cp = {
	    .vm_fd = p->vm_fd,
	    .mem = p->mem,
	    .max_config_size = VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG,
	    .ops = &mmio_transport_ops,
	    .transport_name = "virtio-mmio",
	    .guest_option = "CONFIG_VIRTIO_MMIO",
	    .guest_module = "virtio_mmio",
	};
	struct virtio_mmio *t = calloc(1, sizeof(*t));
	int err;

	if (!t) {
		log_error("%s: out of memory", dev->name);
		return NULL;
	}
	t->dev = dev;
	t->bus = p->bus;
	t->vm_fd = p->vm_fd;
	t->base = p->base;
	t->gsi = p->gsi;
	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irq_fd < 0) {
		log_error("%s: interrupt eventfd: %s", dev->name, strerror(errno));
		free_transport(t);
		return NULL;
	}
	cp.transport = t;
	t->core = virtio_core_create(&cp, dev);
	if (!t->core) {
		free_transport(t);
		return NULL;
	}
	virtio_core_bind_notifiers(t->core);
	err = bus_register(t->bus, t->base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops, t, dev->name);
	if (err) {
		log_error("%s: cannot register MMIO range %#llx+%#x: %s", dev->name,
			  (unsigned long long)t->base, VIRTIO_MMIO_SIZE, strerror(-err));
		virtio_core_detach(t->core);
		free_transport(t);
		return NULL;
	}
	t->on_bus = true;
	log_debug("%s: virtio-mmio at %#llx, GSI %u", dev->name, (unsigned long long)t->base,
		  t->gsi);
	return t;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	if (!t)
		return;
	unplug(t);
	virtio_core_destroy(t->core); /* resets and destroys the device */
	free_transport(t);
}

int virtio_mmio_irq_eventfd(const struct virtio_mmio *t)
{
	return t->irq_fd;
}
