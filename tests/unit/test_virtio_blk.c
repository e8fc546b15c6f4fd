/* virtio-blk driven as a guest driver would, without a transport: requests are laid out in guest
 * memory on a real split virtqueue, kicked on the device's worker loop, and their completions
 * read back from the used ring. Each I/O test runs on both backends (io_uring and the
 * synchronous fallback, SKIFF_BLK_NO_URING=1) and checks the image file itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/blk.h"
#include "vmm/virtio_devices.h"
#include "virtio/virtio.h"
#include "virtio_driver.h"
#include "base/event_loop.h"
#include "base/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The reason a call failed: the thread's last error (base/log.h). */
#define err log_last_error()

#define MiB	     (1ULL << 20)
#define SECTOR	     512
#define IMAGE_SIZE   (1 * MiB)
#define NR_SECTORS   (IMAGE_SIZE / SECTOR)
#define QSIZE	     256
#define DESC_GPA     0x1000
#define AVAIL_GPA    0x2000
#define USED_GPA     0x3000
#define BUF_GPA	     0x10000 /* request buffers are carved from here */
#define RAM_SIZE     (8 * MiB)
#define HOLE_GPA     (RAM_SIZE + MiB) /* not guest RAM: the second region starts higher */
#define HIGH_RAM_GPA (RAM_SIZE + 4 * MiB)

struct fixture {
	bool use_uring;
	bool read_only;
	unsigned num_queues; /* 0: not given (one queue) */
	char path[64];
	char path2[64]; /* a second image (backing file swaps), removed at teardown */
	char create_log[256]; /* what create_dev() logged when it failed */
	struct vdrv d;
};

/* Notify, then reset at once, in one visit of the worker thread: requests are in flight. */
static void call_notify_and_reset(void *arg)
{
	struct virtio_device *dev = arg;

	dev->ops->queue_notify(dev, 0);
	dev->ops->reset(dev);
}

/* DRIVER_OK with everything the device offers, and `extra_features`. */
static void activate_queue(struct fixture *f, uint64_t extra_features)
{
	struct virtio_device *dev = f->d.dev;

	vdrv_start(&f->d, 1ULL << VIRTIO_F_VERSION_1 | dev->ops->features(dev) | extra_features);
}

static void make_image(struct fixture *f, uint64_t size)
{
	int fd;

	snprintf(f->path, sizeof(f->path), "/tmp/skiff-blk-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

/* Creates the device with stderr captured, and checks that the backend the test asked for is
 * the one the log line names. */
static struct virtio_device *create_dev(struct fixture *f, const char *id, int *ret_out)
{
	struct disk_config cfg = { .read_only = f->read_only, .num_queues = f->num_queues };
	struct virtio_device *dev = NULL;
	char log_path[] = "/tmp/skiff-blk-log-XXXXXX";
	char text[4096] = "";
	int log_fd = mkstemp(log_path), saved = dup(2), ret;
	ssize_t n;

	snprintf(cfg.path, sizeof(cfg.path), "%s", f->path);
	snprintf(cfg.id, sizeof(cfg.id), "%s", id);
	if (f->use_uring)
		unsetenv("SKIFF_BLK_NO_URING");
	else
		setenv("SKIFF_BLK_NO_URING", "1", 1);
	log_set_level(LOG_INFO);
	fflush(stderr);
	dup2(log_fd, 2);
	ret = virtio_blk_create(&cfg, &dev);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log_set_level(LOG_WARN);
	n = pread(log_fd, text, sizeof(text) - 1, 0);
	close(log_fd);
	unlink(log_path);
	if (n > 0)
		text[n] = 0;
	if (ret_out)
		*ret_out = ret;
	if (ret == 0) {
		if (!f->use_uring)
			assert_non_null(strstr(text, "synchronous I/O (SKIFF_BLK_NO_URING"));
		else if (strstr(text, "io_uring unavailable"))
			fprintf(stderr, "note: io_uring is not permitted here: %s", text);
		else
			assert_non_null(strstr(text, "asynchronous I/O through io_uring"));
	} else {
		fprintf(stderr, "%s", text); /* shows the refusal, which tests check */
		memcpy(f->create_log, text, sizeof(f->create_log) - 1);
	}
	return dev;
}

/* Queue 1's rings, when the disk has two queues. */
#define DESC1_GPA  0x4000
#define AVAIL1_GPA 0x5000
#define USED1_GPA  0x6000

static int setup_queues(void **state, bool use_uring, bool read_only, const char *id,
			unsigned num_queues)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct guest_region layout[] = { { .gpa = 0, .size = RAM_SIZE },
					 { .gpa = HIGH_RAM_GPA, .size = MiB } };
	struct vdrv_config cfg = { .layout = layout,
				   .nr_regions = 2,
				   .buf_base = BUF_GPA,
				   .buf_end = RAM_SIZE - MiB,
				   .buf_align = 64,
				   .buf_wrap = true, /* earlier requests are complete by now */
				   .loop_name = "blk-test" };
	struct virtio_device *dev;
	int ret;

	f->use_uring = use_uring;
	f->read_only = read_only;
	f->num_queues = num_queues;
	make_image(f, IMAGE_SIZE);
	vdrv_init(&f->d, &cfg);
	dev = create_dev(f, id, &ret);
	assert_int_equal(ret, 0);
	vdrv_attach(&f->d, dev);
	vdrv_ring_layout(&f->d, 0, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA);
	if (num_queues > 1)
		vdrv_ring_layout(&f->d, 1, QSIZE, DESC1_GPA, AVAIL1_GPA, USED1_GPA);
	activate_queue(f, 0);
	*state = f;
	return 0;
}

static int setup(void **state, bool use_uring, bool read_only, const char *id)
{
	return setup_queues(state, use_uring, read_only, id, 0);
}

static int setup_uring_2q(void **state)
{
	return setup_queues(state, true, false, "disk-serial-7", 2);
}

static int setup_sync_2q(void **state)
{
	return setup_queues(state, false, false, "disk-serial-7", 2);
}

#define LONG_ID "abcdefghij0123456789"

static int setup_uring(void **state)
{
	return setup(state, true, false, "disk-serial-7");
}

static int setup_sync(void **state)
{
	return setup(state, false, false, "disk-serial-7");
}

static int setup_uring_ro(void **state)
{
	return setup(state, true, true, "disk-serial-7");
}

static int setup_sync_ro(void **state)
{
	return setup(state, false, true, "disk-serial-7");
}

static int setup_uring_long_id(void **state)
{
	return setup(state, true, false, LONG_ID);
}

static int setup_sync_long_id(void **state)
{
	return setup(state, false, false, LONG_ID);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vdrv_fini(&f->d);
	unlink(f->path);
	if (f->path2[0])
		unlink(f->path2);
	free(f);
	unsetenv("SKIFF_BLK_NO_URING");
	return 0;
}

/* ---- the fake driver ---- */

/* Waits until `n` more chains of queue `q` are used (at most VDRV_WAIT_MS); returns the first
 * new element. */
static struct virtq_used_elem wait_used_on(struct fixture *f, int q, int n)
{
	struct vdrv_ring *r = &f->d.ring[q];
	struct virtq_used_elem e;

	assert_true(vdrv_wait_used(&f->d, q, n));
	e = vdrv_used_elem(&f->d, q, r->used_seen);
	r->used_seen = (uint16_t)(r->used_seen + n);
	return e;
}

static struct virtq_used_elem wait_used(struct fixture *f, int n)
{
	return wait_used_on(f, 0, n);
}

struct req {
	uint64_t hdr_gpa, status_gpa;
	uint16_t head;
};

/* Queues a request on queue `q`: header, `data` buffers, status byte in its own buffer. */
static struct req queue_req_on(struct fixture *f, int q, uint32_t type, uint64_t sector,
			       const struct vdrv_seg *data, int nr_data)
{
	struct vdrv_seg bufs[16];
	struct virtio_blk_req_hdr *hdr;
	struct req r;

	r.hdr_gpa = vdrv_alloc(&f->d, sizeof(*hdr));
	hdr = vdrv_ptr(&f->d, r.hdr_gpa, sizeof(*hdr));
	hdr->type = type;
	hdr->reserved = 0;
	hdr->sector = sector;
	r.status_gpa = vdrv_alloc(&f->d, 1);
	*(uint8_t *)vdrv_ptr(&f->d, r.status_gpa, 1) = 0xee;
	bufs[0] = (struct vdrv_seg){ r.hdr_gpa, sizeof(*hdr), false };
	for (int i = 0; i < nr_data; i++)
		bufs[1 + i] = data[i];
	bufs[1 + nr_data] = (struct vdrv_seg){ r.status_gpa, 1, true };
	r.head = vdrv_add_chain(&f->d, q, bufs, nr_data + 2);
	return r;
}

static struct req queue_req(struct fixture *f, uint32_t type, uint64_t sector,
			    const struct vdrv_seg *data, int nr_data)
{
	return queue_req_on(f, 0, type, sector, data, nr_data);
}

static uint8_t status_of(struct fixture *f, struct req r)
{
	return *(uint8_t *)vdrv_ptr(&f->d, r.status_gpa, 1);
}

/* One request, kicked and waited for; returns the status and the used length. */
static uint8_t do_req(struct fixture *f, uint32_t type, uint64_t sector,
		      const struct vdrv_seg *data, int nr_data, uint32_t *used_len)
{
	struct req r = queue_req(f, type, sector, data, nr_data);
	struct virtq_used_elem e;

	vdrv_notify(&f->d, 0);
	e = wait_used(f, 1);
	assert_int_equal(e.id, r.head);
	if (used_len)
		*used_len = e.len;
	return status_of(f, r);
}

static uint8_t do_rw(struct fixture *f, bool write, uint64_t sector, uint64_t gpa, uint32_t len)
{
	struct vdrv_seg data = { gpa, len, !write };

	return do_req(f, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, sector, &data, 1, NULL);
}

static uint8_t do_dwz(struct fixture *f, uint32_t type,
		      const struct virtio_blk_discard_write_zeroes *segs, int n)
{
	uint32_t len = (uint32_t)(n * sizeof(*segs));
	struct vdrv_seg data = { vdrv_alloc(&f->d, len), len, false };

	memcpy(vdrv_ptr(&f->d, data.gpa, len), segs, len);
	return do_req(f, type, 0, &data, 1, NULL);
}

static struct virtio_blk_discard_write_zeroes dwz(uint64_t sector, uint32_t num, uint32_t flags)
{
	return (struct virtio_blk_discard_write_zeroes){ sector, num, flags };
}

static void fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 9));
}

static void read_file(struct fixture *f, off_t off, void *buf, size_t len)
{
	int fd = open(f->path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static void write_file(struct fixture *f, off_t off, const void *buf, size_t len)
{
	int fd = open(f->path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

/* ---- tests ---- */

static void test_config_and_features(void **state)
{
	struct fixture *f = *state;
	struct virtio_blk_config c;
	uint64_t feat = f->d.dev->ops->features(f->d.dev);

	assert_int_equal(f->d.dev->ops->device_id, VIRTIO_ID_BLOCK);
	assert_int_equal(f->d.dev->ops->nr_queues, 1);
	assert_int_equal(f->d.dev->ops->queue_max_size, 256);
	assert_int_equal(f->d.dev->ops->config_size, 60);
	assert_null(f->d.dev->ops->config_write);
	assert_string_equal(f->d.dev->name, "virtio-blk disk-serial-7");

	memset(&c, 0xff, sizeof(c));
	f->d.dev->ops->config_read(f->d.dev, 0, &c, sizeof(c));
	assert_int_equal(c.capacity, NR_SECTORS);
	assert_int_equal(c.blk_size, 512);
	assert_int_equal(c.seg_max, 254);
	assert_true(feat & 1ULL << VIRTIO_BLK_F_SEG_MAX);
	assert_true(feat & 1ULL << VIRTIO_BLK_F_BLK_SIZE);
	assert_true(feat & 1ULL << VIRTIO_BLK_F_FLUSH);
	if (f->read_only) {
		assert_true(feat & 1ULL << VIRTIO_BLK_F_RO);
		assert_false(feat & 1ULL << VIRTIO_BLK_F_DISCARD);
		assert_false(feat & 1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
		assert_int_equal(c.max_discard_sectors, 0);
	} else {
		assert_false(feat & 1ULL << VIRTIO_BLK_F_RO);
		assert_true(feat & 1ULL << VIRTIO_BLK_F_DISCARD);
		assert_true(feat & 1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
		assert_true(c.max_discard_sectors > 0);
		assert_true(c.max_discard_seg > 0);
		assert_true(c.max_write_zeroes_sectors > 0);
		assert_true(c.max_write_zeroes_seg > 0);
		assert_int_equal(c.write_zeroes_may_unmap, 1);
	}

	/* Byte-wise reads at any offset see the same little-endian layout. */
	uint8_t b[8];

	f->d.dev->ops->config_read(f->d.dev, 0, b, 8);
	assert_int_equal(b[0] | b[1] << 8, NR_SECTORS);
	f->d.dev->ops->config_read(f->d.dev, 20, b, 4);
	assert_int_equal(b[0] | b[1] << 8, 512);
}

static void test_write_then_read_back(void **state)
{
	struct fixture *f = *state;
	const uint32_t len = 3 * SECTOR;
	uint64_t wgpa = vdrv_alloc(&f->d, len), rgpa = vdrv_alloc(&f->d, len + 1);
	uint8_t expect[3 * SECTOR], on_disk[3 * SECTOR];
	struct virtio_blk_stats st;
	uint32_t used_len;

	/* The write's data spans two descriptors split mid-sector. */
	fill_pattern(vdrv_ptr(&f->d, wgpa, len), len, 7);
	memcpy(expect, vdrv_ptr(&f->d, wgpa, len), len);
	struct vdrv_seg wdata[2] = { { wgpa, 700, false }, { wgpa + 700, len - 700, false } };

	assert_int_equal(do_req(f, VIRTIO_BLK_T_OUT, 5, wdata, 2, &used_len), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len, 1);
	read_file(f, 5 * SECTOR, on_disk, len);
	assert_memory_equal(on_disk, expect, len);

	/* The read's status byte is the last byte of its one writable buffer. */
	struct virtio_blk_req_hdr *hdr;
	uint64_t hgpa = vdrv_alloc(&f->d, sizeof(*hdr));
	struct vdrv_seg chain[2] = { { hgpa, sizeof(*hdr), false }, { rgpa, len + 1, true } };

	hdr = vdrv_ptr(&f->d, hgpa, sizeof(*hdr));
	*hdr = (struct virtio_blk_req_hdr){ .type = VIRTIO_BLK_T_IN, .sector = 5 };
	memset(vdrv_ptr(&f->d, rgpa, len + 1), 0xcc, len + 1);
	vdrv_add_chain(&f->d, 0, chain, 2);
	vdrv_notify(&f->d, 0);
	struct virtq_used_elem e = wait_used(f, 1);

	assert_int_equal(e.len, len + 1);
	assert_memory_equal(vdrv_ptr(&f->d, rgpa, len), expect, len);
	assert_int_equal(*(uint8_t *)vdrv_ptr(&f->d, rgpa + len, 1), VIRTIO_BLK_S_OK);

	/* Reading sectors never written gives zeroes. */
	uint8_t zero[SECTOR] = { 0 };

	assert_int_equal(do_rw(f, false, 100, rgpa, SECTOR), VIRTIO_BLK_S_OK);
	assert_memory_equal(vdrv_ptr(&f->d, rgpa, SECTOR), zero, SECTOR);

	virtio_blk_get_stats(f->d.dev, &st);
	assert_int_equal(st.write_requests, 1);
	assert_int_equal(st.write_bytes, len);
	assert_int_equal(st.read_requests, 2);
	assert_int_equal(st.read_bytes, len + SECTOR);
	assert_int_equal(st.errors, 0);
	assert_true(__atomic_load_n(&f->d.signals[0], __ATOMIC_SEQ_CST) >= 3);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
}

/* Many requests queued before one kick: all complete, each with its own data. */
static void test_many_requests_in_one_kick(void **state)
{
	struct fixture *f = *state;
	enum { N = 64, LEN = 4 * SECTOR };
	struct req r[N];
	uint64_t gpa[N];
	uint8_t want[LEN], got[LEN];

	for (int i = 0; i < N; i++) {
		gpa[i] = vdrv_alloc(&f->d, LEN);
		fill_pattern(vdrv_ptr(&f->d, gpa[i], LEN), LEN, (unsigned)i);
		struct vdrv_seg d = { gpa[i], LEN, false };

		r[i] = queue_req(f, VIRTIO_BLK_T_OUT, (uint64_t)i * 4, &d, 1);
	}
	vdrv_notify(&f->d, 0);
	wait_used(f, N);
	for (int i = 0; i < N; i++)
		assert_int_equal(status_of(f, r[i]), VIRTIO_BLK_S_OK);
	for (int i = 0; i < N; i++) {
		fill_pattern(want, LEN, (unsigned)i);
		read_file(f, (off_t)i * LEN, got, LEN);
		assert_memory_equal(got, want, LEN);
	}

	/* Now read them all back in one batch, into cleared buffers. */
	for (int i = 0; i < N; i++) {
		memset(vdrv_ptr(&f->d, gpa[i], LEN), 0, LEN);
		struct vdrv_seg d = { gpa[i], LEN, true };

		r[i] = queue_req(f, VIRTIO_BLK_T_IN, (uint64_t)i * 4, &d, 1);
	}
	vdrv_notify(&f->d, 0);
	wait_used(f, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(status_of(f, r[i]), VIRTIO_BLK_S_OK);
		fill_pattern(want, LEN, (unsigned)i);
		assert_memory_equal(vdrv_ptr(&f->d, gpa[i], LEN), want, LEN);
	}
}

static uint64_t ms_of(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes `n` requests of `len` bytes in one kick; returns the ms until all were answered OK. */
static uint64_t timed_writes(struct fixture *f, int n, uint32_t len, uint64_t *cpu_ms)
{
	struct req r[16];
	uint64_t t0 = ms_of(CLOCK_MONOTONIC), cpu0 = ms_of(CLOCK_PROCESS_CPUTIME_ID), elapsed;

	assert_true(n <= 16);
	for (int i = 0; i < n; i++) {
		struct vdrv_seg d = { vdrv_alloc(&f->d, len), len, false };

		r[i] = queue_req(f, VIRTIO_BLK_T_OUT, (uint64_t)i * (len / SECTOR), &d, 1);
	}
	vdrv_notify(&f->d, 0);
	wait_used(f, n);
	elapsed = ms_of(CLOCK_MONOTONIC) - t0;
	if (cpu_ms)
		*cpu_ms = ms_of(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	for (int i = 0; i < n; i++)
		assert_int_equal(status_of(f, r[i]), VIRTIO_BLK_S_OK);
	return elapsed;
}

/* The rate limiter as PATCH /drives/{id} sets it on a running disk: bandwidth 8 KiB per 100 ms
 * lets six 4 KiB writes through in about 200 ms (two at once from the full bucket, then one
 * every 50 ms) without the worker spinning; ops 2 per 100 ms alone does the same by requests; a
 * request bigger than the bucket still completes; a 0-sized bucket lifts the limit. */
static void test_rate_limiter(void **state)
{
	struct fixture *f = *state;
	struct rate_limiter_config rl = {.bandwidth = {.size = 8192, .refill_time_ms = 100}};
	uint64_t elapsed, cpu;

	activate_queue(f, 0);
	assert_int_equal(virtio_blk_set_rate_limiter(f->d.dev, &rl, 3), 0);
	elapsed = timed_writes(f, 6, 4096, &cpu);
	assert_true(elapsed >= 190);
	assert_true(elapsed < 3000);
	assert_true(cpu < elapsed / 2);

	/* Only the ops bucket: the bandwidth one is replaced by "no limit", ops set. */
	rl = (struct rate_limiter_config){.ops = {.size = 2, .refill_time_ms = 100}};
	assert_int_equal(virtio_blk_set_rate_limiter(f->d.dev, &rl, 3), 0);
	elapsed = timed_writes(f, 6, 512, NULL);
	assert_true(elapsed >= 190);

	/* Oversize: 64 KiB through a 4 KiB bucket completes, the next request waits it off. */
	rl = (struct rate_limiter_config){.bandwidth = {.size = 4096, .refill_time_ms = 50}};
	assert_int_equal(virtio_blk_set_rate_limiter(f->d.dev, &rl, 3), 0);
	elapsed = timed_writes(f, 2, 65536, NULL);
	assert_true(elapsed >= 700); /* 60 KiB of debt at 4 KiB per 50 ms, then 64 KiB more */
	assert_true(elapsed < 5000);

	/* No limit: sixteen writes at once. */
	rl = (struct rate_limiter_config){0};
	assert_int_equal(virtio_blk_set_rate_limiter(f->d.dev, &rl, 3), 0);
	elapsed = timed_writes(f, 16, 4096, NULL);
	assert_true(elapsed < 500);
}

static void test_flush(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, SECTOR);
	struct virtio_blk_stats st;
	struct req w, fl;
	uint32_t used_len;

	/* A write and a flush in the same batch: both complete, the flush after the write. */
	fill_pattern(vdrv_ptr(&f->d, gpa, SECTOR), SECTOR, 3);
	struct vdrv_seg d = { gpa, SECTOR, false };

	w = queue_req(f, VIRTIO_BLK_T_OUT, 9, &d, 1);
	fl = queue_req(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
	vdrv_notify(&f->d, 0);
	wait_used(f, 2);
	assert_int_equal(status_of(f, w), VIRTIO_BLK_S_OK);
	assert_int_equal(status_of(f, fl), VIRTIO_BLK_S_OK);

	assert_int_equal(do_req(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, &used_len), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len, 1);
	virtio_blk_get_stats(f->d.dev, &st);
	assert_int_equal(st.flushes, 2);
}

static void test_get_id(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, 20);
	struct vdrv_seg d = { gpa, 20, true };
	char want[20] = "disk-serial-7"; /* NUL-padded to 20 bytes */
	uint32_t used_len;

	memset(vdrv_ptr(&f->d, gpa, 20), 'x', 20);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_GET_ID, 0, &d, 1, &used_len), VIRTIO_BLK_S_OK);
	assert_memory_equal(vdrv_ptr(&f->d, gpa, 20), want, 20);
	assert_int_equal(used_len, 21);
}

/* A 20-character id fills the field without a NUL (the fixture named the disk so). */
static void test_get_id_full_length(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, 32);
	struct vdrv_seg d = { gpa, 32, true };
	uint32_t used_len;

	memset(vdrv_ptr(&f->d, gpa, 32), 'x', 32);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_GET_ID, 0, &d, 1, &used_len), VIRTIO_BLK_S_OK);
	assert_memory_equal(vdrv_ptr(&f->d, gpa, 20), LONG_ID, 20);
	/* Nothing past the 20 bytes. */
	assert_int_equal(*(char *)vdrv_ptr(&f->d, gpa + 20, 1), 'x');
	assert_int_equal(used_len, 21);
}

static bool range_is_hole(struct fixture *f, off_t off, off_t len)
{
	int fd = open(f->path, O_RDONLY);
	off_t hole = lseek(fd, off, SEEK_HOLE), data = lseek(fd, off, SEEK_DATA);

	close(fd);
	/* A hole starts at `off` and no data follows inside the range. */
	return hole == off && (data < 0 || data >= off + len);
}

static void test_discard_punches_a_hole(void **state)
{
	struct fixture *f = *state;
	uint8_t pattern[64 * 1024], buf[8192], zero[8192] = { 0 };
	struct virtio_blk_stats st;

	fill_pattern(pattern, sizeof(pattern), 1);
	write_file(f, 0, pattern, sizeof(pattern));
	assert_false(range_is_hole(f, 8192, 8192));

	/* Sectors [16, 32) and [64, 72): two segments in one request. */
	struct virtio_blk_discard_write_zeroes segs[2] = { { .sector = 16, .num_sectors = 16 },
							   { .sector = 64, .num_sectors = 8 } };

	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_DISCARD, segs, 2), VIRTIO_BLK_S_OK);
	assert_true(range_is_hole(f, 8192, 8192));
	assert_true(range_is_hole(f, 32768, 4096));
	read_file(f, 8192, buf, 8192);
	assert_memory_equal(buf, zero, 8192);
	read_file(f, 0, buf, 8192); /* around it, the data stays */
	assert_memory_equal(buf, pattern, 8192);
	read_file(f, 16384, buf, 8192);
	assert_memory_equal(buf, pattern + 16384, 8192);
	virtio_blk_get_stats(f->d.dev, &st);
	assert_int_equal(st.discards, 1);

	/* Refused segments leave the file alone. */
	struct virtio_blk_discard_write_zeroes bad;

	bad = dwz(0, 8, 1);
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_DISCARD, &bad, 1), VIRTIO_BLK_S_UNSUPP); /* unmap */
	bad.flags = 2; /* reserved */
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_DISCARD, &bad, 1), VIRTIO_BLK_S_UNSUPP);
	bad = dwz(NR_SECTORS - 4, 8, 0);
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_DISCARD, &bad, 1), VIRTIO_BLK_S_IOERR);
	bad = dwz(~0ULL - 2, 8, 0);
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_DISCARD, &bad, 1), VIRTIO_BLK_S_IOERR);
	bad = dwz(0, 0xffffffffu, 0);
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_DISCARD, &bad, 1), VIRTIO_BLK_S_IOERR);
	/* A good segment followed by a bad one: nothing is done. */
	segs[0] = dwz(0, 8, 0);
	segs[1] = dwz(NR_SECTORS, 1, 0);
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_DISCARD, segs, 2), VIRTIO_BLK_S_IOERR);
	read_file(f, 0, buf, 8192);
	assert_memory_equal(buf, pattern, 8192);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
}

static void test_write_zeroes(void **state)
{
	struct fixture *f = *state;
	uint8_t ones[32768], buf[32768];
	struct virtio_blk_stats st;

	memset(ones, 0xaa, sizeof(ones));
	write_file(f, 0, ones, sizeof(ones));

	struct virtio_blk_discard_write_zeroes seg = { .sector = 8, .num_sectors = 9 };

	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, &seg, 1), VIRTIO_BLK_S_OK);
	seg = dwz(40, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, &seg, 1), VIRTIO_BLK_S_OK);
	read_file(f, 0, buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++) {
		bool zeroed = (i >= 8 * SECTOR && i < 17 * SECTOR) ||
			      (i >= 40 * SECTOR && i < 48 * SECTOR);

		if (buf[i] != (zeroed ? 0 : 0xaa))
			fail_msg("byte %zu is %#x", i, buf[i]);
	}
	seg = dwz(0, 1, 4);
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, &seg, 1), VIRTIO_BLK_S_UNSUPP);
	seg = dwz(NR_SECTORS, 1, 0);
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, &seg, 1), VIRTIO_BLK_S_IOERR);
	virtio_blk_get_stats(f->d.dev, &st);
	assert_int_equal(st.write_zeroes, 2);
	assert_int_equal(st.unsupported, 1);
	assert_int_equal(st.errors, 1);
}

static void test_read_only_refuses_writes(void **state)
{
	struct fixture *f = *state;
	uint8_t *before = malloc(IMAGE_SIZE), *after = malloc(IMAGE_SIZE);
	uint64_t gpa = vdrv_alloc(&f->d, 2 * SECTOR);
	struct stat st_before, st_after;

	fill_pattern(before, IMAGE_SIZE, 9);
	write_file(f, 0, before, IMAGE_SIZE);
	assert_int_equal(stat(f->path, &st_before), 0);

	memset(vdrv_ptr(&f->d, gpa, 2 * SECTOR), 0x55, 2 * SECTOR);
	assert_int_equal(do_rw(f, true, 0, gpa, 2 * SECTOR), VIRTIO_BLK_S_IOERR);
	struct virtio_blk_discard_write_zeroes seg = { .sector = 0, .num_sectors = 64 };

	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_DISCARD, &seg, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_dwz(f, VIRTIO_BLK_T_WRITE_ZEROES, &seg, 1), VIRTIO_BLK_S_IOERR);

	/* Reads and flushes still work. */
	assert_int_equal(do_rw(f, false, 1, gpa, 2 * SECTOR), VIRTIO_BLK_S_OK);
	assert_memory_equal(vdrv_ptr(&f->d, gpa, 2 * SECTOR), before + SECTOR, 2 * SECTOR);
	assert_int_equal(do_req(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL), VIRTIO_BLK_S_OK);

	read_file(f, 0, after, IMAGE_SIZE);
	assert_memory_equal(after, before, IMAGE_SIZE);
	free(before);
	free(after);
	assert_int_equal(stat(f->path, &st_after), 0);
	assert_int_equal(st_after.st_blocks, st_before.st_blocks);
	assert_int_equal(st_after.st_size, st_before.st_size);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
}

static void test_out_of_range_requests(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, 4 * SECTOR);
	struct stat st;
	uint32_t used_len;

	memset(vdrv_ptr(&f->d, gpa, 4 * SECTOR), 0x77, 4 * SECTOR);
	struct vdrv_seg d = { gpa, 2 * SECTOR, true };

	/* Reads: one sector past the end, a sector number that overflows, far away. */
	assert_int_equal(do_req(f, VIRTIO_BLK_T_IN, NR_SECTORS - 1, &d, 1, &used_len),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(used_len, 1);
	assert_int_equal(do_rw(f, false, ~0ULL, gpa, SECTOR), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_rw(f, false, ~0ULL / 512 + 1, gpa, SECTOR), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_rw(f, false, NR_SECTORS, gpa, SECTOR), VIRTIO_BLK_S_IOERR);
	/* The buffer was not touched. */
	for (int i = 0; i < 2 * SECTOR; i++)
		assert_int_equal(((uint8_t *)vdrv_ptr(&f->d, gpa, 2 * SECTOR))[i], 0x77);

	/* Writes past the end do not grow the file. */
	assert_int_equal(do_rw(f, true, NR_SECTORS - 1, gpa, 2 * SECTOR), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_rw(f, true, ~0ULL - 1, gpa, 4 * SECTOR), VIRTIO_BLK_S_IOERR);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, IMAGE_SIZE);

	/* The last sector itself is fine; lengths must be whole sectors. */
	assert_int_equal(do_rw(f, true, NR_SECTORS - 1, gpa, SECTOR), VIRTIO_BLK_S_OK);
	assert_int_equal(do_rw(f, false, 0, gpa, 100), VIRTIO_BLK_S_IOERR);
	assert_int_equal(do_rw(f, true, 0, gpa, SECTOR + 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
}

/* The image shrank under the VM: reads past the new end fail, they do not hang or crash. */
static void test_image_shrank(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, 8 * SECTOR);

	assert_int_equal(truncate(f->path, 4 * SECTOR), 0);
	assert_int_equal(do_rw(f, false, 0, gpa, 4 * SECTOR), VIRTIO_BLK_S_OK);
	assert_int_equal(do_rw(f, false, 2, gpa, 4 * SECTOR), VIRTIO_BLK_S_IOERR); /* short */
	assert_int_equal(do_rw(f, false, 100, gpa, SECTOR), VIRTIO_BLK_S_IOERR);   /* at EOF */
}

static void test_unsupported_type(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, 64);
	struct vdrv_seg d = { gpa, 64, true };
	struct virtio_blk_stats st;
	uint32_t used_len;

	assert_int_equal(do_req(f, 99, 0, NULL, 0, &used_len), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(used_len, 1);
	assert_int_equal(do_req(f, 10 /* GET_LIFETIME */, 0, &d, 1, NULL), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(do_req(f, 0x80000000u, 0, NULL, 0, NULL), VIRTIO_BLK_S_UNSUPP);
	virtio_blk_get_stats(f->d.dev, &st);
	assert_int_equal(st.unsupported, 3);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
}

/* Resets the device (as the transport does after DEVICE_NEEDS_RESET) and sets the queue up
 * again, then checks that a request works. */
static void reset_and_check_working(struct fixture *f)
{
	uint64_t gpa = vdrv_alloc(&f->d, SECTOR);

	vdrv_reset(&f->d);
	f->d.dev->failed = false;
	activate_queue(f, 0);
	assert_int_equal(do_rw(f, false, 0, gpa, SECTOR), VIRTIO_BLK_S_OK);
}

/* A malformed chain marks the device failed; it takes nothing more until reset. */
static void expect_failed(struct fixture *f, const char *reason_part)
{
	uint16_t before = vdrv_used_idx(&f->d, 0);
	struct timespec ts = { .tv_nsec = 50 * 1000000 };

	vdrv_notify(&f->d, 0);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 1);
	assert_true(f->d.dev->failed);
	if (reason_part && !strstr(f->d.fail_reason, reason_part))
		fail_msg("fail reason \"%s\" lacks \"%s\"", f->d.fail_reason, reason_part);
	/* A good request after it is not served. */
	queue_req(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
	vdrv_notify(&f->d, 0);
	nanosleep(&ts, NULL);
	assert_int_equal(vdrv_used_idx(&f->d, 0), before);
	reset_and_check_working(f);
	__atomic_store_n(&f->d.fails, 0, __ATOMIC_SEQ_CST);
}

static void test_malformed_chains_fail_the_device(void **state)
{
	struct fixture *f = *state;
	uint64_t hgpa = vdrv_alloc(&f->d, 16), sgpa = vdrv_alloc(&f->d, 1),
		 dgpa = vdrv_alloc(&f->d, SECTOR);
	struct virtio_blk_req_hdr *hdr = vdrv_ptr(&f->d, hgpa, 16);

	*hdr = (struct virtio_blk_req_hdr){ .type = VIRTIO_BLK_T_IN, .sector = 0 };

	/* Header too short. */
	struct vdrv_seg short_hdr[2] = { { hgpa, 8, false }, { sgpa, 1, true } };

	vdrv_add_chain(&f->d, 0, short_hdr, 2);
	expect_failed(f, "header");

	/* No device-writable buffer for the status. */
	struct vdrv_seg no_status[2] = { { hgpa, 16, false }, { dgpa, SECTOR, false } };

	*hdr = (struct virtio_blk_req_hdr){ .type = VIRTIO_BLK_T_OUT, .sector = 0 };
	vdrv_add_chain(&f->d, 0, no_status, 2);
	expect_failed(f, "status");

	/* A read carrying device-readable data. */
	struct vdrv_seg read_out[3] = { { hgpa, 16, false }, { dgpa, SECTOR, false },
				   { sgpa, 1, true } };

	*hdr = (struct virtio_blk_req_hdr){ .type = VIRTIO_BLK_T_IN, .sector = 0 };
	vdrv_add_chain(&f->d, 0, read_out, 3);
	expect_failed(f, "wrong direction");

	/* A write whose data is device-writable. */
	struct vdrv_seg write_in[3] = { { hgpa, 16, false }, { dgpa, SECTOR, true },
					{ sgpa, 1, true } };

	*hdr = (struct virtio_blk_req_hdr){ .type = VIRTIO_BLK_T_OUT, .sector = 0 };
	vdrv_add_chain(&f->d, 0, write_in, 3);
	expect_failed(f, "wrong direction");

	/* A flush with data. */
	*hdr = (struct virtio_blk_req_hdr){ .type = VIRTIO_BLK_T_FLUSH };
	vdrv_add_chain(&f->d, 0, write_in, 3);
	expect_failed(f, "wrong direction");

	/* Buffers outside guest RAM: in the hole between regions, and running off the end of the
	 * high region. The queue refuses them; nothing is read or written. */
	struct vdrv_seg hole[3] = { { hgpa, 16, false }, { HOLE_GPA, SECTOR, true },
				    { sgpa, 1, true } };

	*hdr = (struct virtio_blk_req_hdr){ .type = VIRTIO_BLK_T_IN, .sector = 0 };
	*(uint8_t *)vdrv_ptr(&f->d, sgpa, 1) = 0xee;
	vdrv_add_chain(&f->d, 0, hole, 3);
	expect_failed(f, NULL);
	assert_int_equal(*(uint8_t *)vdrv_ptr(&f->d, sgpa, 1), 0xee);
	struct vdrv_seg off_end[3] = { { hgpa, 16, false },
				  { HIGH_RAM_GPA + MiB - SECTOR / 2, SECTOR, true },
				  { sgpa, 1, true } };

	vdrv_add_chain(&f->d, 0, off_end, 3);
	expect_failed(f, NULL);
	assert_int_equal(*(uint8_t *)vdrv_ptr(&f->d, sgpa, 1), 0xee);

	/* A read at the very top of guest RAM is fine: the status is RAM's last byte. */
	struct vdrv_seg top[2] = { { hgpa, 16, false },
			      { HIGH_RAM_GPA + MiB - SECTOR - 1, SECTOR + 1, true } };

	vdrv_add_chain(&f->d, 0, top, 2);
	vdrv_notify(&f->d, 0);
	assert_int_equal(wait_used(f, 1).len, SECTOR + 1);
	assert_int_equal(*(uint8_t *)vdrv_ptr(&f->d, HIGH_RAM_GPA + MiB - 1, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
}

static void drop_cache(struct fixture *f)
{
	int fd = open(f->path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fdatasync(fd), 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
}

/* Reset waits for in-flight reads: once it returns, guest memory is not written any more, and
 * nothing more appears in the used ring. */
static void test_reset_waits_for_in_flight_io(void **state)
{
	struct fixture *f = *state;
	enum { N = 32, LEN = 16 * 1024 };
	uint64_t gpa[N];
	struct timespec ts = { .tv_nsec = 100 * 1000000 };
	uint8_t pattern[LEN];

	fill_pattern(pattern, LEN, 5);
	for (int i = 0; i < (int)(IMAGE_SIZE / LEN); i++)
		write_file(f, (off_t)i * LEN, pattern, LEN);
	drop_cache(f); /* reads then wait for the disk: they are still in flight at the reset */
	for (int i = 0; i < N; i++) {
		gpa[i] = vdrv_alloc(&f->d, LEN);
		struct vdrv_seg d = { gpa[i], LEN, true };

		queue_req(f, VIRTIO_BLK_T_IN, (uint64_t)(i % 64) * (LEN / SECTOR), &d, 1);
	}
	assert_int_equal(event_loop_call(f->d.loop, call_notify_and_reset, f->d.dev), 0);
	uint16_t idx = vdrv_used_idx(&f->d, 0);

	for (int i = 0; i < N; i++)
		memset(vdrv_ptr(&f->d, gpa[i], LEN), 0x3c, LEN);
	nanosleep(&ts, NULL);
	for (int i = 0; i < N; i++) {
		const uint8_t *p = vdrv_ptr(&f->d, gpa[i], LEN);

		for (int j = 0; j < LEN; j++)
			if (p[j] != 0x3c)
				fail_msg("buffer %d byte %d written after reset", i, j);
	}
	assert_int_equal(vdrv_used_idx(&f->d, 0), idx);
	vdrv_forget_rings(&f->d);
	activate_queue(f, 0);
	assert_int_equal(do_rw(f, false, 0, gpa[0], LEN), VIRTIO_BLK_S_OK);
	assert_memory_equal(vdrv_ptr(&f->d, gpa[0], LEN), pattern, LEN);
}

/* On the worker: the notification, then the used index as it stands before the worker goes back
 * to its loop (where io_uring's completions are reaped). */
struct notify_used {
	struct fixture *f;
	uint16_t used;
};

static void call_notify_read_used(void *arg)
{
	struct notify_used *c = arg;

	c->f->d.dev->ops->queue_notify(c->f->d.dev, 0);
	c->used = vdrv_used_idx(&c->f->d, 0);
}

/* A write to an image that is a regular file is done by the worker inside the notification
 * (pwritev), with either backend: io_uring would hand it to one of its kernel workers. */
static void test_writes_complete_in_the_notification(void **state)
{
	struct fixture *f = *state;
	enum { LEN = 64 * 1024 };
	uint64_t gpa = vdrv_alloc(&f->d, LEN);
	struct vdrv_seg d = { gpa, LEN, false };
	struct notify_used c = { .f = f };
	uint8_t want[LEN], got[LEN];
	struct req r;

	fill_pattern(want, LEN, 9);
	memcpy(vdrv_ptr(&f->d, gpa, LEN), want, LEN);
	r = queue_req(f, VIRTIO_BLK_T_OUT, 16, &d, 1);
	assert_int_equal(event_loop_call(f->d.loop, call_notify_read_used, &c), 0);
	assert_int_equal(c.used, (uint16_t)(f->d.ring[0].used_seen + 1));
	wait_used(f, 1);
	assert_int_equal(status_of(f, r), VIRTIO_BLK_S_OK);
	read_file(f, 16 * SECTOR, got, LEN);
	assert_memory_equal(got, want, LEN);
}

/* A driver may offer the same chain again while it is in flight: more requests than the device
 * has slots for. The rest wait in the ring and are taken as slots free up; all complete. */
struct offer_again {
	struct fixture *f;
	uint16_t head;
};

static void offer(struct fixture *f, uint16_t head, int n)
{
	for (int i = 0; i < n; i++)
		vdrv_offer(&f->d, 0, head);
}

/* On the worker: take a full ring, then (before any completion is reaped) a second one. */
static void call_notify_offer_notify(void *arg)
{
	struct offer_again *o = arg;
	struct virtio_device *dev = o->f->d.dev;

	dev->ops->queue_notify(dev, 0);
	offer(o->f, o->head, QSIZE);
	dev->ops->queue_notify(dev, 0);
}

static void test_more_requests_than_slots(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, 4096);
	struct vdrv_seg d = { gpa, 4096, true };
	struct virtio_blk_stats st;
	struct req r;

	r = queue_req(f, VIRTIO_BLK_T_IN, 8, &d, 1);
	offer(f, r.head, QSIZE - 1);
	struct offer_again o = { f, r.head };

	assert_int_equal(event_loop_call(f->d.loop, call_notify_offer_notify, &o), 0);
	wait_used(f, 2 * QSIZE);
	assert_int_equal(status_of(f, r), VIRTIO_BLK_S_OK);
	virtio_blk_get_stats(f->d.dev, &st);
	assert_int_equal(st.read_requests, 2 * QSIZE);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
}

/* With EVENT_IDX the device asks for the next kick (avail_event) once it has taken everything;
 * without it, VIRTQ_USED_F_NO_NOTIFY is clear after processing. */
static void test_notifications_reenabled(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, SECTOR);
	struct virtq_used *used = vdrv_used(&f->d, 0);

	assert_int_equal(do_rw(f, false, 0, gpa, SECTOR), VIRTIO_BLK_S_OK);
	assert_int_equal(used->flags & VIRTQ_USED_F_NO_NOTIFY, 0);

	vdrv_reset(&f->d);
	activate_queue(f, 1ULL << VIRTIO_F_EVENT_IDX);
	for (int i = 0; i < 3; i++)
		assert_int_equal(do_rw(f, false, (uint64_t)i, gpa, SECTOR), VIRTIO_BLK_S_OK);
	uint16_t avail_event = vdrv_avail_event(&f->d, 0);

	assert_int_equal(avail_event, f->d.ring[0].avail_idx);
}

static void test_lock_refuses_second_writer(void **state)
{
	struct fixture *f = *state;
	struct fixture g = { .use_uring = f->use_uring };
	struct virtio_device *dev, *dev2;
	int ret;

	/* The fixture's device holds the write lock: neither a writer nor a reader gets in. */
	snprintf(g.path, sizeof(g.path), "%s", f->path);
	dev = create_dev(&g, "again", &ret);
	assert_int_equal(ret, -EBUSY);
	assert_null(dev);
	assert_non_null(strstr(g.create_log, "in use by another process (locked)"));
	assert_non_null(strstr(g.create_log, f->path));
	g.read_only = true;
	dev = create_dev(&g, "again", &ret);
	assert_int_equal(ret, -EBUSY);

	/* Once it is gone, two readers share the image, and a writer is refused. */
	vdrv_reset(&f->d);
	f->d.dev->ops->destroy(f->d.dev);
	dev = create_dev(&g, "r1", &ret);
	assert_int_equal(ret, 0);
	dev2 = create_dev(&g, "r2", &ret);
	assert_int_equal(ret, 0);
	g.read_only = false;
	assert_null(create_dev(&g, "w", &ret));
	assert_int_equal(ret, -EBUSY);
	dev2->ops->destroy(dev2);
	dev->ops->destroy(dev);

	/* The fixture gets a device back for its teardown. */
	dev = create_dev(&g, "w", &ret);
	assert_int_equal(ret, 0);
	vdrv_attach(&f->d, dev);
}

static void test_bad_images(void **state)
{
	struct fixture g = { .use_uring = false };
	struct virtio_device *dev;
	int ret;

	snprintf(g.path, sizeof(g.path), "/nonexistent/skiff.img");
	assert_null(create_dev(&g, "x", &ret));
	assert_int_equal(ret, -ENOENT);
	assert_non_null(strstr(g.create_log, "/nonexistent/skiff.img"));
	snprintf(g.path, sizeof(g.path), "/tmp");
	assert_null(create_dev(&g, "x", &ret));
	assert_true(ret < 0);
	snprintf(g.path, sizeof(g.path), "/dev/null");
	g.read_only = true;
	assert_null(create_dev(&g, "x", &ret));
	assert_int_equal(ret, -EINVAL);
	assert_non_null(strstr(g.create_log, "not a regular file or a block device"));

	/* An empty image is legal: capacity 0. A size that is not whole sectors is rounded down. */
	struct virtio_blk_config c;

	g.read_only = false;
	make_image(&g, 0);
	dev = create_dev(&g, "empty", &ret);
	assert_int_equal(ret, 0);
	dev->ops->config_read(dev, 0, &c, sizeof(c));
	assert_int_equal(c.capacity, 0);
	dev->ops->destroy(dev);
	assert_int_equal(truncate(g.path, 1000), 0);
	dev = create_dev(&g, "odd", &ret);
	assert_int_equal(ret, 0);
	dev->ops->config_read(dev, 0, &c, sizeof(c));
	assert_int_equal(c.capacity, 1);
	dev->ops->destroy(dev);
	unlink(g.path);
}

/* ---- swapping the backing file, and stopping ---- */

/* A new image of `size` bytes filled with fill_pattern(seed). */
static void make_filled_image(char path[64], uint64_t size, unsigned seed)
{
	uint8_t *buf = malloc(size);
	int fd;

	assert_non_null(buf);
	snprintf(path, 64, "/tmp/skiff-blk2-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fill_pattern(buf, size, seed);
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	assert_int_equal(fsync(fd), 0);
	close(fd);
	free(buf);
}

/* Tries an OFD lock of `type` on `path` from a file description of our own: 0, or -errno
 * (-EAGAIN when someone holds a conflicting lock). */
static int try_lock(const char *path, short type)
{
	struct flock l = { .l_type = type, .l_whence = SEEK_SET };
	int fd = open(path, type == F_WRLCK ? O_RDWR : O_RDONLY), ret;

	assert_true(fd >= 0);
	ret = fcntl(fd, F_OFD_SETLK, &l) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

static uint64_t config_capacity(struct fixture *f)
{
	struct virtio_blk_config c;

	f->d.dev->ops->config_read(f->d.dev, 0, &c, sizeof(c));
	return c.capacity;
}

static int config_signals(struct fixture *f)
{
	return __atomic_load_n(&f->d.config_signals, __ATOMIC_SEQ_CST);
}

/* Reads `len` bytes at `sector` through the device and compares them with fill_pattern(seed)
 * at that offset of the file. */
static void expect_read(struct fixture *f, uint64_t sector, uint32_t len, unsigned seed)
{
	uint64_t gpa = vdrv_alloc(&f->d, len);
	uint64_t end = sector * SECTOR + len;
	uint8_t *want = malloc(end);

	assert_non_null(want);
	fill_pattern(want, end, seed);
	memset(vdrv_ptr(&f->d, gpa, len), 0x5a, len);
	assert_int_equal(do_rw(f, false, sector, gpa, len), VIRTIO_BLK_S_OK);
	assert_memory_equal(vdrv_ptr(&f->d, gpa, len), want + sector * SECTOR, len);
	free(want);
}

static void fill_image(struct fixture *f, unsigned seed)
{
	uint8_t *buf = malloc(IMAGE_SIZE);

	assert_non_null(buf);
	fill_pattern(buf, IMAGE_SIZE, seed);
	write_file(f, 0, buf, IMAGE_SIZE);
	free(buf);
}

static void test_swap_backing(void **state)
{
	struct fixture *f = *state;
	const uint64_t new_size = 3 * MiB;
	uint32_t gen;

	fill_image(f, 1);
	expect_read(f, 0, 4 * SECTOR, 1);
	assert_int_equal(try_lock(f->path, F_WRLCK), -EAGAIN);
	make_filled_image(f->path2, new_size, 2);
	gen = __atomic_load_n(&f->d.config_generation, __ATOMIC_SEQ_CST);

	assert_int_equal(virtio_blk_replace_backing(f->d.dev, f->path2), 0);

	/* The guest is told, and finds the new size and content. */
	assert_int_equal(config_signals(f), 1);
	assert_true(__atomic_load_n(&f->d.interrupt_status, __ATOMIC_SEQ_CST) &
		    VIRTIO_MMIO_INT_CONFIG);
	assert_int_not_equal(__atomic_load_n(&f->d.config_generation, __ATOMIC_SEQ_CST), gen);
	assert_int_equal(config_capacity(f), new_size / SECTOR);
	expect_read(f, 0, 4 * SECTOR, 2);
	expect_read(f, new_size / SECTOR - 8, 8 * SECTOR, 2); /* beyond the old end */

	/* The old file is let go (its lock with it); the new one is locked. */
	assert_int_equal(try_lock(f->path, F_WRLCK), 0);
	assert_int_equal(try_lock(f->path2, F_WRLCK), -EAGAIN);
	assert_int_equal(try_lock(f->path2, F_RDLCK), -EAGAIN);

	/* Writes go to the new file, none to the old. */
	uint64_t gpa = vdrv_alloc(&f->d, SECTOR);
	uint8_t got[SECTOR], old[SECTOR];
	struct fixture g = *f;

	memset(vdrv_ptr(&f->d, gpa, SECTOR), 0x77, SECTOR);
	assert_int_equal(do_rw(f, true, 3000, gpa, SECTOR), VIRTIO_BLK_S_OK);
	snprintf(g.path, sizeof(g.path), "%s", f->path2);
	read_file(&g, 3000 * SECTOR, got, SECTOR);
	assert_memory_equal(got, vdrv_ptr(&f->d, gpa, SECTOR), SECTOR);
	read_file(f, 0, old, SECTOR);
	fill_pattern(got, SECTOR, 1);
	assert_memory_equal(old, got, SECTOR);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);

	/* And back to the first file, now smaller again. */
	assert_int_equal(virtio_blk_replace_backing(f->d.dev, f->path), 0);
	assert_int_equal(config_signals(f), 2);
	assert_int_equal(config_capacity(f), NR_SECTORS);
	expect_read(f, 0, 4 * SECTOR, 1);
	assert_int_equal(try_lock(f->path2, F_WRLCK), 0);
}

/* The same file again (it grew): the lock is kept, the capacity follows. */
static void test_swap_same_file_rescans_size(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(truncate(f->path, 2 * IMAGE_SIZE), 0);
	assert_int_equal(virtio_blk_replace_backing(f->d.dev, f->path), 0);
	assert_int_equal(config_capacity(f), 2 * NR_SECTORS);
	assert_int_equal(config_signals(f), 1);
	assert_int_equal(try_lock(f->path, F_WRLCK), -EAGAIN);

	/* The sectors it grew by are there (zeroes), and the old ones still answer. */
	uint64_t gpa = vdrv_alloc(&f->d, SECTOR);
	uint8_t zero[SECTOR] = { 0 };

	memset(vdrv_ptr(&f->d, gpa, SECTOR), 0x5a, SECTOR);
	assert_int_equal(do_rw(f, false, 2 * NR_SECTORS - 1, gpa, SECTOR), VIRTIO_BLK_S_OK);
	assert_memory_equal(vdrv_ptr(&f->d, gpa, SECTOR), zero, SECTOR);
	assert_int_equal(do_rw(f, false, 2 * NR_SECTORS, gpa, SECTOR), VIRTIO_BLK_S_IOERR);
}

/* Refused swaps leave the old file serving, locked, and the guest undisturbed. */
static void expect_unchanged(struct fixture *f)
{
	assert_int_equal(config_capacity(f), NR_SECTORS);
	assert_int_equal(config_signals(f), 0);
	assert_int_equal(try_lock(f->path, F_WRLCK), -EAGAIN);
	expect_read(f, 8, 2 * SECTOR, 1);
}

static void test_swap_refused(void **state)
{
	struct fixture *f = *state;
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd;

	fill_image(f, 1);
	assert_int_equal(virtio_blk_replace_backing(f->d.dev, "/nonexistent/x.img"),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/x.img"));
	assert_non_null(strstr(err, "cannot open"));
	expect_unchanged(f);

	assert_true(virtio_blk_replace_backing(f->d.dev, "/tmp") < 0);
	assert_non_null(strstr(err, "/tmp"));
	expect_unchanged(f);

	/* Another process holds the new file. */
	make_filled_image(f->path2, IMAGE_SIZE, 2);
	fd = open(f->path2, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &l), 0);
	assert_int_equal(virtio_blk_replace_backing(f->d.dev, f->path2), -EBUSY);
	assert_non_null(strstr(err, "locked"));
	assert_non_null(strstr(err, f->path2));
	expect_unchanged(f);
	close(fd);

	/* An empty file. */
	assert_int_equal(truncate(f->path2, 0), 0);
	assert_int_equal(virtio_blk_replace_backing(f->d.dev, f->path2), -EINVAL);
	assert_non_null(strstr(err, "empty"));
	expect_unchanged(f);
	/* The refused file was not kept open: nobody holds its lock. */
	assert_int_equal(try_lock(f->path2, F_WRLCK), 0);

	/* Not a disk at all, and an empty path. */
	assert_int_equal(virtio_blk_replace_backing(f->d.dev, ""), -EINVAL);
	struct virtio_device other = { .ops = &(struct virtio_device_ops){ .device_id = 4 } };

	assert_int_equal(virtio_blk_replace_backing(&other, f->path2), -EINVAL);
	expect_unchanged(f);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
}

/* On the worker, in one visit: take the queued requests, then swap while they are in flight. */
struct notify_and_swap {
	struct fixture *f;
	int ret;
	uint16_t used_idx; /* just after the swap returned */
};

static void call_notify_and_swap(void *arg)
{
	struct notify_and_swap *c = arg;
	struct virtio_device *dev = c->f->d.dev;

	dev->ops->queue_notify(dev, 0);
	c->ret = virtio_blk_replace_backing(dev, c->f->path2);
	c->used_idx = vdrv_used_idx(&c->f->d, 0);
}

static void test_swap_with_requests_in_flight(void **state)
{
	struct fixture *f = *state;
	enum { N = 32, LEN = 16 * 1024 };
	struct notify_and_swap c = { .f = f };
	uint8_t *want = malloc(IMAGE_SIZE), got[LEN];
	struct req r[2 * N];
	uint64_t gpa[N];

	assert_non_null(want);
	fill_image(f, 1);
	make_filled_image(f->path2, IMAGE_SIZE, 2);
	drop_cache(f); /* the reads wait for the disk: still in flight at the swap */

	/* Reads of the old content, and writes to it, taken before the swap. */
	for (int i = 0; i < N; i++) {
		gpa[i] = vdrv_alloc(&f->d, LEN);
		memset(vdrv_ptr(&f->d, gpa[i], LEN), 0x3c, LEN);
		struct vdrv_seg d = { gpa[i], LEN, true };

		r[i] = queue_req(f, VIRTIO_BLK_T_IN, (uint64_t)i * (LEN / SECTOR), &d, 1);
	}
	uint64_t wgpa = vdrv_alloc(&f->d, LEN);

	memset(vdrv_ptr(&f->d, wgpa, LEN), 0xa5, LEN);
	for (int i = 0; i < N; i++) {
		struct vdrv_seg d = { wgpa, LEN, false };

		r[N + i] = queue_req(f, VIRTIO_BLK_T_OUT, (uint64_t)(N + i) * (LEN / SECTOR), &d,
				     1);
	}
	assert_int_equal(event_loop_call(f->d.loop, call_notify_and_swap, &c), 0);
	assert_int_equal(c.ret, 0);
	/* Every request taken before the swap had completed when it returned. */
	assert_int_equal(c.used_idx, (uint16_t)(f->d.ring[0].used_seen + 2 * N));
	wait_used(f, 2 * N);
	for (int i = 0; i < 2 * N; i++)
		assert_int_equal(status_of(f, r[i]), VIRTIO_BLK_S_OK);
	fill_pattern(want, IMAGE_SIZE, 1);
	for (int i = 0; i < N; i++)
		assert_memory_equal(vdrv_ptr(&f->d, gpa[i], LEN), want + (size_t)i * LEN, LEN);

	/* The writes are in the old file (flushed and closed), not the new one. */
	memset(want, 0xa5, LEN);
	for (int i = 0; i < N; i++) {
		read_file(f, (off_t)(N + i) * LEN, got, LEN);
		assert_memory_equal(got, want, LEN);
	}
	struct fixture g = *f;

	snprintf(g.path, sizeof(g.path), "%s", f->path2);
	read_file(&g, (off_t)N * LEN, got, LEN);
	fill_pattern(want, IMAGE_SIZE, 2);
	assert_memory_equal(got, want + (size_t)N * LEN, LEN);

	/* Afterwards, requests see the new file. */
	expect_read(f, 0, LEN, 2);
	assert_int_equal(config_signals(f), 1);
	assert_int_equal(try_lock(f->path, F_WRLCK), 0);
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
	free(want);
}

static void test_swap_read_only_stays_read_only(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = vdrv_alloc(&f->d, SECTOR);
	uint8_t got[SECTOR];
	struct fixture g = *f;

	make_filled_image(f->path2, 2 * IMAGE_SIZE, 2);
	/* Another reader of the new file is fine for a read-only disk. */
	int fd = open(f->path2, O_RDONLY);
	struct flock l = { .l_type = F_RDLCK, .l_whence = SEEK_SET };

	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &l), 0);
	assert_int_equal(virtio_blk_replace_backing(f->d.dev, f->path2), 0);
	close(fd);
	assert_int_equal(config_capacity(f), 2 * NR_SECTORS);
	assert_true(f->d.dev->ops->features(f->d.dev) & 1ULL << VIRTIO_BLK_F_RO);

	memset(vdrv_ptr(&f->d, gpa, SECTOR), 0x11, SECTOR);
	assert_int_equal(do_rw(f, true, 4, gpa, SECTOR), VIRTIO_BLK_S_IOERR);
	snprintf(g.path, sizeof(g.path), "%s", f->path2);
	read_file(&g, 4 * SECTOR, got, SECTOR);
	uint8_t *all = malloc(5 * SECTOR);

	assert_non_null(all);
	fill_pattern(all, 5 * SECTOR, 2);
	assert_memory_equal(got, all + 4 * SECTOR, SECTOR);
	free(all);
	expect_read(f, 0, SECTOR, 2);

	/* The new file is read-locked: readers share it, a writer is kept out. */
	assert_int_equal(try_lock(f->path2, F_RDLCK), 0);
	assert_int_equal(try_lock(f->path2, F_WRLCK), -EAGAIN);
	assert_int_equal(try_lock(f->path, F_WRLCK), 0);

	assert_int_equal(virtio_blk_replace_backing(f->d.dev, f->path), 0);
	assert_int_equal(config_capacity(f), NR_SECTORS);
	assert_int_equal(config_signals(f), 2);
}

/* Before the driver starts the device, a swap changes what it will find; no interrupt. */
static void test_swap_before_activation(void **state)
{
	struct fixture *f = *state;

	vdrv_reset(&f->d);
	make_filled_image(f->path2, 2 * IMAGE_SIZE, 2);
	assert_int_equal(virtio_blk_replace_backing(f->d.dev, f->path2), 0);
	assert_int_equal(config_signals(f), 0);
	assert_int_equal(config_capacity(f), 2 * NR_SECTORS);
	activate_queue(f, 0);
	expect_read(f, 2 * NR_SECTORS - 1, SECTOR, 2);
}

/* Stopping: what the guest wrote is in the file, and the file is closed (its lock is gone). */
static void test_destroy_flushes_and_closes(void **state)
{
	struct fixture *f = *state;
	enum { N = 16, LEN = 8 * SECTOR };
	uint64_t gpa = vdrv_alloc(&f->d, LEN);
	uint8_t got[LEN];
	struct virtio_device *dev;
	int ret;

	fill_pattern(vdrv_ptr(&f->d, gpa, LEN), LEN, 9);
	for (int i = 0; i < N; i++) {
		struct vdrv_seg d = { gpa, LEN, false };

		queue_req(f, VIRTIO_BLK_T_OUT, (uint64_t)i * (LEN / SECTOR), &d, 1);
	}
	vdrv_notify(&f->d, 0);
	assert_int_equal(try_lock(f->path, F_WRLCK), -EAGAIN);
	/* As virtio_mmio_destroy does: reset on the worker, then destroy. */
	vdrv_reset(&f->d);
	f->d.dev->ops->destroy(f->d.dev);
	f->d.dev = NULL;
	assert_int_equal(try_lock(f->path, F_WRLCK), 0);
	for (int i = 0; i < N; i++) {
		read_file(f, (off_t)i * LEN, got, LEN);
		assert_memory_equal(got, vdrv_ptr(&f->d, gpa, LEN), LEN);
	}

	/* The fixture gets a device back for its teardown. */
	dev = create_dev(f, "again", &ret);
	assert_int_equal(ret, 0);
	vdrv_attach(&f->d, dev);
	f->d.activated = false;
}

/* The drive swap's lookup (vm_device_find on the VM's device list): a disk by its config id,
 * among devices of other kinds, with entries as vmm/virtio_devices.c makes them. */
static void test_find_disk(void **state)
{
	const char *ids[3] = {"rootfs", NULL, "scratch"};
	struct virtio_device_ops blk_ops = { .device_id = VIRTIO_ID_BLOCK };
	struct virtio_device_ops con_ops = { .device_id = VIRTIO_ID_CONSOLE };
	struct virtio_device con = { .ops = &con_ops }, d[3];
	struct vm_devices list = {0};
	struct vm_device *e[3];

	vm_device_add(&list, virtio_devices_entry(&con, NULL));
	for (int i = 0; i < 3; i++) {
		d[i] = (struct virtio_device){ .ops = &blk_ops };
		e[i] = virtio_devices_entry(&d[i], ids[i]);
		assert_non_null(e[i]);
	}
	vm_device_add(&list, e[0]);
	/* creation stopped after the first disk */
	assert_null(vm_device_find(&list, VM_DEVICE_VIRTIO_BLK, "scratch"));
	vm_device_add(&list, e[1]);
	vm_device_add(&list, e[2]);
	assert_ptr_equal(vm_device_find(&list, VM_DEVICE_VIRTIO_BLK, "rootfs"), e[0]);
	assert_ptr_equal(vm_device_find(&list, VM_DEVICE_VIRTIO_BLK, "scratch"), e[2]);
	assert_null(vm_device_find(&list, VM_DEVICE_VIRTIO_BLK, ""));
	assert_null(vm_device_find(&list, VM_DEVICE_VIRTIO_BLK, "nope"));
	assert_null(vm_device_find(&list, VM_DEVICE_VIRTIO_CONSOLE, "rootfs"));
	assert_ptr_equal(vm_device_find(&list, VM_DEVICE_VIRTIO_BLK, NULL), e[0]);
	vm_devices_destroy(&list); /* the entries; the devices are the test's */
}

/* Two queues (VIRTIO_BLK_F_MQ): each request comes back on the queue it was taken from, with
 * that queue's interrupt; data written through one queue reads back through the other. */
static void test_two_queues(void **state)
{
	struct fixture *f = *state;
	enum { N = 48, LEN = 2 * SECTOR };
	struct virtio_blk_config c;
	struct req r[N];
	uint64_t gpa[N];
	uint8_t want[LEN], got[LEN];
	bool seen[N] = { false };

	assert_int_equal(f->d.dev->ops->nr_queues, 2);
	assert_true(f->d.dev->ops->features(f->d.dev) & 1ULL << VIRTIO_BLK_F_MQ);
	f->d.dev->ops->config_read(f->d.dev, 0, &c, sizeof(c));
	assert_int_equal(c.num_queues, 2);

	/* Writes spread over both queues, kicked together. */
	for (int i = 0; i < N; i++) {
		struct vdrv_seg data;

		gpa[i] = vdrv_alloc(&f->d, LEN);
		fill_pattern(vdrv_ptr(&f->d, gpa[i], LEN), LEN, (unsigned)i + 100);
		data = (struct vdrv_seg){ gpa[i], LEN, false };
		r[i] = queue_req_on(f, i % 2, VIRTIO_BLK_T_OUT, (uint64_t)i * 4, &data, 1);
	}
	vdrv_notify(&f->d, 0);
	vdrv_notify(&f->d, 1);
	wait_used_on(f, 0, N / 2);
	wait_used_on(f, 1, N / 2);
	for (int q = 0; q < 2; q++) {
		for (uint16_t k = 0; k < N / 2; k++) {
			struct virtq_used_elem e = vdrv_used_elem(&f->d, q, k);
			int i;

			for (i = q; i < N; i += 2)
				if (r[i].head == e.id && !seen[i])
					break;
			assert_true(i < N); /* a chain of this queue, once */
			seen[i] = true;
			assert_int_equal(status_of(f, r[i]), VIRTIO_BLK_S_OK);
		}
		assert_true(__atomic_load_n(&f->d.signals[q], __ATOMIC_SEQ_CST) >= 1);
	}
	for (int i = 0; i < N; i++) {
		memcpy(want, vdrv_ptr(&f->d, gpa[i], LEN), LEN);
		read_file(f, (off_t)i * 4 * SECTOR, got, LEN);
		assert_memory_equal(got, want, LEN);
	}

	/* Read back through the other queue. */
	for (int i = 0; i < N; i += 7) {
		uint64_t rg = vdrv_alloc(&f->d, LEN);
		struct vdrv_seg data = { rg, LEN, true };
		int q = (i + 1) % 2;
		struct req rr = queue_req_on(f, q, VIRTIO_BLK_T_IN, (uint64_t)i * 4, &data, 1);
		struct virtq_used_elem e;

		memset(vdrv_ptr(&f->d, rg, LEN), 0, LEN);
		vdrv_notify(&f->d, q);
		e = wait_used_on(f, q, 1);
		assert_int_equal(e.id, rr.head);
		assert_int_equal(status_of(f, rr), VIRTIO_BLK_S_OK);
		assert_memory_equal(vdrv_ptr(&f->d, rg, LEN), vdrv_ptr(&f->d, gpa[i], LEN), LEN);
	}
	assert_int_equal(__atomic_load_n(&f->d.fails, __ATOMIC_SEQ_CST), 0);
}

/* One queue (num_queues not given, or 1): no VIRTIO_BLK_F_MQ, as before the option existed. */
static void test_one_queue_offers_no_mq(void **state)
{
	struct fixture *f = *state;
	struct virtio_blk_config c;

	assert_int_equal(f->d.dev->ops->nr_queues, 1);
	assert_false(f->d.dev->ops->features(f->d.dev) & 1ULL << VIRTIO_BLK_F_MQ);
	f->d.dev->ops->config_read(f->d.dev, 0, &c, sizeof(c));
	assert_int_equal(c.num_queues, 1);
}

static void test_io_uring_permitted(void **state)
{
	struct io_uring ring;
	int ret = io_uring_queue_init(8, &ring, 0);

	if (ret < 0)
		skip(); /* the io_uring cases then exercise the fallback; see their log note */
	io_uring_queue_exit(&ring);
}

#define BOTH(fn)                                                                     \
	{ #fn "_io_uring", fn, setup_uring, teardown, NULL }, {                    \
		#fn "_sync", fn, setup_sync, teardown, NULL                          \
	}
#define BOTH_RO(fn)                                                                  \
	{ #fn "_io_uring", fn, setup_uring_ro, teardown, NULL }, {                 \
		#fn "_sync", fn, setup_sync_ro, teardown, NULL                       \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_io_uring_permitted),
		cmocka_unit_test_setup_teardown(test_config_and_features, setup_sync, teardown),
		{ "test_config_and_features_ro", test_config_and_features, setup_sync_ro, teardown,
		  NULL },
		BOTH(test_write_then_read_back),
		BOTH(test_many_requests_in_one_kick),
		BOTH(test_rate_limiter),
		BOTH(test_flush),
		BOTH(test_get_id),
		{ "test_get_id_full_length_io_uring", test_get_id_full_length, setup_uring_long_id,
		  teardown, NULL },
		{ "test_get_id_full_length_sync", test_get_id_full_length, setup_sync_long_id,
		  teardown, NULL },
		BOTH(test_discard_punches_a_hole),
		BOTH(test_write_zeroes),
		BOTH_RO(test_read_only_refuses_writes),
		BOTH(test_out_of_range_requests),
		BOTH(test_image_shrank),
		BOTH(test_unsupported_type),
		BOTH(test_malformed_chains_fail_the_device),
		BOTH(test_reset_waits_for_in_flight_io),
		BOTH(test_more_requests_than_slots),
		BOTH(test_writes_complete_in_the_notification),
		BOTH(test_notifications_reenabled),
		BOTH(test_lock_refuses_second_writer),
		cmocka_unit_test(test_bad_images),
		BOTH(test_swap_backing),
		BOTH(test_swap_same_file_rescans_size),
		BOTH(test_swap_refused),
		BOTH(test_swap_with_requests_in_flight),
		BOTH_RO(test_swap_read_only_stays_read_only),
		BOTH(test_swap_before_activation),
		BOTH(test_destroy_flushes_and_closes),
		cmocka_unit_test(test_find_disk),
		{ "test_two_queues_io_uring", test_two_queues, setup_uring_2q, teardown, NULL },
		{ "test_two_queues_sync", test_two_queues, setup_sync_2q, teardown, NULL },
		cmocka_unit_test_setup_teardown(test_one_queue_offers_no_mq, setup_uring, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
