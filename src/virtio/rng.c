/* virtio-rng (virtio 1.x 5.4): one request queue whose device-writable buffers are filled from
 * getrandom() on the worker thread. A request is filled up to RNG_MAX_REQUEST bytes and its used
 * length says how many: a guest posting gigabytes gets a short answer, not a stalled worker. */
#include "virtio/rng.h"
#include "virtio/rate_limiter.h"
#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RNG_REQUESTQ	0
#define RNG_QUEUE_SIZE	64
#define RNG_MAX_REQUEST (64 * 1024)

struct virtio_rng {
	struct virtio_device dev;
	bool activated; /* worker thread only */
	bool error_logged;
	struct virtq_elem elem;
	/* Bytes handed out and requests (docs/rate-limiters.md). */
	struct rate_limiter rl;
};

static struct virtio_rng *to_rng(struct virtio_device *dev)
{
	return dev->priv;
}

static uint64_t rng_features(struct virtio_device *dev)
{
	return 0;
}

static void rng_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
}

/* Fills the request's writable buffers, at most RNG_MAX_REQUEST bytes; returns bytes filled. */
static uint32_t fill_request(struct virtio_rng *rng, const struct virtq_elem *e)
{
	size_t filled = 0;

	for (unsigned i = e->nr_out; i < (unsigned)e->nr_out + e->nr_in; i++) {
		uint8_t *buf = e->iov[i].iov_base;
		size_t len = e->iov[i].iov_len, done = 0;

		if (len > RNG_MAX_REQUEST - filled)
			len = RNG_MAX_REQUEST - filled;
		while (done < len) {
			ssize_t n = getrandom(buf + done, len - done, 0);

			if (n > 0) {
				done += (size_t)n;
			} else if (n < 0 && errno == EINTR) {
				continue;
			} else {
				if (!rng->error_logged) {
					rng->error_logged = true;
					log_warn("%s: getrandom: %s", rng->dev.name,
						 n < 0 ? strerror(errno) : "no bytes");
				}
				return (uint32_t)(filled + done);
			}
		}
		filled += done;
		if (filled == RNG_MAX_REQUEST)
			break;
	}
	return (uint32_t)filled;
}

static void rng_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct virtio_rng *rng = to_rng(dev);
	struct virtq *vq = &dev->queues[RNG_REQUESTQ];
	struct virtq_elem *e = &rng->elem;
	bool pushed = false;

	if (q != RNG_REQUESTQ || !rng->activated || !vq->ready)
		return;
	while (!dev->failed && !rng->rl.blocked) {
		int r = virtq_pop_armed(vq, e);

		if (r < 0)
			virtio_dev_fail(dev, RNG_REQUESTQ, "%s", vq->error);
		if (r <= 0)
			break;
		if (e->nr_out > 0) {
			virtio_dev_fail(dev, RNG_REQUESTQ, "request %u has device-readable buffers",
					e->head);
			break;
		}
		/* What the request will get: the limiter decides before it is filled. Kicks
		 * stay off while it waits; its timer brings us back. */
		if (!rate_limiter_consume(&rng->rl,
					  e->in_len < RNG_MAX_REQUEST ? e->in_len : RNG_MAX_REQUEST,
					  1)) {
			virtq_unpop(vq);
			virtq_set_notification(vq, false);
			break;
		}
		virtq_push(vq, e->head, fill_request(rng, e));
		pushed = true;
	}
	if (pushed)
		dev->signal_used(dev, RNG_REQUESTQ);
}

static void rate_limit_resume(void *ctx)
{
	struct virtio_rng *rng = ctx;

	rng_queue_notify(&rng->dev, RNG_REQUESTQ);
}

static int rng_activate(struct virtio_device *dev)
{
	struct virtio_rng *rng = to_rng(dev);
	int ret = rate_limiter_attach(&rng->rl, dev->loop, rate_limit_resume, rng);

	if (ret)
		return ret;
	rng->activated = true;
	rng_queue_notify(dev, RNG_REQUESTQ);
	return 0;
}

static void rng_reset(struct virtio_device *dev)
{
	struct virtio_rng *rng = to_rng(dev);

	rate_limiter_detach(&rng->rl);
	rng->activated = false;
}

static void rng_destroy(struct virtio_device *dev)
{
	struct virtio_rng *rng = to_rng(dev);

	rate_limiter_fini(&rng->rl);
	free(rng);
}

static const struct virtio_device_ops rng_ops = {
    .device_id = VIRTIO_ID_RNG,
    .nr_queues = 1,
    .queue_max_size = RNG_QUEUE_SIZE,
    .config_size = 0,
    .features = rng_features,
    .config_read = rng_config_read,
    .activate = rng_activate,
    .queue_notify = rng_queue_notify,
    .reset = rng_reset,
    .destroy = rng_destroy,
};

int virtio_rng_create(const struct rate_limiter_config *limit, struct virtio_device **out)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));
	int ret;

	if (!rng) {
		log_error("virtio-rng: out of memory");
		return -ENOMEM;
	}
	ret = rate_limiter_init(&rng->rl, limit, "virtio-rng rate limiter");
	if (ret) {
		free(rng);
		return ret;
	}
	rng->dev.ops = &rng_ops;
	rng->dev.priv = rng;
	snprintf(rng->dev.name, sizeof(rng->dev.name), "virtio-rng");
	*out = &rng->dev;
	return 0;
}
