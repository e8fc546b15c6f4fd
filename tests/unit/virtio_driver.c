/* The test-side virtio driver (see virtio_driver.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio_driver.h"
#include "virtio/virtio.h"
#include "base/event_loop.h"

#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ---- the transport's side: callbacks from the device ---- */

static void vdrv_signal_used(struct virtio_device *dev, uint16_t q)
{
	struct vdrv *d = dev->transport;

	__atomic_add_fetch(&d->signals[q], 1, __ATOMIC_SEQ_CST);
}

static void vdrv_fail(struct virtio_device *dev, int q, const char *reason)
{
	struct vdrv *d = dev->transport;

	snprintf(d->fail_reason, sizeof(d->fail_reason), "%s", reason);
	dev->failed = true;
	__atomic_add_fetch(&d->fails, 1, __ATOMIC_SEQ_CST);
}

static void vdrv_signal_config(struct virtio_device *dev)
{
	struct vdrv *d = dev->transport;

	__atomic_add_fetch(&d->config_generation, 1, __ATOMIC_SEQ_CST);
	__atomic_or_fetch(&d->interrupt_status, VIRTIO_MMIO_INT_CONFIG, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&d->config_signals, 1, __ATOMIC_SEQ_CST);
}

static int vdrv_kick_fd(struct virtio_device *dev, uint16_t q)
{
	struct vdrv *d = dev->transport;

	return q < VDRV_MAX_QUEUES ? d->kick_fds[q] : -1;
}

/* The device's ops, called on its worker thread. */
struct vdrv_call {
	struct virtio_device *dev;
	uint16_t q;
	int ret;
};

static void call_activate(void *arg)
{
	struct vdrv_call *c = arg;

	c->ret = c->dev->ops->activate(c->dev);
}

static void call_notify(void *arg)
{
	struct vdrv_call *c = arg;

	c->dev->ops->queue_notify(c->dev, c->q);
}

static void call_reset(void *arg)
{
	struct vdrv_call *c = arg;

	c->dev->ops->reset(c->dev);
}

/* ---- guest RAM and buffers ---- */

void vdrv_init(struct vdrv *d, const struct vdrv_config *cfg)
{
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	if (!d->cfg.buf_align)
		d->cfg.buf_align = 64;
	if (cfg->shared_mem)
		assert_int_equal(guest_mem_map_shared(&d->mem, cfg->layout, cfg->nr_regions), 0);
	else
		assert_int_equal(guest_mem_map(&d->mem, cfg->layout, cfg->nr_regions), 0);
	for (int q = 0; q < VDRV_MAX_QUEUES; q++) {
		d->kick_fds[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		assert_true(d->kick_fds[q] >= 0);
	}
	d->next_buf = cfg->buf_base;
	d->loop = event_loop_create(cfg->loop_name);
	assert_non_null(d->loop);
}

void vdrv_fini(struct vdrv *d)
{
	if (d->dev) {
		if (d->activated)
			vdrv_reset(d);
		d->dev->ops->destroy(d->dev);
		d->dev = NULL;
	}
	event_loop_destroy(d->loop);
	guest_mem_unmap(&d->mem);
	for (int q = 0; q < VDRV_MAX_QUEUES; q++)
		close(d->kick_fds[q]);
}

void vdrv_attach(struct vdrv *d, struct virtio_device *dev)
{
	d->dev = dev;
	dev->mem = &d->mem;
	dev->queues = d->queues;
	dev->loop = d->loop;
	dev->transport = d;
	dev->signal_used = vdrv_signal_used;
	dev->signal_config = vdrv_signal_config;
	dev->fail = vdrv_fail;
	dev->kick_fd = vdrv_kick_fd;
}

void *vdrv_ptr(struct vdrv *d, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&d->mem, gpa, len);

	assert_non_null(p);
	return p;
}

uint64_t vdrv_alloc(struct vdrv *d, uint32_t len)
{
	uint64_t gpa = d->next_buf, mask = d->cfg.buf_align - 1;

	d->next_buf = (d->next_buf + len + mask) & ~mask;
	if (d->next_buf > d->cfg.buf_end) {
		assert_true(d->cfg.buf_wrap);  /* out of buffer space */
		d->next_buf = d->cfg.buf_base; /* earlier buffers are done with by now */
	}
	return gpa;
}

/* ---- queues ---- */

static void ring_clear(struct vdrv *d, int q)
{
	struct vdrv_ring *r = &d->ring[q];

	memset(vdrv_ptr(d, r->desc_gpa, 16 * r->size), 0, 16 * r->size);
	memset(vdrv_ptr(d, r->avail_gpa, 6 + 2 * r->size), 0, 6 + 2 * r->size);
	memset(vdrv_ptr(d, r->used_gpa, 6 + 8 * r->size), 0, 6 + 8 * r->size);
	r->next_desc = r->avail_idx = r->used_seen = r->kicked_idx = 0;
}

void vdrv_ring_layout(struct vdrv *d, int q, uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
		      uint64_t used_gpa)
{
	assert_true(q < VDRV_MAX_QUEUES);
	d->ring[q] = (struct vdrv_ring){
	    .desc_gpa = desc_gpa, .avail_gpa = avail_gpa, .used_gpa = used_gpa, .size = size};
	ring_clear(d, q);
	if (q >= d->nr_queues)
		d->nr_queues = q + 1;
}

void vdrv_start(struct vdrv *d, uint64_t features)
{
	struct vdrv_call c = {.dev = d->dev, .ret = -1};

	assert_non_null(d->dev);
	d->dev->features = features;
	for (int q = 0; q < d->nr_queues; q++) {
		struct virtq *vq = &d->queues[q];

		memset(vq, 0, sizeof(*vq));
		vq->max_size = d->dev->ops->queue_max_size;
		vq->size = d->ring[q].size;
		vq->desc_gpa = d->ring[q].desc_gpa;
		vq->avail_gpa = d->ring[q].avail_gpa;
		vq->used_gpa = d->ring[q].used_gpa;
		vq->ready = true;
		assert_int_equal(virtq_activate(vq, &d->mem, features), 0);
	}
	assert_int_equal(event_loop_call(d->loop, call_activate, &c), 0);
	assert_int_equal(c.ret, 0);
	d->activated = true;
}

void vdrv_reset(struct vdrv *d)
{
	struct vdrv_call c = {.dev = d->dev};

	assert_int_equal(event_loop_call(d->loop, call_reset, &c), 0);
	vdrv_forget_rings(d);
}

void vdrv_forget_rings(struct vdrv *d)
{
	for (int q = 0; q < d->nr_queues; q++) {
		virtq_reset(&d->queues[q]);
		ring_clear(d, q);
	}
}

/* ---- the driver's side of the rings ---- */

void vdrv_offer(struct vdrv *d, int q, uint16_t head)
{
	struct vdrv_ring *r = &d->ring[q];
	struct virtq_avail *avail = vdrv_ptr(d, r->avail_gpa, 6 + 2 * r->size);

	avail->ring[r->avail_idx % r->size] = head;
	r->avail_idx++;
	__atomic_store_n(&avail->idx, r->avail_idx, __ATOMIC_RELEASE);
}

uint16_t vdrv_add_chain(struct vdrv *d, int q, const struct vdrv_seg *segs, int n)
{
	struct vdrv_ring *r = &d->ring[q];
	struct virtq_desc *desc = vdrv_ptr(d, r->desc_gpa, 16 * r->size);
	uint16_t head = r->next_desc;

	for (int i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % r->size);

		desc[idx].addr = segs[i].gpa;
		desc[idx].len = segs[i].len;
		desc[idx].flags = (uint16_t)((segs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					     (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		desc[idx].next = (uint16_t)((idx + 1) % r->size);
	}
	r->next_desc = (uint16_t)((head + n) % r->size);
	vdrv_offer(d, q, head);
	return head;
}

void vdrv_notify(struct vdrv *d, int q)
{
	struct vdrv_call c = {.dev = d->dev, .q = (uint16_t)q};

	assert_int_equal(event_loop_call(d->loop, call_notify, &c), 0);
}

bool vdrv_kick(struct vdrv *d, int q)
{
	struct vdrv_ring *r = &d->ring[q];
	uint16_t old = r->kicked_idx, now = r->avail_idx;
	bool need;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->dev->features & (1ULL << VIRTIO_F_EVENT_IDX))
		need = (uint16_t)(now - vdrv_avail_event(d, q) - 1) < (uint16_t)(now - old);
	else
		need = !(__atomic_load_n(&vdrv_used(d, q)->flags, __ATOMIC_ACQUIRE) &
			 VIRTQ_USED_F_NO_NOTIFY);
	r->kicked_idx = now;
	if (need)
		vdrv_notify(d, q);
	return need;
}

/* ---- the used ring ---- */

struct virtq_used *vdrv_used(struct vdrv *d, int q)
{
	return vdrv_ptr(d, d->ring[q].used_gpa, 6 + 8 * d->ring[q].size);
}

uint16_t vdrv_used_idx(struct vdrv *d, int q)
{
	return __atomic_load_n(&vdrv_used(d, q)->idx, __ATOMIC_ACQUIRE);
}

struct virtq_used_elem vdrv_used_elem(struct vdrv *d, int q, uint16_t i)
{
	return vdrv_used(d, q)->ring[i % d->ring[q].size];
}

uint16_t vdrv_avail_event(struct vdrv *d, int q)
{
	struct virtq_used *used = vdrv_used(d, q);

	return __atomic_load_n((uint16_t *)&used->ring[d->ring[q].size], __ATOMIC_ACQUIRE);
}

bool vdrv_wait_used_idx(struct vdrv *d, int q, uint16_t idx)
{
	/* Counted in 1 ms sleeps, so a loaded machine gets more time, not less. */
	for (int ms = 0; (int16_t)(vdrv_used_idx(d, q) - idx) < 0; ms++) {
		if (ms >= VDRV_WAIT_MS)
			return false;
		usleep(1000);
	}
	return true;
}

bool vdrv_wait_used(struct vdrv *d, int q, unsigned count)
{
	return vdrv_wait_used_idx(d, q, (uint16_t)(d->ring[q].used_seen + count));
}

struct virtq_used_elem vdrv_take_used(struct vdrv *d, int q)
{
	struct vdrv_ring *r = &d->ring[q];

	assert_true(vdrv_used_idx(d, q) != r->used_seen);
	return vdrv_used_elem(d, q, r->used_seen++);
}
