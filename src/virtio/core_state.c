#include "virtio/core_state.h"

#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/log.h"
#include "base/state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KNOWN_STATUS_BITS                                                                          \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED)

/* One queue's part of the saved state. */
struct saved_queue {
	uint16_t size;
	bool ready;
	uint64_t desc, avail, used;
	uint16_t last_avail_idx, used_idx, signalled_used;
	bool signalled_used_valid;
};

struct saved_core {
	uint32_t device_id;
	uint16_t nr_queues;
	uint32_t status, isr, config_generation;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint64_t driver_features, features;
	bool beyond_64;
	struct saved_queue *queues;
};

struct save_call {
	struct virtio_core *c;
	uint16_t tag;
	struct state_writer *w;
};

static void save_on_worker(void *arg)
{
	struct save_call *a = arg;
	struct virtio_core *c = a->c;
	struct virtio_device *dev = c->dev;
	struct virtio_core_state *s = &c->state;
	struct state_writer *w = a->w;

	/* Requests the device took from the rings finish first: their used entries and the
	 * indices below then agree with guest memory, and nothing completes after the save. */
	if (dev->ops->quiesce)
		dev->ops->quiesce(dev);
	state_begin(w, a->tag, VIRTIO_CORE_STATE_VERSION);
	state_put_u32(w, dev->ops->device_id);
	state_put_u16(w, dev->ops->nr_queues);
	state_put_u32(w, atomic_load(&s->status));
	state_put_u32(w, atomic_load(&s->isr));
	state_put_u32(w, atomic_load(&s->config_generation));
	state_put_u32(w, s->device_features_sel);
	state_put_u32(w, s->driver_features_sel);
	state_put_u32(w, s->queue_sel);
	state_put_u64(w, s->driver_features);
	state_put_bool(w, s->driver_features_beyond_64);
	state_put_u64(w, dev->features);
	for (uint16_t q = 0; q < dev->ops->nr_queues; q++) {
		const struct virtq *vq = &dev->queues[q];

		state_put_u16(w, vq->size);
		state_put_bool(w, vq->ready);
		state_put_u64(w, vq->desc_gpa);
		state_put_u64(w, vq->avail_gpa);
		state_put_u64(w, vq->used_gpa);
		state_put_u16(w, vq->last_avail_idx);
		state_put_u16(w, vq->used_idx);
		state_put_u16(w, vq->signalled_used);
		state_put_bool(w, vq->signalled_used_valid);
	}
	state_end(w);
}

int virtio_core_save(struct virtio_core *c, uint16_t tag, struct state_writer *w)
{
	struct save_call a = {.c = c, .tag = tag, .w = w};
	int err;

	virtio_core_lock(c);
	err = event_loop_call(c->loop, save_on_worker, &a);
	virtio_core_unlock(c);
	if (err) {
		log_error("%s: cannot save its state: %s", c->dev->name, strerror(-err));
		return err;
	}
	return state_writer_status(w);
}

struct hold_call {
	struct virtio_device *dev;
	bool held;
};

static void hold_on_worker(void *arg)
{
	struct hold_call *a = arg;

	a->dev->ops->hold(a->dev, a->held);
}

int virtio_core_hold(struct virtio_core *c, bool held)
{
	struct hold_call a = {.dev = c->dev, .held = held};
	int err = 0;

	/* The loop first when holding (no callback runs once the device's own hold is in), last
	 * when letting go (the device is whole again before its callbacks run). */
	if (held)
		err = event_loop_hold(c->loop, true);
	if (!err && c->dev->ops->hold)
		err = event_loop_call(c->loop, hold_on_worker, &a);
	if (!err && !held)
		err = event_loop_hold(c->loop, false);
	if (err)
		log_error("%s: cannot %s: %s", c->dev->name, held ? "hold it" : "let it go",
			  strerror(-err));
	return err;
}

static int read_saved(struct virtio_core *c, uint16_t tag, struct state_reader *r,
		      struct saved_core *sv)
{
	struct virtio_device *dev = c->dev;
	uint16_t version;

	if (state_open(r, tag, VIRTIO_CORE_STATE_VERSION, &version))
		return state_reader_status(r);
	state_get_u32(r, &sv->device_id);
	state_get_u16(r, &sv->nr_queues);
	if (!state_reader_status(r) &&
	    (sv->device_id != dev->ops->device_id || sv->nr_queues > dev->ops->nr_queues ||
	     sv->nr_queues < (dev->ops->min_saved_queues ? dev->ops->min_saved_queues
							 : dev->ops->nr_queues)))
		return state_refuse(r,
				    "%s: saved state of virtio device type %u with %u queues, not "
				    "type %u with %u",
				    dev->name, sv->device_id, sv->nr_queues, dev->ops->device_id,
				    dev->ops->nr_queues);
	state_get_u32(r, &sv->status);
	state_get_u32(r, &sv->isr);
	state_get_u32(r, &sv->config_generation);
	state_get_u32(r, &sv->device_features_sel);
	state_get_u32(r, &sv->driver_features_sel);
	state_get_u32(r, &sv->queue_sel);
	state_get_u64(r, &sv->driver_features);
	state_get_bool(r, &sv->beyond_64);
	state_get_u64(r, &sv->features);
	for (uint16_t q = 0; q < sv->nr_queues && !state_reader_status(r); q++) {
		struct saved_queue *sq = &sv->queues[q];

		state_get_u16(r, &sq->size);
		state_get_bool(r, &sq->ready);
		state_get_u64(r, &sq->desc);
		state_get_u64(r, &sq->avail);
		state_get_u64(r, &sq->used);
		state_get_u16(r, &sq->last_avail_idx);
		state_get_u16(r, &sq->used_idx);
		state_get_u16(r, &sq->signalled_used);
		state_get_bool(r, &sq->signalled_used_valid);
	}
	return state_close(r);
}

/* What the core itself would never hold. */
static int check_saved(struct virtio_core *c, struct state_reader *r, const struct saved_core *sv)
{
	struct virtio_device *dev = c->dev;
	uint64_t offered = virtio_core_offered_features(c);
	bool features_ok = sv->status & VIRTIO_STATUS_FEATURES_OK;

	if (sv->status & ~KNOWN_STATUS_BITS)
		return state_refuse(r, "%s: saved status %#x has unknown bits", dev->name,
				    sv->status);
	if ((sv->status & VIRTIO_STATUS_DRIVER_OK) && !features_ok)
		return state_refuse(r, "%s: saved status %#x: DRIVER_OK without FEATURES_OK",
				    dev->name, sv->status);
	if (sv->isr & ~(uint32_t)(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG))
		return state_refuse(r, "%s: saved interrupt status %#x has unknown bits", dev->name,
				    sv->isr);
	if (features_ok && ((sv->driver_features & ~offered) || sv->beyond_64 ||
			    !(sv->driver_features & (1ULL << VIRTIO_F_VERSION_1))))
		return state_refuse(
		    r, "%s: saved features %#llx were never acceptable (offered %#llx)", dev->name,
		    (unsigned long long)sv->driver_features, (unsigned long long)offered);
	if (sv->features != (features_ok ? sv->driver_features : 0))
		return state_refuse(r,
				    "%s: saved negotiated features %#llx do not follow status "
				    "%#x and driver features %#llx",
				    dev->name, (unsigned long long)sv->features, sv->status,
				    (unsigned long long)sv->driver_features);
	for (uint16_t q = 0; q < sv->nr_queues; q++) {
		uint16_t size = sv->queues[q].size;

		if (size > dev->ops->queue_max_size || (size & (size - 1)))
			return state_refuse(r,
					    "%s: saved queue %u has size %u (a power of 2 up to %u "
					    "belongs)",
					    dev->name, q, size, dev->ops->queue_max_size);
	}
	return 0;
}

struct activation {
	struct virtio_core *c;
	int result;
};

/* As DRIVER_OK does: the device goes live, then looks at every ready queue once (the driver may
 * have added buffers after the save). */
static void activate_on_worker(void *arg)
{
	struct activation *a = arg;
	struct virtio_device *dev = a->c->dev;

	a->result = dev->ops->activate ? dev->ops->activate(dev) : 0;
	if (a->result < 0)
		return;
	a->c->active = true;
	for (uint16_t q = 0; q < dev->ops->nr_queues && !dev->failed; q++)
		if (dev->queues[q].ready)
			dev->ops->queue_notify(dev, q);
	if (dev->ops->restored && !dev->failed)
		dev->ops->restored(dev);
}

/* With the lock held and the device just reset. */
static int apply_saved(struct virtio_core *c, struct state_reader *r, const struct saved_core *sv)
{
	struct virtio_device *dev = c->dev;
	struct virtio_core_state *s = &c->state;
	bool failed = sv->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	bool live = (sv->status & VIRTIO_STATUS_DRIVER_OK) && !failed;
	struct activation a = {.c = c};
	int err;

	s->device_features_sel = sv->device_features_sel;
	s->driver_features_sel = sv->driver_features_sel;
	s->queue_sel = sv->queue_sel;
	s->driver_features = sv->driver_features;
	s->driver_features_beyond_64 = sv->beyond_64;
	atomic_store(&s->config_generation, sv->config_generation);
	dev->features = sv->features;
	for (uint16_t q = 0; q < sv->nr_queues; q++) {
		const struct saved_queue *sq = &sv->queues[q];
		struct virtq *vq = &dev->queues[q];

		vq->size = sq->size;
		vq->ready = sq->ready;
		vq->desc_gpa = sq->desc;
		vq->avail_gpa = sq->avail;
		vq->used_gpa = sq->used;
		if (!live || !vq->ready)
			continue;
		if (virtq_activate(vq, dev->mem, dev->features) < 0)
			return state_refuse(r, "%s: saved queue %u: %s", dev->name, q, vq->error);
		vq->last_avail_idx = sq->last_avail_idx;
		vq->used_idx = sq->used_idx;
		vq->signalled_used = sq->signalled_used;
		vq->signalled_used_valid = sq->signalled_used_valid;
	}
	if (failed)
		__atomic_store_n(&dev->failed, true, __ATOMIC_RELEASE);
	atomic_store(&s->status, sv->status);
	atomic_store(&s->isr, sv->isr);
	if (!live)
		return 0;
	err = event_loop_call(c->loop, activate_on_worker, &a);
	if (err == 0)
		err = a.result;
	/* As at DRIVER_OK: a device that cannot go live (its backend is gone) needs a reset; the
	 * restore itself went through. */
	if (err < 0)
		virtio_dev_fail(dev, -1, "activation after restore failed: %s", strerror(-err));
	return 0;
}

/* Interrupts pending at the save: raised again (the guest may not have seen them). */
static void raise_pending(struct virtio_core *c, uint32_t isr)
{
	struct virtio_device *dev = c->dev;

	if (isr & VIRTIO_ISR_CONFIG)
		c->ops->interrupt(c->transport, VIRTIO_CONFIG_IRQ);
	for (uint16_t q = 0; (isr & VIRTIO_ISR_QUEUE) && q < dev->ops->nr_queues; q++)
		if (dev->queues[q].ready)
			c->ops->interrupt(c->transport, q);
}

int virtio_core_restore(struct virtio_core *c, uint16_t tag, struct state_reader *r)
{
	struct virtio_device *dev = c->dev;
	struct saved_core sv = {0};
	int ret;

	sv.queues = calloc(dev->ops->nr_queues, sizeof(*sv.queues));
	if (!sv.queues) {
		log_error("%s: restore: out of memory", dev->name);
		return -ENOMEM;
	}
	ret = read_saved(c, tag, r, &sv);
	if (!ret)
		ret = check_saved(c, r, &sv);
	if (ret) {
		free(sv.queues);
		return ret;
	}
	virtio_core_lock(c);
	virtio_core_write_status(c, 0); /* a reset, on the worker */
	ret = apply_saved(c, r, &sv);
	if (ret)
		virtio_core_write_status(c, 0);
	virtio_core_unlock(c);
	if (!ret)
		raise_pending(c, sv.isr);
	free(sv.queues);
	return ret;
}
