#include "virtio/core.h"

#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <linux/kvm.h>
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

static void eventfd_signal(int fd)
{
	/* Only fails when the counter would overflow: the reader is gone, nothing to tell. */
	if (eventfd_write(fd, 1) < 0 && errno != EAGAIN)
		log_error("virtio: eventfd write: %s", strerror(errno));
}

static bool device_failed(const struct virtio_device *dev)
{
	return __atomic_load_n(&dev->failed, __ATOMIC_ACQUIRE);
}

uint64_t virtio_core_offered_features(struct virtio_core *c)
{
	struct virtio_device *dev = c->dev;

	return (dev->ops->features ? dev->ops->features(dev) : 0) | TRANSPORT_FEATURES;
}

/* ---- Interrupts and failure, called by the device (usually on its worker thread) ---- */

static int isr_cause_index(uint32_t cause)
{
	return cause == VIRTIO_ISR_CONFIG;
}

/* The count first, then the bit: whoever sees the bit set sees the count that goes with it
 * (virtio_core_ack_isr depends on that order). */
static void raise_interrupt(struct virtio_core *c, uint32_t cause, int q)
{
	atomic_fetch_add(&c->isr_raised[isr_cause_index(cause)], 1);
	atomic_fetch_or(&c->state.isr, cause);
	c->ops->interrupt(c->transport, q);
}

static void core_signal_used(struct virtio_device *dev, uint16_t q)
{
	struct virtio_core *c = dev->transport;

	if (q < dev->ops->nr_queues &&
	    (dev->ops->backend_queues || virtq_should_notify(&dev->queues[q])))
		raise_interrupt(c, VIRTIO_ISR_QUEUE, q);
}

static int core_kick_fd(struct virtio_device *dev, uint16_t q)
{
	struct virtio_core *c = dev->transport;

	return q < dev->ops->nr_queues ? c->notifiers[q].fd : -1;
}

static int core_direct_irq_fd(struct virtio_device *dev, uint16_t q)
{
	struct virtio_core *c = dev->transport;

	if (q >= dev->ops->nr_queues || !c->ops->direct_irq_fd)
		return -1;
	return c->ops->direct_irq_fd(c->transport, q);
}

void virtio_core_direct_irq_changed(struct virtio_core *c)
{
	struct virtio_device *dev = c->dev;

	if (dev->ops->direct_irq_changed)
		dev->ops->direct_irq_changed(dev);
}

static void core_signal_config(struct virtio_device *dev)
{
	struct virtio_core *c = dev->transport;

	atomic_fetch_add(&c->state.config_generation, 1);
	raise_interrupt(c, VIRTIO_ISR_CONFIG, VIRTIO_CONFIG_IRQ);
}

/* virtio_dev_fail() has logged the reason. */
static void core_fail(struct virtio_device *dev, int q, const char *reason)
{
	struct virtio_core *c = dev->transport;

	__atomic_store_n(&dev->failed, true, __ATOMIC_RELEASE);
	if (!(atomic_fetch_or(&c->state.status, VIRTIO_STATUS_DEVICE_NEEDS_RESET) &
	      VIRTIO_STATUS_DEVICE_NEEDS_RESET))
		core_signal_config(dev);
}

uint32_t virtio_core_read_isr(struct virtio_core *c)
{
	/* The counts before the bits: a cause counted here had its buffers used before it was
	 * raised, so the driver finds them when it goes through its queues after this read. */
	c->isr_read[0] = atomic_load(&c->isr_raised[0]);
	c->isr_read[1] = atomic_load(&c->isr_raised[1]);
	return atomic_load(&c->state.isr);
}

void virtio_core_ack_isr(struct virtio_core *c, uint32_t bits)
{
	static const uint32_t causes[2] = {VIRTIO_ISR_QUEUE, VIRTIO_ISR_CONFIG};

	for (int i = 0; i < 2; i++) {
		uint32_t n;

		if (!(bits & causes[i]))
			continue;
		n = atomic_load(&c->isr_raised[i]);
		if (n != c->isr_read[i])
			continue; /* raised again since the driver read it: it has more to see */
		atomic_fetch_and(&c->state.isr, ~causes[i]);
		/* Raised while it was being cleared: it stays (its bit may have landed first). */
		if (atomic_load(&c->isr_raised[i]) != n)
			atomic_fetch_or(&c->state.isr, causes[i]);
	}
}

uint32_t virtio_core_take_isr(struct virtio_core *c)
{
	return atomic_exchange(&c->state.isr, 0);
}

/* ---- The worker thread's side ---- */

static void queue_kicked(void *ctx, uint32_t events)
{
	struct virtio_queue_notifier *n = ctx;
	struct virtio_core *c = n->core;
	struct virtio_device *dev = c->dev;
	uint64_t count;

	if (read(n->fd, &count, sizeof(count)) < 0)
		return;
	if (!atomic_load(&c->dma_allowed)) {
		virtio_core_log_once(c, VIRTIO_LOGGED_DMA, warn,
				     "queue %u kicked while bus mastering is off; ignored", n->q);
		return;
	}
	if (c->active && !device_failed(dev))
		dev->ops->queue_notify(dev, n->q);
}

struct activation {
	struct virtio_core *c;
	int result;
};

static void activate_on_worker(void *arg)
{
	struct activation *a = arg;
	struct virtio_core *c = a->c;
	struct virtio_device *dev = c->dev;

	a->result = dev->ops->activate ? dev->ops->activate(dev) : 0;
	if (a->result < 0)
		return;
	c->active = true;
	/* Kicks that came before DRIVER_OK were dropped (a driver may fill a queue before it sets
	 * DRIVER_OK): have the device look at every ready queue once. */
	for (uint16_t q = 0; q < dev->ops->nr_queues && !device_failed(dev); q++)
		if (dev->queues[q].ready)
			dev->ops->queue_notify(dev, q);
}

static void reset_on_worker(void *arg)
{
	struct virtio_core *c = arg;
	struct virtio_device *dev = c->dev;

	c->active = false;
	if (dev->ops->reset)
		dev->ops->reset(dev);
	for (uint16_t q = 0; q < dev->ops->nr_queues; q++)
		virtq_reset(&dev->queues[q]);
	dev->features = 0;
	__atomic_store_n(&dev->failed, false, __ATOMIC_RELEASE);
}

/* ---- Status and feature negotiation (vCPU thread, lock held) ---- */

static void reset_device(struct virtio_core *c)
{
	struct virtio_core_state *s = &c->state;
	int err = event_loop_call(c->loop, reset_on_worker, c);

	if (err)
		log_error("%s: reset: %s", c->dev->name, strerror(-err));
	s->device_features_sel = s->driver_features_sel = s->queue_sel = 0;
	s->driver_features = 0;
	s->driver_features_beyond_64 = false;
	atomic_store(&s->isr, 0);
	c->isr_read[0] = atomic_load(&c->isr_raised[0]);
	c->isr_read[1] = atomic_load(&c->isr_raised[1]);
	atomic_store(&s->status, 0);
}

static bool features_acceptable(struct virtio_core *c)
{
	struct virtio_core_state *s = &c->state;
	uint64_t unoffered = s->driver_features & ~virtio_core_offered_features(c);

	if (unoffered || s->driver_features_beyond_64) {
		virtio_core_log_once(
		    c, VIRTIO_LOGGED_NEGOTIATION, warn,
		    "driver accepted features not offered (%#llx%s); FEATURES_OK refused",
		    (unsigned long long)unoffered,
		    s->driver_features_beyond_64 ? " and bits above 63" : "");
		return false;
	}
	if (!(s->driver_features & (1ULL << VIRTIO_F_VERSION_1))) {
		virtio_core_log_once(c, VIRTIO_LOGGED_NEGOTIATION, warn,
				     "driver did not accept VIRTIO_F_VERSION_1 (a legacy driver?); "
				     "FEATURES_OK refused");
		return false;
	}
	return true;
}

/* DRIVER_OK: the queues the driver enabled go live, then the device. */
static void activate_device(struct virtio_core *c)
{
	struct virtio_device *dev = c->dev;
	struct activation a = {.c = c};
	int err;

	dev->features = c->state.driver_features;
	for (uint16_t q = 0; q < dev->ops->nr_queues; q++) {
		struct virtq *vq = &dev->queues[q];

		if (vq->ready && virtq_activate(vq, dev->mem, dev->features) < 0) {
			virtio_dev_fail(dev, q, "%s", vq->error);
			return;
		}
	}
	err = event_loop_call(c->loop, activate_on_worker, &a);
	if (err == 0)
		err = a.result;
	if (err < 0)
		virtio_dev_fail(dev, -1, "activation failed: %s", strerror(-err));
}

void virtio_core_write_status(struct virtio_core *c, uint32_t value)
{
	struct virtio_core_state *s = &c->state;
	uint32_t old = atomic_load(&s->status);
	uint32_t set = value & ~old & DRIVER_STATUS_BITS;
	uint32_t now = old | set;

	if (value == 0) {
		reset_device(c);
		return;
	}
	if (old & ~value & DRIVER_STATUS_BITS)
		virtio_core_log_once(c, VIRTIO_LOGGED_STATE, warn,
				     "driver cleared status bits %#x without a reset; ignored",
				     old & ~value & DRIVER_STATUS_BITS);

	if (set & VIRTIO_STATUS_FEATURES_OK) {
		if (!(now & VIRTIO_STATUS_DRIVER) || (old & VIRTIO_STATUS_DRIVER_OK) ||
		    !features_acceptable(c)) {
			set &= ~VIRTIO_STATUS_FEATURES_OK;
		} else {
			/* Config space may depend on the features from here on. */
			c->dev->features = s->driver_features;
		}
	}
	if ((set & VIRTIO_STATUS_DRIVER_OK) && !((old | set) & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_core_log_once(c, VIRTIO_LOGGED_STATE, warn,
				     "DRIVER_OK without FEATURES_OK; ignored");
		set &= ~VIRTIO_STATUS_DRIVER_OK;
	}

	atomic_fetch_or(&s->status, set & ~VIRTIO_STATUS_DRIVER_OK);
	if (set & VIRTIO_STATUS_DRIVER_OK) {
		if (device_failed(c->dev))
			virtio_core_log_once(c, VIRTIO_LOGGED_STATE, warn,
					     "DRIVER_OK on a device that needs a reset");
		else
			activate_device(c);
		atomic_fetch_or(&s->status, VIRTIO_STATUS_DRIVER_OK);
	}
	atomic_fetch_or(&c->status_seen, atomic_load(&s->status));
}

uint32_t virtio_core_status(struct virtio_core *c)
{
	return atomic_load(&c->state.status);
}

uint32_t virtio_core_status_seen(struct virtio_core *c)
{
	/* The current status too: a restored device got its status without a driver's write. */
	return atomic_load(&c->status_seen) | atomic_load(&c->state.status);
}

uint32_t virtio_core_read_device_features(struct virtio_core *c)
{
	if (c->state.device_features_sel > 1)
		return 0;
	return virtio_core_offered_features(c) >> (32 * c->state.device_features_sel);
}

uint32_t virtio_core_read_driver_features(struct virtio_core *c)
{
	if (c->state.driver_features_sel > 1)
		return 0;
	return c->state.driver_features >> (32 * c->state.driver_features_sel);
}

void virtio_core_write_driver_features(struct virtio_core *c, uint32_t value)
{
	struct virtio_core_state *s = &c->state;
	uint32_t status = atomic_load(&s->status);

	if (!(status & VIRTIO_STATUS_DRIVER) || (status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_core_log_once(c, VIRTIO_LOGGED_FEATURES, warn,
				     "DriverFeatures written in status %#x (not between DRIVER and "
				     "FEATURES_OK); ignored",
				     status);
		return;
	}
	switch (s->driver_features_sel) {
	case 0:
		s->driver_features = (s->driver_features & ~0xffffffffULL) | value;
		break;
	case 1:
		s->driver_features = (s->driver_features & 0xffffffffULL) | (uint64_t)value << 32;
		break;
	default:
		if (value)
			s->driver_features_beyond_64 = true;
		break;
	}
}

/* ---- Queue configuration (vCPU thread, lock held) ---- */

struct virtq *virtio_core_selected_queue(struct virtio_core *c)
{
	return c->state.queue_sel < c->dev->ops->nr_queues ? &c->dev->queues[c->state.queue_sel]
							   : NULL;
}

struct virtq *virtio_core_configurable_queue(struct virtio_core *c, const char *reg, bool ready_ok)
{
	uint32_t status = atomic_load(&c->state.status);
	uint32_t sel = c->state.queue_sel;
	struct virtq *vq = virtio_core_selected_queue(c);

	if (!vq) {
		virtio_core_log_once(c, VIRTIO_LOGGED_QUEUE, warn,
				     "%s written for queue %u, which does not exist", reg, sel);
		return NULL;
	}
	if (!(status & VIRTIO_STATUS_DRIVER) || (status & VIRTIO_STATUS_DRIVER_OK) ||
	    (vq->ready && !ready_ok)) {
		virtio_core_log_once(c, VIRTIO_LOGGED_STATE, warn,
				     "%s written for queue %u in status %#x%s; ignored", reg, sel,
				     status, vq->ready ? " (queue ready)" : "");
		return NULL;
	}
	return vq;
}

void virtio_core_write_queue_size(struct virtio_core *c, uint32_t value)
{
	struct virtq *vq = virtio_core_configurable_queue(c, "the queue size", false);

	if (!vq)
		return;
	if (value == 0 || value > vq->max_size || (value & (value - 1))) {
		virtio_core_log_once(c, VIRTIO_LOGGED_QUEUE, warn,
				     "queue %u: size %u is not a power of 2 up to %u; ignored",
				     c->state.queue_sel, value, vq->max_size);
		return;
	}
	vq->size = value;
}

void virtio_core_write_queue_ready(struct virtio_core *c, uint32_t value)
{
	struct virtq *vq = virtio_core_selected_queue(c);

	/* Drivers tearing down after a reset write 0 to queues that are not ready: no news. */
	if (value == 0 && vq && !vq->ready)
		return;
	vq = virtio_core_configurable_queue(c, "the queue enable", true);
	if (vq)
		vq->ready = value & 1;
}

static uint64_t *queue_addr_field(struct virtq *vq, int which)
{
	switch (which) {
	case 0:
		return &vq->desc_gpa;
	case 1:
		return &vq->avail_gpa;
	default:
		return &vq->used_gpa;
	}
}

void virtio_core_write_queue_addr(struct virtio_core *c, int which, bool high, uint32_t value)
{
	struct virtq *vq = virtio_core_configurable_queue(c, "a queue address", false);
	uint64_t *field;

	if (!vq)
		return;
	field = queue_addr_field(vq, which);
	if (high)
		*field = (*field & 0xffffffffULL) | (uint64_t)value << 32;
	else
		*field = (*field & ~0xffffffffULL) | value;
}

uint32_t virtio_core_read_queue_addr(struct virtio_core *c, int which, bool high)
{
	struct virtq *vq = virtio_core_selected_queue(c);
	uint64_t v;

	if (!vq)
		return 0;
	v = *queue_addr_field(vq, which);
	return high ? v >> 32 : (uint32_t)v;
}

void virtio_core_notify(struct virtio_core *c, uint32_t value)
{
	/* With an ioeventfd per queue, KVM handles valid kicks itself and only others land here. */
	if (value >= c->dev->ops->nr_queues) {
		virtio_core_log_once(c, VIRTIO_LOGGED_NOTIFY, warn,
				     "notification for queue %u, which does not exist", value);
		return;
	}
	eventfd_signal(c->notifiers[value].fd);
}

/* ---- Config space (vCPU thread, lock held) ---- */

static bool config_access_ok(struct virtio_core *c, uint64_t off, uint32_t len, bool is_write)
{
	if (off + len > c->dev->ops->config_size) {
		virtio_core_log_once(c, VIRTIO_LOGGED_CONFIG, warn,
				     "config %s of %u bytes at %#llx beyond its %u bytes; ignored",
				     is_write ? "write" : "read", len, (unsigned long long)off,
				     c->dev->ops->config_size);
		return false;
	}
	return true;
}

void virtio_core_config_read(struct virtio_core *c, uint64_t off, void *data, uint32_t len)
{
	struct virtio_device *dev = c->dev;

	memset(data, 0, len);
	if (!dev->ops->config_read || !config_access_ok(c, off, len, false))
		return;
	if (len == 8) {
		dev->ops->config_read(dev, off, data, 4);
		dev->ops->config_read(dev, off + 4, (uint8_t *)data + 4, 4);
	} else {
		dev->ops->config_read(dev, off, data, len);
	}
}

void virtio_core_config_write(struct virtio_core *c, uint64_t off, const void *data, uint32_t len)
{
	struct virtio_device *dev = c->dev;

	if (!config_access_ok(c, off, len, true))
		return;
	if (!dev->ops->config_write) {
		virtio_core_log_once(c, VIRTIO_LOGGED_CONFIG, warn,
				     "config write at %#llx: config space is read-only; ignored",
				     (unsigned long long)off);
		return;
	}
	if (len == 8) {
		dev->ops->config_write(dev, off, data, 4);
		dev->ops->config_write(dev, off + 4, (const uint8_t *)data + 4, 4);
	} else {
		dev->ops->config_write(dev, off, data, len);
	}
}

/* ---- DMA permission ---- */

void virtio_core_set_dma_allowed(struct virtio_core *c, bool allowed)
{
	bool was = atomic_exchange(&c->dma_allowed, allowed);

	if (was && !allowed && (atomic_load(&c->state.status) & VIRTIO_STATUS_DRIVER_OK))
		virtio_dev_fail(c->dev, -1,
				"bus mastering turned off while the driver runs the device");
}

/* ---- Notifiers ---- */

static int assign_ioeventfd(struct virtio_core *c, struct virtio_queue_notifier *n, bool assign)
{
	struct kvm_ioeventfd io = {
	    .datamatch = n->area.data,
	    .addr = n->area.addr,
	    .len = n->area.len,
	    .fd = n->fd,
	    .flags = (n->area.datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
		     (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(c->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

void virtio_core_unbind_notifiers(struct virtio_core *c)
{
	struct virtio_device *dev = c->dev;

	for (uint16_t q = 0; c->notifiers && q < dev->ops->nr_queues; q++) {
		struct virtio_queue_notifier *n = &c->notifiers[q];
		int err;

		if (!n->ioeventfd)
			continue;
		err = assign_ioeventfd(c, n, false);
		if (err)
			log_warn("%s: queue %u: KVM_IOEVENTFD deassign: %s", dev->name, q,
				 strerror(-err));
		n->ioeventfd = false;
	}
}

void virtio_core_bind_notifiers(struct virtio_core *c)
{
	struct virtio_device *dev = c->dev;
	int via_kvm = 0;

	virtio_core_unbind_notifiers(c);
	if (c->vm_fd < 0)
		return;
	for (uint16_t q = 0; q < dev->ops->nr_queues; q++) {
		struct virtio_queue_notifier *n = &c->notifiers[q];
		int err;

		if (!c->ops->notify_area(c->transport, q, &n->area))
			continue;
		err = assign_ioeventfd(c, n, true);
		if (err == 0) {
			n->ioeventfd = true;
			via_kvm++;
		} else {
			log_debug("%s: queue %u: KVM_IOEVENTFD at %#llx refused (%s)", dev->name, q,
				  (unsigned long long)n->area.addr, strerror(-err));
		}
	}
	if (via_kvm == dev->ops->nr_queues)
		log_debug("%s: queue notifications through KVM ioeventfds", dev->name);
	else
		log_debug("%s: queue notifications through exits for %d of %u queues", dev->name,
			  dev->ops->nr_queues - via_kvm, dev->ops->nr_queues);
}

static int setup_notifiers(struct virtio_core *c)
{
	struct virtio_device *dev = c->dev;
	int err;

	for (uint16_t q = 0; q < dev->ops->nr_queues; q++) {
		struct virtio_queue_notifier *n = &c->notifiers[q];

		n->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->fd < 0) {
			err = -errno;
			log_error("%s: queue %u: eventfd: %s", dev->name, q, strerror(errno));
			return err;
		}
		/* A backend's queues: the backend reads the kicks. */
		if (dev->ops->backend_queues)
			continue;
		err = event_loop_add(c->loop, n->fd, EPOLLIN, queue_kicked, n);
		if (err) {
			log_error("%s: queue %u: cannot watch its eventfd: %s", dev->name, q,
				  strerror(-err));
			return err;
		}
		n->watched = true;
	}
	return 0;
}

/* ---- Creation and teardown ---- */

static bool ops_valid(const struct virtio_device *dev, uint32_t max_config_size)
{
	const struct virtio_device_ops *ops = dev->ops;
	uint16_t max = ops->queue_max_size;

	return ops->nr_queues > 0 && max > 0 && max <= VIRTQ_MAX_SIZE && !(max & (max - 1)) &&
	       ops->config_size <= max_config_size && ops->queue_notify;
}

/* "virtio-blk vda" -> "vio-blk-vda" (the kernel keeps 15 characters of a thread name). */
static void loop_name(const struct virtio_device *dev, char *name, size_t size)
{
	const char *s = dev->name;

	if (strncmp(s, "virtio-", 7) == 0)
		s += 7;
	snprintf(name, size, "vio-%s", s);
	for (char *ch = name; *ch; ch++)
		if (*ch == ' ')
			*ch = '-';
}

/* Stops watching, unbinds and stops the worker (resetting the device first when asked); frees
 * what the core allocated, not the device. */
static void teardown(struct virtio_core *c, bool reset)
{
	struct virtio_device *dev = c->dev;
	uint16_t nr = dev->ops->nr_queues;

	virtio_core_unbind_notifiers(c);
	for (uint16_t q = 0; c->notifiers && q < nr; q++)
		if (c->notifiers[q].watched)
			event_loop_del(c->loop, c->notifiers[q].fd);
	if (c->loop) {
		if (reset)
			event_loop_call(c->loop, reset_on_worker, c);
		event_loop_destroy(c->loop);
	}
	dev->loop = NULL;
}

static void free_core(struct virtio_core *c, struct virtq *queues, uint16_t nr)
{
	for (uint16_t q = 0; c->notifiers && q < nr; q++)
		if (c->notifiers[q].fd >= 0)
			close(c->notifiers[q].fd);
	free(c->notifiers);
	free(queues);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct virtio_core *virtio_core_create(const struct virtio_core_params *p,
				       struct virtio_device *dev)
{
	uint16_t nr = dev->ops->nr_queues;
	struct virtio_core *c;
	char name[64];

	if (!ops_valid(dev, p->max_config_size)) {
		log_error("%s: invalid device description (queues, queue size, config size)",
			  dev->name);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	c->dev = dev;
	c->ops = p->ops;
	c->transport = p->transport;
	c->transport_name = p->transport_name;
	c->guest_option = p->guest_option;
	c->guest_module = p->guest_module;
	c->vm_fd = p->vm_fd;
	atomic_init(&c->dma_allowed, true);
	pthread_mutex_init(&c->lock, NULL);
	c->notifiers = calloc(nr, sizeof(*c->notifiers));
	dev->queues = calloc(nr, sizeof(*dev->queues));
	if (!c->notifiers || !dev->queues) {
		free_core(c, dev->queues, nr);
		dev->queues = NULL;
		goto nomem;
	}
	for (uint16_t q = 0; q < nr; q++) {
		c->notifiers[q] = (struct virtio_queue_notifier){.core = c, .q = q, .fd = -1};
		dev->queues[q].max_size = dev->ops->queue_max_size;
		virtq_reset(&dev->queues[q]);
	}
	dev->mem = p->mem;
	dev->features = 0;
	dev->failed = false;
	dev->transport = c;
	dev->signal_used = core_signal_used;
	dev->signal_config = core_signal_config;
	dev->fail = core_fail;
	dev->kick_fd = core_kick_fd;
	dev->direct_irq_fd = core_direct_irq_fd;

	loop_name(dev, name, sizeof(name));
	c->loop = event_loop_create(name);
	if (!c->loop)
		goto fail;
	dev->loop = c->loop;
	if (setup_notifiers(c) < 0)
		goto fail;
	return c;

fail:
	teardown(c, false);
	free_core(c, dev->queues, nr);
	dev->queues = NULL;
	dev->transport = NULL;
	return NULL;
nomem:
	log_error("%s: out of memory", dev->name);
	return NULL;
}

void virtio_core_detach(struct virtio_core *c)
{
	struct virtio_device *dev;

	if (!c)
		return;
	dev = c->dev;
	teardown(c, false);
	free_core(c, dev->queues, dev->ops->nr_queues);
	dev->queues = NULL;
	dev->transport = NULL;
}

void virtio_core_destroy(struct virtio_core *c)
{
	struct virtio_device *dev;
	struct virtq *queues;
	uint16_t nr;

	if (!c)
		return;
	dev = c->dev;
	queues = dev->queues;
	nr = dev->ops->nr_queues;
	teardown(c, true);
	if (dev->ops->destroy)
		dev->ops->destroy(dev); /* frees dev: nothing of it is used below */
	free_core(c, queues, nr);
}
