/* virtio-balloon driven without a transport (virtio_driver.h plays the guest driver): inflated
 * pages are given back to the host (they read as zero and are no longer resident), deflating
 * takes them back, page frames outside guest RAM fail the device, statistics are parsed (unknown
 * tags and a partial entry ignored) and requested at the polling interval, free page reporting
 * gives ranges back, and the queues are numbered by the negotiated features. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/balloon.h"
#include "virtio/virtio.h"
#include "virtio_driver.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MiB	 (1ULL << 20)
#define QSIZE	 16
#define RING(q)	 (0x10000ULL + (uint64_t)(q) * 0x3000)
#define BUF_GPA	 0x100000ULL
#define PAGES_AT 0x400000ULL /* the pages the tests inflate: 4 MiB */
#define PAGE	 4096ULL

static void harness_init(struct vdrv *h, const struct virtio_balloon_params *p, uint64_t features,
			 int nr_queues)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 8 * MiB}};
	struct vdrv_config cfg = {.layout = layout,
				  .nr_regions = 1,
				  .buf_base = BUF_GPA,
				  .buf_end = 2 * MiB,
				  .buf_align = 16,
				  .loop_name = "test-balloon"};
	struct virtio_device *dev;

	vdrv_init(h, &cfg);
	assert_int_equal(virtio_balloon_create(p, &dev), 0);
	assert_int_equal(dev->ops->device_id, VIRTIO_ID_BALLOON);
	assert_int_equal(dev->ops->nr_queues, 4);
	vdrv_attach(h, dev);
	for (int q = 0; q < nr_queues; q++)
		vdrv_ring_layout(h, q, QSIZE, RING(q), RING(q) + 0x1000, RING(q) + 0x2000);
	vdrv_start(h, (1ULL << VIRTIO_F_VERSION_1) | features);
}

/* A device-readable buffer holding `n` little-endian PFNs. */
static struct vdrv_seg pfn_buf(struct vdrv *h, const uint32_t *pfns, int n)
{
	struct vdrv_seg s = {.gpa = vdrv_alloc(h, (uint32_t)(4 * n)), .len = (uint32_t)(4 * n)};
	uint8_t *p = vdrv_ptr(h, s.gpa, s.len);

	for (int i = 0; i < n; i++)
		for (int k = 0; k < 4; k++)
			p[4 * i + k] = (uint8_t)(pfns[i] >> (8 * k));
	return s;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static bool resident(void *p)
{
	unsigned char v = 0;

	assert_int_equal(mincore((void *)((uintptr_t)p & ~(uintptr_t)(PAGE - 1)), PAGE, &v), 0);
	return v & 1;
}

static uint32_t config_u32(struct vdrv *h, uint32_t off)
{
	uint32_t v = 0;

	h->dev->ops->config_read(h->dev, off, &v, 4);
	return v;
}

static void test_features_and_config(void **state)
{
	struct virtio_balloon_params p = {.amount_mib = 2, .deflate_on_oom = true,
					  .stats_polling_interval_s = 1,
					  .free_page_reporting = true};
	struct virtio_balloon_params none = {0};
	struct virtio_device *dev;
	struct vdrv h;
	uint32_t actual = 300;
	uint8_t byte = 0x7f;

	assert_int_equal(virtio_balloon_create(&none, &dev), 0);
	assert_int_equal(dev->ops->features(dev), 0);
	dev->ops->destroy(dev);

	harness_init(&h, &p, 0, 2);
	assert_int_equal(h.dev->ops->features(h.dev),
			 (1ULL << VIRTIO_BALLOON_F_STATS_VQ) |
			     (1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
			     (1ULL << VIRTIO_BALLOON_F_PAGE_REPORTING));
	assert_int_equal(h.dev->ops->config_size, 8);
	assert_int_equal(config_u32(&h, 0), 512); /* 2 MiB of 4 KiB pages */
	assert_int_equal(config_u32(&h, 4), 0);
	h.dev->ops->config_write(h.dev, 4, &actual, 4);
	assert_int_equal(config_u32(&h, 4), 300);
	/* num_pages is the host's: a driver's write leaves it; a 1-byte write of actual works */
	h.dev->ops->config_write(h.dev, 0, &actual, 4);
	assert_int_equal(config_u32(&h, 0), 512);
	h.dev->ops->config_write(h.dev, 5, &byte, 1);
	assert_int_equal(config_u32(&h, 4), 300 - 256 + 0x7f00);

	/* a new target: num_pages and a configuration change for the running driver */
	assert_int_equal(virtio_balloon_set_target(h.dev, 64), 0);
	assert_int_equal(config_u32(&h, 0), 64 * 256);
	assert_int_equal(__atomic_load_n(&h.config_signals, __ATOMIC_SEQ_CST), 1);
	vdrv_fini(&h);
}

/* Inflated pages read as zero and are no longer resident; pages not inflated keep their data;
 * deflating them needs nothing, and they are usable again. */
static void test_inflate_gives_pages_back(void **state)
{
	struct virtio_balloon_params p = {.amount_mib = 1};
	struct virtio_balloon_stats st;
	uint32_t pfns[20];
	struct vdrv_seg s;
	struct vdrv h;
	uint8_t *pages, *kept;

	harness_init(&h, &p, 0, 2);
	pages = vdrv_ptr(&h, PAGES_AT, 32 * PAGE);
	memset(pages, 0xaa, 32 * PAGE);
	kept = pages + 16 * PAGE;
	/* 16 contiguous pages, then 3 scattered ones, one of them twice */
	for (int i = 0; i < 16; i++)
		pfns[i] = (uint32_t)(PAGES_AT / PAGE) + (uint32_t)i;
	pfns[16] = (uint32_t)(PAGES_AT / PAGE) + 20;
	pfns[17] = (uint32_t)(PAGES_AT / PAGE) + 24;
	pfns[18] = (uint32_t)(PAGES_AT / PAGE) + 20;
	pfns[19] = (uint32_t)(PAGES_AT / PAGE) + 30;
	s = pfn_buf(&h, pfns, 20);
	assert_true(resident(pages));
	vdrv_add_chain(&h, 0, &s, 1);
	vdrv_notify(&h, 0);
	assert_true(vdrv_wait_used_idx(&h, 0, 1));
	assert_int_equal(h.fails, 0);
	assert_false(resident(pages));
	assert_false(resident(pages + 15 * PAGE));
	assert_false(resident(pages + 20 * PAGE));
	assert_true(all_zero(pages, 16 * PAGE));
	assert_true(all_zero(pages + 20 * PAGE, PAGE));
	assert_true(all_zero(pages + 24 * PAGE, PAGE));
	assert_true(all_zero(pages + 30 * PAGE, PAGE));
	for (int i = 16; i < 32; i++)
		if (i != 20 && i != 24 && i != 30)
			assert_int_equal(pages[i * PAGE], 0xaa);
	assert_int_equal(kept[PAGE - 1], 0xaa);

	s = pfn_buf(&h, pfns, 16);
	vdrv_add_chain(&h, 1, &s, 1);
	vdrv_notify(&h, 1);
	assert_true(vdrv_wait_used_idx(&h, 1, 1));
	assert_int_equal(h.fails, 0);
	memset(pages, 0x55, PAGE);
	assert_int_equal(pages[PAGE - 1], 0x55);

	virtio_balloon_get_stats(h.dev, &st);
	assert_int_equal(st.inflated_pages, 20);
	assert_int_equal(st.deflated_pages, 16);
	assert_int_equal(st.target_pages, 256);
	vdrv_fini(&h);
}

/* A page frame outside guest RAM fails the device, with nothing given back after it and no
 * used buffer; so does a device-writable inflate buffer. */
static void test_hostile_pfns(void **state)
{
	struct virtio_balloon_params p = {0};
	uint32_t pfns[3] = {(uint32_t)(PAGES_AT / PAGE), (uint32_t)(8 * MiB / PAGE),
			    (uint32_t)(PAGES_AT / PAGE) + 1};
	uint32_t huge = 0xffffffff;
	struct vdrv_seg s;
	struct vdrv h;
	uint8_t *pages;

	harness_init(&h, &p, 0, 2);
	pages = vdrv_ptr(&h, PAGES_AT, 2 * PAGE);
	memset(pages, 0xaa, 2 * PAGE);
	s = pfn_buf(&h, pfns, 3);
	vdrv_add_chain(&h, 0, &s, 1);
	vdrv_notify(&h, 0);
	assert_int_equal(__atomic_load_n(&h.fails, __ATOMIC_SEQ_CST), 1);
	assert_true(h.dev->failed);
	assert_non_null(strstr(h.fail_reason, "not guest RAM"));
	assert_int_equal(vdrv_used_idx(&h, 0), 0);
	assert_int_equal(pages[PAGE], 0xaa); /* the PFN after the bad one was not taken */
	vdrv_fini(&h);

	harness_init(&h, &p, 0, 2);
	s = pfn_buf(&h, &huge, 1);
	vdrv_add_chain(&h, 0, &s, 1);
	vdrv_notify(&h, 0);
	assert_true(h.dev->failed);
	vdrv_fini(&h);

	harness_init(&h, &p, 0, 2);
	s = pfn_buf(&h, pfns, 1);
	s.write = true;
	vdrv_add_chain(&h, 0, &s, 1);
	vdrv_notify(&h, 0);
	assert_true(h.dev->failed);
	assert_non_null(strstr(h.fail_reason, "device-writable"));
	vdrv_fini(&h);
}

static void put_stat(uint8_t *p, uint16_t tag, uint64_t val)
{
	p[0] = (uint8_t)tag;
	p[1] = (uint8_t)(tag >> 8);
	for (int k = 0; k < 8; k++)
		p[2 + k] = (uint8_t)(val >> (8 * k));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The statistics queue is queue 2: the driver's buffer is parsed and kept until the polling
 * interval, then handed back; a new interval asks at once. */
static void test_statistics(void **state)
{
	struct virtio_balloon_params p = {.stats_polling_interval_s = 1};
	struct virtio_balloon_stats st;
	struct vdrv_seg s = {0};
	struct vdrv h;
	uint8_t *b;
	uint16_t head;
	double t0;

	harness_init(&h, &p, 1ULL << VIRTIO_BALLOON_F_STATS_VQ, 3);
	assert_true(virtio_balloon_has_stats(h.dev));
	s.len = 4 * 10 + 3; /* four entries and a partial one */
	s.gpa = vdrv_alloc(&h, s.len);
	b = vdrv_ptr(&h, s.gpa, s.len);
	memset(b, 0xee, s.len);
	put_stat(b, VIRTIO_BALLOON_S_MEMTOT, 256 * MiB);
	put_stat(b + 10, VIRTIO_BALLOON_S_MEMFREE, 100 * MiB);
	put_stat(b + 20, 999, 7); /* unknown: ignored */
	put_stat(b + 30, VIRTIO_BALLOON_S_DIRECT_RECLAIM, 5);
	t0 = now_s();
	head = vdrv_add_chain(&h, 2, &s, 1);
	vdrv_notify(&h, 2);
	virtio_balloon_get_stats(h.dev, &st);
	assert_int_equal(st.stats_updates, 1);
	assert_true(st.has[VIRTIO_BALLOON_S_MEMTOT]);
	assert_int_equal(st.value[VIRTIO_BALLOON_S_MEMTOT], 256 * MiB);
	assert_int_equal(st.value[VIRTIO_BALLOON_S_MEMFREE], 100 * MiB);
	assert_true(st.has[VIRTIO_BALLOON_S_DIRECT_RECLAIM]);
	assert_false(st.has[VIRTIO_BALLOON_S_SWAP_IN]);
	assert_int_equal(vdrv_used_idx(&h, 2), 0); /* kept until the interval */
	assert_true(vdrv_wait_used_idx(&h, 2, 1));
	assert_true(now_s() - t0 > 0.8);
	assert_int_equal(vdrv_used_elem(&h, 2, 0).id, head);

	/* the driver posts it again with new figures; a new interval asks at once */
	put_stat(b, VIRTIO_BALLOON_S_MEMTOT, 128 * MiB);
	vdrv_offer(&h, 2, head);
	vdrv_notify(&h, 2);
	virtio_balloon_get_stats(h.dev, &st);
	assert_int_equal(st.value[VIRTIO_BALLOON_S_MEMTOT], 128 * MiB);
	t0 = now_s();
	assert_int_equal(virtio_balloon_set_stats_interval(h.dev, 30), 0);
	assert_true(vdrv_wait_used_idx(&h, 2, 2));
	assert_true(now_s() - t0 < 0.5);
	assert_int_not_equal(virtio_balloon_set_stats_interval(h.dev, 0), 0);
	assert_int_equal(h.fails, 0);
	vdrv_fini(&h);

	/* a statistics buffer the device would have to write fails the device */
	harness_init(&h, &p, 1ULL << VIRTIO_BALLOON_F_STATS_VQ, 3);
	s.gpa = vdrv_alloc(&h, 20);
	s.len = 20;
	s.write = true;
	vdrv_add_chain(&h, 2, &s, 1);
	vdrv_notify(&h, 2);
	assert_true(h.dev->failed);
	virtio_balloon_get_stats(h.dev, &st);
	assert_int_equal(st.stats_updates, 0);
	vdrv_fini(&h);

	/* without statistics, no interval can be set */
	p.stats_polling_interval_s = 0;
	harness_init(&h, &p, 0, 2);
	assert_false(virtio_balloon_has_stats(h.dev));
	assert_int_not_equal(virtio_balloon_set_stats_interval(h.dev, 5), 0);
	vdrv_fini(&h);
}

/* Free page reporting without statistics is queue 2; each reported range goes back. */
static void test_free_page_reporting(void **state)
{
	struct virtio_balloon_params p = {.stats_polling_interval_s = 5,
					  .free_page_reporting = true};
	struct virtio_balloon_stats st;
	struct vdrv_seg s[2] = {{.gpa = PAGES_AT, .len = 64 * 1024, .write = true},
				{.gpa = PAGES_AT + 128 * 1024, .len = 8 * PAGE, .write = true}};
	struct vdrv h;
	uint8_t *pages;

	harness_init(&h, &p, 1ULL << VIRTIO_BALLOON_F_PAGE_REPORTING, 3);
	pages = vdrv_ptr(&h, PAGES_AT, 256 * 1024);
	memset(pages, 0xaa, 256 * 1024);
	vdrv_add_chain(&h, 2, s, 2);
	vdrv_notify(&h, 2);
	assert_true(vdrv_wait_used_idx(&h, 2, 1));
	assert_int_equal(h.fails, 0);
	assert_true(all_zero(pages, 64 * 1024));
	assert_int_equal(pages[64 * 1024], 0xaa);
	assert_true(all_zero(pages + 128 * 1024, 8 * PAGE));
	assert_int_equal(pages[128 * 1024 + 8 * PAGE], 0xaa);
	virtio_balloon_get_stats(h.dev, &st);
	assert_int_equal(st.reported_bytes, 64 * 1024 + 8 * PAGE);
	assert_int_equal(st.stats_updates, 0); /* queue 2 is not the statistics queue here */
	vdrv_fini(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_features_and_config),
	    cmocka_unit_test(test_inflate_gives_pages_back),
	    cmocka_unit_test(test_hostile_pfns),
	    cmocka_unit_test(test_statistics),
	    cmocka_unit_test(test_free_page_reporting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
