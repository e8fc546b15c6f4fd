/* virtio-rng driven without a transport: the test plays the guest driver (rings in guest memory)
 * and the transport (ops called on the worker thread). Requests come back filled with random
 * bytes, capped per request, and a request with device-readable buffers fails the device. */
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MiB	  (1ULL << 20)
#define QSIZE	  16
#define DESC_GPA  0x10000ULL
#define AVAIL_GPA 0x11000ULL
#define USED_GPA  0x12000ULL
#define BUF_GPA	  0x100000ULL
#define WAIT_MS	  3000
#define CAP	  (64 * 1024) /* the device's per-request limit */

struct harness {
	struct guest_mem mem;
	struct virtq queue;
	struct event_loop *loop;
	struct virtio_device *dev;
	uint64_t next_buf;
	uint16_t next_desc, avail_idx;
	int signals, fails;
};

struct segment {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static void fake_signal_used(struct virtio_device *dev, uint16_t q)
{
	struct harness *h = dev->transport;

	__atomic_add_fetch(&h->signals, 1, __ATOMIC_SEQ_CST);
}

static void fake_fail(struct virtio_device *dev, int q, const char *reason)
{
	struct harness *h = dev->transport;

	__atomic_add_fetch(&h->fails, 1, __ATOMIC_SEQ_CST);
	dev->failed = true;
}

static void *gptr(struct harness *h, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&h->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static struct segment new_buf(struct harness *h, uint32_t len, bool write)
{
	struct segment s = {.gpa = h->next_buf, .len = len, .write = write};

	h->next_buf += (len + 15) & ~15ULL;
	assert_true(h->next_buf <= 4 * MiB);
	memset(gptr(h, s.gpa, len), 0, len);
	return s;
}

struct call {
	struct virtio_device *dev;
	int ret;
};

static void do_activate(void *arg)
{
	struct call *c = arg;

	c->ret = c->dev->ops->activate(c->dev);
}

static void do_notify(void *arg)
{
	struct call *c = arg;

	c->dev->ops->queue_notify(c->dev, 0);
}

static void do_reset(void *arg)
{
	struct call *c = arg;

	c->dev->ops->reset(c->dev);
}

static void harness_init(struct harness *h)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 4 * MiB}};
	struct call c = {.ret = -1};

	memset(h, 0, sizeof(*h));
	assert_int_equal(guest_mem_map(&h->mem, layout, 1), 0);
	h->next_buf = BUF_GPA;
	h->loop = event_loop_create("test-rng");
	assert_non_null(h->loop);
	assert_int_equal(virtio_rng_create(&h->dev), 0);
	assert_int_equal(h->dev->ops->device_id, VIRTIO_ID_RNG);
	assert_int_equal(h->dev->ops->nr_queues, 1);
	assert_int_equal(h->dev->ops->config_size, 0);
	assert_int_equal(h->dev->ops->features(h->dev), 0);
	assert_true(h->dev->ops->queue_max_size >= QSIZE);

	h->queue.max_size = h->dev->ops->queue_max_size;
	h->queue.size = QSIZE;
	h->queue.desc_gpa = DESC_GPA;
	h->queue.avail_gpa = AVAIL_GPA;
	h->queue.used_gpa = USED_GPA;
	h->queue.ready = true;
	h->dev->mem = &h->mem;
	h->dev->queues = &h->queue;
	h->dev->features = 1ULL << VIRTIO_F_VERSION_1;
	h->dev->loop = h->loop;
	h->dev->transport = h;
	h->dev->signal_used = fake_signal_used;
	h->dev->fail = fake_fail;
	assert_int_equal(virtq_activate(&h->queue, &h->mem, h->dev->features), 0);
	c.dev = h->dev;
	assert_int_equal(event_loop_call(h->loop, do_activate, &c), 0);
	assert_int_equal(c.ret, 0);
}

static void harness_fini(struct harness *h)
{
	struct call c = {.dev = h->dev};

	assert_int_equal(event_loop_call(h->loop, do_reset, &c), 0);
	event_loop_destroy(h->loop);
	h->dev->ops->destroy(h->dev);
	guest_mem_unmap(&h->mem);
}

static void add_chain(struct harness *h, const struct segment *segs, int n)
{
	struct virtq_desc *desc = gptr(h, DESC_GPA, QSIZE * sizeof(*desc));
	struct virtq_avail *avail = gptr(h, AVAIL_GPA, 4 + 2 * QSIZE);
	uint16_t head = h->next_desc % QSIZE;

	for (int i = 0; i < n; i++) {
		uint16_t d = (uint16_t)((h->next_desc + i) % QSIZE);

		desc[d].addr = segs[i].gpa;
		desc[d].len = segs[i].len;
		desc[d].flags = (uint16_t)((segs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					   (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		desc[d].next = (uint16_t)((d + 1) % QSIZE);
	}
	h->next_desc = (uint16_t)(h->next_desc + n);
	avail->ring[h->avail_idx % QSIZE] = head;
	h->avail_idx++;
	__atomic_store_n(&avail->idx, h->avail_idx, __ATOMIC_RELEASE);
}

static void notify(struct harness *h)
{
	struct call c = {.dev = h->dev};

	assert_int_equal(event_loop_call(h->loop, do_notify, &c), 0);
}

static uint16_t used_idx(struct harness *h)
{
	struct virtq_used *used = gptr(h, USED_GPA, 4 + 8 * QSIZE);

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

static struct virtq_used_elem used_elem(struct harness *h, uint16_t i)
{
	struct virtq_used *used = gptr(h, USED_GPA, 4 + 8 * QSIZE);

	return used->ring[i % QSIZE];
}

static bool wait_used(struct harness *h, uint16_t idx)
{
	for (int ms = 0; (int16_t)(used_idx(h) - idx) < 0; ms++) {
		if (ms > WAIT_MS)
			return false;
		usleep(1000);
	}
	return true;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void test_fills_requests(void **state)
{
	struct harness h;
	struct segment a, b;

	harness_init(&h);
	a = new_buf(&h, 64, true);
	b = new_buf(&h, 64, true);
	add_chain(&h, &a, 1);
	add_chain(&h, &b, 1);
	notify(&h);
	assert_true(wait_used(&h, 2));
	assert_int_equal(used_elem(&h, 0).len, 64);
	assert_int_equal(used_elem(&h, 1).len, 64);
	assert_false(all_zero(gptr(&h, a.gpa, 64), 64));
	assert_false(all_zero(gptr(&h, b.gpa, 64), 64));
	assert_memory_not_equal(gptr(&h, a.gpa, 64), gptr(&h, b.gpa, 64), 64);
	assert_true(__atomic_load_n(&h.signals, __ATOMIC_SEQ_CST) >= 1);
	assert_int_equal(h.fails, 0);
	harness_fini(&h);
}

/* Every segment of a chain is filled, and the used length is the sum. */
static void test_fills_every_segment(void **state)
{
	struct harness h;
	struct segment s[3];

	harness_init(&h);
	s[0] = new_buf(&h, 16, true);
	s[1] = new_buf(&h, 40, true);
	s[2] = new_buf(&h, 8, true);
	add_chain(&h, s, 3);
	notify(&h);
	assert_true(wait_used(&h, 1));
	assert_int_equal(used_elem(&h, 0).len, 64);
	for (int i = 0; i < 3; i++)
		assert_false(all_zero(gptr(&h, s[i].gpa, s[i].len), s[i].len));
	harness_fini(&h);
}

/* A huge request is answered with the cap, and nothing past it is touched. */
static void test_huge_request_is_capped(void **state)
{
	const uint32_t len = 3 * MiB;
	struct harness h;
	struct segment s;
	uint8_t *p;

	harness_init(&h);
	s = new_buf(&h, len, true);
	add_chain(&h, &s, 1);
	notify(&h);
	assert_true(wait_used(&h, 1));
	assert_int_equal(used_elem(&h, 0).len, CAP);
	p = gptr(&h, s.gpa, len);
	assert_false(all_zero(p + CAP - 64, 64));
	assert_true(all_zero(p + CAP, len - CAP));
	harness_fini(&h);
}

static void test_readable_buffer_fails_device(void **state)
{
	struct harness h;
	struct segment s[2];

	harness_init(&h);
	s[0] = new_buf(&h, 16, false);
	s[1] = new_buf(&h, 16, true);
	add_chain(&h, s, 2);
	notify(&h);
	assert_int_equal(__atomic_load_n(&h.fails, __ATOMIC_SEQ_CST), 1);
	assert_true(h.dev->failed);
	assert_int_equal(used_idx(&h), 0);
	assert_true(all_zero(gptr(&h, s[1].gpa, 16), 16));
	harness_fini(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fills_requests),
	    cmocka_unit_test(test_fills_every_segment),
	    cmocka_unit_test(test_huge_request_is_capped),
	    cmocka_unit_test(test_readable_buffer_fails_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
