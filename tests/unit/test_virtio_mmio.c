/* The virtio-mmio transport, driven register by register the way a guest driver would, with a tiny
 * echo device behind it (queue 0: every chain's out bytes are copied into its in buffers):
 * identification, feature negotiation (refusing unoffered features and legacy drivers), queue
 * setup and its state rules, a kick that yields a used buffer and an interrupt, InterruptACK,
 * reset, a hostile ring that marks only its own device DEVICE_NEEDS_RESET, register widths and
 * config space bounds. No KVM: vm_fd is -1, so kicks go through the MMIO write path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus/bus.h"
#include "virtio/device.h"
#include "virtio/mmio.h"
#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/guest_mem.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RAM_SIZE   0x100000ULL
#define BASE_A	   0xd0000000ULL
#define BASE_B	   0xd0001000ULL
#define QMAX	   64
#define CONFIG_LEN 12

#define F_DEV0	(1ULL << 0)
#define F_DEV35 (1ULL << 35)
#define F_V1	(1ULL << VIRTIO_F_VERSION_1)

/* ---- The echo device ---- */

struct echo {
	struct virtio_device dev;
	atomic_int activates, notifies, resets, destroys, config_reads;
	atomic_int off_thread; /* callbacks run off the worker (cmocka cannot assert there) */
	int activate_result;
	uint64_t features_at_activate;
	uint8_t config[CONFIG_LEN];
	struct virtq_elem elem;
};

static uint64_t echo_features(struct virtio_device *dev)
{
	return F_DEV0 | F_DEV35;
}

static void echo_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
	struct echo *e = dev->priv;

	atomic_fetch_add(&e->config_reads, 1);
	assert_true(off + len <= CONFIG_LEN);
	memcpy(data, e->config + off, len);
}

static void echo_config_write(struct virtio_device *dev, uint32_t off, const void *data,
			      uint32_t len)
{
	struct echo *e = dev->priv;

	assert_true(off + len <= CONFIG_LEN);
	memcpy(e->config + off, data, len);
}

static int echo_activate(struct virtio_device *dev)
{
	struct echo *e = dev->priv;

	if (!event_loop_on_thread(dev->loop))
		atomic_fetch_add(&e->off_thread, 1);
	e->features_at_activate = dev->features;
	atomic_fetch_add(&e->activates, 1);
	return e->activate_result;
}

static void echo_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct echo *e = dev->priv;
	struct virtq *vq = &dev->queues[q];
	bool pushed = false;
	int r;

	if (!event_loop_on_thread(dev->loop))
		atomic_fetch_add(&e->off_thread, 1);
	atomic_fetch_add(&e->notifies, 1);
	if (q != 0)
		return;
	while ((r = virtq_pop(vq, &e->elem)) == 1) {
		uint8_t buf[256];
		size_t n = virtq_elem_read(&e->elem, 0, buf, sizeof(buf));

		n = virtq_elem_write(&e->elem, 0, buf, n);
		virtq_push(vq, e->elem.head, n);
		pushed = true;
	}
	if (r < 0)
		virtio_dev_fail(dev, q, "%s", vq->error);
	if (pushed)
		dev->signal_used(dev, q);
}

static void echo_reset(struct virtio_device *dev)
{
	struct echo *e = dev->priv;

	if (!event_loop_on_thread(dev->loop))
		atomic_fetch_add(&e->off_thread, 1);
	atomic_fetch_add(&e->resets, 1);
}

static void echo_destroy(struct virtio_device *dev)
{
	struct echo *e = dev->priv;

	atomic_fetch_add(&e->destroys, 1);
}

static const struct virtio_device_ops echo_ops = {
	.device_id = VIRTIO_ID_RNG,
	.nr_queues = 2,
	.queue_max_size = QMAX,
	.config_size = CONFIG_LEN,
	.features = echo_features,
	.config_read = echo_config_read,
	.config_write = echo_config_write,
	.activate = echo_activate,
	.queue_notify = echo_queue_notify,
	.reset = echo_reset,
	.destroy = echo_destroy,
};

/* ---- Fixture: guest RAM, the MMIO bus, two echo devices on it ---- */

struct fx {
	struct guest_mem mem;
	struct bus bus;
	struct echo echo[2];
	struct virtio_mmio *t[2];
};

static struct virtio_mmio *attach(struct fx *f, int i, uint64_t base)
{
	struct virtio_mmio_params p = {
		.bus = &f->bus, .vm_fd = -1, .mem = &f->mem, .base = base, .gsi = 5 + i,
	};
	struct echo *e = &f->echo[i];

	e->dev.ops = &echo_ops;
	e->dev.priv = e;
	snprintf(e->dev.name, sizeof(e->dev.name), "virtio-echo %d", i);
	for (int b = 0; b < CONFIG_LEN; b++)
		e->config[b] = 0x10 + b;
	return virtio_mmio_create(&p, &e->dev);
}

static int fx_setup(void **state)
{
	struct guest_region layout[] = { { .gpa = 0, .size = RAM_SIZE } };
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || guest_mem_map(&f->mem, layout, 1))
		return -1;
	bus_init(&f->bus, "mmio");
	f->t[0] = attach(f, 0, BASE_A);
	f->t[1] = attach(f, 1, BASE_B);
	if (!f->t[0] || !f->t[1])
		return -1;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < 2; i++) {
		int resets = atomic_load(&f->echo[i].resets);

		virtio_mmio_destroy(f->t[i]);
		/* Destroying resets the device on its worker, then destroys it. */
		assert_int_equal(atomic_load(&f->echo[i].resets), resets + 1);
		assert_int_equal(atomic_load(&f->echo[i].destroys), 1);
		assert_int_equal(atomic_load(&f->echo[i].off_thread), 0);
	}
	assert_int_equal(f->bus.nr_entries, 0);
	bus_destroy(&f->bus);
	guest_mem_unmap(&f->mem);
	free(f);
	return 0;
}

/* ---- The test driver ---- */

static uint32_t rd(struct virtio_mmio *t, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	virtio_mmio_ops.read(t, off, &v, 4);
	return v;
}

static void wr(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	virtio_mmio_ops.write(t, off, &v, 4);
}

static uint64_t device_features(struct virtio_mmio *t)
{
	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t hi = rd(t, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	return hi << 32 | rd(t, VIRTIO_MMIO_DEVICE_FEATURES);
}

/* Steps 1-6 of 3.1.1; returns the Status read back after FEATURES_OK. */
static uint32_t negotiate(struct virtio_mmio *t, uint64_t features)
{
	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, features >> 32);
	wr(t, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return rd(t, VIRTIO_MMIO_STATUS);
}

/* Rings of one queue in guest RAM, `area` apart for each test queue. */
struct ring {
	uint64_t desc, avail, used, buf;
	uint16_t size;
	uint16_t avail_idx;
};

static struct ring ring_at(uint64_t area, uint16_t size)
{
	return (struct ring){
		.desc = area, .avail = area + 0x400, .used = area + 0x800, .buf = area + 0x1000,
		.size = size,
	};
}

static void setup_queue(struct virtio_mmio *t, uint16_t q, const struct ring *r)
{
	wr(t, VIRTIO_MMIO_QUEUE_SEL, q);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), QMAX);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, r->size);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)r->desc);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, r->desc >> 32);
	wr(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)r->avail);
	wr(t, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, r->avail >> 32);
	wr(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)r->used);
	wr(t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, r->used >> 32);
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 1);
}

static void driver_ok(struct virtio_mmio *t)
{
	wr(t, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
		   VIRTIO_STATUS_DRIVER_OK);
}

/* The whole init sequence with queue 0 on ring `r`. */
static void driver_init(struct virtio_mmio *t, const struct ring *r)
{
	assert_int_equal(negotiate(t, F_V1 | F_DEV0) & VIRTIO_STATUS_FEATURES_OK,
			 VIRTIO_STATUS_FEATURES_OK);
	setup_queue(t, 0, r);
	driver_ok(t);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS),
			 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void *gpa(struct fx *f, uint64_t addr, uint64_t len)
{
	void *p = guest_mem_ptr(&f->mem, addr, len);

	assert_non_null(p);
	return p;
}

/* Posts a two-descriptor chain: `out` (device-readable) then `in_len` device-writable bytes, with
 * the out descriptor's address taken from `out_gpa` (normally r->buf). */
static void post_chain(struct fx *f, struct ring *r, uint64_t out_gpa, const char *out,
		       uint32_t in_len)
{
	struct virtq_desc *desc = gpa(f, r->desc, 16 * r->size);
	struct virtq_avail *avail = gpa(f, r->avail, 6 + 2 * r->size);
	uint16_t head = (r->avail_idx * 2) % r->size;

	if (out_gpa == r->buf)
		memcpy(gpa(f, r->buf, strlen(out)), out, strlen(out));
	desc[head] = (struct virtq_desc){ .addr = out_gpa, .len = strlen(out),
					  .flags = VIRTQ_DESC_F_NEXT, .next = head + 1 };
	desc[head + 1] = (struct virtq_desc){ .addr = r->buf + 0x800, .len = in_len,
					      .flags = VIRTQ_DESC_F_WRITE };
	avail->ring[r->avail_idx % r->size] = head;
	__atomic_store_n(&avail->idx, ++r->avail_idx, __ATOMIC_RELEASE);
}

/* Waits (at most 5 s) for the interrupt eventfd and returns its count. */
static uint64_t wait_irq(struct virtio_mmio *t)
{
	struct pollfd pfd = { .fd = virtio_mmio_irq_eventfd(t), .events = POLLIN };
	uint64_t count = 0;

	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(read(pfd.fd, &count, sizeof(count)), sizeof(count));
	return count;
}

static bool irq_pending(struct virtio_mmio *t)
{
	struct pollfd pfd = { .fd = virtio_mmio_irq_eventfd(t), .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

static void noop(void *arg)
{
}

/* Returns once the worker has handled every kick signalled before the call: a kick's eventfd
 * is ready no later than the first call's wakeup, so it is dispatched in that batch at the
 * latest, and the second call only runs after that batch. */
static void settle(struct echo *e)
{
	assert_int_equal(event_loop_call(e->dev.loop, noop, NULL), 0);
	assert_int_equal(event_loop_call(e->dev.loop, noop, NULL), 0);
}

/* ---- Tests ---- */

static void test_identification(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	uint32_t v;

	assert_int_equal(rd(t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(t, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	assert_int_equal(rd(t, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	/* Registered on the bus under the device's name, over the whole window. */
	assert_int_equal(bus_access(&f->bus, BASE_A + VIRTIO_MMIO_MAGIC_VALUE, &v, 4, false), 0);
	assert_int_equal(v, VIRTIO_MMIO_MAGIC);
	assert_string_equal(bus_lookup_name(&f->bus, BASE_A + VIRTIO_MMIO_SIZE - 1),
			    "virtio-echo 0");
	assert_null(bus_lookup_name(&f->bus, BASE_A + VIRTIO_MMIO_SIZE));

	/* The device's bits plus the transport's; pages beyond the second are empty. */
	assert_int_equal(device_features(t), F_DEV0 | F_DEV35 | F_V1 |
						     (1ULL << VIRTIO_F_INDIRECT_DESC) |
						     (1ULL << VIRTIO_F_EVENT_IDX));
	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd(t, VIRTIO_MMIO_DEVICE_FEATURES), 0);

	wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), QMAX);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 2); /* no such queue */
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);

	/* No shared memory regions. */
	wr(t, VIRTIO_MMIO_SHM_SEL, 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
	assert_int_equal(rd(t, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

static void test_feature_negotiation(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	struct echo *e = &f->echo[0];
	struct ring r = ring_at(0x10000, 8);

	/* A feature the device did not offer (bit 1): FEATURES_OK does not stick. */
	assert_int_equal(negotiate(t, F_V1 | F_DEV0 | (1ULL << 1)) & VIRTIO_STATUS_FEATURES_OK, 0);
	/* Nor does a legacy driver's set without VERSION_1. */
	assert_int_equal(negotiate(t, F_DEV0) & VIRTIO_STATUS_FEATURES_OK, 0);
	/* Nor one above bit 63. */
	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, F_V1 >> 32);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(t, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);

	/* A subset of the offer including VERSION_1 is accepted ... */
	assert_int_equal(negotiate(t, F_V1 | F_DEV35) & VIRTIO_STATUS_FEATURES_OK,
			 VIRTIO_STATUS_FEATURES_OK);
	/* ... and frozen: DriverFeatures after FEATURES_OK is ignored. */
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	setup_queue(t, 0, &r);
	driver_ok(t);
	assert_int_equal(atomic_load(&e->activates), 1);
	assert_int_equal(e->features_at_activate, F_V1 | F_DEV35);
	assert_int_equal(e->dev.features, F_V1 | F_DEV35);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);

	/* DRIVER_OK without FEATURES_OK is not accepted either. */
	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(t, VIRTIO_MMIO_STATUS,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK, 0);
	assert_int_equal(atomic_load(&e->activates), 1);
}

static void test_kick_echoes_and_interrupts(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	struct echo *e = &f->echo[0];
	struct ring r = ring_at(0x10000, 8);
	struct virtq_used *used;
	int notifies;

	driver_init(t, &r);
	settle(e);
	notifies = atomic_load(&e->notifies);
	assert_false(irq_pending(t));

	post_chain(f, &r, r.buf, "hello, device", 64);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(wait_irq(t), 1);
	assert_int_equal(atomic_load(&e->notifies), notifies + 1);

	used = gpa(f, r.used, 6 + 8 * r.size);
	assert_int_equal(__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE), 1);
	assert_int_equal(used->ring[0].id, 0);
	assert_int_equal(used->ring[0].len, strlen("hello, device"));
	assert_memory_equal(gpa(f, r.buf + 0x800, 13), "hello, device", 13);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);

	/* InterruptACK clears the bits written, and only those. */
	wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);

	/* A second request on the same ring. */
	post_chain(f, &r, r.buf, "again", 64);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(wait_irq(t), 1);
	assert_int_equal(__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE), 2);
	assert_int_equal(used->ring[1].len, 5);

	/* The driver asked for no interrupts: the buffer is used, no interrupt is raised. */
	((struct virtq_avail *)gpa(f, r.avail, 4))->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	post_chain(f, &r, r.buf, "quiet", 64);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	settle(e);
	assert_int_equal(__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE), 3);
	assert_false(irq_pending(t));

	/* A kick for a queue that does not exist reaches nobody. */
	notifies = atomic_load(&e->notifies);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 7);
	settle(e);
	assert_int_equal(atomic_load(&e->notifies), notifies);
}

/* An InterruptACK that reaches the device after a newer interrupt (KVM batches the register's
 * writes until the guest's next exit) must not clear that interrupt's cause: the driver read
 * InterruptStatus before the newer buffers were used, and its next interrupt must find the
 * used-buffer bit, or it would not look at its queues. */
static void test_late_ack_keeps_a_newer_interrupt(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	struct ring r = ring_at(0x10000, 8);

	driver_init(t, &r);
	post_chain(f, &r, r.buf, "first", 64);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(wait_irq(t), 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);

	/* Before the acknowledgement arrives, the device uses another buffer and interrupts. */
	post_chain(f, &r, r.buf, "second", 64);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(wait_irq(t), 1);
	wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);

	/* Acknowledged after a read that saw it: cleared. */
	wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(((struct virtq_used *)gpa(f, r.used, 4))->idx, 2);
}

static void test_queue_config_state_rules(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	struct echo *e = &f->echo[0];
	struct ring r = ring_at(0x10000, 8);

	/* Before DRIVER, queue configuration is ignored. */
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_DESC_LOW), 0);
	assert_int_equal(e->dev.queues[0].size, 0);

	assert_int_equal(negotiate(t, F_V1) & VIRTIO_STATUS_FEATURES_OK,
			 VIRTIO_STATUS_FEATURES_OK);
	/* QueueNum must be a power of 2 no larger than QueueNumMax. */
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, 6);
	assert_int_equal(e->dev.queues[0].size, 8);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, QMAX * 2);
	assert_int_equal(e->dev.queues[0].size, 8);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, 0);
	assert_int_equal(e->dev.queues[0].size, 8);

	setup_queue(t, 0, &r);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_DESC_LOW), r.desc);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW), r.avail);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW), r.used);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH), 0);
	/* A ready queue's configuration is frozen. */
	wr(t, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
	assert_int_equal(e->dev.queues[0].size, 8);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_DESC_LOW), r.desc);

	/* Queue 1 stays unused: after DRIVER_OK it cannot be configured any more. */
	driver_ok(t);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x5000);
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_int_equal(e->dev.queues[1].size, 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_DESC_LOW), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);

	/* Queue 0 works with the size that was accepted. */
	post_chain(f, &r, r.buf, "eight", 16);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_irq(t);
	assert_int_equal(e->dev.queues[0].size, 8);
	assert_int_equal(((struct virtq_used *)gpa(f, r.used, 4))->idx, 1);
}

static void test_reset_forgets_everything(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	struct echo *e = &f->echo[0];
	struct ring r = ring_at(0x10000, 8);
	struct ring r2 = ring_at(0x20000, 16);
	int resets, notifies;

	driver_init(t, &r);
	post_chain(f, &r, r.buf, "before", 16);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_irq(t);
	assert_int_not_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);

	resets = atomic_load(&e->resets);
	wr(t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(atomic_load(&e->resets), resets + 1);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(e->dev.features, 0);
	wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_DESC_LOW), 0);
	assert_int_equal(e->dev.queues[0].size, 0);
	assert_int_equal(e->dev.queues[0].max_size, QMAX);

	/* A kick after the reset does not reach the device. */
	notifies = atomic_load(&e->notifies);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	settle(e);
	assert_int_equal(atomic_load(&e->notifies), notifies);

	/* The driver starts over, on other rings, and the device follows. */
	driver_init(t, &r2);
	post_chain(f, &r2, r2.buf, "after", 16);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(wait_irq(t), 1);
	assert_int_equal(((struct virtq_used *)gpa(f, r2.used, 4))->idx, 1);
	assert_memory_equal(gpa(f, r2.buf + 0x800, 5), "after", 5);
	assert_int_equal(atomic_load(&e->activates), 2);
}

static void test_hostile_ring_fails_only_its_device(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *a = f->t[0], *b = f->t[1];
	struct echo *ea = &f->echo[0];
	struct ring ra = ring_at(0x10000, 8), rb = ring_at(0x20000, 8);
	uint32_t generation = rd(a, VIRTIO_MMIO_CONFIG_GENERATION);
	int notifies;

	driver_init(a, &ra);
	driver_init(b, &rb);

	/* A descriptor pointing far outside guest RAM. */
	post_chain(f, &ra, 0x7ff0000000ULL, "evil", 16);
	wr(a, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(wait_irq(a), 1);
	assert_true(rd(a, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(rd(a, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(rd(a, VIRTIO_MMIO_CONFIG_GENERATION), generation + 1);
	assert_true(ea->dev.failed);
	assert_int_equal(((struct virtq_used *)gpa(f, ra.used, 4))->idx, 0);

	/* The failed device is left alone: further kicks do not reach it. */
	notifies = atomic_load(&ea->notifies);
	wr(a, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	settle(ea);
	assert_int_equal(atomic_load(&ea->notifies), notifies);
	/* The driver cannot clear DEVICE_NEEDS_RESET but by a reset. */
	wr(a, VIRTIO_MMIO_STATUS, rd(a, VIRTIO_MMIO_STATUS) & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(rd(a, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);

	/* The other device goes on. */
	post_chain(f, &rb, rb.buf, "fine", 16);
	wr(b, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(wait_irq(b), 1);
	assert_int_equal(rd(b, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	assert_memory_equal(gpa(f, rb.buf + 0x800, 4), "fine", 4);

	/* A reset brings the failed device back. */
	ra = ring_at(0x30000, 8);
	driver_init(a, &ra);
	assert_false(ea->dev.failed);
	post_chain(f, &ra, ra.buf, "healed", 16);
	wr(a, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_irq(a);
	assert_memory_equal(gpa(f, ra.buf + 0x800, 6), "healed", 6);
}

static void test_ring_outside_ram_fails_at_driver_ok(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	struct echo *e = &f->echo[0];
	struct ring r = ring_at(RAM_SIZE - 0x80, 16); /* descriptor table runs past RAM's end */

	assert_int_equal(negotiate(t, F_V1) & VIRTIO_STATUS_FEATURES_OK,
			 VIRTIO_STATUS_FEATURES_OK);
	setup_queue(t, 0, &r);
	driver_ok(t);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(wait_irq(t), 1);
	/* The device was never activated. */
	assert_int_equal(atomic_load(&e->activates), 0);
}

static void test_activate_failure_needs_reset(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[1];
	struct echo *e = &f->echo[1];
	struct ring r = ring_at(0x20000, 8);
	int notifies;

	e->activate_result = -EIO;
	assert_int_equal(negotiate(t, F_V1) & VIRTIO_STATUS_FEATURES_OK,
			 VIRTIO_STATUS_FEATURES_OK);
	setup_queue(t, 0, &r);
	driver_ok(t);
	assert_int_equal(atomic_load(&e->activates), 1);
	assert_true(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(wait_irq(t), 1);
	notifies = atomic_load(&e->notifies);
	post_chain(f, &r, r.buf, "nobody", 16);
	wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	settle(e);
	assert_int_equal(atomic_load(&e->notifies), notifies);
	e->activate_result = 0;
}

static void test_register_widths(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	uint8_t b = 0xff;
	uint16_t h = 0xffff;
	uint64_t q = ~0ULL;
	uint32_t v = 0xffffffff;

	/* Registers take 32-bit aligned accesses only; anything else reads 0 ... */
	virtio_mmio_ops.read(t, VIRTIO_MMIO_MAGIC_VALUE, &b, 1);
	assert_int_equal(b, 0);
	virtio_mmio_ops.read(t, VIRTIO_MMIO_MAGIC_VALUE, &h, 2);
	assert_int_equal(h, 0);
	virtio_mmio_ops.read(t, VIRTIO_MMIO_MAGIC_VALUE, &q, 8);
	assert_int_equal(q, 0);
	virtio_mmio_ops.read(t, VIRTIO_MMIO_MAGIC_VALUE + 2, &v, 4);
	assert_int_equal(v, 0);
	/* ... straddling into config space too ... */
	q = ~0ULL;
	virtio_mmio_ops.read(t, VIRTIO_MMIO_CONFIG_GENERATION, &q, 8);
	assert_int_equal(q, 0);
	/* ... and is ignored when written. */
	b = VIRTIO_STATUS_ACKNOWLEDGE;
	virtio_mmio_ops.write(t, VIRTIO_MMIO_STATUS, &b, 1);
	q = VIRTIO_STATUS_ACKNOWLEDGE;
	virtio_mmio_ops.write(t, VIRTIO_MMIO_STATUS, &q, 8);
	assert_int_equal(rd(t, VIRTIO_MMIO_STATUS), 0);
	/* Write-only and unknown registers read 0; read-only ones ignore writes. */
	assert_int_equal(rd(t, VIRTIO_MMIO_QUEUE_NOTIFY), 0);
	assert_int_equal(rd(t, 0x0e0), 0);
	wr(t, VIRTIO_MMIO_MAGIC_VALUE, 0);
	assert_int_equal(rd(t, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	/* Through the bus, the same. */
	v = 0xffffffff;
	assert_int_equal(bus_access(&f->bus, BASE_A + VIRTIO_MMIO_VERSION, &v, 4, false), 0);
	assert_int_equal(v, 2);
	assert_int_equal(bus_access(&f->bus, BASE_A + VIRTIO_MMIO_VERSION, &h, 2, false), 0);
	assert_int_equal(h, 0);
}

static void test_config_space(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	struct echo *e = &f->echo[0];
	uint8_t b = 0;
	uint16_t h = 0;
	uint32_t v = 0;
	uint64_t q = 0;
	int reads;

	virtio_mmio_ops.read(t, VIRTIO_MMIO_CONFIG, &v, 4);
	assert_int_equal(v, 0x13121110);
	virtio_mmio_ops.read(t, VIRTIO_MMIO_CONFIG + 11, &b, 1);
	assert_int_equal(b, 0x1b);
	virtio_mmio_ops.read(t, VIRTIO_MMIO_CONFIG + 1, &h, 2);
	assert_int_equal(h, 0x1211);
	virtio_mmio_ops.read(t, VIRTIO_MMIO_CONFIG + 4, &q, 8);
	assert_int_equal(q, 0x1b1a191817161514ULL);

	/* Past config_size: zeros, and the device is not asked. */
	reads = atomic_load(&e->config_reads);
	h = 0xffff;
	virtio_mmio_ops.read(t, VIRTIO_MMIO_CONFIG + 11, &h, 2);
	assert_int_equal(h, 0);
	q = ~0ULL;
	virtio_mmio_ops.read(t, VIRTIO_MMIO_CONFIG + 8, &q, 8);
	assert_int_equal(q, 0);
	v = 0xffffffff;
	virtio_mmio_ops.read(t, VIRTIO_MMIO_SIZE - 4, &v, 4);
	assert_int_equal(v, 0);
	assert_int_equal(atomic_load(&e->config_reads), reads);

	/* Writes go to the device within bounds only. */
	h = 0xbeef;
	virtio_mmio_ops.write(t, VIRTIO_MMIO_CONFIG + 2, &h, 2);
	assert_int_equal(e->config[2], 0xef);
	assert_int_equal(e->config[3], 0xbe);
	v = 0xaaaaaaaa;
	virtio_mmio_ops.write(t, VIRTIO_MMIO_CONFIG + 10, &v, 4);
	assert_int_equal(e->config[10], 0x1a);
	assert_int_equal(e->config[11], 0x1b);
	/* A 3-byte access is no access. */
	v = 0xffffffff;
	virtio_mmio_ops.read(t, VIRTIO_MMIO_CONFIG, &v, 3);
	assert_int_equal(v & 0xffffff, 0);
}

/* Several vCPUs at once: one acknowledges interrupts while the worker raises them and another
 * reads registers; nothing is lost or torn. */
struct hammer {
	struct virtio_mmio *t;
	atomic_bool stop;
	atomic_int bad_reads, reads;
};

static void *status_reader(void *arg)
{
	struct hammer *h = arg;

	while (!atomic_load(&h->stop)) {
		uint32_t s = rd(h->t, VIRTIO_MMIO_STATUS);

		if (!(s & VIRTIO_STATUS_DRIVER_OK) ||
		    rd(h->t, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC)
			atomic_fetch_add(&h->bad_reads, 1);
		atomic_fetch_add(&h->reads, 1);
	}
	return NULL;
}

static void test_concurrent_vcpus(void **state)
{
	struct fx *f = *state;
	struct virtio_mmio *t = f->t[0];
	struct ring r = ring_at(0x10000, 16);
	struct hammer h = { .t = t };
	pthread_t reader;

	driver_init(t, &r);
	assert_int_equal(pthread_create(&reader, NULL, status_reader, &h), 0);
	for (int i = 0; i < 200; i++) {
		post_chain(f, &r, r.buf, "ping", 16);
		wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		wait_irq(t);
		assert_true(rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
		wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	}
	/* On a loaded machine the reader may not have run yet: give it up to 10 s. */
	for (int i = 0; i < 10000 && atomic_load(&h.reads) == 0; i++)
		usleep(1000);
	atomic_store(&h.stop, true);
	pthread_join(reader, NULL);
	assert_int_equal(atomic_load(&h.bad_reads), 0);
	assert_true(atomic_load(&h.reads) > 0);
	assert_int_equal(((struct virtq_used *)gpa(f, r.used, 4))->idx, 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identification, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_feature_negotiation, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_kick_echoes_and_interrupts, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_late_ack_keeps_a_newer_interrupt, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_queue_config_state_rules, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_reset_forgets_everything, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_ring_fails_only_its_device, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_ring_outside_ram_fails_at_driver_ok, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_activate_failure_needs_reset, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_register_widths, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_config_space, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_vcpus, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
