/* virtio-rng (virtio 1.x 5.4): one request queue whose device-writable buffers are filled from
 * getrandom() on the worker thread. A request is filled up to RNG_MAX_REQUEST bytes and its used
 * length says how many: a guest posting gigabytes gets a short answer, not a stalled worker. */
#include "virtio/rng.h"
#include "virtio/virtio.h"
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
	while (!dev->failed) {
		int r = virtq_pop(vq, e);

		if (r == 0) {
			/* Re-enable kicks, then look again for a request added meanwhile. */
			virtq_set_notification(vq, true);
			if (virtq_has_avail(vq))
				r = virtq_pop(vq, e);
		}
		if (r < 0)
			virtio_dev_fail(dev, RNG_REQUESTQ, "%s", vq->error);
		if (r <= 0)
			break;
		if (e->nr_out > 0) {
			virtio_dev_fail(dev, RNG_REQUESTQ, "request %u has device-readable buffers",
					e->head);
			break;
		}
		virtq_push(vq, e->head, fill_request(rng, e));
		pushed = true;
	}
	if (pushed)
		dev->signal_used(dev, RNG_REQUESTQ);
}

static int rng_activate(struct virtio_device *dev)
{
	to_rng(dev)->activated = true;
	rng_queue_notify(dev, RNG_REQUESTQ);
	return 0;
}

static void rng_reset(struct virtio_device *dev)
{
	to_rng(dev)->activated = false;
}

static void rng_destroy(struct virtio_device *dev)
{
	free(to_rng(dev));
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

int virtio_rng_create(struct virtio_device **out)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));

	if (!rng) {
		log_error("virtio-rng: out of memory");
		return -ENOMEM;
	}
	rng->dev.ops = &rng_ops;
	rng->dev.priv = rng;
	snprintf(rng->dev.name, sizeof(rng->dev.name), "virtio-rng");
	*out = &rng->dev;
	return 0;
}
