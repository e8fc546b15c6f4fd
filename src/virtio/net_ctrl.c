#include "virtio/net_ctrl.h"
#include "virtio/net_spec.h"
#include "base/log.h"

#include <endian.h>
#include <string.h>

/* 5.1.6.5 Control Virtqueue */
#define VIRTIO_NET_OK  0
#define VIRTIO_NET_ERR 1

#define VIRTIO_NET_CTRL_ANNOUNCE     3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0

#define VIRTIO_NET_CTRL_MQ		4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0

#define CTRL_HDR_LEN 2 /* u8 class, u8 command */

void net_ctrl_init(struct net_ctrl *c, struct virtio_device *dev, uint16_t queue,
		   int (*set_pairs)(void *ctx, uint16_t pairs), void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->dev = dev;
	c->queue = queue;
	c->set_pairs = set_pairs;
	c->ctx = ctx;
}

void net_ctrl_set_queue(struct net_ctrl *c, uint16_t queue)
{
	c->queue = queue;
}

/* 5.1.6.5.5: struct virtio_net_ctrl_mq { le16 virtqueue_pairs; }, exactly. */
static uint8_t mq_pairs_set(struct net_ctrl *c, const struct virtq_elem *e)
{
	uint16_t pairs;

	if (e->out_len != CTRL_HDR_LEN + sizeof(pairs) ||
	    virtq_elem_read(e, CTRL_HDR_LEN, &pairs, sizeof(pairs)) != sizeof(pairs)) {
		log_debug("%s: a %u-byte VQ_PAIRS_SET, not %zu", c->dev->name, e->out_len,
			  CTRL_HDR_LEN + sizeof(pairs));
		return VIRTIO_NET_ERR;
	}
	pairs = le16toh(pairs);
	if (!c->set_pairs || c->set_pairs(c->ctx, pairs) < 0)
		return VIRTIO_NET_ERR;
	return VIRTIO_NET_OK;
}

uint16_t net_ctrl_status(const struct net_ctrl *c)
{
	return __atomic_load_n(&c->announce, __ATOMIC_ACQUIRE);
}

void net_ctrl_reset(struct net_ctrl *c)
{
	__atomic_store_n(&c->announce, 0, __ATOMIC_RELEASE);
}

bool net_ctrl_announce(struct net_ctrl *c)
{
	/* The driver acknowledges on the control queue: without it the bit would never clear. */
	if (!virtio_has_feature(c->dev, VIRTIO_NET_F_GUEST_ANNOUNCE) ||
	    !virtio_has_feature(c->dev, VIRTIO_NET_F_CTRL_VQ) || c->dev->failed)
		return false;
	__atomic_store_n(&c->announce, VIRTIO_NET_S_ANNOUNCE, __ATOMIC_RELEASE);
	if (c->dev->signal_config)
		c->dev->signal_config(c->dev);
	log_debug("%s: asked the guest to announce itself", c->dev->name);
	return true;
}

/* One command: its answer. The driver's data is never read beyond the header, so a buffer of
 * any size costs nothing. */
static uint8_t command(struct net_ctrl *c, const struct virtq_elem *e)
{
	uint8_t hdr[CTRL_HDR_LEN];

	if (virtq_elem_read(e, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
		log_debug("%s: a %u-byte control command, shorter than its header", c->dev->name,
			  e->out_len);
		return VIRTIO_NET_ERR;
	}
	if (hdr[0] == VIRTIO_NET_CTRL_ANNOUNCE && hdr[1] == VIRTIO_NET_CTRL_ANNOUNCE_ACK &&
	    virtio_has_feature(c->dev, VIRTIO_NET_F_GUEST_ANNOUNCE)) {
		if (e->out_len != CTRL_HDR_LEN)
			return VIRTIO_NET_ERR; /* the ack carries no data */
		if (__atomic_exchange_n(&c->announce, 0, __ATOMIC_ACQ_REL))
			log_info("%s: the guest acknowledged the announcement", c->dev->name);
		return VIRTIO_NET_OK;
	}
	if (hdr[0] == VIRTIO_NET_CTRL_MQ && hdr[1] == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET &&
	    virtio_has_feature(c->dev, VIRTIO_NET_F_MQ))
		return mq_pairs_set(c, e);
	log_debug("%s: control command class %u command %u not supported", c->dev->name, hdr[0],
		  hdr[1]);
	return VIRTIO_NET_ERR;
}

void net_ctrl_process(struct net_ctrl *c)
{
	struct virtio_device *dev = c->dev;
	struct virtq *q = &dev->queues[c->queue];
	struct virtq_elem *e = &c->elem;
	bool used = false;

	while (!dev->failed) {
		uint8_t ack;
		int r = virtq_pop_armed(q, e);

		if (r < 0) {
			virtio_dev_fail(dev, c->queue, "%s", q->error);
			break;
		}
		if (r == 0)
			break;
		if (!e->in_len) {
			virtio_dev_fail(dev, c->queue,
					"control chain %u has no device-writable byte for the "
					"answer",
					e->head);
			break;
		}
		ack = command(c, e);
		virtq_elem_write(e, 0, &ack, 1);
		virtq_push(q, e->head, 1);
		used = true;
	}
	if (used)
		dev->signal_used(dev, c->queue);
}
