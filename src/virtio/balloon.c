/* virtio-balloon (virtio 1.2, 5.5). The queues are numbered as the driver finds them: inflateq 0,
 * deflateq 1, then statsq when VIRTIO_BALLOON_F_STATS_VQ was negotiated, then the reporting queue
 * when VIRTIO_BALLOON_F_PAGE_REPORTING was (a queue whose feature is off takes no number, as
 * Linux's drivers and the virtio-mmio/pci transports count them). Free page hinting is not
 * offered. */
#include "virtio/balloon.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define BALLOON_QUEUE_SIZE 256
#define BALLOON_NR_QUEUES  4 /* inflate, deflate, stats, reporting: the most a driver can use */
#define BALLOON_PAGE	   (1ULL << VIRTIO_BALLOON_PFN_SHIFT)
#define PAGES_PER_MIB	   (1ULL << (20 - VIRTIO_BALLOON_PFN_SHIFT))
#define STAT_ENTRY_SIZE	   10 /* le16 tag, le64 value, packed */
#define MAX_STAT_ENTRIES   64 /* read of one statistics buffer; more is ignored */

#define INFLATEQ 0
#define DEFLATEQ 1

const char *const virtio_balloon_stat_names[VIRTIO_BALLOON_S_NR] = {
    [VIRTIO_BALLOON_S_SWAP_IN] = "swap_in",
    [VIRTIO_BALLOON_S_SWAP_OUT] = "swap_out",
    [VIRTIO_BALLOON_S_MAJFLT] = "major_faults",
    [VIRTIO_BALLOON_S_MINFLT] = "minor_faults",
    [VIRTIO_BALLOON_S_MEMFREE] = "free_memory",
    [VIRTIO_BALLOON_S_MEMTOT] = "total_memory",
    [VIRTIO_BALLOON_S_AVAIL] = "available_memory",
    [VIRTIO_BALLOON_S_CACHES] = "disk_caches",
    [VIRTIO_BALLOON_S_HTLB_PGALLOC] = "hugetlb_allocations",
    [VIRTIO_BALLOON_S_HTLB_PGFAIL] = "hugetlb_failures",
    [VIRTIO_BALLOON_S_OOM_KILL] = "oom_kill",
    [VIRTIO_BALLOON_S_ALLOC_STALL] = "alloc_stall",
    [VIRTIO_BALLOON_S_ASYNC_SCAN] = "async_scan",
    [VIRTIO_BALLOON_S_DIRECT_SCAN] = "direct_scan",
    [VIRTIO_BALLOON_S_ASYNC_RECLAIM] = "async_reclaim",
    [VIRTIO_BALLOON_S_DIRECT_RECLAIM] = "direct_reclaim",
};

struct virtio_balloon {
	struct virtio_device dev;
	struct virtio_balloon_params params;
	size_t host_page;

	/* The config space: num_pages written by the host (any thread), actual by the driver
	 * (a vCPU thread). */
	_Atomic uint32_t num_pages, actual;

	/* Worker thread only. */
	bool active;
	int stats_q, report_q; /* -1: not negotiated */
	int timer_fd;
	bool timer_watched;
	uint16_t interval_s;
	bool stats_held; /* the driver's statistics buffer, kept until the next poll */
	uint16_t stats_head;
	bool madvise_error_logged;
	struct virtq_elem elem;

	/* Counters and statistics for any thread. */
	pthread_mutex_t lock;
	struct virtio_balloon_stats stats; /* target/actual filled in when read */
};

static struct virtio_balloon *to_balloon(struct virtio_device *dev)
{
	return dev->priv;
}

static uint64_t balloon_features(struct virtio_device *dev)
{
	const struct virtio_balloon_params *p = &to_balloon(dev)->params;

	return (p->stats_polling_interval_s ? 1ULL << VIRTIO_BALLOON_F_STATS_VQ : 0) |
	       (p->deflate_on_oom ? 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM : 0) |
	       (p->free_page_reporting ? 1ULL << VIRTIO_BALLOON_F_PAGE_REPORTING : 0);
}

/* struct virtio_balloon_config's first two fields, little-endian: num_pages, actual. */
static void config_bytes(struct virtio_balloon *b, uint8_t out[8])
{
	uint32_t v[2] = {atomic_load(&b->num_pages), atomic_load(&b->actual)};

	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(v[i / 4] >> (8 * (i % 4)));
}

static void balloon_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
	uint8_t cfg[8];

	config_bytes(to_balloon(dev), cfg);
	memcpy(data, cfg + off, len);
}

/* Only `actual` (bytes 4..7) is the driver's to write; writes to num_pages are ignored. */
static void balloon_config_write(struct virtio_device *dev, uint32_t off, const void *data,
				 uint32_t len)
{
	struct virtio_balloon *b = to_balloon(dev);
	uint8_t cfg[8];
	uint32_t actual = 0;

	config_bytes(b, cfg);
	for (uint32_t i = 0; i < len; i++)
		if (off + i >= 4 && off + i < 8)
			cfg[off + i] = ((const uint8_t *)data)[i];
	for (int i = 0; i < 4; i++)
		actual |= (uint32_t)cfg[4 + i] << (8 * i);
	atomic_store(&b->actual, actual);
}

/* Gives [hva, hva + len) back to the host: only whole host pages inside it (a 4 KiB guest page
 * on a host with larger pages stays until its neighbours go too). */
static void give_back(struct virtio_balloon *b, uint8_t *hva, uint64_t len)
{
	uintptr_t start = ((uintptr_t)hva + b->host_page - 1) & ~(uintptr_t)(b->host_page - 1);
	uintptr_t end = ((uintptr_t)hva + len) & ~(uintptr_t)(b->host_page - 1);

	/* Shared guest memory (memfds a vhost-user backend maps too) keeps its pages in the file:
	 * MADV_DONTNEED would only drop skiff's mapping of them; MADV_REMOVE frees them. */
	bool shared = b->dev.mem && b->dev.mem->shared;

	if (end <= start)
		return;
	if (madvise((void *)start, end - start, shared ? MADV_REMOVE : MADV_DONTNEED) != 0 &&
	    !b->madvise_error_logged) {
		b->madvise_error_logged = true;
		log_warn("%s: madvise(%s) of %zu bytes: %s", b->dev.name,
			 shared ? "MADV_REMOVE" : "MADV_DONTNEED", (size_t)(end - start),
			 strerror(errno));
	}
}

/* A chain the device only reads from (inflate, deflate, statistics): false after failing the
 * device when it has device-writable buffers. */
static bool readable_only(struct virtio_balloon *b, int q, const struct virtq_elem *e)
{
	if (e->nr_in == 0)
		return true;
	virtio_dev_fail(&b->dev, q, "request %u has device-writable buffers", e->head);
	return false;
}

/* The page frame numbers of one inflate request: each is checked against guest RAM, contiguous
 * ones are given back together. false (device failed) for a PFN outside guest RAM. */
static bool inflate(struct virtio_balloon *b, const struct virtq_elem *e)
{
	uint8_t *run = NULL;
	uint64_t run_len = 0, pages = 0;
	bool ok = true;

	for (unsigned i = 0; i < e->nr_out && ok; i++) {
		const uint8_t *p = e->iov[i].iov_base;
		size_t n = e->iov[i].iov_len / 4;

		for (size_t k = 0; k < n; k++) {
			uint32_t pfn = (uint32_t)p[4 * k] | (uint32_t)p[4 * k + 1] << 8 |
				       (uint32_t)p[4 * k + 2] << 16 | (uint32_t)p[4 * k + 3] << 24;
			uint64_t gpa = (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT;
			uint8_t *hva = guest_mem_ptr(b->dev.mem, gpa, BALLOON_PAGE);

			if (!hva) {
				virtio_dev_fail(&b->dev, INFLATEQ,
						"page frame %#x (guest address %#llx) is not guest RAM",
						pfn, (unsigned long long)gpa);
				ok = false;
				break;
			}
			pages++;
			if (run && hva == run + run_len) {
				run_len += BALLOON_PAGE;
				continue;
			}
			if (run)
				give_back(b, run, run_len);
			run = hva;
			run_len = BALLOON_PAGE;
		}
	}
	if (run)
		give_back(b, run, run_len);
	pthread_mutex_lock(&b->lock);
	b->stats.inflated_pages += pages;
	pthread_mutex_unlock(&b->lock);
	return ok;
}

static void count_deflate(struct virtio_balloon *b, const struct virtq_elem *e)
{
	pthread_mutex_lock(&b->lock);
	b->stats.deflated_pages += e->out_len / 4;
	pthread_mutex_unlock(&b->lock);
}

/* Free page reporting: each buffer is a free range of guest RAM (virtq_pop checked it). */
static void report(struct virtio_balloon *b, const struct virtq_elem *e)
{
	uint64_t bytes = 0;

	for (unsigned i = 0; i < (unsigned)e->nr_out + e->nr_in; i++) {
		give_back(b, e->iov[i].iov_base, e->iov[i].iov_len);
		bytes += e->iov[i].iov_len;
	}
	pthread_mutex_lock(&b->lock);
	b->stats.reported_bytes += bytes;
	pthread_mutex_unlock(&b->lock);
}

/* The driver's statistics: whole 10-byte entries of known tags; the rest is ignored. */
static void take_stats(struct virtio_balloon *b, const struct virtq_elem *e)
{
	uint8_t buf[MAX_STAT_ENTRIES * STAT_ENTRY_SIZE];
	size_t got = 0;

	for (unsigned i = 0; i < e->nr_out && got < sizeof(buf); i++) {
		size_t n = e->iov[i].iov_len;

		if (n > sizeof(buf) - got)
			n = sizeof(buf) - got;
		memcpy(buf + got, e->iov[i].iov_base, n);
		got += n;
	}
	pthread_mutex_lock(&b->lock);
	for (size_t off = 0; off + STAT_ENTRY_SIZE <= got; off += STAT_ENTRY_SIZE) {
		uint16_t tag = (uint16_t)(buf[off] | buf[off + 1] << 8);
		uint64_t val = 0;

		if (tag >= VIRTIO_BALLOON_S_NR)
			continue;
		for (int k = 0; k < 8; k++)
			val |= (uint64_t)buf[off + 2 + k] << (8 * k);
		b->stats.has[tag] = true;
		b->stats.value[tag] = val;
	}
	b->stats.stats_updates++;
	pthread_mutex_unlock(&b->lock);
}

/* Hands the held statistics buffer back: the driver refills it and posts it again. */
static void request_stats(struct virtio_balloon *b)
{
	if (!b->active || !b->stats_held || b->dev.failed)
		return;
	b->stats_held = false;
	virtq_push(&b->dev.queues[b->stats_q], b->stats_head, 0);
	b->dev.signal_used(&b->dev, (uint16_t)b->stats_q);
}

static void timer_fired(void *ctx, uint32_t events)
{
	struct virtio_balloon *b = ctx;
	uint64_t expirations;

	if (read(b->timer_fd, &expirations, sizeof(expirations)) < 0)
		return;
	request_stats(b);
}

/* The statistics timer: first after `first_ns`, then every interval (0 disarms). */
static void arm_timer(struct virtio_balloon *b, uint64_t first_ns)
{
	struct itimerspec its = {0};

	if (first_ns) {
		its.it_value.tv_sec = (time_t)(first_ns / 1000000000ULL);
		its.it_value.tv_nsec = (long)(first_ns % 1000000000ULL);
		its.it_interval.tv_sec = b->interval_s;
	}
	timerfd_settime(b->timer_fd, 0, &its, NULL);
}

static void balloon_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct virtio_balloon *b = to_balloon(dev);
	struct virtq *vq = &dev->queues[q];
	struct virtq_elem *e = &b->elem;
	bool pushed = false;

	if (!b->active || q >= BALLOON_NR_QUEUES || !vq->ready)
		return;
	if (q != INFLATEQ && q != DEFLATEQ && q != b->stats_q && q != b->report_q)
		return;
	while (!dev->failed) {
		int r = virtq_pop_armed(vq, e);

		if (r < 0)
			virtio_dev_fail(dev, q, "%s", vq->error);
		if (r <= 0)
			break;
		if (q == b->report_q) {
			report(b, e);
		} else {
			if (!readable_only(b, q, e))
				break;
			if (q == INFLATEQ && !inflate(b, e))
				break;
			if (q == DEFLATEQ)
				count_deflate(b, e);
			if (q == b->stats_q) {
				take_stats(b, e);
				/* A second buffer while one is held: give the first back. */
				if (b->stats_held) {
					virtq_push(vq, b->stats_head, 0);
					pushed = true;
				}
				b->stats_held = true;
				b->stats_head = e->head;
				continue;
			}
		}
		virtq_push(vq, e->head, 0);
		pushed = true;
	}
	if (pushed)
		dev->signal_used(dev, q);
}

static int balloon_activate(struct virtio_device *dev)
{
	struct virtio_balloon *b = to_balloon(dev);
	int next = DEFLATEQ + 1;

	b->stats_q = virtio_has_feature(dev, VIRTIO_BALLOON_F_STATS_VQ) ? next++ : -1;
	b->report_q = virtio_has_feature(dev, VIRTIO_BALLOON_F_PAGE_REPORTING) ? next++ : -1;
	b->stats_held = false;
	b->active = true;
	if (b->stats_q >= 0 && b->interval_s && dev->loop) {
		int ret = event_loop_add(dev->loop, b->timer_fd, EPOLLIN, timer_fired, b);

		if (ret < 0) {
			/* The core leaves the device inactive: so does the balloon (no config
			 * changes signalled to a driver that was refused). */
			b->active = false;
			log_error("%s: cannot watch the statistics timer: %s", dev->name,
				  strerror(-ret));
			return ret;
		}
		b->timer_watched = true;
		arm_timer(b, (uint64_t)b->interval_s * 1000000000ULL);
	}
	return 0;
}

static void balloon_reset(struct virtio_device *dev)
{
	struct virtio_balloon *b = to_balloon(dev);

	b->active = false;
	b->stats_held = false;
	arm_timer(b, 0);
	if (b->timer_watched) {
		event_loop_del(dev->loop, b->timer_fd);
		b->timer_watched = false;
	}
	atomic_store(&b->actual, 0);
}

static void balloon_destroy(struct virtio_device *dev)
{
	struct virtio_balloon *b = to_balloon(dev);

	close(b->timer_fd);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static const struct virtio_device_ops balloon_ops = {
    .device_id = VIRTIO_ID_BALLOON,
    .nr_queues = BALLOON_NR_QUEUES,
    .queue_max_size = BALLOON_QUEUE_SIZE,
    .config_size = 8,
    .features = balloon_features,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .activate = balloon_activate,
    .queue_notify = balloon_queue_notify,
    .reset = balloon_reset,
    .destroy = balloon_destroy,
};

int virtio_balloon_create(const struct virtio_balloon_params *p, struct virtio_device **out)
{
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	long page = sysconf(_SC_PAGESIZE);

	if (!b) {
		log_error("virtio-balloon: out of memory");
		return -ENOMEM;
	}
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (b->timer_fd < 0) {
		int err = -errno;

		log_error("virtio-balloon: timerfd_create: %s", strerror(-err));
		free(b);
		return err;
	}
	b->params = *p;
	b->interval_s = p->stats_polling_interval_s;
	b->host_page = page > 0 ? (size_t)page : 4096;
	b->stats_q = b->report_q = -1;
	atomic_store(&b->num_pages, (uint32_t)((uint64_t)p->amount_mib * PAGES_PER_MIB));
	pthread_mutex_init(&b->lock, NULL);
	b->dev.ops = &balloon_ops;
	b->dev.priv = b;
	snprintf(b->dev.name, sizeof(b->dev.name), "virtio-balloon");
	*out = &b->dev;
	return 0;
}

/* ---- changes asked for on another thread, carried out on the worker ---- */

struct change_call {
	struct virtio_balloon *b;
	uint32_t num_pages;
	uint16_t interval_s;
	bool target; /* else the interval */
};

static void change_on_worker(void *arg)
{
	struct change_call *c = arg;
	struct virtio_balloon *b = c->b;

	if (c->target) {
		atomic_store(&b->num_pages, c->num_pages);
		/* Before DRIVER_OK the driver reads num_pages when it gets there. */
		if (b->active && !b->dev.failed && b->dev.signal_config)
			b->dev.signal_config(&b->dev);
		return;
	}
	b->interval_s = c->interval_s;
	if (b->timer_watched)
		arm_timer(b, 1); /* the first request at once */
}

static int change(struct virtio_device *dev, struct change_call *c)
{
	if (!dev || dev->ops != &balloon_ops)
		return log_set_error(-EINVAL, "not a virtio-balloon device");
	c->b = to_balloon(dev);
	return virtio_dev_on_worker(dev, change_on_worker, c);
}

int virtio_balloon_set_target(struct virtio_device *dev, uint32_t amount_mib)
{
	struct change_call c = {.target = true,
				.num_pages = (uint32_t)((uint64_t)amount_mib * PAGES_PER_MIB)};

	if ((uint64_t)amount_mib * PAGES_PER_MIB > UINT32_MAX)
		return log_set_error(-EINVAL, "amount_mib %u: more pages than the device can count",
				     amount_mib);
	return change(dev, &c);
}

int virtio_balloon_set_stats_interval(struct virtio_device *dev, uint16_t seconds)
{
	struct change_call c = {.interval_s = seconds};

	if (dev && dev->ops == &balloon_ops && !to_balloon(dev)->params.stats_polling_interval_s)
		return log_set_error(-EINVAL, "%s: statistics were not enabled before the start",
				     dev->name);
	if (seconds == 0)
		return log_set_error(-EINVAL, "statistics cannot be disabled after the start");
	return change(dev, &c);
}

bool virtio_balloon_has_stats(struct virtio_device *dev)
{
	return dev && dev->ops == &balloon_ops && to_balloon(dev)->params.stats_polling_interval_s;
}

void virtio_balloon_get_stats(struct virtio_device *dev, struct virtio_balloon_stats *out)
{
	struct virtio_balloon *b = to_balloon(dev);

	pthread_mutex_lock(&b->lock);
	*out = b->stats;
	pthread_mutex_unlock(&b->lock);
	out->target_pages = atomic_load(&b->num_pages);
	out->actual_pages = atomic_load(&b->actual);
}
