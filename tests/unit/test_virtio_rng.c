/* virtio-rng driven without a transport: the test plays the guest driver and the transport
 * (virtio_driver.h: rings in guest memory, ops called on the worker thread). Requests come back
 * filled with random bytes, capped per request, and a request with device-readable buffers fails
 * the device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "virtio_driver.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#define MiB	  (1ULL << 20)
#define QSIZE	  16
#define DESC_GPA  0x10000ULL
#define AVAIL_GPA 0x11000ULL
#define USED_GPA  0x12000ULL
#define BUF_GPA	  0x100000ULL
#define CAP	  (64 * 1024) /* the device's per-request limit */

static void harness_init_limited(struct vdrv *h, const struct rate_limiter_config *limit);

static void harness_init(struct vdrv *h)
{
	harness_init_limited(h, NULL);
}

static void harness_init_limited(struct vdrv *h, const struct rate_limiter_config *limit)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 4 * MiB}};
	struct vdrv_config cfg = {.layout = layout,
				  .nr_regions = 1,
				  .buf_base = BUF_GPA,
				  .buf_end = 4 * MiB,
				  .buf_align = 16,
				  .loop_name = "test-rng"};
	struct virtio_device *dev;

	vdrv_init(h, &cfg);
	assert_int_equal(virtio_rng_create(limit, &dev), 0);
	assert_int_equal(dev->ops->device_id, VIRTIO_ID_RNG);
	assert_int_equal(dev->ops->nr_queues, 1);
	assert_int_equal(dev->ops->config_size, 0);
	assert_int_equal(dev->ops->features(dev), 0);
	assert_true(dev->ops->queue_max_size >= QSIZE);
	vdrv_attach(h, dev);
	vdrv_ring_layout(h, 0, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA);
	vdrv_start(h, 1ULL << VIRTIO_F_VERSION_1);
}

static struct vdrv_seg new_buf(struct vdrv *h, uint32_t len, bool write)
{
	struct vdrv_seg s = {.gpa = vdrv_alloc(h, len), .len = len, .write = write};

	memset(vdrv_ptr(h, s.gpa, len), 0, len);
	return s;
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
	struct vdrv h;
	struct vdrv_seg a, b;

	harness_init(&h);
	a = new_buf(&h, 64, true);
	b = new_buf(&h, 64, true);
	vdrv_add_chain(&h, 0, &a, 1);
	vdrv_add_chain(&h, 0, &b, 1);
	vdrv_notify(&h, 0);
	assert_true(vdrv_wait_used_idx(&h, 0, 2));
	assert_int_equal(vdrv_used_elem(&h, 0, 0).len, 64);
	assert_int_equal(vdrv_used_elem(&h, 0, 1).len, 64);
	assert_false(all_zero(vdrv_ptr(&h, a.gpa, 64), 64));
	assert_false(all_zero(vdrv_ptr(&h, b.gpa, 64), 64));
	assert_memory_not_equal(vdrv_ptr(&h, a.gpa, 64), vdrv_ptr(&h, b.gpa, 64), 64);
	assert_true(__atomic_load_n(&h.signals[0], __ATOMIC_SEQ_CST) >= 1);
	assert_int_equal(h.fails, 0);
	vdrv_fini(&h);
}

/* Every segment of a chain is filled, and the used length is the sum. */
static void test_fills_every_segment(void **state)
{
	struct vdrv h;
	struct vdrv_seg s[3];

	harness_init(&h);
	s[0] = new_buf(&h, 16, true);
	s[1] = new_buf(&h, 40, true);
	s[2] = new_buf(&h, 8, true);
	vdrv_add_chain(&h, 0, s, 3);
	vdrv_notify(&h, 0);
	assert_true(vdrv_wait_used_idx(&h, 0, 1));
	assert_int_equal(vdrv_used_elem(&h, 0, 0).len, 64);
	for (int i = 0; i < 3; i++)
		assert_false(all_zero(vdrv_ptr(&h, s[i].gpa, s[i].len), s[i].len));
	vdrv_fini(&h);
}

/* A huge request is answered with the cap, and nothing past it is touched. */
static void test_huge_request_is_capped(void **state)
{
	const uint32_t len = 3 * MiB;
	struct vdrv h;
	struct vdrv_seg s;
	uint8_t *p;

	harness_init(&h);
	s = new_buf(&h, len, true);
	vdrv_add_chain(&h, 0, &s, 1);
	vdrv_notify(&h, 0);
	assert_true(vdrv_wait_used_idx(&h, 0, 1));
	assert_int_equal(vdrv_used_elem(&h, 0, 0).len, CAP);
	p = vdrv_ptr(&h, s.gpa, len);
	assert_false(all_zero(p + CAP - 64, 64));
	assert_true(all_zero(p + CAP, len - CAP));
	vdrv_fini(&h);
}

static void test_readable_buffer_fails_device(void **state)
{
	struct vdrv h;
	struct vdrv_seg s[2];

	harness_init(&h);
	s[0] = new_buf(&h, 16, false);
	s[1] = new_buf(&h, 16, true);
	vdrv_add_chain(&h, 0, s, 2);
	vdrv_notify(&h, 0);
	assert_int_equal(__atomic_load_n(&h.fails, __ATOMIC_SEQ_CST), 1);
	assert_true(h.dev->failed);
	assert_int_equal(vdrv_used_idx(&h, 0), 0);
	assert_true(all_zero(vdrv_ptr(&h, s[1].gpa, 16), 16));
	vdrv_fini(&h);
}

static uint64_t ms_of(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* 4 KiB per 100 ms: four 4 KiB requests take 300 ms, the worker waiting on its timer (the
 * process barely uses the CPU meanwhile), and none is lost. */
static void test_rate_limited(void **state)
{
	struct rate_limiter_config limit = {.bandwidth = {.size = 4096, .refill_time_ms = 100}};
	struct vdrv h;
	struct vdrv_seg s[4];
	uint64_t t0, cpu0, elapsed, cpu;

	harness_init_limited(&h, &limit);
	for (int i = 0; i < 4; i++) {
		s[i] = new_buf(&h, 4096, true);
		vdrv_add_chain(&h, 0, &s[i], 1);
	}
	t0 = ms_of(CLOCK_MONOTONIC);
	cpu0 = ms_of(CLOCK_PROCESS_CPUTIME_ID);
	vdrv_notify(&h, 0);
	assert_true(vdrv_wait_used_idx(&h, 0, 1));
	usleep(40 * 1000);
	assert_int_equal(vdrv_used_idx(&h, 0), 1);
	assert_true(vdrv_wait_used_idx(&h, 0, 4));
	elapsed = ms_of(CLOCK_MONOTONIC) - t0;
	cpu = ms_of(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	assert_true(elapsed >= 290);
	assert_true(elapsed < 3000);
	assert_true(cpu < elapsed / 2);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(vdrv_used_elem(&h, 0, i).len, 4096);
		assert_false(all_zero(vdrv_ptr(&h, s[i].gpa, 4096), 4096));
	}
	vdrv_fini(&h);
}

/* A request larger than the bucket still goes (once the bucket is full), and the next one waits
 * off the debt: 2 KiB per 100 ms, an 8 KiB request, then 2 KiB that waits about 300 ms. */
static void test_oversize_request_progresses(void **state)
{
	struct rate_limiter_config limit = {.bandwidth = {.size = 2048, .refill_time_ms = 100}};
	struct vdrv h;
	struct vdrv_seg big, small;
	uint64_t t0, elapsed;

	harness_init_limited(&h, &limit);
	big = new_buf(&h, 8192, true);
	small = new_buf(&h, 2048, true);
	vdrv_add_chain(&h, 0, &big, 1);
	vdrv_add_chain(&h, 0, &small, 1);
	t0 = ms_of(CLOCK_MONOTONIC);
	vdrv_notify(&h, 0);
	assert_true(vdrv_wait_used_idx(&h, 0, 1));
	assert_int_equal(vdrv_used_elem(&h, 0, 0).len, 8192);
	assert_true(vdrv_wait_used_idx(&h, 0, 2));
	elapsed = ms_of(CLOCK_MONOTONIC) - t0;
	assert_true(elapsed >= 290);
	assert_true(elapsed < 3000);
	vdrv_fini(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fills_requests),
	    cmocka_unit_test(test_fills_every_segment),
	    cmocka_unit_test(test_huge_request_is_capped),
	    cmocka_unit_test(test_readable_buffer_fails_device),
	    cmocka_unit_test(test_rate_limited),
	    cmocka_unit_test(test_oversize_request_progresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
