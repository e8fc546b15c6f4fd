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
 * queue, as with no buffers.
 *
 * Multiqueue (queues=N, VIRTIO_NET_F_MQ, 5.1.6.5.5): queues rx0, tx0, rx1, tx1, ..., then the
 * control queue (at 2N when the driver took MQ, else at 2). Each pair has its own backend fd (a
 * queue of a multi_queue tap), its own RX/TX state, TX eventfd and counters; all pairs are served
 * by the device's one worker, as virtio-blk's queues are, each queue with its own kick and
 * interrupt (its own MSI-X vector over virtio-pci). The rate limiters are the interface's, shared
 * by the pairs. Only the first `active_pairs` are used (1 until the driver sends
 * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET): the fds of the others are detached from the tap
 * (TUNSETQUEUE IFF_DETACH_QUEUE), so the kernel steers no packet to a queue nobody reads; a
 * packet already queued on a detached fd is dropped by the kernel at the detach, as on a real NIC
 * whose queue is switched off, which TCP recovers from. */
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

/* Pair p's queues; the control queue follows the last pair the driver knows of. */
#define RXQ(p)	       ((uint16_t)(2 * (p)))
#define TXQ(p)	       ((uint16_t)(2 * (p) + 1))
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

struct net_dev;

/* One RX/TX queue pair and the backend fd it moves packets through. */
struct net_pair {
	struct net_dev *nd;
	uint16_t index;
	int fd;	       /* the backend (a tap queue) */
	int kick_fd;   /* eventfd: TX has more work */
	bool attached; /* the fd is one of the tap's queues (not IFF_DETACH_QUEUE'd) */

	bool active;	     /* activated and in use: the fds are in the loop */
	bool tap_registered; /* the backend fd is in the loop */
	uint32_t interest;   /* the backend fd's epoll mask as registered */
	bool rx_waiting;     /* out of RX buffers: EPOLLIN off, the driver's kicks on */
	bool rx_throttled;   /* the RX limiter said wait: EPOLLIN off until its timer fires */
	bool tx_blocked;     /* the backend was full: waiting for EPOLLOUT */
	bool tx_kicked;	     /* kick_fd written and not yet handled */

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
	struct virtio_net_pair_stats stats;
};

struct net_dev {
	struct virtio_device dev;
	/* net_ops with this interface's queue count: the core sizes everything from it. */
	struct virtio_device_ops ops;
	struct virtio_net_backend be;
	struct net_config_space config;
	uint64_t host_features;
	unsigned offloads; /* TUN_F_* the backend accepted */

	bool active;	   /* activated and not reset */
	bool backend_dead; /* hung up or errored: nothing more is read, TX is dropped */
	bool tx_error_logged, rx_error_logged;
	uint16_t nr_pairs;     /* queue pairs the device has (max_virtqueue_pairs) */
	uint16_t active_pairs; /* those in use: 1, or what VQ_PAIRS_SET asked */
	struct net_pair *pairs;
	struct virtio_net_stats stats; /* the sums; per pair in pairs[].stats */

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

static uint64_t stat_get(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void virtio_net_get_stats(struct virtio_device *dev, struct virtio_net_stats *out)
{
	const struct net_dev *nd;
	const struct virtio_net_stats *s;

	memset(out, 0, sizeof(*out));
	/* The kernel moves a vhost interface's packets: skiff counts none. */
	if (vhost_net_is(dev)) {
		out->nr_pairs = 1;
		return;
	}
	nd = to_net(dev);
	s = &nd->stats;
	out->rx_packets = stat_get(&s->rx_packets);
	out->rx_bytes = stat_get(&s->rx_bytes);
	out->rx_dropped = stat_get(&s->rx_dropped);
	out->rx_errors = stat_get(&s->rx_errors);
	out->tx_packets = stat_get(&s->tx_packets);
	out->tx_bytes = stat_get(&s->tx_bytes);
	out->tx_dropped = stat_get(&s->tx_dropped);
	out->tx_errors = stat_get(&s->tx_errors);
	out->nr_pairs = nd->nr_pairs;
	for (uint16_t i = 0; i < nd->nr_pairs; i++) {
		const struct virtio_net_pair_stats *ps = &nd->pairs[i].stats;

		out->pairs[i].rx_packets = stat_get(&ps->rx_packets);
		out->pairs[i].rx_bytes = stat_get(&ps->rx_bytes);
		out->pairs[i].tx_packets = stat_get(&ps->tx_packets);
		out->pairs[i].tx_bytes = stat_get(&ps->tx_bytes);
	}
}

static void update_interest(struct net_pair *p)
{
	uint32_t want =
	    (p->rx_waiting || p->rx_throttled ? 0 : EPOLLIN) | (p->tx_blocked ? EPOLLOUT : 0);
	int err;

	if (!p->tap_registered || want == p->interest)
		return;
	err = event_loop_mod(p->nd->dev.loop, p->fd, want);
	if (err < 0) {
		log_error("%s: queue pair %u: cannot change the backend's epoll interest: %s",
			  p->nd->dev.name, p->index, strerror(-err));
		return;
	}
	p->interest = want;
}

/* The backend hung up or errored (e.g. the tap was deleted): stop watching it for good. */
static void backend_gone(struct net_dev *nd, const char *why)
{
	if (nd->backend_dead)
		return;
	log_error("%s: backend %s; no more packets will flow", nd->dev.name, why);
	nd->backend_dead = true;
	for (uint16_t i = 0; i < nd->nr_pairs; i++) {
		struct net_pair *p = &nd->pairs[i];

		if (p->tap_registered) {
			event_loop_del(nd->dev.loop, p->fd);
			p->tap_registered = false;
		}
	}
}

/* ---- RX ---- */

static bool rx_chain_ok(struct net_pair *p, const struct virtq_elem *e)
{
	/* 5.1.6.3.1: RX buffers are device-writable and each holds at least a header. */
	if (e->nr_out) {
		virtio_dev_fail(&p->nd->dev, RXQ(p->index),
				"RX chain %u has device-readable buffers", e->head);
		return false;
	}
	if (e->in_len < VNET_HDR_LEN) {
		virtio_dev_fail(&p->nd->dev, RXQ(p->index),
				"RX chain %u is %u bytes, shorter than the header", e->head,
				e->in_len);
		return false;
	}
	return true;
}

static int rx_pop(struct net_pair *p, struct virtq_elem *e)
{
	struct virtq *q = &p->nd->dev.queues[RXQ(p->index)];
	int r = virtq_pop(q, e);

	if (r < 0) {
		virtio_dev_fail(&p->nd->dev, RXQ(p->index), "%s", q->error);
		return -1;
	}
	if (r == 1 && !rx_chain_ok(p, e))
		return -1;
	return r;
}

/* The whole packet is in guest buffers: fill in the header and hand the chains over. */
static enum rx_result rx_complete(struct net_pair *p)
{
	struct net_dev *nd = p->nd;
	struct virtq *q = &nd->dev.queues[RXQ(p->index)];
	uint16_t num_buffers = p->nr_held; /* little-endian host */
	size_t frame = p->rx_total - VNET_HDR_LEN;

	virtq_elem_write(&p->rx_first, HDR_NUM_BUFFERS_OFF, &num_buffers, sizeof(num_buffers));
	/* 5.1.6.4.1: without GUEST_CSUM the flags are zero (the tap may have set DATA_VALID). */
	if (!virtio_has_feature(&nd->dev, VIRTIO_NET_F_GUEST_CSUM)) {
		uint8_t flags = 0;

		virtq_elem_write(&p->rx_first, HDR_FLAGS_OFF, &flags, 1);
	}
	for (unsigned i = 0; i < p->nr_held; i++)
		virtq_push(q, p->rx_held[i].head, p->rx_held[i].len);
	stat_add(&nd->stats.rx_packets, 1);
	stat_add(&nd->stats.rx_bytes, frame);
	stat_add(&p->stats.rx_packets, 1);
	stat_add(&p->stats.rx_bytes, frame);
	rate_limiter_charge(&nd->rx_rl, frame, 1);
	p->rx_pending = false;
	p->nr_held = 0;
	return RX_DONE;
}

/* Places the rest of a pending packet in further chains. */
static enum rx_result rx_continue(struct net_pair *p)
{
	struct virtq *q = &p->nd->dev.queues[RXQ(p->index)];

	while (p->bounce_off < p->bounce_len) {
		size_t copied;
		int r;

		if (p->nr_held >= q->size) {
			/* The device holds the whole ring and the packet still does not fit. */
			virtio_dev_fail(&p->nd->dev, RXQ(p->index),
					"RX buffers too small: a %zu-byte packet does not fit in "
					"the whole ring",
					p->rx_total);
			return RX_FAILED;
		}
		r = rx_pop(p, &p->rx_cur);
		if (r < 0)
			return RX_FAILED;
		if (r == 0)
			return RX_NO_BUFFERS;
		copied = virtq_elem_write(&p->rx_cur, 0, p->bounce + p->bounce_off,
					  p->bounce_len - p->bounce_off);
		p->rx_held[p->nr_held].head = p->rx_cur.head;
		p->rx_held[p->nr_held].len = copied;
		p->nr_held++;
		p->bounce_off += copied;
	}
	return rx_complete(p);
}

/* Reads the next packet from the backend into the next chain (and the bounce buffer). */
static enum rx_result rx_read_packet(struct net_pair *p)
{
	struct net_dev *nd = p->nd;
	struct virtq *q = &nd->dev.queues[RXQ(p->index)];
	struct virtq_elem *e = &p->rx_first;
	ssize_t n;
	int r;

	if (nd->backend_dead)
		return RX_NO_PACKET;
	r = rx_pop(p, e);
	if (r < 0)
		return RX_FAILED;
	if (r == 0)
		return RX_NO_BUFFERS;

	memcpy(p->rx_iov, e->iov + e->nr_out, e->nr_in * sizeof(struct iovec));
	p->rx_iov[e->nr_in].iov_base = p->bounce;
	p->rx_iov[e->nr_in].iov_len = MAX_PACKET;
	do {
		n = readv(p->fd, p->rx_iov, e->nr_in + 1);
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

	p->rx_total = n;
	p->rx_held[0].head = e->head;
	if ((size_t)n <= e->in_len) {
		p->rx_held[0].len = n;
		p->nr_held = 1;
		return rx_complete(p);
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
	p->rx_held[0].len = e->in_len;
	p->nr_held = 1;
	p->bounce_off = 0;
	p->bounce_len = n - e->in_len;
	p->rx_pending = true;
	return rx_continue(p);
}

/* Out of buffers: ask the driver to kick when it adds some, unless it just did. Returns true when
 * buffers turned up meanwhile. */
static bool rx_wait_for_buffers(struct net_pair *p)
{
	struct virtq *q = &p->nd->dev.queues[RXQ(p->index)];

	virtq_set_notification(q, true);
	if (virtq_has_avail(q)) {
		virtq_set_notification(q, false);
		return true;
	}
	p->rx_waiting = true;
	update_interest(p);
	return false;
}

static void rx_process(struct net_pair *p)
{
	struct net_dev *nd = p->nd;
	bool used = false;

	if (!p->active || nd->dev.failed)
		return;
	for (unsigned budget = RX_BUDGET; budget;) {
		enum rx_result r;

		if (!p->rx_pending && !rate_limiter_ready(&nd->rx_rl)) {
			p->rx_throttled = true;
			update_interest(p);
			break;
		}
		r = p->rx_pending ? rx_continue(p) : rx_read_packet(p);

		if (r == RX_DONE || r == RX_DROPPED) {
			used |= r == RX_DONE;
			budget--;
		} else if (r == RX_NO_BUFFERS) {
			if (!rx_wait_for_buffers(p))
				break;
		} else {
			break;
		}
	}
	if (used)
		nd->dev.signal_used(&nd->dev, RXQ(p->index));
}

/* ---- TX ---- */

static void tx_reschedule(struct net_pair *p)
{
	if (p->tx_kicked)
		return;
	if (eventfd_write(p->kick_fd, 1) == 0)
		p->tx_kicked = true;
	else
		log_error("%s: cannot reschedule TX: %s", p->nd->dev.name, strerror(errno));
}

static bool tx_chain_ok(struct net_pair *p, const struct virtq_elem *e)
{
	struct virtio_device *dev = &p->nd->dev;
	uint16_t txq = TXQ(p->index);

	if (e->nr_in) {
		virtio_dev_fail(dev, txq, "TX chain %u has device-writable buffers", e->head);
		return false;
	}
	if (e->out_len < VNET_HDR_LEN) {
		virtio_dev_fail(dev, txq, "TX chain %u is %u bytes, shorter than the header",
				e->head, e->out_len);
		return false;
	}
	if (e->out_len > MAX_PACKET) {
		virtio_dev_fail(dev, txq, "TX chain %u is %u bytes, more than %u", e->head,
				e->out_len, MAX_PACKET);
		return false;
	}
	return true;
}

static void tx_process(struct net_pair *p)
{
	struct net_dev *nd = p->nd;
	struct virtq *q = &nd->dev.queues[TXQ(p->index)];
	struct virtq_elem *e = &p->tx_elem;
	unsigned budget = TX_BUDGET;
	bool used = false;

	if (!p->active || nd->dev.failed || p->tx_blocked || nd->tx_rl.blocked)
		return;
	virtq_set_notification(q, false);
	while (budget) {
		ssize_t n;
		int r = virtq_pop(q, e);

		if (r < 0) {
			virtio_dev_fail(&nd->dev, TXQ(p->index), "%s", q->error);
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
		if (!tx_chain_ok(p, e))
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
			n = writev(p->fd, e->iov, e->nr_out);
		} while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			virtq_unpop(q);
			p->tx_blocked = true;
			update_interest(p);
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
			stat_add(&p->stats.tx_packets, 1);
			stat_add(&p->stats.tx_bytes, e->out_len - VNET_HDR_LEN);
		}
		virtq_push(q, e->head, 0);
		used = true;
	}
	if (!budget)
		tx_reschedule(p);
	if (used)
		nd->dev.signal_used(&nd->dev, TXQ(p->index));
}

/* ---- event loop callbacks ---- */

static void backend_event(void *ctx, uint32_t events)
{
	struct net_pair *p = ctx;
	struct net_dev *nd = p->nd;

	if (events & EPOLLOUT && p->tx_blocked) {
		p->tx_blocked = false;
		update_interest(p);
		tx_process(p);
	}
	if (events & EPOLLIN)
		rx_process(p);
	/* After reading what was left: a hung-up socket still reports EPOLLIN until drained. */
	if (events & (EPOLLERR | EPOLLHUP) && !nd->backend_dead)
		backend_gone(nd, events & EPOLLERR ? "reported an error" : "hung up");
	if (nd->backend_dead) {
		/* Drop what waited, so the driver gets its buffers back. */
		for (uint16_t i = 0; i < nd->active_pairs; i++) {
			if (nd->pairs[i].tx_blocked) {
				nd->pairs[i].tx_blocked = false;
				tx_process(&nd->pairs[i]);
			}
		}
	}
}

static void kick_event(void *ctx, uint32_t events)
{
	struct net_pair *p = ctx;
	uint64_t count;

	if (read(p->kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_error("%s: reading the TX eventfd: %s", p->nd->dev.name, strerror(errno));
	p->tx_kicked = false;
	tx_process(p);
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

	for (uint16_t i = 0; i < nd->active_pairs; i++) {
		struct net_pair *p = &nd->pairs[i];

		if (!p->rx_throttled)
			continue;
		p->rx_throttled = false;
		update_interest(p);
		rx_process(p);
	}
}

static void tx_resume(void *ctx)
{
	struct net_dev *nd = ctx;

	for (uint16_t i = 0; i < nd->active_pairs; i++)
		tx_process(&nd->pairs[i]);
}

/* Attaches the pair's fd to the tap, or detaches it (the kernel then steers no packet to it).
 * 0, or -errno after a logged line. */
static int pair_attach(struct net_pair *p, bool attach)
{
	struct net_dev *nd = p->nd;
	int err;

	if (p->attached == attach || !nd->be.set_queue)
		return 0;
	err = nd->be.set_queue(p->fd, attach);
	if (err < 0) {
		log_error("%s: cannot %s queue pair %u %s the backend: %s", nd->dev.name,
			  attach ? "attach" : "detach", p->index, attach ? "to" : "from",
			  strerror(-err));
		return err;
	}
	p->attached = attach;
	return 0;
}

/* Stops serving pair p: out of the loop, its RX and TX state forgotten (the rings stay). */
static void pair_stop(struct net_pair *p)
{
	struct net_dev *nd = p->nd;
	uint64_t count;

	if (p->tap_registered)
		event_loop_del(nd->dev.loop, p->fd);
	if (p->active) {
		event_loop_del(nd->dev.loop, p->kick_fd);
		if (read(p->kick_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
			log_debug("%s: draining the TX eventfd: %s", nd->dev.name, strerror(errno));
	}
	p->tap_registered = false;
	p->active = false;
	p->rx_pending = false;
	p->nr_held = 0;
	p->rx_waiting = false;
	p->rx_throttled = false;
	p->tx_blocked = false;
	p->tx_kicked = false;
}

/* Starts serving pair p, whose queues the driver set up. 0 or -errno after a logged line. */
static int pair_start(struct net_pair *p)
{
	struct net_dev *nd = p->nd;
	struct virtio_device *dev = &nd->dev;
	int err;

	if (p->active)
		return 0;
	if (!dev->queues[RXQ(p->index)].ready || !dev->queues[TXQ(p->index)].ready) {
		log_error("%s: the driver did not set up both the RX and the TX queue of pair %u",
			  dev->name, p->index);
		return -EINVAL;
	}
	err = event_loop_add(dev->loop, p->kick_fd, EPOLLIN, kick_event, p);
	if (err < 0) {
		log_error("%s: cannot watch the TX eventfd: %s", dev->name, strerror(-err));
		return err;
	}
	p->active = true;
	if (!nd->backend_dead) {
		err = event_loop_add(dev->loop, p->fd, EPOLLIN, backend_event, p);
		if (err < 0) {
			log_error("%s: cannot watch the backend: %s", dev->name, strerror(-err));
			pair_stop(p);
			return err;
		}
		p->tap_registered = true;
		p->interest = EPOLLIN;
	}
	/* The tap's readiness drives RX; the driver's RX kicks only matter once buffers ran out. */
	virtq_set_notification(&dev->queues[RXQ(p->index)], false);
	rx_process(p);
	tx_process(p);
	return 0;
}

/* A pair the driver switches off while a packet waits for more RX buffers (VQ_PAIRS_SET): the
 * packet is dropped and the chains it holds go back to the driver as used with length 0 (Linux
 * counts them as length errors), so that none is lost to the driver if it uses the pair again. */
static void pair_drop_pending(struct net_pair *p)
{
	struct net_dev *nd = p->nd;
	struct virtq *q = &nd->dev.queues[RXQ(p->index)];

	if (!p->rx_pending)
		return;
	for (unsigned i = 0; i < p->nr_held; i++)
		virtq_push(q, p->rx_held[i].head, 0);
	stat_add(&nd->stats.rx_dropped, 1);
	p->rx_pending = false;
	p->nr_held = 0;
	nd->dev.signal_used(&nd->dev, RXQ(p->index));
}

/* Uses the first `n` pairs (1..nr_pairs): attaches their fds to the tap and serves them, stops
 * and detaches the others. 0, or -errno after a logged line (the pairs in use unchanged when the
 * first step failed). */
static int net_use_pairs(struct net_dev *nd, uint16_t n)
{
	int err;

	/* What the driver can get wrong is checked before anything changes. */
	for (uint16_t i = 0; i < n; i++) {
		if (!nd->dev.queues[RXQ(i)].ready || !nd->dev.queues[TXQ(i)].ready) {
			log_debug("%s: the driver did not set up both the RX and the TX queue of "
				  "pair %u",
				  nd->dev.name, i);
			return -EINVAL;
		}
	}
	for (uint16_t i = 0; i < n; i++) {
		if ((err = pair_attach(&nd->pairs[i], true)) < 0)
			return err;
	}
	for (uint16_t i = 0; i < n; i++) {
		if ((err = pair_start(&nd->pairs[i])) < 0)
			return err;
	}
	for (uint16_t i = n; i < nd->nr_pairs; i++) {
		pair_drop_pending(&nd->pairs[i]);
		pair_stop(&nd->pairs[i]);
		pair_attach(&nd->pairs[i], false);
	}
	nd->active_pairs = n;
	return 0;
}

static int net_set_pairs(void *ctx, uint16_t pairs)
{
	struct net_dev *nd = ctx;

	if (pairs < 1 || pairs > nd->nr_pairs) {
		log_debug("%s: VQ_PAIRS_SET %u refused: the device has 1 to %u", nd->dev.name,
			  pairs, nd->nr_pairs);
		return -EINVAL;
	}
	if (net_use_pairs(nd, pairs) < 0)
		return -EIO;
	log_debug("%s: %u queue pair%s in use", nd->dev.name, pairs, pairs > 1 ? "s" : "");
	return 0;
}

static void net_deactivate(struct net_dev *nd)
{
	rate_limiter_detach(&nd->rx_rl);
	rate_limiter_detach(&nd->tx_rl);
	for (uint16_t i = 0; i < nd->nr_pairs; i++) {
		pair_stop(&nd->pairs[i]);
		if (i > 0)
			pair_attach(&nd->pairs[i], false);
	}
	nd->active_pairs = 1;
	nd->active = false;
}

static int net_activate(struct virtio_device *dev)
{
	struct net_dev *nd = to_net(dev);
	unsigned tun = tap_guest_offloads(dev->features);
	/* 5.1.2: the control queue is 2N, N the pairs the driver knows of (1 without MQ). */
	uint16_t ctrlq = virtio_has_feature(dev, VIRTIO_NET_F_MQ) ? 2 * nd->nr_pairs : 2;
	int err;

	if (!dev->queues[RXQ(0)].ready || !dev->queues[TXQ(0)].ready) {
		log_error("%s: the driver did not set up both the RX and the TX queue", dev->name);
		return -EINVAL;
	}
	if (virtio_has_feature(dev, VIRTIO_NET_F_CTRL_VQ) && !dev->queues[ctrlq].ready) {
		log_error("%s: the driver negotiated a control queue and did not set it up",
			  dev->name);
		return -EINVAL;
	}
	net_ctrl_set_queue(&nd->ctrl, ctrlq);
	err = nd->be.set_offload(nd->be.fd, tun);
	if (err < 0) {
		log_error("%s: cannot set the backend's offloads to %#x: %s", dev->name, tun,
			  strerror(-err));
		return err;
	}
	nd->active = true;
	if ((err = rate_limiter_attach(&nd->rx_rl, dev->loop, rx_resume, nd)) ||
	    (err = rate_limiter_attach(&nd->tx_rl, dev->loop, tx_resume, nd)) ||
	    (err = net_use_pairs(nd, 1))) {
		net_deactivate(nd);
		return err;
	}
	return 0;
}

static void net_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct net_dev *nd = to_net(dev);
	struct net_pair *p;

	if (!nd->active || dev->failed)
		return;
	if (q == nd->ctrl.queue && virtio_has_feature(dev, VIRTIO_NET_F_CTRL_VQ)) {
		net_ctrl_process(&nd->ctrl);
		return;
	}
	if (q / 2 >= nd->active_pairs)
		return; /* a pair not in use: the driver may not kick it (5.1.6.5.5) */
	p = &nd->pairs[q / 2];
	if (q % 2) {
		tx_process(p);
		return;
	}
	if (p->rx_waiting) {
		p->rx_waiting = false;
		virtq_set_notification(&dev->queues[q], false);
		update_interest(p);
	}
	/* Also delivers a packet that waited for buffers when the tap has nothing new. */
	rx_process(p);
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

	for (uint16_t i = 0; i < nd->nr_pairs; i++) {
		close(nd->pairs[i].fd);
		close(nd->pairs[i].kick_fd);
		free(nd->pairs[i].bounce);
	}
	rate_limiter_fini(&nd->rx_rl);
	rate_limiter_fini(&nd->tx_rl);
	log_debug("%s: backend closed", dev->name);
	free(nd->pairs);
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

bool virtio_net_is_multiqueue(const struct virtio_device *dev)
{
	return dev && dev->ops->destroy == net_destroy &&
	       to_net((struct virtio_device *)dev)->nr_pairs > 1;
}

/* The largest offload set the backend accepts, trying smaller ones on refusal; leaves it at 0. */
static uint64_t features_for(unsigned offloads, uint16_t pairs)
{
	return BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_MRG_RXBUF) |
	       BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VIRTIO_NET_F_GUEST_ANNOUNCE) |
	       (pairs > 1 ? BIT(VIRTIO_NET_F_MQ) : 0) | tap_offload_features(offloads);
}

int virtio_net_create_on(const struct net_config *cfg, const struct virtio_net_backend *be,
			 struct virtio_device **out)
{
	struct net_dev *nd = calloc(1, sizeof(*nd));
	uint16_t pairs = cfg->num_queues > 1 ? (uint16_t)cfg->num_queues : 1;
	int err;

	if (!nd || !(nd->pairs = calloc(pairs, sizeof(*nd->pairs)))) {
		log_error("virtio-net %s: out of memory", cfg->tap);
		free(nd);
		return -ENOMEM;
	}
	if (pairs > NET_MAX_QUEUE_PAIRS) {
		log_error("virtio-net %s: %u queue pairs, at most %d", cfg->tap, pairs,
			  NET_MAX_QUEUE_PAIRS);
		err = -EINVAL;
		goto fail;
	}
	nd->nr_pairs = pairs;
	nd->active_pairs = 1;
	for (uint16_t i = 0; i < pairs; i++) {
		struct net_pair *p = &nd->pairs[i];

		p->nd = nd;
		p->index = i;
		p->fd = -1;
		p->attached = true; /* as the backend was handed over */
		p->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->kick_fd < 0) {
			err = -errno;
			log_error("virtio-net %s: eventfd: %s", cfg->tap, strerror(errno));
			goto fail;
		}
		p->bounce = malloc(MAX_PACKET);
		if (!p->bounce) {
			log_error("virtio-net %s: out of memory", cfg->tap);
			err = -ENOMEM;
			goto fail;
		}
	}
	nd->be = *be;
	nd->ops = net_ops;
	nd->ops.nr_queues = 2 * pairs + 1;
	if (pairs > 1)
		nd->ops.min_saved_queues = 0; /* multiqueue states always held the control queue */
	nd->dev.ops = &nd->ops;
	nd->dev.priv = nd;
	net_ctrl_init(&nd->ctrl, &nd->dev, 2, net_set_pairs, nd);
	snprintf(nd->dev.name, sizeof(nd->dev.name), "virtio-net %s",
		 cfg->id[0] ? cfg->id : cfg->tap);

	if ((err = net_config_space_init(&nd->config, cfg, nd->dev.name)))
		goto fail;
	nd->config.max_virtqueue_pairs = pairs;
	snprintf(nd->rx_rl_name, sizeof(nd->rx_rl_name), "%s RX rate limiter", nd->dev.name);
	snprintf(nd->tx_rl_name, sizeof(nd->tx_rl_name), "%s TX rate limiter", nd->dev.name);
	if ((err = rate_limiter_init(&nd->rx_rl, &cfg->rx_rate_limiter, nd->rx_rl_name)))
		goto fail;
	if ((err = rate_limiter_init(&nd->tx_rl, &cfg->tx_rate_limiter, nd->tx_rl_name))) {
		rate_limiter_fini(&nd->rx_rl);
		goto fail;
	}

	nd->offloads = tap_probe_offloads(be->fd, be->set_offload);
	nd->host_features = features_for(nd->offloads, pairs);
	/* The fds belong to the device from here on (the caller keeps them on failure). */
	for (uint16_t i = 0; i < pairs; i++)
		nd->pairs[i].fd = i ? be->queue_fds[i - 1] : be->fd;
	/* Until the driver asks for more, one pair is used: the others' fds leave the tap now,
	 * so that nothing is steered to them while the guest boots. */
	for (uint16_t i = 1; i < pairs; i++)
		pair_attach(&nd->pairs[i], false);
	log_debug("%s: backend offloads %#x, device features %#llx, %u queue pair%s", nd->dev.name,
		  nd->offloads, (unsigned long long)nd->host_features, pairs, pairs > 1 ? "s" : "");
	*out = &nd->dev;
	return 0;

fail:
	for (uint16_t i = 0; i < pairs; i++) {
		if (nd->pairs[i].kick_fd > 0)
			close(nd->pairs[i].kick_fd);
		free(nd->pairs[i].bounce);
	}
	free(nd->pairs);
	free(nd);
	return err;
}

int virtio_net_create(const struct net_config *cfg, struct virtio_device **out)
{
	struct virtio_net_backend be = {.set_offload = tap_set_offload, .set_queue = tap_set_queue};
	struct net_config named = *cfg;
	int fds[NET_MAX_QUEUE_PAIRS];
	unsigned pairs = cfg->num_queues > 1 ? cfg->num_queues : 1;
	int err;

	if (pairs > NET_MAX_QUEUE_PAIRS) {
		log_error("virtio-net %s: %u queue pairs, at most %d", cfg->tap, pairs,
			  NET_MAX_QUEUE_PAIRS);
		return -EINVAL;
	}
	err = tap_open_queues(cfg->tap, pairs, fds, named.tap);
	if (err < 0)
		return err;
	be.fd = fds[0];
	for (unsigned i = 1; i < pairs; i++)
		be.queue_fds[i - 1] = fds[i];
	if (cfg->vhost)
		err = vhost_net_create(&named, be.fd, out);
	else
		err = virtio_net_create_on(&named, &be, out);
	if (err < 0)
		for (unsigned i = 0; i < pairs; i++)
			close(fds[i]);
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
	struct limit_call c = {.rx = rx, .tx = tx, .rx_which = rx_which, .tx_which = tx_which};
	int ret;

	if (!dev || dev->ops->destroy != net_destroy)
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
