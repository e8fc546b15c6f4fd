/* virtio-vsock: the device (queues, packets) and its host side (unix sockets), see vsock.h.
 *
 * A connection is identified by its two ports: local_port on the host's side (CID 2) and
 * peer_port on the guest's. Each has one unix socket. What the guest sends goes straight to the
 * socket; what the socket does not take at once waits in the connection's buffer, which is the
 * credit the device gave the guest (buf_alloc): a RW beyond it resets the connection. The other
 * way, the socket is read straight into the guest's RX buffer, never more than the guest's
 * credit allows, so nothing waits on the host side at all.
 *
 * Packets to the guest come from the connections' pending control flags, their readable
 * sockets, and a short queue of RSTs for connections already gone (bounded: when it is full a
 * RST is dropped, and the guest's own timeout ends that connection). */
#include "virtio/vsock.h"
#include "virtio/virtio.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#define VSOCK_QUEUE_SIZE    256
#define CMD_MAX		    32	       /* "CONNECT 4294967295\n" and some slack */
#define LOCAL_PORT_FIRST    (1u << 30) /* host_port numbers handed to CONNECT clients */
#define ORPHAN_RST_MAX	    64
#define CREDIT_UPDATE_SLACK (VSOCK_CONN_BUF_ALLOC / 4)
#define REQUEST_TIMEOUT_MS  2000 /* a CONNECT the guest neither accepts nor refuses */
#define RX_BATCH	    16	 /* RX buffers one read of a socket may fill */

enum conn_state {
	CONN_AWAIT_CMD,	   /* host-initiated: reading "CONNECT <port>\n" */
	CONN_REQUEST_SENT, /* host-initiated: REQUEST queued or sent, awaiting RESPONSE */
	CONN_ESTABLISHED,
};

/* Control packets a connection owes the guest. */
#define PEND_REQUEST	    1u
#define PEND_RESPONSE	    2u
#define PEND_CREDIT_UPDATE  4u
#define PEND_CREDIT_REQUEST 8u
#define PEND_SHUTDOWN	    16u

struct virtio_vsock;

struct vsock_conn {
	struct virtio_vsock *vs;
	int fd;
	bool in_loop;	   /* fd watched by the loop */
	uint32_t interest; /* events asked for */
	enum conn_state state;
	uint32_t local_port, peer_port;
	uint64_t deadline_ms; /* CONN_REQUEST_SENT: when the CONNECT is given up */
	unsigned pending;
	uint32_t shutdown_flags; /* for PEND_SHUTDOWN */

	char cmd[CMD_MAX];
	unsigned cmd_len;
	char reply[24]; /* "OK <host_port>\n", written before any data */
	unsigned reply_len, reply_off;

	/* guest -> socket: a ring of VSOCK_CONN_BUF_ALLOC bytes, allocated when first needed */
	uint8_t *buf;
	uint32_t buf_head, buf_used;
	uint32_t fwd_cnt;      /* guest bytes passed to the socket */
	uint32_t fwd_cnt_sent; /* fwd_cnt as the guest last heard it */
	uint8_t peer_shutdown; /* VSOCK_SHUTDOWN_* the guest sent */
	bool wr_shut;	       /* shutdown(SHUT_WR) done */
	bool write_broken;     /* the socket refuses data: what the guest sends is dropped */

	/* socket -> guest */
	uint32_t tx_cnt; /* bytes sent to the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	bool data_ready; /* the socket may have data: read it when credit and buffers allow */
	bool rd_eof;	 /* the socket has no more */
	bool hup;	 /* the socket's peer is gone entirely */
	bool credit_requested;
	bool shutdown_sent;
};

struct orphan_rst {
	uint32_t local_port, peer_port;
};

struct virtio_vsock {
	struct virtio_device dev;
	uint64_t guest_cid;
	char uds_path[VM_CONFIG_VSOCK_MAX_PATH + 1];
	int listen_fd;
	bool listening; /* listen_fd watched by the loop */
	int timer_fd;	/* the CONNECTs' timeouts */
	bool timer_watched, timer_armed;
	bool activated; /* worker thread only */

	struct vsock_conn *conns[VSOCK_MAX_CONNS];
	unsigned nr_conns;
	unsigned rr; /* where the next RX round starts */
	uint32_t next_local_port;
	struct orphan_rst orphans[ORPHAN_RST_MAX];
	unsigned nr_orphans;
	bool warned_cid, warned_full;

	struct virtq_elem elem;
	/* RX buffers after `elem` that the same read filled, each a packet of its own, given back
	 * right after it (rx_process) */
	struct virtq_elem batch[RX_BATCH - 1];
	uint32_t batch_len[RX_BATCH - 1];
	unsigned nr_batch;
	struct virtio_vsock_stats stats; /* written on the worker, read with atomic loads */
};

static struct virtio_vsock *to_vs(struct virtio_device *dev)
{
	return dev->priv;
}

static void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static void rx_process(struct virtio_vsock *vs);

/* ---- connections ---- */

static uint32_t peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* The events a connection's socket is watched for follow from its state. */
static void conn_update_interest(struct virtio_vsock *vs, struct vsock_conn *c)
{
	uint32_t want = 0;
	int err;

	if (!c->in_loop)
		return;
	if (c->state == CONN_AWAIT_CMD)
		want |= EPOLLIN;
	else if (c->state == CONN_ESTABLISHED && !c->data_ready && !c->rd_eof &&
		 !(c->peer_shutdown & VSOCK_SHUTDOWN_RCV))
		want |= EPOLLIN;
	if ((c->reply_len > c->reply_off || c->buf_used) && !c->write_broken)
		want |= EPOLLOUT;
	if (want == c->interest)
		return;
	err = event_loop_mod(vs->dev.loop, c->fd, want);
	if (err < 0)
		log_warn("%s: port %u: cannot watch its socket: %s", vs->dev.name, c->local_port,
			 strerror(-err));
	c->interest = want;
}

static void queue_orphan_rst(struct virtio_vsock *vs, uint32_t local_port, uint32_t peer_port)
{
	if (vs->nr_orphans == ORPHAN_RST_MAX)
		return; /* the guest's own timeout ends that connection */
	vs->orphans[vs->nr_orphans++] = (struct orphan_rst){local_port, peer_port};
}

/* Forgets a connection; with `rst`, the guest is told (RST). */
static void conn_close(struct virtio_vsock *vs, struct vsock_conn *c, bool rst)
{
	unsigned i;

	for (i = 0; i < vs->nr_conns && vs->conns[i] != c; i++)
		;
	if (i == vs->nr_conns)
		return;
	vs->conns[i] = vs->conns[--vs->nr_conns];
	if (rst)
		queue_orphan_rst(vs, c->local_port, c->peer_port);
	if (c->in_loop)
		event_loop_del(vs->dev.loop, c->fd);
	close(c->fd);
	free(c->buf);
	free(c);
	__atomic_store_n(&vs->stats.conns_open, vs->nr_conns, __ATOMIC_RELAXED);
}

static void conn_event(void *ctx, uint32_t events);

/* A new connection on `fd` (nonblocking), watched for `interest`. NULL (fd closed) when the cap
 * is reached or the loop refuses it. */
static struct vsock_conn *conn_new(struct virtio_vsock *vs, int fd, enum conn_state state)
{
	struct vsock_conn *c;
	int err;

	if (vs->nr_conns == VSOCK_MAX_CONNS) {
		if (!vs->warned_full)
			log_warn("%s: %d connections open: refusing more", vs->dev.name,
				 VSOCK_MAX_CONNS);
		vs->warned_full = true;
		close(fd);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return NULL;
	}
	c->vs = vs;
	c->fd = fd;
	c->state = state;
	c->interest = state == CONN_AWAIT_CMD ? EPOLLIN : 0;
	err = event_loop_add(vs->dev.loop, fd, c->interest, conn_event, c);
	if (err < 0) {
		log_warn("%s: cannot watch a connection: %s", vs->dev.name, strerror(-err));
		close(fd);
		free(c);
		return NULL;
	}
	c->in_loop = true;
	vs->conns[vs->nr_conns++] = c;
	__atomic_store_n(&vs->stats.conns_open, vs->nr_conns, __ATOMIC_RELAXED);
	return c;
}

static struct vsock_conn *conn_find(struct virtio_vsock *vs, uint32_t local_port,
				    uint32_t peer_port)
{
	for (unsigned i = 0; i < vs->nr_conns; i++)
		if (vs->conns[i]->local_port == local_port &&
		    vs->conns[i]->peer_port == peer_port && vs->conns[i]->state != CONN_AWAIT_CMD)
			return vs->conns[i];
	return NULL;
}

static bool local_port_used(struct virtio_vsock *vs, uint32_t port)
{
	for (unsigned i = 0; i < vs->nr_conns; i++)
		if (vs->conns[i]->state != CONN_AWAIT_CMD && vs->conns[i]->local_port == port)
			return true;
	return false;
}

static uint32_t alloc_local_port(struct virtio_vsock *vs)
{
	for (;;) {
		uint32_t p = vs->next_local_port++;

		if (vs->next_local_port == 0xffffffffu)
			vs->next_local_port = LOCAL_PORT_FIRST;
		if (!local_port_used(vs, p)) /* at most VSOCK_MAX_CONNS are */
			return p;
	}
}

/* Both sides are done: the guest sent SHUTDOWN with both flags, or each side said it sends no
 * more, and everything the guest sent reached the socket. */
static bool conn_finished(const struct vsock_conn *c)
{
	if (c->buf_used || c->reply_len > c->reply_off)
		return false;
	if (c->peer_shutdown == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND))
		return true;
	return c->rd_eof && c->shutdown_sent && (c->peer_shutdown & VSOCK_SHUTDOWN_SEND);
}

/* Writes what waits for the socket; returns false when the connection was closed. */
static bool conn_flush(struct virtio_vsock *vs, struct vsock_conn *c)
{
	while (c->reply_len > c->reply_off && !c->write_broken) {
		ssize_t n = write(c->fd, c->reply + c->reply_off, c->reply_len - c->reply_off);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			c->write_broken = true;
		else
			c->reply_off += (unsigned)n;
	}
	while (c->buf_used && c->reply_off == c->reply_len && !c->write_broken) {
		uint32_t chunk = VSOCK_CONN_BUF_ALLOC - c->buf_head;
		ssize_t n;

		if (chunk > c->buf_used)
			chunk = c->buf_used;
		n = write(c->fd, c->buf + c->buf_head, chunk);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			c->write_broken = true;
			break;
		}
		c->buf_head = (c->buf_head + (uint32_t)n) % VSOCK_CONN_BUF_ALLOC;
		c->buf_used -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (c->write_broken && c->buf_used) {
		/* The socket is gone: what waited counts as forwarded, so credit flows on. */
		c->fwd_cnt += c->buf_used;
		c->buf_used = 0;
	}
	if (c->fwd_cnt - c->fwd_cnt_sent >= CREDIT_UPDATE_SLACK)
		c->pending |= PEND_CREDIT_UPDATE;
	if (!c->buf_used && (c->peer_shutdown & VSOCK_SHUTDOWN_SEND) && !c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
	if (conn_finished(c)) {
		conn_close(vs, c, true);
		return false;
	}
	conn_update_interest(vs, c);
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Arms the timer for the earliest CONNECT deadline, or disarms it when none is pending. */
static void timer_update(struct virtio_vsock *vs)
{
	struct itimerspec its = {0};
	uint64_t first = 0, now = now_ms();

	for (unsigned i = 0; i < vs->nr_conns; i++) {
		struct vsock_conn *c = vs->conns[i];

		if (c->state == CONN_REQUEST_SENT && (!first || c->deadline_ms < first))
			first = c->deadline_ms;
	}
	if (!first && !vs->timer_armed)
		return;
	if (first) {
		uint64_t in = first > now ? first - now : 1;

		its.it_value.tv_sec = (time_t)(in / 1000);
		its.it_value.tv_nsec = (long)(in % 1000) * 1000000;
	}
	if (timerfd_settime(vs->timer_fd, 0, &its, NULL) != 0)
		log_warn("%s: cannot arm the CONNECT timer: %s", vs->dev.name, strerror(errno));
	vs->timer_armed = first != 0;
}

/* CONNECTs the guest did not answer in time: the client's connection is closed, and the guest
 * gets a RST for a REQUEST it may still answer. */
static void timer_event(void *ctx, uint32_t events)
{
	struct virtio_vsock *vs = ctx;
	uint64_t expirations, now = now_ms();

	if (read(vs->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug("%s: reading the timer: %s", vs->dev.name, strerror(errno));
	vs->timer_armed = false;
	for (unsigned i = vs->nr_conns; i-- > 0;) {
		struct vsock_conn *c = vs->conns[i];

		if (i >= vs->nr_conns || c->state != CONN_REQUEST_SENT || c->deadline_ms > now)
			continue;
		log_debug("%s: CONNECT %u: no answer from the guest in %d ms", vs->dev.name,
			  c->peer_port, REQUEST_TIMEOUT_MS);
		conn_close(vs, c, !(c->pending & PEND_REQUEST));
	}
	timer_update(vs);
	rx_process(vs);
}

/* "CONNECT <port>\n": read byte by byte, so nothing after the newline is taken from the
 * socket before the guest accepted. Returns false when the connection was closed. */
static bool conn_read_command(struct virtio_vsock *vs, struct vsock_conn *c)
{
	unsigned long port;
	char *end;

	for (;;) {
		ssize_t n = read(c->fd, c->cmd + c->cmd_len, 1);

		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0) {
			conn_close(vs, c, false);
			return false;
		}
		if (c->cmd[c->cmd_len] == '\n')
			break;
		if (++c->cmd_len == CMD_MAX - 1) {
			log_warn("%s: a client's command is too long: closed", vs->dev.name);
			conn_close(vs, c, false);
			return false;
		}
	}
	c->cmd[c->cmd_len] = 0;
	if (c->cmd_len && c->cmd[c->cmd_len - 1] == '\r')
		c->cmd[--c->cmd_len] = 0;
	errno = 0;
	port = strncmp(c->cmd, "CONNECT ", 8) == 0 ? strtoul(c->cmd + 8, &end, 10) : 0;
	if (strncmp(c->cmd, "CONNECT ", 8) != 0 || c->cmd[8] < '0' || c->cmd[8] > '9' || *end ||
	    errno || port > 0xffffffffUL) {
		log_warn("%s: a client sent \"%s\", not \"CONNECT <port>\": closed", vs->dev.name,
			 c->cmd);
		conn_close(vs, c, false);
		return false;
	}
	c->local_port = alloc_local_port(vs);
	c->peer_port = (uint32_t)port;
	c->state = CONN_REQUEST_SENT;
	c->pending |= PEND_REQUEST;
	c->deadline_ms = now_ms() + REQUEST_TIMEOUT_MS;
	conn_update_interest(vs, c);
	timer_update(vs);
	return true;
}

static void conn_event(void *ctx, uint32_t events)
{
	struct vsock_conn *c = ctx;
	struct virtio_vsock *vs = c->vs;

	if (c->state == CONN_AWAIT_CMD) {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) && conn_read_command(vs, c))
			rx_process(vs); /* its REQUEST */
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR)) {
		/* The peer is gone: no more events from this socket (a hung-up socket would
		 * report forever); what it left unread is still read, below. */
		event_loop_del(vs->dev.loop, c->fd);
		c->in_loop = false;
		c->hup = true;
		c->data_ready = true;
		c->write_broken = true;
		if (c->state == CONN_REQUEST_SENT) {
			bool sent = !(c->pending & PEND_REQUEST);

			conn_close(vs, c, sent);
			rx_process(vs);
			return;
		}
	}
	if (events & EPOLLOUT && !conn_flush(vs, c)) {
		rx_process(vs);
		return;
	}
	if (events & EPOLLIN && c->state == CONN_ESTABLISHED) {
		c->data_ready = true;
		conn_update_interest(vs, c);
	}
	rx_process(vs);
}

/* ---- packets to the guest (RX queue) ---- */

/* iov[] := `len` bytes of e's buffers [first, first + count) starting `offset` bytes in. */
static int elem_slice(const struct virtq_elem *e, unsigned first, unsigned count, size_t offset,
		      size_t len, struct iovec *iov)
{
	int n = 0;

	for (unsigned i = first; i < first + count && len; i++) {
		size_t l = e->iov[i].iov_len;

		if (offset >= l) {
			offset -= l;
			continue;
		}
		l -= offset;
		if (l > len)
			l = len;
		iov[n].iov_base = (uint8_t *)e->iov[i].iov_base + offset;
		iov[n++].iov_len = l;
		offset = 0;
		len -= l;
	}
	return n;
}

static uint32_t put_hdr(struct virtio_vsock *vs, const struct virtq_elem *e, uint32_t local_port,
			uint32_t peer_port, uint16_t op, uint32_t flags, uint32_t len,
			uint32_t fwd_cnt)
{
	struct virtio_vsock_hdr h = {
	    .src_cid = VSOCK_CID_HOST,
	    .dst_cid = vs->guest_cid,
	    .src_port = local_port,
	    .dst_port = peer_port,
	    .len = len,
	    .type = VSOCK_TYPE_STREAM,
	    .op = op,
	    .flags = flags,
	    .buf_alloc = VSOCK_CONN_BUF_ALLOC,
	    .fwd_cnt = fwd_cnt,
	};

	virtq_elem_write(e, 0, &h, sizeof(h));
	return VIRTIO_VSOCK_HDR_SIZE + len;
}

static uint32_t conn_hdr(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_elem *e,
			 uint16_t op, uint32_t flags, uint32_t len)
{
	c->fwd_cnt_sent = c->fwd_cnt;
	return put_hdr(vs, e, c->local_port, c->peer_port, op, flags, len, c->fwd_cnt);
}

/* The payload an RX buffer can take, within `credit` and the largest packet. */
static uint32_t rx_room(const struct virtq_elem *e, uint32_t credit)
{
	uint32_t room = e->in_len - VIRTIO_VSOCK_HDR_SIZE;

	if (room > credit)
		room = credit;
	return room > VSOCK_MAX_PKT_LEN ? VSOCK_MAX_PKT_LEN : room;
}

/* Takes more RX buffers for the read that fills `e`, while the guest's credit lasts and they
 * are well formed (rx_process fails the device on a bad one when it pops it itself): their
 * payload areas go on iov[] after `cnt` entries, their rooms in rooms[1..]. Returns how many. */
static unsigned rx_batch_take(struct virtio_vsock *vs, uint32_t credit, struct iovec *iov, int *cnt,
			      uint32_t *rooms)
{
	struct virtq *vq = &vs->dev.queues[VSOCK_QUEUE_RX];
	uint32_t total = rooms[0];
	unsigned nb = 0;

	while (nb < RX_BATCH - 1 && total < credit) {
		struct virtq_elem *x = &vs->batch[nb];
		uint32_t room;

		if (virtq_pop(vq, x) <= 0)
			break; /* empty, or broken: rx_process's own pop finds out */
		room =
		    x->nr_out || x->in_len < VIRTIO_VSOCK_HDR_SIZE ? 0 : rx_room(x, credit - total);
		if (!room || *cnt + x->nr_in > VIRTQ_MAX_SEGS) {
			virtq_unpop(vq);
			break;
		}
		*cnt += elem_slice(x, x->nr_out, x->nr_in, VIRTIO_VSOCK_HDR_SIZE, room, iov + *cnt);
		rooms[++nb] = room;
		total += room;
	}
	return nb;
}

/* Reads the socket into the RX buffer behind the header: returns the packet's size, or 0 when
 * there was nothing to read. One read may fill further RX buffers too (rx_batch_take): each is
 * a packet of its own, in vs->batch, after this one. */
static uint32_t conn_fill_data(struct virtio_vsock *vs, struct vsock_conn *c,
			       const struct virtq_elem *e)
{
	uint32_t credit = peer_credit(c), rooms[RX_BATCH];
	struct iovec iov[VIRTQ_MAX_SEGS];
	unsigned nb = 0;
	ssize_t n;
	int cnt;

	if (!credit) {
		if (!c->credit_requested)
			c->pending |= PEND_CREDIT_REQUEST;
		c->credit_requested = true;
		return 0;
	}
	rooms[0] = rx_room(e, credit);
	if (!rooms[0])
		return 0;
	cnt = elem_slice(e, e->nr_out, e->nr_in, VIRTIO_VSOCK_HDR_SIZE, rooms[0], iov);
	nb = rx_batch_take(vs, credit, iov, &cnt, rooms);
	n = readv(c->fd, iov, cnt);
	if (n > 0) {
		uint32_t first = (uint32_t)n < rooms[0] ? (uint32_t)n : rooms[0];
		uint32_t left = (uint32_t)n - first;

		c->tx_cnt += (uint32_t)n;
		stat_add(&vs->stats.rx_bytes, (uint64_t)n);
		/* The header of `e` last: conn_hdr's fwd_cnt is the same for all of them. */
		for (unsigned i = 0; i < nb && left; i++) {
			uint32_t len = left < rooms[i + 1] ? left : rooms[i + 1];

			vs->batch_len[vs->nr_batch++] =
			    conn_hdr(vs, c, &vs->batch[i], VSOCK_OP_RW, 0, len);
			left -= len;
		}
		for (unsigned i = vs->nr_batch; i < nb; i++)
			virtq_unpop(&vs->dev.queues[VSOCK_QUEUE_RX]);
		return conn_hdr(vs, c, e, VSOCK_OP_RW, 0, first);
	}
	for (unsigned i = 0; i < nb; i++)
		virtq_unpop(&vs->dev.queues[VSOCK_QUEUE_RX]);
	c->data_ready = false;
	if (n < 0 && errno == EAGAIN) {
		conn_update_interest(vs, c);
		return 0;
	}
	/* The end of what the socket sends (or an error: the same to the guest). */
	c->rd_eof = true;
	c->pending |= PEND_SHUTDOWN;
	c->shutdown_flags |= VSOCK_SHUTDOWN_SEND | (c->hup ? VSOCK_SHUTDOWN_RCV : 0);
	conn_update_interest(vs, c);
	return 0;
}

/* The next packet connection c owes the guest, written into e: its size, or 0 for none. The
 * connection may be closed by the time it returns a packet. */
static uint32_t conn_fill(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_elem *e)
{
	uint32_t n;

	if (c->pending & PEND_REQUEST) {
		c->pending &= ~PEND_REQUEST;
		return conn_hdr(vs, c, e, VSOCK_OP_REQUEST, 0, 0);
	}
	if (c->pending & PEND_RESPONSE) {
		c->pending &= ~PEND_RESPONSE;
		return conn_hdr(vs, c, e, VSOCK_OP_RESPONSE, 0, 0);
	}
	if (c->state != CONN_ESTABLISHED)
		return 0;
	if (c->hup && !c->rd_eof && (c->peer_shutdown & VSOCK_SHUTDOWN_RCV)) {
		c->rd_eof = true; /* nobody will read what is left */
		c->data_ready = false;
		c->pending |= PEND_SHUTDOWN;
		c->shutdown_flags |= VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV;
	}
	if (c->data_ready && !c->rd_eof && !(c->peer_shutdown & VSOCK_SHUTDOWN_RCV) &&
	    (n = conn_fill_data(vs, c, e)))
		return n;
	if (c->pending & PEND_SHUTDOWN) {
		c->pending &= ~PEND_SHUTDOWN;
		c->shutdown_sent = true;
		n = conn_hdr(vs, c, e, VSOCK_OP_SHUTDOWN, c->shutdown_flags, 0);
		if (conn_finished(c))
			conn_close(vs, c, true);
		return n;
	}
	if (c->pending & PEND_CREDIT_UPDATE) {
		c->pending &= ~PEND_CREDIT_UPDATE;
		return conn_hdr(vs, c, e, VSOCK_OP_CREDIT_UPDATE, 0, 0);
	}
	if (c->pending & PEND_CREDIT_REQUEST) {
		c->pending &= ~PEND_CREDIT_REQUEST;
		return conn_hdr(vs, c, e, VSOCK_OP_CREDIT_REQUEST, 0, 0);
	}
	return 0;
}

/* The next packet for the guest, from the RSTs first, then the connections in turn. */
static uint32_t fill_one(struct virtio_vsock *vs, const struct virtq_elem *e)
{
	if (vs->nr_orphans) {
		struct orphan_rst r = vs->orphans[0];

		memmove(&vs->orphans[0], &vs->orphans[1], --vs->nr_orphans * sizeof(r));
		stat_add(&vs->stats.resets, 1);
		return put_hdr(vs, e, r.local_port, r.peer_port, VSOCK_OP_RST, 0, 0, 0);
	}
	for (unsigned k = 0, nr = vs->nr_conns; k < nr && vs->nr_conns; k++) {
		unsigned i = (vs->rr + k) % vs->nr_conns;
		uint32_t n = conn_fill(vs, vs->conns[i], e);

		if (n) {
			vs->rr = i + 1;
			return n;
		}
	}
	return 0;
}

static void rx_process(struct virtio_vsock *vs)
{
	struct virtio_device *dev = &vs->dev;
	struct virtq *vq = &dev->queues[VSOCK_QUEUE_RX];
	struct virtq_elem *e = &vs->elem;
	bool pushed = false;

	if (!vs->activated || !vq->ready)
		return;
	while (!dev->failed) {
		uint32_t n;
		int r = virtq_pop_armed(vq, e);

		if (r < 0)
			virtio_dev_fail(dev, VSOCK_QUEUE_RX, "%s", vq->error);
		if (r <= 0)
			break;
		if (e->nr_out || e->in_len < VIRTIO_VSOCK_HDR_SIZE) {
			virtio_dev_fail(dev, VSOCK_QUEUE_RX,
					"RX buffer %u: %u device-writable bytes and %u readable "
					"buffers (a header is %d writable bytes)",
					e->head, e->in_len, e->nr_out, VIRTIO_VSOCK_HDR_SIZE);
			break;
		}
		vs->nr_batch = 0;
		n = fill_one(vs, e);
		if (!n) {
			virtq_unpop(vq);
			break;
		}
		virtq_push(vq, e->head, n);
		for (unsigned i = 0; i < vs->nr_batch; i++)
			virtq_push(vq, vs->batch[i].head, vs->batch_len[i]);
		pushed = true;
	}
	if (pushed)
		dev->signal_used(dev, VSOCK_QUEUE_RX);
}

/* ---- packets from the guest (TX queue) ---- */

/* A guest connecting to the host's port: relayed to "<uds_path>_<port>". */
static void guest_connect(struct virtio_vsock *vs, const struct virtio_vsock_hdr *h)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct vsock_conn *c;
	int fd;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", vs->uds_path, h->dst_port);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		log_debug("%s: guest port %u to host port %u: %s: %s", vs->dev.name, h->src_port,
			  h->dst_port, a.sun_path, strerror(errno));
		close(fd);
		fd = -1;
	}
	c = fd >= 0 ? conn_new(vs, fd, CONN_ESTABLISHED) : NULL;
	if (!c) {
		stat_add(&vs->stats.refused, 1);
		queue_orphan_rst(vs, h->dst_port, h->src_port);
		return;
	}
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending |= PEND_RESPONSE;
	stat_add(&vs->stats.conns_guest, 1);
	conn_update_interest(vs, c);
}

/* A RW's payload: to the socket, and what it does not take into the buffer, within credit. */
static void conn_receive(struct virtio_vsock *vs, struct vsock_conn *c, const struct virtq_elem *e,
			 uint32_t len)
{
	size_t off = VIRTIO_VSOCK_HDR_SIZE;

	if (len > VSOCK_CONN_BUF_ALLOC - c->buf_used) {
		log_warn("%s: guest port %u sent %u bytes to host port %u with %u bytes of credit "
			 "left: connection reset",
			 vs->dev.name, c->peer_port, len, c->local_port,
			 VSOCK_CONN_BUF_ALLOC - c->buf_used);
		stat_add(&vs->stats.credit_violations, 1);
		conn_close(vs, c, true);
		return;
	}
	stat_add(&vs->stats.tx_bytes, len);
	if (c->write_broken) {
		c->fwd_cnt += len;
		conn_flush(vs, c);
		return;
	}
	if (!c->buf_used && c->reply_off == c->reply_len) {
		struct iovec iov[VIRTQ_MAX_SEGS];
		int cnt = elem_slice(e, 0, e->nr_out, off, len, iov);
		ssize_t n = cnt ? writev(c->fd, iov, cnt) : 0;

		if (n > 0) {
			off += (size_t)n;
			len -= (uint32_t)n;
			c->fwd_cnt += (uint32_t)n;
		} else if (n < 0 && errno != EAGAIN) {
			c->write_broken = true;
		}
	}
	if (len && !c->write_broken) {
		uint32_t tail = (c->buf_head + c->buf_used) % VSOCK_CONN_BUF_ALLOC;
		uint32_t first = VSOCK_CONN_BUF_ALLOC - tail;

		if (!c->buf && !(c->buf = malloc(VSOCK_CONN_BUF_ALLOC))) {
			log_warn("%s: host port %u: out of memory: connection reset", vs->dev.name,
				 c->local_port);
			conn_close(vs, c, true);
			return;
		}
		if (first > len)
			first = len;
		virtq_elem_read(e, off, c->buf + tail, first);
		virtq_elem_read(e, off + first, c->buf, len - first);
		c->buf_used += len;
	} else if (len) {
		c->fwd_cnt += len;
	}
	conn_flush(vs, c);
}

static void bad_packet(struct virtio_vsock *vs, const struct virtio_vsock_hdr *h, const char *why)
{
	stat_add(&vs->stats.bad_packets, 1);
	if (vs->warned_cid)
		return;
	vs->warned_cid = true;
	log_warn("%s: dropped a packet from CID %llu port %u to CID %llu port %u: %s (further "
		 "ones are dropped silently)",
		 vs->dev.name, (unsigned long long)h->src_cid, h->src_port,
		 (unsigned long long)h->dst_cid, h->dst_port, why);
}

/* One packet from the guest. Returns false when the device is now broken. */
static bool tx_packet(struct virtio_vsock *vs, const struct virtq_elem *e)
{
	struct virtio_device *dev = &vs->dev;
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;

	if (e->nr_in || e->out_len < VIRTIO_VSOCK_HDR_SIZE) {
		virtio_dev_fail(dev, VSOCK_QUEUE_TX,
				"packet %u: %u readable bytes and %u writable buffers (a header "
				"is %d readable bytes)",
				e->head, e->out_len, e->nr_in, VIRTIO_VSOCK_HDR_SIZE);
		return false;
	}
	virtq_elem_read(e, 0, &h, sizeof(h));
	if (h.len > VSOCK_MAX_PKT_LEN || h.len > e->out_len - VIRTIO_VSOCK_HDR_SIZE) {
		virtio_dev_fail(dev, VSOCK_QUEUE_TX,
				"packet %u: its header says %u bytes, its buffers carry %u (at "
				"most %d)",
				e->head, h.len, e->out_len - VIRTIO_VSOCK_HDR_SIZE,
				VSOCK_MAX_PKT_LEN);
		return false;
	}
	if (h.src_cid != vs->guest_cid || h.dst_cid != VSOCK_CID_HOST) {
		bad_packet(vs, &h, "not from the guest's CID to the host's");
		return true;
	}
	if (h.type != VSOCK_TYPE_STREAM) {
		bad_packet(vs, &h, "not a stream packet");
		if (h.op != VSOCK_OP_RST)
			queue_orphan_rst(vs, h.dst_port, h.src_port);
		return true;
	}
	c = conn_find(vs, h.dst_port, h.src_port);
	if (c) {
		c->peer_buf_alloc = h.buf_alloc;
		c->peer_fwd_cnt = h.fwd_cnt;
		if (peer_credit(c))
			c->credit_requested = false;
	}
	switch (h.op) {
	case VSOCK_OP_REQUEST:
		if (c)
			conn_close(vs, c, true);
		else
			guest_connect(vs, &h);
		return true;
	case VSOCK_OP_RST:
		if (c)
			conn_close(vs, c, false);
		return true;
	}
	if (!c) {
		queue_orphan_rst(vs, h.dst_port, h.src_port);
		return true;
	}
	if (h.op == VSOCK_OP_RESPONSE) {
		if (c->state != CONN_REQUEST_SENT || c->pending & PEND_REQUEST) {
			conn_close(vs, c, true);
			return true;
		}
		c->state = CONN_ESTABLISHED;
		c->reply_len =
		    (unsigned)snprintf(c->reply, sizeof(c->reply), "OK %u\n", c->local_port);
		stat_add(&vs->stats.conns_host, 1);
		conn_flush(vs, c);
		return true;
	}
	if (c->state != CONN_ESTABLISHED) {
		conn_close(vs, c, true);
		return true;
	}
	switch (h.op) {
	case VSOCK_OP_SHUTDOWN:
		c->peer_shutdown |= h.flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
		conn_flush(vs, c);
		break;
	case VSOCK_OP_RW:
		if (c->peer_shutdown & VSOCK_SHUTDOWN_SEND)
			conn_close(vs, c, true); /* data after it said it sends no more */
		else
			conn_receive(vs, c, e, h.len);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pending |= PEND_CREDIT_UPDATE;
		break;
	default:
		bad_packet(vs, &h, "unknown operation");
		conn_close(vs, c, true);
		break;
	}
	return true;
}

static void tx_process(struct virtio_vsock *vs)
{
	struct virtio_device *dev = &vs->dev;
	struct virtq *vq = &dev->queues[VSOCK_QUEUE_TX];
	struct virtq_elem *e = &vs->elem;
	bool pushed = false;

	if (!vs->activated || !vq->ready)
		return;
	while (!dev->failed) {
		int r = virtq_pop_armed(vq, e);

		if (r < 0)
			virtio_dev_fail(dev, VSOCK_QUEUE_TX, "%s", vq->error);
		if (r <= 0 || !tx_packet(vs, e))
			break;
		virtq_push(vq, e->head, 0);
		pushed = true;
	}
	if (pushed)
		dev->signal_used(dev, VSOCK_QUEUE_TX);
	rx_process(vs);
}

/* ---- the listening socket ---- */

static void listen_event(void *ctx, uint32_t events)
{
	struct virtio_vsock *vs = ctx;

	for (;;) {
		int fd = accept4(vs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("%s: accept on %s: %s", vs->dev.name, vs->uds_path,
					 strerror(errno));
			if (errno != EINTR && errno != ECONNABORTED)
				break;
			continue;
		}
		conn_new(vs, fd, CONN_AWAIT_CMD);
	}
}

/* ---- virtio_device_ops ---- */

static uint64_t vsock_features(struct virtio_device *dev)
{
	return 0; /* stream sockets only: no feature bits (5.10.3) */
}

static void vsock_config_read(struct virtio_device *dev, uint32_t off, void *data, uint32_t len)
{
	uint64_t cid = to_vs(dev)->guest_cid; /* le64 guest_cid */

	memcpy(data, (const uint8_t *)&cid + off, len);
}

static void close_all(struct virtio_vsock *vs)
{
	while (vs->nr_conns)
		conn_close(vs, vs->conns[vs->nr_conns - 1], false);
	vs->nr_orphans = 0;
}

static int vsock_activate(struct virtio_device *dev)
{
	struct virtio_vsock *vs = to_vs(dev);
	int err;

	if (!dev->queues[VSOCK_QUEUE_RX].ready || !dev->queues[VSOCK_QUEUE_TX].ready) {
		log_error("%s: the driver did not set up both the RX and the TX queue", dev->name);
		return -EINVAL;
	}
	err = event_loop_add(dev->loop, vs->listen_fd, EPOLLIN, listen_event, vs);
	if (err < 0) {
		log_error("%s: cannot watch %s: %s", dev->name, vs->uds_path, strerror(-err));
		return err;
	}
	vs->listening = true;
	err = event_loop_add(dev->loop, vs->timer_fd, EPOLLIN, timer_event, vs);
	if (err < 0) {
		log_error("%s: cannot watch its timer: %s", dev->name, strerror(-err));
		event_loop_del(dev->loop, vs->listen_fd);
		vs->listening = false;
		return err;
	}
	vs->timer_watched = true;
	vs->activated = true;
	/* The event queue's buffers are kept: no event (transport reset) is ever sent. */
	virtq_set_notification(&dev->queues[VSOCK_QUEUE_EVENT], false);
	tx_process(vs);
	return 0;
}

static void vsock_queue_notify(struct virtio_device *dev, uint16_t q)
{
	struct virtio_vsock *vs = to_vs(dev);

	if (!vs->activated || dev->failed)
		return;
	if (q == VSOCK_QUEUE_TX)
		tx_process(vs);
	else if (q == VSOCK_QUEUE_RX)
		rx_process(vs);
}

static void vsock_reset(struct virtio_device *dev)
{
	struct virtio_vsock *vs = to_vs(dev);

	if (vs->listening)
		event_loop_del(dev->loop, vs->listen_fd);
	vs->listening = false;
	close_all(vs);
	timer_update(vs); /* disarmed: no CONNECT is pending */
	if (vs->timer_watched)
		event_loop_del(dev->loop, vs->timer_fd);
	vs->timer_watched = false;
	vs->activated = false;
	vs->warned_cid = vs->warned_full = false;
}

static void vsock_destroy(struct virtio_device *dev)
{
	struct virtio_vsock *vs = to_vs(dev);

	close_all(vs);
	close(vs->listen_fd);
	close(vs->timer_fd);
	unlink(vs->uds_path);
	free(vs);
}

static const struct virtio_device_ops vsock_ops = {
    .device_id = VIRTIO_ID_VSOCK,
    .nr_queues = 3,
    .queue_max_size = VSOCK_QUEUE_SIZE,
    .config_size = sizeof(uint64_t),
    .features = vsock_features,
    .config_read = vsock_config_read,
    .activate = vsock_activate,
    .queue_notify = vsock_queue_notify,
    .reset = vsock_reset,
    .destroy = vsock_destroy,
};

/* A stale socket file at the path (its VMM is gone) is replaced; anything else is refused. */
static int clear_path(const char *name, const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, live;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s: %s exists and is not a socket", name, path);
		return -EEXIST;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("%s: socket: %s", name, strerror(errno));
		return -errno;
	}
	live = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EAGAIN;
	close(fd);
	if (live) {
		log_error("%s: something listens on %s already", name, path);
		return -EADDRINUSE;
	}
	if (unlink(path) != 0) {
		log_error("%s: cannot remove the stale socket %s: %s", name, path, strerror(errno));
		return -errno;
	}
	return 0;
}

int virtio_vsock_create(const struct vsock_config *cfg, struct virtio_device **out)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct virtio_vsock *vs = calloc(1, sizeof(*vs));
	int err;

	if (!vs) {
		log_error("virtio-vsock: out of memory");
		return -ENOMEM;
	}
	vs->guest_cid = cfg->guest_cid;
	snprintf(vs->uds_path, sizeof(vs->uds_path), "%s", cfg->uds_path);
	snprintf(vs->dev.name, sizeof(vs->dev.name), "virtio-vsock");
	vs->next_local_port = LOCAL_PORT_FIRST;
	if ((err = clear_path(vs->dev.name, vs->uds_path))) {
		free(vs);
		return err;
	}
	vs->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (vs->timer_fd < 0) {
		err = -errno;
		log_error("%s: timerfd_create: %s", vs->dev.name, strerror(errno));
		free(vs);
		return err;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", vs->uds_path);
	vs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (vs->listen_fd < 0 || bind(vs->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(vs->listen_fd, 64) != 0) {
		err = -errno;
		log_error("%s: cannot listen on %s: %s", vs->dev.name, vs->uds_path,
			  strerror(errno));
		if (vs->listen_fd >= 0)
			close(vs->listen_fd);
		close(vs->timer_fd);
		free(vs);
		return err;
	}
	vs->dev.ops = &vsock_ops;
	vs->dev.priv = vs;
	*out = &vs->dev;
	return 0;
}

void virtio_vsock_get_stats(struct virtio_device *dev, struct virtio_vsock_stats *out)
{
	const uint64_t *src = (const uint64_t *)&to_vs(dev)->stats;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
