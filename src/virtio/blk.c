#include "virtio/blk.h"
#include "virtio/blk_io.h"
#include "virtio/rate_limiter.h"
#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(struct virtio_blk_config) == 60, "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, num_queues) == 34, "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36,
	       "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56,
	       "virtio_blk_config layout");
_Static_assert(sizeof(struct virtio_blk_req_hdr) == 16, "virtio_blk_req_hdr layout");
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "discard segment layout");

#define QUEUE_SIZE 256
/* Linux puts the header and the status byte in descriptors of their own. */
#define SEG_MAX (VIRTQ_MAX_SEGS - 2)
/* Discard and write-zeroes are synchronous fallocate() calls on the worker thread: keep one
 * request's work bounded (1 GiB per segment, 16 segments). */
#define MAX_DWZ_SECTORS	  (1u << 21)
#define MAX_DWZ_SEG	  16
#define DISCARD_ALIGNMENT 8 /* sectors: 4 KiB, the usual file system block */

struct blk_queue;

struct blk_req {
	struct blk_io_req io;
	struct blk_queue *q; /* the queue the chain came from, and goes back to */
	uint8_t *status;     /* the last device-writable byte of the chain */
	uint32_t type;
	struct blk_req *next_free;
	struct virtq_elem elem;
};

/* One request queue (VIRTIO_BLK_F_MQ: the driver's hardware queues, usually one per vCPU).
 * Every queue is served by the device's one worker and shares its io_uring: the queues spare
 * the guest its cross-CPU locking and give each vCPU its own interrupt. */
struct blk_queue {
	struct virtio_blk *blk;
	uint16_t index;
	struct blk_req *reqs; /* QUEUE_SIZE slots: at most one per descriptor chain in flight */
	struct blk_req *free_reqs;
	bool need_signal;  /* used elements pushed since the driver was last signalled */
	bool out_of_slots; /* the queue was left with chains: take them as requests complete */
};

struct virtio_blk {
	struct virtio_device dev;
	/* blk_ops with this disk's queue count: the core sizes everything from ops->nr_queues. */
	struct virtio_device_ops ops;
	int fd;
	bool read_only;
	/* The image file, for log lines. */
	char path[sizeof(((struct disk_config *)0)->path)];
	uint64_t capacity; /* sectors */
	char serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config config;
	struct blk_io *io;

	uint16_t nr_queues;
	struct blk_queue *queues;
	bool resetting;	   /* completions are dropped, not returned to the (forgotten) queue */
	bool active;	   /* activated and not reset since: config changes are signalled */

	/* Bytes of data read or written and requests (docs/rate-limiters.md); while it makes the
	 * queue wait, no chain is taken and kicks stay off: its timer resumes the queue. */
	struct rate_limiter rl;
	char rl_name[sizeof(((struct virtio_device *)0)->name) + 16];

	struct virtio_blk_stats stats;
};

static struct virtio_blk *to_blk(struct virtio_device *dev)
{
	return dev->priv;
}

static void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

void virtio_blk_get_stats(const struct virtio_device *dev, struct virtio_blk_stats *out)
{
	const struct virtio_blk_stats *s = &((const struct virtio_blk *)dev->priv)->stats;

	out->read_requests = __atomic_load_n(&s->read_requests, __ATOMIC_RELAXED);
	out->read_bytes = __atomic_load_n(&s->read_bytes, __ATOMIC_RELAXED);
	out->write_requests = __atomic_load_n(&s->write_requests, __ATOMIC_RELAXED);
	out->write_bytes = __atomic_load_n(&s->write_bytes, __ATOMIC_RELAXED);
	out->flushes = __atomic_load_n(&s->flushes, __ATOMIC_RELAXED);
	out->discards = __atomic_load_n(&s->discards, __ATOMIC_RELAXED);
	out->write_zeroes = __atomic_load_n(&s->write_zeroes, __ATOMIC_RELAXED);
	out->errors = __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
	out->unsupported = __atomic_load_n(&s->unsupported, __ATOMIC_RELAXED);
}

/* ---- device-side bookkeeping ---- */

static void signal_if_needed(struct blk_queue *q)
{
	if (q->need_signal && !q->blk->resetting) {
		q->need_signal = false;
		q->blk->dev.signal_used(&q->blk->dev, q->index);
	}
}

static void release_req(struct blk_req *req)
{
	req->next_free = req->q->free_reqs;
	req->q->free_reqs = req;
}

/* Writes the status, returns the chain to the driver with `in_data` bytes of data written before
 * the status byte, and frees the slot. */
static void complete_req(struct virtio_blk *blk, struct blk_req *req, uint8_t status,
			 uint32_t in_data)
{
	if (status == VIRTIO_BLK_S_IOERR)
		stat_add(&blk->stats.errors, 1);
	else if (status == VIRTIO_BLK_S_UNSUPP)
		stat_add(&blk->stats.unsupported, 1);
	if (!blk->resetting && !blk->dev.failed) {
		*req->status = status;
		virtq_push(&blk->dev.queues[req->q->index], req->elem.head, in_data + 1);
		req->q->need_signal = true;
	}
	release_req(req);
}

static const char *const op_name[] = {
	[BLK_IO_READ] = "read",
	[BLK_IO_WRITE] = "write",
	[BLK_IO_FLUSH] = "flush",
};

static void io_done(void *ctx, struct blk_io_req *io)
{
	struct virtio_blk *blk = ctx;
	struct blk_req *req = (struct blk_req *)((char *)io - offsetof(struct blk_req, io));
	uint8_t status = io->result == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	uint32_t in_data = 0;

	if (io->result < 0)
		log_debug("%s: %s at byte %lld: %s", blk->dev.name, op_name[io->op],
			  (long long)io->offset, strerror(-io->result));
	if (io->result == 0) {
		switch (io->op) {
		case BLK_IO_READ:
			stat_add(&blk->stats.read_requests, 1);
			stat_add(&blk->stats.read_bytes, io->len);
			in_data = (uint32_t)io->len;
			break;
		case BLK_IO_WRITE:
			stat_add(&blk->stats.write_requests, 1);
			stat_add(&blk->stats.write_bytes, io->len);
			break;
		case BLK_IO_FLUSH:
			stat_add(&blk->stats.flushes, 1);
			break;
		}
	}
	complete_req(blk, req, status, in_data);
}

static void process_queue(struct blk_queue *q);

/* After a batch of completions, whichever queues they came from: one interrupt per queue that
 * got used entries, and queues that ran out of slots take more chains. */
static void io_batch_done(void *ctx)
{
	struct virtio_blk *blk = ctx;

	for (uint16_t i = 0; i < blk->nr_queues; i++) {
		struct blk_queue *q = &blk->queues[i];

		if (q->out_of_slots && q->free_reqs && !blk->resetting && !blk->dev.failed)
			process_queue(q); /* signals too */
		else
			signal_if_needed(q);
	}
}

static const struct blk_io_ops blk_io_callbacks = {
	.done = io_done,
	.batch_done = io_batch_done,
};

/* ---- requests ---- */

/* True when [sector, sector + bytes / 512) lies within the disk (no overflow). */
static bool in_range(const struct virtio_blk *blk, uint64_t sector, uint64_t sectors)
{
	return sector <= blk->capacity && sectors <= blk->capacity - sector;
}

/* Finds the status byte (the last device-writable byte) and takes it off the in buffers, which
 * then hold exactly the data the device may write. False when there is no writable byte. */
static bool split_status(struct virtq_elem *e, uint8_t **status)
{
	for (int i = e->nr_out + e->nr_in - 1; i >= e->nr_out; i--) {
		if (e->iov[i].iov_len == 0)
			continue;
		e->iov[i].iov_len--;
		*status = (uint8_t *)e->iov[i].iov_base + e->iov[i].iov_len;
		return true;
	}
	return false;
}

/* Points `iov`/`cnt` at the out buffers after the `skip` header bytes (adjusting in place). */
static void out_data(struct virtq_elem *e, size_t skip, struct iovec **iov, int *cnt)
{
	int i = 0;

	while (i < e->nr_out && skip >= e->iov[i].iov_len) {
		skip -= e->iov[i].iov_len;
		i++;
	}
	if (i < e->nr_out) {
		e->iov[i].iov_base = (char *)e->iov[i].iov_base + skip;
		e->iov[i].iov_len -= skip;
	}
	*iov = &e->iov[i];
	*cnt = e->nr_out - i;
}

static void submit_rw(struct virtio_blk *blk, struct blk_req *req, uint64_t sector, bool write)
{
	struct virtq_elem *e = &req->elem;
	struct blk_io_req *io = &req->io;
	uint64_t len;

	if (write) {
		len = e->out_len - sizeof(struct virtio_blk_req_hdr);
		out_data(e, sizeof(struct virtio_blk_req_hdr), &io->iov, &io->iovcnt);
	} else {
		len = e->in_len - 1;
		io->iov = &e->iov[e->nr_out];
		io->iovcnt = e->nr_in;
	}
	if (len % VIRTIO_BLK_SECTOR_SIZE || !in_range(blk, sector, len / VIRTIO_BLK_SECTOR_SIZE) ||
	    (write && blk->read_only)) {
		log_debug("%s: %s of %llu bytes at sector %llu refused", blk->dev.name,
			  write ? "write" : "read", (unsigned long long)len,
			  (unsigned long long)sector);
		complete_req(blk, req, VIRTIO_BLK_S_IOERR, 0);
		return;
	}
	io->op = write ? BLK_IO_WRITE : BLK_IO_READ;
	io->offset = (off_t)(sector * VIRTIO_BLK_SECTOR_SIZE);
	io->len = len;
	blk_io_submit(blk->io, io);
}

static void get_id(struct virtio_blk *blk, struct blk_req *req)
{
	size_t n = req->elem.in_len - 1;

	if (n > VIRTIO_BLK_ID_BYTES)
		n = VIRTIO_BLK_ID_BYTES;
	n = virtq_elem_write(&req->elem, 0, blk->serial, n);
	complete_req(blk, req, VIRTIO_BLK_S_OK, (uint32_t)n);
}

/* Discard and write-zeroes: every segment is checked before any is carried out. */
static uint8_t discard_write_zeroes(struct virtio_blk *blk, struct blk_req *req)
{
	struct virtio_blk_discard_write_zeroes seg[MAX_DWZ_SEG];
	bool discard = req->type == VIRTIO_BLK_T_DISCARD;
	size_t bytes = req->elem.out_len - sizeof(struct virtio_blk_req_hdr);
	size_t nr = bytes / sizeof(seg[0]);

	if (blk->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (bytes % sizeof(seg[0]) || nr == 0 || nr > MAX_DWZ_SEG)
		return VIRTIO_BLK_S_IOERR;
	virtq_elem_read(&req->elem, sizeof(struct virtio_blk_req_hdr), seg, bytes);
	for (size_t i = 0; i < nr; i++) {
		uint32_t flags = le32toh(seg[i].flags);
		uint32_t num = le32toh(seg[i].num_sectors);

		/* 5.2.6.2: unknown flags, and unmap on a discard, are answered UNSUPP. */
		if (flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			return VIRTIO_BLK_S_UNSUPP;
		if (discard && flags)
			return VIRTIO_BLK_S_UNSUPP;
		if (num > MAX_DWZ_SECTORS || !in_range(blk, le64toh(seg[i].sector), num))
			return VIRTIO_BLK_S_IOERR;
	}
	for (size_t i = 0; i < nr; i++) {
		off_t off = (off_t)(le64toh(seg[i].sector) * VIRTIO_BLK_SECTOR_SIZE);
		off_t len = (off_t)le32toh(seg[i].num_sectors) * VIRTIO_BLK_SECTOR_SIZE;
		int ret;

		if (discard)
			ret = blk_io_discard(blk->io, off, len);
		else
			ret = blk_io_write_zeroes(blk->io, off, len,
						  le32toh(seg[i].flags) &
							  VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
		if (ret < 0) {
			log_debug("%s: %s at byte %lld: %s", blk->dev.name,
				  discard ? "discard" : "write-zeroes", (long long)off,
				  strerror(-ret));
			return VIRTIO_BLK_S_IOERR;
		}
	}
	stat_add(discard ? &blk->stats.discards : &blk->stats.write_zeroes, 1);
	return VIRTIO_BLK_S_OK;
}

static const char *type_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN:
		return "read";
	case VIRTIO_BLK_T_OUT:
		return "write";
	case VIRTIO_BLK_T_FLUSH:
		return "flush";
	case VIRTIO_BLK_T_GET_ID:
		return "get-id";
	case VIRTIO_BLK_T_DISCARD:
		return "discard";
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return "write-zeroes";
	default:
		return "unknown";
	}
}

/* Checks the chain's layout against its type (5.2.6: header in device-readable buffers, data in
 * the direction the type implies, status byte last). A wrong layout is a driver bug: returns
 * false after marking the device failed. */
static bool check_layout(struct virtio_blk *blk, struct blk_req *req)
{
	const struct virtq_elem *e = &req->elem;
	bool readable_data = e->out_len > sizeof(struct virtio_blk_req_hdr);
	bool writable_data = e->in_len > 1;
	bool bad;

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		bad = readable_data;
		break;
	case VIRTIO_BLK_T_OUT:
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		bad = writable_data;
		break;
	case VIRTIO_BLK_T_FLUSH:
		bad = readable_data || writable_data;
		break;
	default:
		return true; /* answered UNSUPP whatever its buffers */
	}
	if (bad)
		virtio_dev_fail(&blk->dev, req->q->index,
				"%s request (head %u) with %u device-readable and %u "
				"device-writable bytes: data in the wrong direction",
				type_name(req->type), e->head, e->out_len, e->in_len);
	return !bad;
}

static void handle_req(struct virtio_blk *blk, struct blk_req *req)
{
	struct virtq_elem *e = &req->elem;
	struct virtio_blk_req_hdr hdr;
	uint64_t sector;

	if (e->out_len < sizeof(hdr)) {
		virtio_dev_fail(&blk->dev, req->q->index,
				"request (head %u) with %u device-readable bytes: the header "
				"needs %zu",
				e->head, e->out_len, sizeof(hdr));
		release_req(req);
		return;
	}
	if (!split_status(e, &req->status)) {
		virtio_dev_fail(&blk->dev, req->q->index,
				"request (head %u) without a device-writable status byte", e->head);
		release_req(req);
		return;
	}
	virtq_elem_read(e, 0, &hdr, sizeof(hdr));
	req->type = le32toh(hdr.type);
	sector = le64toh(hdr.sector);
	if (!check_layout(blk, req)) {
		release_req(req);
		return;
	}

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
		submit_rw(blk, req, sector, false);
		break;
	case VIRTIO_BLK_T_OUT:
		submit_rw(blk, req, sector, true);
		break;
	case VIRTIO_BLK_T_FLUSH:
		req->io.op = BLK_IO_FLUSH;
		req->io.iov = NULL;
		req->io.iovcnt = 0;
		req->io.offset = 0;
		req->io.len = 0;
		blk_io_submit(blk->io, &req->io);
		break;
	case VIRTIO_BLK_T_GET_ID:
		get_id(blk, req);
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		complete_req(blk, req, discard_write_zeroes(blk, req), 0);
		break;
	default:
		complete_req(blk, req, VIRTIO_BLK_S_UNSUPP, 0);
		break;
	}
}

/* What a request costs the rate limiter: its data bytes (reads and writes, as Firecracker
 * counts them) and one op. A malformed chain costs one op; handle_req then refuses it. */
static uint64_t request_bytes(const struct virtq_elem *e)
{
	struct virtio_blk_req_hdr hdr;

	if (e->out_len < sizeof(hdr) || !e->in_len)
		return 0;
	virtq_elem_read(e, 0, &hdr, sizeof(hdr));
	switch (le32toh(hdr.type)) {
	case VIRTIO_BLK_T_IN:
		return e->in_len - 1;
	case VIRTIO_BLK_T_OUT:
		return e->out_len - sizeof(hdr);
	default:
		return 0;
	}
}

/* Takes every available chain while request slots last. Kicks are off while it runs; turning
 * them back on is followed by a last look at the ring, so a chain the driver added meanwhile
 * is not left behind. */
static void process_queue(struct blk_queue *q)
{
	struct virtio_blk *blk = q->blk;
	struct virtq *vq = &blk->dev.queues[q->index];
	int ret;

	bool throttled = false;

	q->out_of_slots = false;
	virtq_set_notification(vq, false);
	for (;;) {
		while (q->free_reqs && !blk->dev.failed) {
			struct blk_req *req = q->free_reqs;

			if (blk->rl.blocked) {
				throttled = true;
				break;
			}
			ret = virtq_pop(vq, &req->elem);
			if (ret == 0)
				break;
			if (ret < 0) {
				virtio_dev_fail(&blk->dev, q->index, "%s", vq->error);
				break;
			}
			if (!rate_limiter_consume(&blk->rl, request_bytes(&req->elem), 1)) {
				/* Left on the ring; the limiter's timer brings us back. */
				virtq_unpop(vq);
				throttled = true;
				break;
			}
			q->free_reqs = req->next_free;
			handle_req(blk, req);
		}
		if (blk->dev.failed || throttled)
			break;
		if (!q->free_reqs) {
			/* Completions free slots and come back here; until then no kicks. */
			q->out_of_slots = true;
			break;
		}
		virtq_set_notification(vq, true);
		if (!virtq_has_avail(vq))
			break;
		virtq_set_notification(vq, false);
	}
	blk_io_kick(blk->io); /* one submission for what this notification took */
	signal_if_needed(q);
}

/* ---- virtio_device_ops ---- */

static uint64_t blk_features(struct virtio_device *dev)
{
	struct virtio_blk *blk = to_blk(dev);
	uint64_t f = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
		     1ULL << VIRTIO_BLK_F_FLUSH;

	if (blk->nr_queues > 1)
		f |= 1ULL << VIRTIO_BLK_F_MQ;
	if (blk->read_only)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= 1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

static void blk_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
	memcpy(data, (const uint8_t *)&to_blk(dev)->config + off, len);
}

static void rate_limit_resume(void *ctx)
{
	struct virtio_blk *blk = ctx;

	for (uint16_t i = 0; i < blk->nr_queues; i++)
		if (blk->active && !blk->resetting && !blk->dev.failed && blk->dev.queues[i].ready)
			process_queue(&blk->queues[i]);
}

static int blk_activate(struct virtio_device *dev)
{
	struct virtio_blk *blk = to_blk(dev);
	int ret = blk_io_attach(blk->io, dev->loop);

	if (!ret) {
		ret = rate_limiter_attach(&blk->rl, dev->loop, rate_limit_resume, blk);
		if (ret)
			blk_io_detach(blk->io, dev->loop);
	}
	blk->active = ret == 0;
	return ret;
}

static void blk_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct virtio_blk *blk = to_blk(dev);

	if (q >= blk->nr_queues || dev->failed)
		return;
	process_queue(&blk->queues[q]);
}

static void reset_slots(struct virtio_blk *blk)
{
	for (uint16_t n = 0; n < blk->nr_queues; n++) {
		struct blk_queue *q = &blk->queues[n];

		q->free_reqs = NULL;
		for (int i = QUEUE_SIZE - 1; i >= 0; i--)
			release_req(&q->reqs[i]);
		q->need_signal = false;
		q->out_of_slots = false;
	}
}

static void blk_quiesce(struct virtio_device *dev)
{
	struct virtio_blk *blk = to_blk(dev);

	/* A completion may take more chains from the ring (slots freed): those finish too. */
	while (blk_io_in_flight(blk->io))
		blk_io_drain(blk->io);
}

static void blk_reset(struct virtio_device *dev)
{
	struct virtio_blk *blk = to_blk(dev);

	/* In-flight reads write guest memory: the driver may reuse it once reset returns. */
	blk->resetting = true;
	blk_io_drain(blk->io);
	if (dev->loop)
		blk_io_detach(blk->io, dev->loop);
	rate_limiter_detach(&blk->rl);
	reset_slots(blk);
	blk->resetting = false;
	blk->active = false;
}

/* What a writable image got from the guest reaches the disk before the file is let go. */
static int flush_image(struct virtio_blk *blk)
{
	if (blk->read_only)
		return 0;
	while (fdatasync(blk->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static void free_queues(struct virtio_blk *blk)
{
	for (uint16_t i = 0; blk->queues && i < blk->nr_queues; i++)
		free(blk->queues[i].reqs);
	free(blk->queues);
}

static void blk_destroy(struct virtio_device *dev)
{
	struct virtio_blk *blk = to_blk(dev);
	int ret;

	blk_io_destroy(blk->io); /* waits for anything still in flight */
	ret = flush_image(blk);
	if (ret < 0)
		log_warn("%s: flushing %s at stop: %s", dev->name, blk->path, strerror(-ret));
	close(blk->fd); /* drops the lock */
	if (blk->read_only || ret < 0)
		log_debug("%s: %s closed", dev->name, blk->path);
	else
		log_debug("%s: %s flushed and closed", dev->name, blk->path);
	rate_limiter_fini(&blk->rl);
	free_queues(blk);
	free(blk);
}

static const struct virtio_device_ops blk_ops = {
	.device_id = VIRTIO_ID_BLOCK,
	.nr_queues = 1,
	.queue_max_size = QUEUE_SIZE,
	.config_size = sizeof(struct virtio_blk_config),
	.features = blk_features,
	.config_read = blk_config_read,
	.config_write = NULL,
	.activate = blk_activate,
	.queue_notify = blk_queue_notify,
	.quiesce = blk_quiesce,
	.reset = blk_reset,
	.destroy = blk_destroy,
};

static bool is_blk(const struct virtio_device *dev)
{
	return dev && dev->ops->destroy == blk_destroy;
}

/* ---- creation ---- */

static int alloc_queues(struct virtio_blk *blk, uint16_t nr)
{
	blk->queues = calloc(nr, sizeof(*blk->queues));
	if (!blk->queues)
		return -ENOMEM;
	blk->nr_queues = nr;
	for (uint16_t i = 0; i < nr; i++) {
		struct blk_queue *q = &blk->queues[i];

		q->blk = blk;
		q->index = i;
		q->reqs = calloc(QUEUE_SIZE, sizeof(*q->reqs));
		if (!q->reqs)
			return -ENOMEM;
		for (int r = 0; r < QUEUE_SIZE; r++)
			q->reqs[r].q = q;
	}
	return 0;
}

/* Opens `path` (read-write unless `read_only`), checks it is a regular file or a block device and
 * takes its OFD lock (a write lock when writable, a read lock when read-only) unless `lock` is
 * false. When `in_use` is the file already open (same device and inode), the lock is not taken
 * (this process holds it) and 1 is returned. Else returns 0, or -errno with the reason (without
 * the path) as the thread's last error. */
static int open_image(const char *path, bool read_only, bool lock_it, const struct stat *in_use,
		      int *fd_out, uint64_t *size_out)
{
	struct flock lock = { .l_type = read_only ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };
	bool same = false;
	struct stat st;
	uint64_t size;
	int fd, ret;

	/* Non-blocking, so that a FIFO fails below instead of hanging in open(); the flag is
	 * cleared once the file is known to be an image (io_uring would honour it). */
	fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		return log_set_error(ret, "cannot open%s: %s", read_only ? "" : " for writing",
				     strerror(-ret));
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		log_set_error(ret, "%s", strerror(-ret));
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			ret = -errno;
			log_set_error(ret, "cannot read the block device's size: %s",
				      strerror(-ret));
			goto fail;
		}
	} else {
		ret = log_set_error(-EINVAL, "not a regular file or a block device");
		goto fail;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		ret = -errno;
		log_set_error(ret, "%s", strerror(-ret));
		goto fail;
	}
	same = in_use && st.st_dev == in_use->st_dev && st.st_ino == in_use->st_ino;
	if (!same && lock_it && fcntl(fd, F_OFD_SETLK, &lock) < 0) {
		ret = -errno;
		if (ret == -EAGAIN || ret == -EACCES) {
			ret = log_set_error(-EBUSY, "in use by another process (locked)");
		} else {
			log_set_error(ret, "cannot lock: %s", strerror(-ret));
		}
		goto fail;
	}
	if (size % VIRTIO_BLK_SECTOR_SIZE)
		log_warn("disk %s: size %llu is not a multiple of 512: the guest sees %llu bytes",
			 path, (unsigned long long)size,
			 (unsigned long long)(size - size % VIRTIO_BLK_SECTOR_SIZE));
	*fd_out = fd;
	*size_out = size;
	return same ? 1 : 0;
fail:
	close(fd);
	return ret;
}

static void fill_config(struct virtio_blk *blk)
{
	struct virtio_blk_config *c = &blk->config;

	c->capacity = htole64(blk->capacity);
	c->seg_max = htole32(SEG_MAX);
	c->blk_size = htole32(VIRTIO_BLK_SECTOR_SIZE);
	c->num_queues = htole16(blk->nr_queues);
	if (!blk->read_only) {
		c->max_discard_sectors = htole32(MAX_DWZ_SECTORS);
		c->max_discard_seg = htole32(MAX_DWZ_SEG);
		c->discard_sector_alignment = htole32(DISCARD_ALIGNMENT);
		c->max_write_zeroes_sectors = htole32(MAX_DWZ_SECTORS);
		c->max_write_zeroes_seg = htole32(MAX_DWZ_SEG);
		c->write_zeroes_may_unmap = 1;
	}
}

static int create(const struct disk_config *cfg, bool lock, struct virtio_device **out)
{
	struct virtio_blk *blk;
	uint64_t size = 0;
	char why[128];
	int fd = -1, ret;

	ret = open_image(cfg->path, cfg->read_only, lock, NULL, &fd, &size);
	if (ret < 0) {
		snprintf(why, sizeof(why), "%s", log_last_error());
		log_error("disk %s: %s", cfg->path, why);
		return ret;
	}
	blk = calloc(1, sizeof(*blk));
	if (!blk || alloc_queues(blk, cfg->num_queues ? (uint16_t)cfg->num_queues : 1) < 0) {
		log_error("disk %s: out of memory", cfg->path);
		ret = -ENOMEM;
		goto fail;
	}
	blk->fd = fd;
	blk->read_only = cfg->read_only;
	snprintf(blk->path, sizeof(blk->path), "%s", cfg->path);
	blk->capacity = size / VIRTIO_BLK_SECTOR_SIZE;
	memcpy(blk->serial, cfg->id, strnlen(cfg->id, sizeof(blk->serial)));
	fill_config(blk);
	reset_slots(blk);

	blk->ops = blk_ops;
	blk->ops.nr_queues = blk->nr_queues;
	blk->dev.ops = &blk->ops;
	blk->dev.priv = blk;
	if (cfg->id[0])
		snprintf(blk->dev.name, sizeof(blk->dev.name), "virtio-blk %s", cfg->id);
	else
		snprintf(blk->dev.name, sizeof(blk->dev.name), "virtio-blk");

	snprintf(blk->rl_name, sizeof(blk->rl_name), "%s rate limiter", blk->dev.name);
	ret = rate_limiter_init(&blk->rl, &cfg->rate_limiter, blk->rl_name);
	if (ret < 0)
		goto fail;
	blk->io =
	    blk_io_create(fd, QUEUE_SIZE * blk->nr_queues, blk->dev.name, &blk_io_callbacks, blk);
	if (!blk->io) {
		ret = -ENOMEM;
		rate_limiter_fini(&blk->rl);
		goto fail;
	}
	log_debug("%s: %s, %llu sectors, %u queue%s%s", blk->dev.name, blk->path,
		  (unsigned long long)blk->capacity, blk->nr_queues, blk->nr_queues > 1 ? "s" : "",
		  blk->read_only ? ", read-only" : "");
	*out = &blk->dev;
	return 0;
fail:
	if (blk)
		free_queues(blk);
	free(blk);
	close(fd);
	return ret;
}

int virtio_blk_create(const struct disk_config *cfg, struct virtio_device **out)
{
	return create(cfg, true, out);
}

int virtio_blk_create_unlocked(const struct disk_config *cfg, struct virtio_device **out)
{
	return create(cfg, false, out);
}

/* ---- swapping the backing file ---- */

/* The swap runs on the device's worker; its reason comes back here and becomes the caller's
 * last error on the caller's thread. */
struct swap_call {
	struct virtio_blk *blk;
	const char *path;
	char err[VM_CONFIG_MAX_PATH + 256]; /* a path and why */
	int ret;
};

/* On the worker thread, so no request is being taken or submitted meanwhile. */
static void swap_on_worker(void *arg)
{
	struct swap_call *c = arg;
	struct virtio_blk *blk = c->blk;
	uint64_t size = 0, old_capacity = blk->capacity;
	char old_path[sizeof(blk->path)];
	struct stat cur;
	bool same;
	int fd = -1, ret;

	if (fstat(blk->fd, &cur) < 0) {
		ret = -errno;
		snprintf(c->err, sizeof(c->err), "%s: %s", blk->path, strerror(-ret));
		goto fail;
	}
	ret = open_image(c->path, blk->read_only, true, &cur, &fd, &size);
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "%s: %s", c->path, log_last_error());
		goto fail;
	}
	same = ret == 1;
	if (size < VIRTIO_BLK_SECTOR_SIZE) {
		ret = -EINVAL;
		snprintf(c->err, sizeof(c->err), "%s: empty image (%llu bytes)", c->path,
			 (unsigned long long)size);
		goto fail;
	}

	/* Requests taken before the swap finish on the old file; a completion may take more
	 * chains from the ring (slots freed), which then run on the old file too. */
	while (blk_io_in_flight(blk->io))
		blk_io_drain(blk->io);
	ret = flush_image(blk);
	if (ret < 0) {
		snprintf(c->err, sizeof(c->err), "%s: flush before the swap failed: %s", blk->path,
			 strerror(-ret));
		goto fail;
	}
	if (same) {
		close(fd); /* no lock on it: the one on blk->fd stays */
	} else {
		blk_io_set_fd(blk->io, fd);
		close(blk->fd); /* drops its lock */
		blk->fd = fd;
	}
	snprintf(old_path, sizeof(old_path), "%s", blk->path);
	snprintf(blk->path, sizeof(blk->path), "%s", c->path);
	blk->capacity = size / VIRTIO_BLK_SECTOR_SIZE;
	blk->config.capacity = htole64(blk->capacity);
	log_info("%s: backing file %s (%llu sectors) replaced by %s (%llu sectors)%s",
		 blk->dev.name, old_path, (unsigned long long)old_capacity, blk->path,
		 (unsigned long long)blk->capacity, blk->read_only ? ", read-only" : "");
	/* Before DRIVER_OK the driver reads the config space when it gets there. */
	if (blk->active && blk->dev.signal_config)
		blk->dev.signal_config(&blk->dev);
	c->ret = 0;
	return;
fail:
	if (fd >= 0)
		close(fd);
	log_warn("%s: backing file not replaced: %s", blk->dev.name, c->err);
	c->ret = ret;
}

int virtio_blk_replace_backing(struct virtio_device *dev, const char *path)
{
	struct swap_call c = { .path = path };
	int ret;

	if (!is_blk(dev))
		return log_set_error(-EINVAL, "not a virtio-blk device");
	c.blk = to_blk(dev);
	if (!path || !path[0] || strlen(path) >= sizeof(c.blk->path))
		return log_set_error(path && path[0] ? -ENAMETOOLONG : -EINVAL,
				     "%s: path empty or too long", dev->name);
	ret = virtio_dev_on_worker(dev, swap_on_worker, &c);
	if (ret)
		return ret;
	return c.ret ? log_set_error(c.ret, "%s", c.err) : 0;
}

/* ---- the image's lock, for live migration ---- */

struct lock_call {
	struct virtio_blk *blk;
	bool held;
	int ret;
};

static void lock_on_worker(void *arg)
{
	struct lock_call *c = arg;
	struct flock lock = {.l_type = !c->held		 ? F_UNLCK
				       : c->blk->read_only ? F_RDLCK
							   : F_WRLCK,
			     .l_whence = SEEK_SET};

	c->ret = fcntl(c->blk->fd, F_OFD_SETLK, &lock) < 0 ? -errno : 0;
}

int virtio_blk_set_lock(struct virtio_device *dev, bool held)
{
	struct lock_call c = {.held = held};
	int ret;

	if (!is_blk(dev))
		return log_set_error(-EINVAL, "not a virtio-blk device");
	c.blk = to_blk(dev);
	if (!dev->loop) {
		lock_on_worker(&c);
	} else {
		ret = event_loop_call(dev->loop, lock_on_worker, &c);
		if (ret < 0)
			return log_set_error(ret, "%s: the device's worker has stopped", dev->name);
	}
	if (c.ret == -EAGAIN || c.ret == -EACCES)
		return log_set_error(-EBUSY, "%s: %s is locked by another process", dev->name,
				     c.blk->path);
	if (c.ret)
		return log_set_error(c.ret, "%s: cannot %s the lock of %s: %s", dev->name,
				     held ? "take" : "release", c.blk->path, strerror(-c.ret));
	return 0;
}

/* ---- changing the rate limiter ---- */

struct limit_call {
	struct virtio_blk *blk;
	const struct rate_limiter_config *cfg;
	unsigned which;
	int ret;
};

static void limit_on_worker(void *arg)
{
	struct limit_call *c = arg;

	c->ret = rate_limiter_update(&c->blk->rl, c->cfg, c->which);
}

int virtio_blk_set_rate_limiter(struct virtio_device *dev, const struct rate_limiter_config *cfg,
				unsigned which)
{
	struct limit_call c = { .cfg = cfg, .which = which };
	int ret;

	if (!is_blk(dev))
		return log_set_error(-EINVAL, "not a virtio-blk device");
	c.blk = to_blk(dev);
	ret = virtio_dev_on_worker(dev, limit_on_worker, &c);
	if (ret)
		return ret;
	if (c.ret)
		return log_set_error(c.ret, "%s: cannot change the rate limiter", dev->name);
	log_info("%s: rate limiter changed", dev->name);
	return 0;
}
