/* virtio-net over a tap. Everything below runs on the device's worker thread except create,
 * destroy, config_read (vCPU thread, reads constant data) and the stats getter.
 *
 * RX: a packet is read straight into the first RX chain's buffers; what does not fit spills into
 * a bounce buffer and is copied into further chains (VIRTIO_NET_F_MRG_RXBUF), which the device
 * holds until the whole packet is placed. A packet read from the tap is never lost for want of
 * buffers: when the ring runs dry mid-packet, the packet waits (at most one) until the driver adds
 * buffers. With no buffers the tap's EPOLLIN interest is dropped and the driver's RX kicks are
 * enabled; a kick brings both back.
 *
 * TX: each chain is written to the tap with one writev() straight from guest memory. A full tap
 * (EAGAIN) puts the chain back and waits for EPOLLOUT; at most TX_BUDGET packets go per wakeup,
 * the rest after a self-kick through an eventfd so that RX gets its turn.
 *
 * Rate limits (docs/rate-limiters.md): TX asks its limiter before each chain and, told to wait,
 * leaves the chain on the ring with kicks off until the limiter's timer fires. RX asks before
 * each packet (its size is known only once read, so the packet is charged when it reaches the
 * guest) and, told to wait, drops its EPOLLIN interest in the tap: packets wait in the tap's
 * queue, as with no buffers. */
#include "virtio/net.h"
#include "virtio/net_ctrl.h"
#include "virtio/rate_limiter.h"
#include "virtio/net_spec.h"
#include "virtio/tap.h"
#include "virtio/vhost_net.h"
#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

/* 5.1.6 struct virtio_net_hdr_v1: the fields the device writes on RX. */
#define HDR_FLAGS_OFF	    0
#define HDR_NUM_BUFFERS_OFF 10
#define VNET_HDR_LEN	    TAP_VNET_HDR_LEN

#define RXQ	       0
#define TXQ	       1
#define CTRLQ	       2 /* with VIRTIO_NET_F_CTRL_VQ (one queue pair: right after it) */
#define NET_QUEUE_SIZE 256

/* The largest frame either side may pass: a 64 KiB GSO frame plus Ethernet and VLAN headers. */
#define MAX_FRAME  (65536 + 18)
#define MAX_PACKET (VNET_HDR_LEN + MAX_FRAME)

#define TX_BUDGET 128 /* packets per wakeup, so that RX is not starved */
#define RX_BUDGET 256

#define BIT(n) (1ULL << (n))

struct rx_held {
	uint16_t head;
	uint32_t len;
};

enum rx_result {
	RX_DONE,       /* a packet went to the guest */
	RX_DROPPED,    /* a packet was read and thrown away */
	RX_NO_PACKET,  /* the backend has nothing (or is gone) */
	RX_NO_BUFFERS, /* the ring is empty */
	RX_FAILED,     /* the driver broke a rule: the device is failed */
};

struct net_dev {
	struct virtio_device dev;
	struct virtio_net_backend be;
	struct net_config_space config;
	uint64_t host_features;
	unsigned offloads; /* TUN_F_* the backend accepted */
	int kick_fd;	   /* eventfd: TX has more work */

	bool active;	     /* activated and not reset: the fds are in the loop */
	bool tap_registered; /* the backend fd is in the loop */
	bool backend_dead;   /* hung up or errored: nothing more is read, TX is dropped */
	uint32_t interest;   /* the backend fd's epoll mask as registered */
	bool rx_waiting;     /* out of RX buffers: EPOLLIN off, the driver's kicks on */
	bool rx_throttled;   /* the RX limiter said wait: EPOLLIN off until its timer fires */
	bool tx_blocked;     /* the backend was full: waiting for EPOLLOUT */
	bool tx_kicked;	     /* kick_fd written and not yet handled */
	bool tx_error_logged, rx_error_logged;

	/* A packet being placed in RX buffers: rx_first holds its header, rx_held the chains filled
	 * so far (rx_held[0] is rx_first), bounce[bounce_off, bounce_len) what is still to place.
	 */
	bool rx_pending;
	struct virtq_elem rx_first, rx_cur;
	struct iovec rx_iov[VIRTQ_MAX_SEGS + 1];
	struct rx_held rx_held[VIRTQ_MAX_SIZE];
	unsigned nr_held;
	size_t rx_total;
	uint8_t *bounce;
	size_t bounce_off, bounce_len;

	struct virtq_elem tx_elem;
	struct virtio_net_stats stats;

	struct net_ctrl ctrl; /* the control queue, the announcement (virtio/net_ctrl.h) */

	struct rate_limiter rx_rl, tx_rl;
	char rx_rl_name[sizeof(((struct virtio_device *)0)->name) + 20];
	char tx_rl_name[sizeof(((struct virtio_device *)0)->name) + 20];
};

static struct net_dev *to_net(struct virtio_device *dev)
{
	return dev->priv;
}

/* Only the worker thread writes the counters; the getter may read them from anywhere. */
static void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

void virtio_net_get_stats(struct virtio_device *dev, struct virtio_net_stats *out)
{
	const struct virtio_net_stats *s;

	/* The kernel moves a vhost interface's packets: skiff counts none. */
	if (vhost_net_is(dev)) {
		memset(out, 0, sizeof(*out));
		return;
	}
	s = &to_net(dev)->stats;
	out->rx_packets = __atomic_load_n(&s->rx_packets, __ATOMIC_RELAXED);
	out->rx_bytes = __atomic_load_n(&s->rx_bytes, __ATOMIC_RELAXED);
	out->rx_dropped = __atomic_load_n(&s->rx_dropped, __ATOMIC_RELAXED);
	out->rx_errors = __atomic_load_n(&s->rx_errors, __ATOMIC_RELAXED);
	out->tx_packets = __atomic_load_n(&s->tx_packets, __ATOMIC_RELAXED);
	out->tx_bytes = __atomic_load_n(&s->tx_bytes, __ATOMIC_RELAXED);
	out->tx_dropped = __atomic_load_n(&s->tx_dropped, __ATOMIC_RELAXED);
	out->tx_errors = __atomic_load_n(&s->tx_errors, __ATOMIC_RELAXED);
}

static void update_interest(struct net_dev *nd)
{
	uint32_t want = (nd->rx_waiting || nd->rx_throttled ? 0 : EPOLLIN) |
			(nd->tx_blocked ? EPOLLOUT : 0);
	int err;

	if (!nd->tap_registered || want == nd->interest)
		return;
	err = event_loop_mod(nd->dev.loop, nd->be.fd, want);
	if (err < 0) {
		log_error("%s: cannot change the backend's epoll interest: %s", nd->dev.name,
			  strerror(-err));
		return;
	}
	nd->interest = want;
}

/* The backend hung up or errored (e.g. the tap was deleted): stop watching it for good. */
static void backend_gone(struct net_dev *nd, const char *why)
{
	if (nd->backend_dead)
		return;
	log_error("%s: backend %s; no more packets will flow", nd->dev.name, why);
	nd->backend_dead = true;
	if (nd->tap_registered) {
		event_loop_del(nd->dev.loop, nd->be.fd);
		nd->tap_registered = false;
	}
}

/* ---- RX ---- */

static bool rx_chain_ok(struct net_dev *nd, const struct virtq_elem *e)
{
	/* 5.1.6.3.1: RX buffers are device-writable and each holds at least a header. */
	if (e->nr_out) {
		virtio_dev_fail(&nd->dev, RXQ, "RX chain %u has device-readable buffers", e->head);
		return false;
	}
	if (e->in_len < VNET_HDR_LEN) {
		virtio_dev_fail(&nd->dev, RXQ, "RX chain %u is %u bytes, shorter than the header",
				e->head, e->in_len);
		return false;
	}
	return true;
}

static int rx_pop(struct net_dev *nd, struct virtq_elem *e)
{
	struct virtq *q = &nd->dev.queues[RXQ];
	int r = virtq_pop(q, e);

	if (r < 0) {
		virtio_dev_fail(&nd->dev, RXQ, "%s", q->error);
		return -1;
	}
	if (r == 1 && !rx_chain_ok(nd, e))
		return -1;
	return r;
}

/* The whole packet is in guest buffers: fill in the header and hand the chains over. */
static enum rx_result rx_complete(struct net_dev *nd)
{
	struct virtq *q = &nd->dev.queues[RXQ];
	uint16_t num_buffers = nd->nr_held; /* little-endian host */

	virtq_elem_write(&nd->rx_first, HDR_NUM_BUFFERS_OFF, &num_buffers, sizeof(num_buffers));
	/* 5.1.6.4.1: without GUEST_CSUM the flags are zero (the tap may have set DATA_VALID). */
	if (!virtio_has_feature(&nd->dev, VIRTIO_NET_F_GUEST_CSUM)) {
		uint8_t flags = 0;

		virtq_elem_write(&nd->rx_first, HDR_FLAGS_OFF, &flags, 1);
	}
	for (unsigned i = 0; i < nd->nr_held; i++)
		virtq_push(q, nd->rx_held[i].head, nd->rx_held[i].len);
	stat_add(&nd->stats.rx_packets, 1);
	stat_add(&nd->stats.rx_bytes, nd->rx_total - VNET_HDR_LEN);
	rate_limiter_charge(&nd->rx_rl, nd->rx_total - VNET_HDR_LEN, 1);
	nd->rx_pending = false;
	nd->nr_held = 0;
	return RX_DONE;
}

/* Places the rest of a pending packet in further chains. */
static enum rx_result rx_continue(struct net_dev *nd)
{
	struct virtq *q = &nd->dev.queues[RXQ];

	while (nd->bounce_off < nd->bounce_len) {
		size_t copied;
		int r;

		if (nd->nr_held >= q->size) {
			/* The device holds the whole ring and the packet still does not fit. */
			virtio_dev_fail(&nd->dev, RXQ,
					"RX buffers too small: a %zu-byte packet does not fit in "
					"the whole ring",
					nd->rx_total);
			return RX_FAILED;
		}
		r = rx_pop(nd, &nd->rx_cur);
		if (r < 0)
			return RX_FAILED;
		if (r == 0)
			return RX_NO_BUFFERS;
		copied = virtq_elem_write(&nd->rx_cur, 0, nd->bounce + nd->bounce_off,
					  nd->bounce_len - nd->bounce_off);
		nd->rx_held[nd->nr_held].head = nd->rx_cur.head;
		nd->rx_held[nd->nr_held].len = copied;
		nd->nr_held++;
		nd->bounce_off += copied;
	}
	return rx_complete(nd);
}

/* Reads the next packet from the backend into the next chain (and the bounce buffer). */
static enum rx_result rx_read_packet(struct net_dev *nd)
{
	struct virtq *q = &nd->dev.queues[RXQ];
	struct virtq_elem *e = &nd->rx_first;
	ssize_t n;
	int r;

	if (nd->backend_dead)
		return RX_NO_PACKET;
	r = rx_pop(nd, e);
	if (r < 0)
		return RX_FAILED;
	if (r == 0)
		return RX_NO_BUFFERS;

	memcpy(nd->rx_iov, e->iov + e->nr_out, e->nr_in * sizeof(struct iovec));
	nd->rx_iov[e->nr_in].iov_base = nd->bounce;
	nd->rx_iov[e->nr_in].iov_len = MAX_PACKET;
	do {
		n = readv(nd->be.fd, nd->rx_iov, e->nr_in + 1);
	} while (n < 0 && errno == EINTR);

	if (n < 0) {
		int err = errno;

		virtq_unpop(q);
		if (err == EAGAIN || err == EWOULDBLOCK)
			return RX_NO_PACKET;
		stat_add(&nd->stats.rx_errors, 1);
		if (err == EBADFD || err == EIO || err == ENXIO)
			backend_gone(nd, "failed on read");
		else if (!nd->rx_error_logged) {
			log_warn("%s: reading a packet: %s", nd->dev.name, strerror(err));
			nd->rx_error_logged = true;
		}
		return RX_NO_PACKET;
	}
	if (n == 0) {
		virtq_unpop(q);
		backend_gone(nd, "hung up");
		return RX_NO_PACKET;
	}
	if (n < VNET_HDR_LEN) {
		virtq_unpop(q);
		stat_add(&nd->stats.rx_errors, 1);
		return RX_DROPPED;
	}

	nd->rx_total = n;
	nd->rx_held[0].head = e->head;
	if ((size_t)n <= e->in_len) {
		nd->rx_held[0].len = n;
		nd->nr_held = 1;
		return rx_complete(nd);
	}
	if (!virtio_has_feature(&nd->dev, VIRTIO_NET_F_MRG_RXBUF)) {
		/* 5.1.6.3.2: without merged buffers a packet goes into one chain; the driver chose
		 * buffers too small for it. */
		virtq_unpop(q);
		stat_add(&nd->stats.rx_dropped, 1);
		log_debug("%s: dropped a %zd-byte packet larger than the %u-byte RX buffer",
			  nd->dev.name, n, e->in_len);
		return RX_DROPPED;
	}
	nd->rx_held[0].len = e->in_len;
	nd->nr_held = 1;
	nd->bounce_off = 0;
	nd->bounce_len = n - e->in_len;
	nd->rx_pending = true;
	return rx_continue(nd);
}

/* Out of buffers: ask the driver to kick when it adds some, unless it just did. Returns true when
 * buffers turned up meanwhile. */
static bool rx_wait_for_buffers(struct net_dev *nd)
{
	struct virtq *q = &nd->dev.queues[RXQ];

	virtq_set_notification(q, true);
	if (virtq_has_avail(q)) {
		virtq_set_notification(q, false);
		return true;
	}
	nd->rx_waiting = true;
	update_interest(nd);
	return false;
}

static void rx_process(struct net_dev *nd)
{
	bool used = false;

	if (!nd->active || nd->dev.failed)
		return;
	for (unsigned budget = RX_BUDGET; budget;) {
		enum rx_result r;

		if (!nd->rx_pending && !rate_limiter_ready(&nd->rx_rl)) {
			nd->rx_throttled = true;
			update_interest(nd);
			break;
		}
		r = nd->rx_pending ? rx_continue(nd) : rx_read_packet(nd);

		if (r == RX_DONE || r == RX_DROPPED) {
			used |= r == RX_DONE;
			budget--;
		} else if (r == RX_NO_BUFFERS) {
			if (!rx_wait_for_buffers(nd))
				break;
		} else {
			break;
		}
	}
	if (used)
		nd->dev.signal_used(&nd->dev, RXQ);
}

/* ---- TX ---- */

static void tx_reschedule(struct net_dev *nd)
{
	uint64_t one = 1;

	if (nd->tx_kicked)
		return;
	if (write(nd->kick_fd, &one, sizeof(one)) == sizeof(one))
		nd->tx_kicked = true;
	else
		log_error("%s: cannot reschedule TX: %s", nd->dev.name, strerror(errno));
}

static bool tx_chain_ok(struct net_dev *nd, const struct virtq_elem *e)
{
	if (e->nr_in) {
		virtio_dev_fail(&nd->dev, TXQ, "TX chain %u has device-writable buffers", e->head);
		return false;
	}
	if (e->out_len < VNET_HDR_LEN) {
		virtio_dev_fail(&nd->dev, TXQ, "TX chain %u is %u bytes, shorter than the header",
				e->head, e->out_len);
		return false;
	}
	if (e->out_len > MAX_PACKET) {
		virtio_dev_fail(&nd->dev, TXQ, "TX chain %u is %u bytes, more than %u", e->head,
				e->out_len, MAX_PACKET);
		return false;
	}
	return true;
}

static void tx_process(struct net_dev *nd)
{
	struct virtq *q = &nd->dev.queues[TXQ];
	struct virtq_elem *e = &nd->tx_elem;
	unsigned budget = TX_BUDGET;
	bool used = false;

	if (!nd->active || nd->dev.failed || nd->tx_blocked || nd->tx_rl.blocked)
		return;
	virtq_set_notification(q, false);
	while (budget) {
		ssize_t n;
		int r = virtq_pop(q, e);

		if (r < 0) {
			virtio_dev_fail(&nd->dev, TXQ, "%s", q->error);
			break;
		}
		if (r == 0) {
			/* Enable kicks, then look again: a chain added before the driver saw the
			 * change would otherwise wait for the next kick. */
			virtq_set_notification(q, true);
			if (!virtq_has_avail(q))
				break;
			virtq_set_notification(q, false);
			continue;
		}
		if (!tx_chain_ok(nd, e))
			break;
		if (!rate_limiter_consume(&nd->tx_rl, e->out_len - VNET_HDR_LEN, 1)) {
			/* Kicks stay off: the limiter's timer brings us back. */
			virtq_unpop(q);
			break;
		}
		budget--;
		if (nd->backend_dead) {
			stat_add(&nd->stats.tx_dropped, 1);
			virtq_push(q, e->head, 0);
			used = true;
			continue;
		}
		do {
			n = writev(nd->be.fd, e->iov, e->nr_out);
		} while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			virtq_unpop(q);
			nd->tx_blocked = true;
			update_interest(nd);
			break;
		}
		if (n < 0) {
			stat_add(&nd->stats.tx_errors, 1);
			if (!nd->tx_error_logged) {
				log_warn("%s: the backend refused a %u-byte packet: %s (further "
					 "refusals are only counted)",
					 nd->dev.name, e->out_len, strerror(errno));
				nd->tx_error_logged = true;
			}
		} else {
			stat_add(&nd->stats.tx_packets, 1);
			stat_add(&nd->stats.tx_bytes, e->out_len - VNET_HDR_LEN);
		}
		virtq_push(q, e->head, 0);
		used = true;
	}
	if (!budget)
		tx_reschedule(nd);
	if (used)
		nd->dev.signal_used(&nd->dev, TXQ);
}

/* ---- event loop callbacks ---- */

static void backend_event(void *ctx, uint32_t events)
{
	struct net_dev *nd = ctx;

	if (events & EPOLLOUT && nd->tx_blocked) {
		nd->tx_blocked = false;
		update_interest(nd);
		tx_process(nd);
	}
	if (events & EPOLLIN)
		rx_process(nd);
	/* After reading what was left: a hung-up socket still reports EPOLLIN until drained. */
	if (events & (EPOLLERR | EPOLLHUP) && !nd->backend_dead)
		backend_gone(nd, events & EPOLLERR ? "reported an error" : "hung up");
	if (nd->backend_dead && nd->tx_blocked) {
		nd->tx_blocked = false;
		tx_process(nd); /* drop what waited, so the driver gets its buffers back */
	}
}

static void kick_event(void *ctx, uint32_t events)
{
	struct net_dev *nd = ctx;
	uint64_t count;

	if (read(nd->kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_error("%s: reading the TX eventfd: %s", nd->dev.name, strerror(errno));
	nd->tx_kicked = false;
	tx_process(nd);
}

/* ---- virtio_device_ops ---- */

static uint64_t net_features(struct virtio_device *dev)
{
	return to_net(dev)->host_features;
}

static void net_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
	struct net_dev *nd = to_net(dev);
	struct net_config_space cs = nd->config;

	cs.status |= net_ctrl_status(&nd->ctrl);
	memcpy(data, (const uint8_t *)&cs + off, len);
}

static void rx_resume(void *ctx)
{
	struct net_dev *nd = ctx;

	nd->rx_throttled = false;
	update_interest(nd);
	rx_process(nd);
}

static void tx_resume(void *ctx)
{
	tx_process(ctx);
}

static void net_deactivate(struct net_dev *nd)
{
	uint64_t count;

	rate_limiter_detach(&nd->rx_rl);
	rate_limiter_detach(&nd->tx_rl);
	if (nd->tap_registered)
		event_loop_del(nd->dev.loop, nd->be.fd);
	if (nd->active) {
		event_loop_del(nd->dev.loop, nd->kick_fd);
		if (read(nd->kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			log_debug("%s: draining the TX eventfd: %s", nd->dev.name, strerror(errno));
	}
	nd->tap_registered = false;
	nd->active = false;
	nd->rx_pending = false;
	nd->nr_held = 0;
	nd->rx_waiting = false;
	nd->rx_throttled = false;
	nd->tx_blocked = false;
	nd->tx_kicked = false;
}

static int net_activate(struct virtio_device *dev)
{
	struct net_dev *nd = to_net(dev);
	unsigned tun = tap_guest_offloads(dev->features);
	int err;

	if (!dev->queues[RXQ].ready || !dev->queues[TXQ].ready) {
		log_error("%s: the driver did not set up both the RX and the TX queue", dev->name);
		return -EINVAL;
	}
	if (virtio_has_feature(dev, VIRTIO_NET_F_CTRL_VQ) && !dev->queues[CTRLQ].ready) {
		log_error("%s: the driver negotiated a control queue and did not set it up",
			  dev->name);
		return -EINVAL;
	}
	err = nd->be.set_offload(nd->be.fd, tun);
	if (err < 0) {
		log_error("%s: cannot set the backend's offloads to %#x: %s", dev->name, tun,
			  strerror(-err));
		return err;
	}
	err = event_loop_add(dev->loop, nd->kick_fd, EPOLLIN, kick_event, nd);
	if (err < 0) {
		log_error("%s: cannot watch the TX eventfd: %s", dev->name, strerror(-err));
		return err;
	}
	nd->active = true;
	if ((err = rate_limiter_attach(&nd->rx_rl, dev->loop, rx_resume, nd)) ||
	    (err = rate_limiter_attach(&nd->tx_rl, dev->loop, tx_resume, nd))) {
		net_deactivate(nd);
		return err;
	}
	if (!nd->backend_dead) {
		err = event_loop_add(dev->loop, nd->be.fd, EPOLLIN, backend_event, nd);
		if (err < 0) {
			log_error("%s: cannot watch the backend: %s", dev->name, strerror(-err));
			net_deactivate(nd);
			return err;
		}
		nd->tap_registered = true;
		nd->interest = EPOLLIN;
	}
	/* The tap's readiness drives RX; the driver's RX kicks only matter once buffers ran out. */
	virtq_set_notification(&dev->queues[RXQ], false);
	rx_process(nd);
	tx_process(nd);
	return 0;
}

static void net_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct net_dev *nd = to_net(dev);

	if (!nd->active || dev->failed)
		return;
	if (q == TXQ) {
		tx_process(nd);
	} else if (q == CTRLQ) {
		if (virtio_has_feature(dev, VIRTIO_NET_F_CTRL_VQ))
			net_ctrl_process(&nd->ctrl);
	} else if (q == RXQ) {
		if (nd->rx_waiting) {
			nd->rx_waiting = false;
			virtq_set_notification(&dev->queues[RXQ], false);
			update_interest(nd);
		}
		/* Also delivers a packet that waited for buffers when the tap has nothing new. */
		rx_process(nd);
	}
}

static void net_reset(struct virtio_device *dev)
{
	struct net_dev *nd = to_net(dev);
	int err;

	net_deactivate(nd);
	net_ctrl_reset(&nd->ctrl);
	err = nd->be.set_offload(nd->be.fd, 0);
	if (err < 0 && !nd->backend_dead)
		log_warn("%s: cannot clear the backend's offloads: %s", dev->name, strerror(-err));
}

/* The VM moved (a snapshot restored, a migration's destination): its peers on the network still
 * reach it where it was until it announces itself. */
static void net_restored(struct virtio_device *dev)
{
	net_ctrl_announce(&to_net(dev)->ctrl);
}

static void net_destroy(struct virtio_device *dev)
{
	struct net_dev *nd = to_net(dev);

	close(nd->be.fd);
	close(nd->kick_fd);
	rate_limiter_fini(&nd->rx_rl);
	rate_limiter_fini(&nd->tx_rl);
	log_debug("%s: backend closed", dev->name);
	free(nd->bounce);
	free(nd);
}

static const struct virtio_device_ops net_ops = {
    .device_id = VIRTIO_ID_NET,
    .nr_queues = 3,
    .min_saved_queues = 2, /* before the control queue: those states load, without it */
    .queue_max_size = NET_QUEUE_SIZE,
    .config_size = sizeof(struct net_config_space),
    .features = net_features,
    .config_read = net_config_read,
    .activate = net_activate,
    .queue_notify = net_queue_notify,
    .reset = net_reset,
    .restored = net_restored,
    .destroy = net_destroy,
};

/* The largest offload set the backend accepts, trying smaller ones on refusal; leaves it at 0. */
static uint64_t features_for(unsigned offloads)
{
	return BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_MRG_RXBUF) |
	       BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_GUEST_ANNOUNCE) |
	       tap_offload_features(offloads);
}

int virtio_net_create_on(const struct net_config *cfg, const struct virtio_net_backend *be,
			 struct virtio_device **out)
{
	struct net_dev *nd = calloc(1, sizeof(*nd));
	int err;

	if (!nd) {
		log_error("virtio-net %s: out of memory", cfg->tap);
		return -ENOMEM;
	}
	nd->kick_fd = -1;
	nd->bounce = malloc(MAX_PACKET);
	if (!nd->bounce) {
		log_error("virtio-net %s: out of memory", cfg->tap);
		err = -ENOMEM;
		goto fail;
	}
	nd->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (nd->kick_fd < 0) {
		err = -errno;
		log_error("virtio-net %s: eventfd: %s", cfg->tap, strerror(errno));
		goto fail;
	}
	nd->be = *be;
	nd->dev.ops = &net_ops;
	nd->dev.priv = nd;
	net_ctrl_init(&nd->ctrl, &nd->dev, CTRLQ);
	snprintf(nd->dev.name, sizeof(nd->dev.name), "virtio-net %s",
		 cfg->id[0] ? cfg->id : cfg->tap);

	if ((err = net_config_space_init(&nd->config, cfg, nd->dev.name)))
		goto fail;
	snprintf(nd->rx_rl_name, sizeof(nd->rx_rl_name), "%s RX rate limiter", nd->dev.name);
	snprintf(nd->tx_rl_name, sizeof(nd->tx_rl_name), "%s TX rate limiter", nd->dev.name);
	if ((err = rate_limiter_init(&nd->rx_rl, &cfg->rx_rate_limiter, nd->rx_rl_name)))
		goto fail;
	if ((err = rate_limiter_init(&nd->tx_rl, &cfg->tx_rate_limiter, nd->tx_rl_name))) {
		rate_limiter_fini(&nd->rx_rl);
		goto fail;
	}

	nd->offloads = tap_probe_offloads(be->fd, be->set_offload);
	nd->host_features = features_for(nd->offloads);
	log_debug("%s: backend offloads %#x, device features %#llx", nd->dev.name, nd->offloads,
		  (unsigned long long)nd->host_features);
	*out = &nd->dev;
	return 0;

fail:
	if (nd->kick_fd >= 0)
		close(nd->kick_fd);
	free(nd->bounce);
	free(nd);
	return err;
}

int virtio_net_create(const struct net_config *cfg, struct virtio_device **out)
{
	struct virtio_net_backend be = {.set_offload = tap_set_offload};
	struct net_config named = *cfg;
	int err;

	be.fd = tap_open(cfg->tap, named.tap);
	if (be.fd < 0)
		return be.fd;
	if (cfg->vhost)
		err = vhost_net_create(&named, be.fd, out);
	else
		err = virtio_net_create_on(&named, &be, out);
	if (err < 0)
		close(be.fd);
	return err;
}

/* ---- changing the rate limiters ---- */

struct limit_call {
	struct net_dev *nd;
	const struct rate_limiter_config *rx, *tx;
	unsigned rx_which, tx_which;
	int ret;
};

static void limit_on_worker(void *arg)
{
	struct limit_call *c = arg;

	c->ret = 0;
	if (c->rx && c->rx_which)
		c->ret = rate_limiter_update(&c->nd->rx_rl, c->rx, c->rx_which);
	if (!c->ret && c->tx && c->tx_which)
		c->ret = rate_limiter_update(&c->nd->tx_rl, c->tx, c->tx_which);
}

int virtio_net_set_rate_limiters(struct virtio_device *dev, const struct rate_limiter_config *rx,
				 unsigned rx_which, const struct rate_limiter_config *tx,
				 unsigned tx_which)
{
	struct limit_call c = {
	    .rx = rx, .tx = tx, .rx_which = rx_which, .tx_which = tx_which};
	int ret;

	if (!dev || dev->ops != &net_ops)
		return log_set_error(-EINVAL, "not a virtio-net device");
	c.nd = to_net(dev);
	ret = virtio_dev_on_worker(dev, limit_on_worker, &c);
	if (ret)
		return ret;
	if (c.ret)
		return log_set_error(c.ret, "%s: cannot change the rate limiters", dev->name);
	log_info("%s: rate limiters changed", dev->name);
	return 0;
}
