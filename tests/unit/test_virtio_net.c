/* virtio-net driven through its rings by a test "driver" (rings laid out in guest memory, kicks
 * that honour the device's notification suppression) on a real event loop. The backend is a
 * SOCK_SEQPACKET socketpair standing in for the tap, or, when this process may create one in a
 * network namespace of its own, a real tap reached from the host side with an AF_PACKET socket.
 * Covered: TX reaches the backend intact; RX fills guest buffers with the right used lengths and
 * num_buffers, also across several buffers; a packet waiting for RX buffers is neither lost nor
 * spun on; a full backend on TX loses nothing; malformed chains fail the device; offloads are
 * offered only as far as the backend accepts them; the control queue answers the announcement's
 * ack and refuses everything else, short, oversized or unknown, without failing the device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/net.h"
#include "virtio/virtio.h"
#include "virtio_driver.h"
#include "base/event_loop.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE       (4ULL << 20)
#define BUF_GPA	       0x100000ULL /* buffers are handed out from here up */
#define QSIZE	       256
#define HDR_LEN	       12
#define RXQ	       0
#define TXQ	       1
#define CTRLQ	       2
#define ETHERTYPE_TEST 0x88b5 /* IEEE local experimental */
#define LOOP_NAME      "net-test"

#define F_CSUM	     (1ULL << 0)
#define F_GUEST_CSUM (1ULL << 1)
#define F_MAC	     (1ULL << 5)
#define F_GUEST_TSO4 (1ULL << 7)
#define F_GUEST_TSO6 (1ULL << 8)
#define F_GUEST_ECN  (1ULL << 9)
#define F_HOST_TSO4  (1ULL << 11)
#define F_HOST_TSO6  (1ULL << 12)
#define F_MRG_RXBUF  (1ULL << 15)
#define F_STATUS     (1ULL << 16)
#define F_CTRL_VQ    (1ULL << 17)
#define F_ANNOUNCE   (1ULL << 21)
#define F_MQ	     (1ULL << 22)
#define F_EVENT_IDX  (1ULL << VIRTIO_F_EVENT_IDX)
#define F_VERSION_1  (1ULL << VIRTIO_F_VERSION_1)
#define F_BASE	     (F_VERSION_1 | F_MAC | F_STATUS | F_MRG_RXBUF)

static bool tap_allowed; /* main() got a network namespace and /dev/net/tun */

struct fx {
	struct vdrv d;
	int peer; /* the socketpair's far end, or an AF_PACKET socket on the tap */
	int ifindex;
	unsigned offload_accept, offload_last; /* the fake backend's TUN_F_* */
	/* Multiqueue: pair i's device-side fd and far end, and whether it is attached (the fake
	 * backend's TUNSETQUEUE). mq_peer[0] stays -1: pair 0's far end is `peer`. */
	unsigned nr_pairs;
	int mq_fd[NET_MAX_QUEUE_PAIRS], mq_peer[NET_MAX_QUEUE_PAIRS];
	bool attached[NET_MAX_QUEUE_PAIRS];
};

static struct fx *current; /* for the fake backend's set_offload */

static uint16_t add_rx_buf(struct fx *f, uint32_t len, uint64_t *gpa)
{
	struct vdrv_seg s = {.gpa = vdrv_alloc(&f->d, len), .len = len, .write = true};

	if (gpa)
		*gpa = s.gpa;
	return vdrv_add_chain(&f->d, RXQ, &s, 1);
}

/* CPU ticks the device's worker thread has used: a spinning worker burns ~100 a second. */
static long loop_cpu_ticks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	long ticks = -1;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char path[300], buf[512], *p;
		unsigned long ut, st;
		FILE *fp;

		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (!fgets(buf, sizeof(buf), fp) || strncmp(buf, LOOP_NAME, strlen(LOOP_NAME))) {
			fclose(fp);
			continue;
		}
		fclose(fp);
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
		fp = fopen(path, "r");
		assert_non_null(fp);
		assert_non_null(fgets(buf, sizeof(buf), fp));
		fclose(fp);
		p = strrchr(buf, ')');
		assert_non_null(p);
		/* After the comm: state, then fields 4..13, then utime (14) and stime (15). */
		assert_int_equal(
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st),
		    2);
		ticks = ut + st;
	}
	closedir(d);
	assert_true(ticks >= 0);
	return ticks;
}

/* The worker stays idle for 300 ms: no busy loop on an fd it cannot serve. */
static void assert_idle(void)
{
	long before = loop_cpu_ticks();

	usleep(300 * 1000);
	assert_true(loop_cpu_ticks() - before <= 3);
}

/* ---- the device ---- */

static int fake_set_offload(int fd, unsigned flags)
{
	if (flags & ~current->offload_accept)
		return -EINVAL;
	current->offload_last = flags;
	return 0;
}

static int fx_setup(void **state)
{
	struct guest_region layout[] = {{.gpa = 0, .size = RAM_SIZE}};
	struct vdrv_config cfg = {.layout = layout,
				  .nr_regions = 1,
				  .buf_base = BUF_GPA,
				  .buf_end = RAM_SIZE,
				  .buf_align = 64,
				  .loop_name = LOOP_NAME};
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	vdrv_init(&f->d, &cfg);
	for (int q = 0; q < 2; q++) {
		uint64_t desc_gpa = 0x10000 + q * 0x10000;

		vdrv_ring_layout(&f->d, q, QSIZE, desc_gpa, desc_gpa + 0x4000, desc_gpa + 0x8000);
	}
	f->peer = -1;
	for (int i = 0; i < NET_MAX_QUEUE_PAIRS; i++)
		f->mq_peer[i] = -1;
	f->offload_accept = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
	current = f;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	vdrv_fini(&f->d);
	if (f->peer >= 0)
		close(f->peer);
	for (int i = 1; i < NET_MAX_QUEUE_PAIRS; i++)
		if (f->mq_peer[i] >= 0)
			close(f->mq_peer[i]);
	free(f);
	current = NULL;
	return 0;
}

static void create_limited(struct fx *f, int sndbuf, const struct rate_limiter_config *rx,
			   const struct rate_limiter_config *tx);

/* A device on a socketpair; `sndbuf` > 0 shrinks the device end's send buffer. */
static void create_on_socketpair(struct fx *f, int sndbuf)
{
	create_limited(f, sndbuf, NULL, NULL);
}

/* The same with rate limiters (NULL: none). */
static void create_limited(struct fx *f, int sndbuf, const struct rate_limiter_config *rx,
			   const struct rate_limiter_config *tx)
{
	struct net_config cfg = {
	    .tap = "sp0", .has_mac = true, .mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56}};
	struct virtio_net_backend be = {.set_offload = fake_set_offload};
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
			 0);
	/* SO_SNDBUFFORCE (CAP_NET_ADMIN) goes beyond net.core.wmem_max. */
	if (sndbuf > 0 && setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
		assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)),
				 0);
	be.fd = sv[0];
	f->peer = sv[1];
	if (rx)
		cfg.rx_rate_limiter = *rx;
	if (tx)
		cfg.tx_rate_limiter = *tx;
	assert_int_equal(virtio_net_create_on(&cfg, &be, &f->d.dev), 0);
}

/* What the transport does at DRIVER_OK: negotiated features, queues, loop, callbacks. */
static void start(struct fx *f, uint64_t features)
{
	struct virtio_device *dev = f->d.dev;

	assert_int_equal(features & ~(dev->ops->features(dev) | F_VERSION_1 | F_EVENT_IDX), 0);
	vdrv_attach(&f->d, dev);
	vdrv_start(&f->d, features);
}

static void stats(struct fx *f, struct virtio_net_stats *s)
{
	virtio_net_get_stats(f->d.dev, s);
}

/* A test frame: header (flags given), Ethernet to the device's MAC, ETHERTYPE_TEST, a pattern
 * seeded by `seed`. Returns the total length (header + frame). */
static size_t make_packet(uint8_t *buf, size_t frame_len, uint8_t flags, unsigned seed)
{
	static const uint8_t dst[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
	static const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x01};

	memset(buf, 0, HDR_LEN);
	buf[0] = flags;
	memcpy(buf + HDR_LEN, dst, 6);
	memcpy(buf + HDR_LEN + 6, src, 6);
	buf[HDR_LEN + 12] = ETHERTYPE_TEST >> 8;
	buf[HDR_LEN + 13] = ETHERTYPE_TEST & 0xff;
	for (size_t i = 14; i < frame_len; i++)
		buf[HDR_LEN + i] = (uint8_t)(seed * 31 + i * 7);
	return HDR_LEN + frame_len;
}

static void peer_send(struct fx *f, const void *buf, size_t len)
{
	assert_int_equal(send(f->peer, buf, len, 0), (ssize_t)len);
}

/* ---- TX ---- */

static void test_tx_reaches_backend(void **state)
{
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + 100], got[256];
	uint64_t g = vdrv_alloc(&f->d, sizeof(pkt));
	struct vdrv_seg segs[2] = {{g, HDR_LEN, false}, {g + HDR_LEN, 100, false}};
	struct virtio_net_stats s;
	struct virtq_used_elem u;
	uint16_t head;

	create_on_socketpair(f, 0);
	start(f, F_BASE | F_EVENT_IDX);
	make_packet(pkt, 100, 0, 1);
	memcpy(vdrv_ptr(&f->d, g, sizeof(pkt)), pkt, sizeof(pkt));
	head = vdrv_add_chain(&f->d, TXQ, segs, 2);
	assert_true(vdrv_kick(&f->d, TXQ));
	assert_true(vdrv_wait_used(&f->d, TXQ, 1));
	u = vdrv_take_used(&f->d, TXQ);
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, 0);
	assert_int_equal(recv(f->peer, got, sizeof(got), 0), sizeof(pkt));
	assert_memory_equal(got, pkt, sizeof(pkt));
	assert_true(__atomic_load_n(&f->d.signals[TXQ], __ATOMIC_RELAXED) >= 1);
	stats(f, &s);
	assert_int_equal(s.tx_packets, 1);
	assert_int_equal(s.tx_bytes, 100);
	assert_int_equal(f->d.fails, 0);
}

/* The backend is full: chains wait, in order, for it to drain, none is lost and the worker
 * sleeps meanwhile. */
static void test_tx_backend_full(void **state)
{
	enum { N = 64, FRAME = 1000 };
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + FRAME], got[2048];
	uint64_t gpas[N];
	unsigned received = 0;
	struct virtio_net_stats s;

	create_on_socketpair(f, 4096);
	start(f, F_BASE | F_EVENT_IDX);
	for (unsigned i = 0; i < N; i++) {
		struct vdrv_seg sg;

		gpas[i] = vdrv_alloc(&f->d, sizeof(pkt));
		make_packet(pkt, FRAME, 0, i);
		memcpy(vdrv_ptr(&f->d, gpas[i], sizeof(pkt)), pkt, sizeof(pkt));
		sg = (struct vdrv_seg){gpas[i], sizeof(pkt), false};
		vdrv_add_chain(&f->d, TXQ, &sg, 1);
	}
	vdrv_kick(&f->d, TXQ);
	usleep(100 * 1000);
	assert_true(vdrv_used_idx(&f->d, TXQ) < N); /* the backend took only some */
	assert_idle();

	for (int tries = 0; received < N && tries < 2000;) {
		ssize_t n = recv(f->peer, got, sizeof(got), 0);

		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			usleep(1000);
			tries++;
			continue;
		}
		make_packet(pkt, FRAME, 0, received);
		assert_int_equal(n, sizeof(pkt));
		assert_memory_equal(got, pkt, sizeof(pkt));
		received++;
	}
	assert_int_equal(received, N);
	assert_true(vdrv_wait_used(&f->d, TXQ, N));
	stats(f, &s);
	assert_int_equal(s.tx_packets, N);
	assert_int_equal(s.tx_errors + s.tx_dropped, 0);
}

/* More chains than the device takes per wakeup, one kick, and room for all of them in the
 * backend: the device comes back for the rest by itself. */
static void test_tx_many_in_one_kick(void **state)
{
	enum { N = 200, FRAME = 60 };
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + FRAME], got[256];
	unsigned received = 0;

	if (!tap_allowed)
		skip(); /* needs root in a network namespace for the room below */
	create_on_socketpair(f, 4 << 20);
	start(f, F_BASE | F_EVENT_IDX);
	for (unsigned i = 0; i < N; i++) {
		struct vdrv_seg sg = {vdrv_alloc(&f->d, sizeof(pkt)), sizeof(pkt), false};

		make_packet(pkt, FRAME, 0, i);
		memcpy(vdrv_ptr(&f->d, sg.gpa, sizeof(pkt)), pkt, sizeof(pkt));
		vdrv_add_chain(&f->d, TXQ, &sg, 1);
	}
	assert_true(vdrv_kick(&f->d, TXQ));
	for (int tries = 0; received < N && tries < 2000;) {
		ssize_t n = recv(f->peer, got, sizeof(got), 0);

		if (n < 0) {
			usleep(1000);
			tries++;
			continue;
		}
		make_packet(pkt, FRAME, 0, received);
		assert_int_equal(n, sizeof(pkt));
		assert_memory_equal(got, pkt, sizeof(pkt));
		received++;
	}
	assert_int_equal(received, N);
	assert_true(vdrv_wait_used(&f->d, TXQ, N));
}

static void tx_malformed(void **state, const struct vdrv_seg *segs, int n)
{
	struct fx *f = *state;

	create_on_socketpair(f, 0);
	start(f, F_BASE);
	vdrv_add_chain(&f->d, TXQ, segs, n);
	vdrv_kick(&f->d, TXQ);
	for (int i = 0; i < 2000 && !__atomic_load_n(&f->d.fails, __ATOMIC_RELAXED); i++)
		usleep(1000);
	assert_int_equal(f->d.fails, 1);
	assert_true(f->d.dev->failed);
	assert_int_equal(vdrv_used_idx(&f->d, TXQ), 0);
}

static void test_tx_writable_buffer_fails(void **state)
{
	struct vdrv_seg segs[2] = {{BUF_GPA, 64, false}, {BUF_GPA + 64, 64, true}};

	tx_malformed(state, segs, 2);
}

static void test_tx_short_header_fails(void **state)
{
	struct vdrv_seg segs[1] = {{BUF_GPA, HDR_LEN - 4, false}};

	tx_malformed(state, segs, 1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* TX ops 2 per 100 ms: six packets in one kick leave in about 200 ms (two from the full bucket,
 * then one every 50 ms), in order, the worker asleep on its timer meanwhile; with the limit
 * lifted (PATCH) six more go at once. */
static void test_tx_rate_limited(void **state)
{
	struct fx *f = *state;
	struct rate_limiter_config tx = {.ops = {.size = 2, .refill_time_ms = 100}};
	struct rate_limiter_config none = {0};
	uint8_t pkt[HDR_LEN + 100], got[256];
	uint64_t t0, elapsed;
	long ticks;

	create_limited(f, 0, NULL, &tx);
	start(f, F_BASE | F_EVENT_IDX);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 6; i++) {
			uint64_t g = vdrv_alloc(&f->d, sizeof(pkt));
			struct vdrv_seg seg = {g, sizeof(pkt), false};

			make_packet(pkt, 100, 0, (unsigned)i);
			memcpy(vdrv_ptr(&f->d, g, sizeof(pkt)), pkt, sizeof(pkt));
			vdrv_add_chain(&f->d, TXQ, &seg, 1);
		}
		ticks = loop_cpu_ticks();
		t0 = now_ms();
		vdrv_kick(&f->d, TXQ);
		assert_true(vdrv_wait_used(&f->d, TXQ, 6));
		elapsed = now_ms() - t0;
		for (int i = 0; i < 6; i++) {
			vdrv_take_used(&f->d, TXQ);
			make_packet(pkt, 100, 0, (unsigned)i);
			assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), sizeof(pkt));
			assert_memory_equal(got, pkt, sizeof(pkt));
		}
		if (round == 0) {
			assert_true(elapsed >= 190);
			assert_true(elapsed < 3000);
			assert_true(loop_cpu_ticks() - ticks <= 5);
			assert_int_equal(virtio_net_set_rate_limiters(f->d.dev, NULL, 0, &none, 3),
					 0);
		} else {
			assert_true(elapsed < 150);
		}
	}
	assert_int_equal(f->d.fails, 0);
}

/* RX bandwidth 1000 bytes per 100 ms: eight 500-byte frames reach the guest over about 250 ms
 * (the packet is charged once delivered, so the bucket goes into debt and the next waits), the
 * rest waiting in the backend, none dropped, the worker asleep; lifting the limit lets the next
 * eight in at once. */
static void test_rx_rate_limited(void **state)
{
	struct fx *f = *state;
	struct rate_limiter_config rx = {.bandwidth = {.size = 1000, .refill_time_ms = 100}};
	struct rate_limiter_config none = {0};
	uint8_t pkt[HDR_LEN + 500];
	struct virtio_net_stats s;
	uint64_t t0, elapsed;
	long ticks;

	create_limited(f, 0, &rx, NULL);
	start(f, F_BASE | F_EVENT_IDX);
	for (int i = 0; i < 16; i++)
		add_rx_buf(f, 2048, NULL);
	vdrv_kick(&f->d, RXQ);
	ticks = loop_cpu_ticks();
	t0 = now_ms();
	for (int i = 0; i < 8; i++)
		peer_send(f, pkt, make_packet(pkt, 500, 0, (unsigned)i));
	assert_true(vdrv_wait_used(&f->d, RXQ, 3));
	usleep(20 * 1000);
	assert_true(vdrv_used_idx(&f->d, RXQ) < 8);
	assert_true(vdrv_wait_used(&f->d, RXQ, 8));
	elapsed = now_ms() - t0;
	assert_true(elapsed >= 240);
	assert_true(elapsed < 3000);
	assert_true(loop_cpu_ticks() - ticks <= 5);
	stats(f, &s);
	assert_int_equal(s.rx_packets, 8);
	assert_int_equal(s.rx_dropped, 0);

	assert_int_equal(virtio_net_set_rate_limiters(f->d.dev, &none, 1, NULL, 0), 0);
	for (int i = 0; i < 8; i++)
		vdrv_take_used(&f->d, RXQ);
	t0 = now_ms();
	for (int i = 0; i < 8; i++)
		peer_send(f, pkt, make_packet(pkt, 500, 0, (unsigned)i));
	assert_true(vdrv_wait_used(&f->d, RXQ, 8));
	assert_true(now_ms() - t0 < 150);
	assert_int_equal(f->d.fails, 0);
}

/* ---- RX ---- */

static uint16_t hdr_num_buffers(struct fx *f, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, vdrv_ptr(&f->d, gpa + 10, 2), 2);
	return v;
}

static void test_rx_one_buffer(void **state)
{
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + 60];
	struct virtio_net_stats s;
	struct virtq_used_elem u;
	uint64_t g;
	uint16_t head;

	create_on_socketpair(f, 0);
	start(f, F_BASE | F_EVENT_IDX);
	head = add_rx_buf(f, 2048, &g);
	add_rx_buf(f, 2048, NULL);
	vdrv_kick(&f->d, RXQ);
	/* DATA_VALID from the backend must not reach a driver without GUEST_CSUM. */
	peer_send(f, pkt, make_packet(pkt, 60, 2, 7));
	assert_true(vdrv_wait_used(&f->d, RXQ, 1));
	u = vdrv_take_used(&f->d, RXQ);
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, sizeof(pkt));
	assert_int_equal(hdr_num_buffers(f, g), 1);
	assert_int_equal(*(uint8_t *)vdrv_ptr(&f->d, g, 1), 0);
	assert_memory_equal(vdrv_ptr(&f->d, g + HDR_LEN, 60), pkt + HDR_LEN, 60);
	assert_true(__atomic_load_n(&f->d.signals[RXQ], __ATOMIC_RELAXED) >= 1);
	stats(f, &s);
	assert_int_equal(s.rx_packets, 1);
	assert_int_equal(s.rx_bytes, 60);
}

/* Held (a snapshot, a migration's handoff: virtio_core_hold holds the worker's loop), a packet
 * on the tap stays there: the RX buffer is untouched and no used entry appears; at the release
 * it is delivered. */
static void test_rx_waits_while_held(void **state)
{
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + 60], before[HDR_LEN + 60];
	struct virtq_used_elem u;
	uint64_t g;
	uint16_t head;

	create_on_socketpair(f, 0);
	start(f, F_BASE | F_EVENT_IDX);
	head = add_rx_buf(f, 2048, &g);
	memset(vdrv_ptr(&f->d, g, sizeof(before)), 0xa5, sizeof(before));
	memcpy(before, vdrv_ptr(&f->d, g, sizeof(before)), sizeof(before));
	vdrv_kick(&f->d, RXQ);
	assert_int_equal(event_loop_hold(f->d.loop, true), 0);
	peer_send(f, pkt, make_packet(pkt, 60, 0, 9));
	usleep(200000);
	assert_int_equal(vdrv_used_idx(&f->d, RXQ), f->d.ring[RXQ].used_seen);
	assert_memory_equal(vdrv_ptr(&f->d, g, sizeof(before)), before, sizeof(before));
	assert_int_equal(event_loop_hold(f->d.loop, false), 0);
	assert_true(vdrv_wait_used(&f->d, RXQ, 1));
	u = vdrv_take_used(&f->d, RXQ);
	assert_int_equal(u.id, head);
	assert_memory_equal(vdrv_ptr(&f->d, g + HDR_LEN, 60), pkt + HDR_LEN, 60);
}

/* A packet larger than one buffer spans several, num_buffers in the first header. */
static void test_rx_merged_buffers(void **state)
{
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + 600], got[HDR_LEN + 600];
	uint64_t g[4];
	uint16_t heads[4];
	size_t off = 0;

	create_on_socketpair(f, 0);
	start(f, F_BASE | F_EVENT_IDX | F_GUEST_CSUM | F_CSUM);
	for (int i = 0; i < 4; i++)
		heads[i] = add_rx_buf(f, 256, &g[i]);
	vdrv_kick(&f->d, RXQ);
	peer_send(f, pkt, make_packet(pkt, 600, 2, 3));
	assert_true(vdrv_wait_used(&f->d, RXQ, 3));
	for (int i = 0; i < 3; i++) {
		struct virtq_used_elem u = vdrv_take_used(&f->d, RXQ);

		assert_int_equal(u.id, heads[i]);
		assert_int_equal(u.len, i < 2 ? 256 : sizeof(pkt) - 512);
		memcpy(got + off, vdrv_ptr(&f->d, g[i], u.len), u.len);
		off += u.len;
	}
	assert_int_equal(off, sizeof(pkt));
	assert_int_equal(hdr_num_buffers(f, g[0]), 3);
	got[10] = got[11] = 0;			    /* num_buffers, written by the device */
	assert_memory_equal(got, pkt, sizeof(pkt)); /* DATA_VALID kept: GUEST_CSUM negotiated */
}

/* No RX buffers: packets wait in the backend (the worker sleeps), then each buffer the driver
 * adds takes the next one, in order, through the driver's kicks alone. */
static void rx_waits_for_buffers(void **state, uint64_t features)
{
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + 100];

	create_on_socketpair(f, 0);
	start(f, features);
	for (unsigned i = 0; i < 3; i++)
		peer_send(f, pkt, make_packet(pkt, 100, 0, i));
	assert_idle();
	assert_int_equal(vdrv_used_idx(&f->d, RXQ), 0);

	for (unsigned i = 0; i < 3; i++) {
		struct virtq_used_elem u;
		uint64_t g;

		add_rx_buf(f, 1024, &g);
		assert_true(vdrv_kick(&f->d, RXQ)); /* the device asked for it */
		assert_true(vdrv_wait_used(&f->d, RXQ, 1));
		u = vdrv_take_used(&f->d, RXQ);
		assert_int_equal(u.len, sizeof(pkt));
		make_packet(pkt, 100, 0, i);
		assert_memory_equal(vdrv_ptr(&f->d, g + HDR_LEN, 100), pkt + HDR_LEN, 100);
		usleep(20 * 1000); /* let the device run dry again */
	}
	assert_idle();

	/* Buffers added while the backend is empty: the device reads the backend again. */
	add_rx_buf(f, 1024, NULL);
	assert_true(vdrv_kick(&f->d, RXQ));
	usleep(20 * 1000);
	peer_send(f, pkt, make_packet(pkt, 100, 0, 3));
	assert_true(vdrv_wait_used(&f->d, RXQ, 1));
	assert_int_equal(vdrv_take_used(&f->d, RXQ).len, sizeof(pkt));
	assert_int_equal(f->d.fails, 0);
}

static void test_rx_waits_for_buffers(void **state)
{
	rx_waits_for_buffers(state, F_BASE);
}

static void test_rx_waits_for_buffers_event_idx(void **state)
{
	rx_waits_for_buffers(state, F_BASE | F_EVENT_IDX);
}

/* The ring runs dry in the middle of a packet: the packet waits, whole, for more buffers. */
static void test_rx_pending_mid_packet(void **state)
{
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + 600], next[HDR_LEN + 60];
	uint64_t g[3], gn;
	struct virtq_used_elem u;

	create_on_socketpair(f, 0);
	start(f, F_BASE | F_EVENT_IDX);
	add_rx_buf(f, 256, &g[0]);
	vdrv_kick(&f->d, RXQ);
	peer_send(f, pkt, make_packet(pkt, 600, 0, 5));
	peer_send(f, next, make_packet(next, 60, 0, 6));
	assert_idle();
	assert_int_equal(vdrv_used_idx(&f->d, RXQ), 0);

	add_rx_buf(f, 256, &g[1]);
	add_rx_buf(f, 256, &g[2]);
	add_rx_buf(f, 256, &gn);
	assert_true(vdrv_kick(&f->d, RXQ));
	assert_true(vdrv_wait_used(&f->d, RXQ, 4));
	for (int i = 0; i < 3; i++) {
		u = vdrv_take_used(&f->d, RXQ);
		assert_int_equal(u.len, i < 2 ? 256 : sizeof(pkt) - 512);
		if (i)
			assert_memory_equal(vdrv_ptr(&f->d, g[i], u.len), pkt + 256 * i, u.len);
	}
	assert_int_equal(hdr_num_buffers(f, g[0]), 3);
	assert_memory_equal(vdrv_ptr(&f->d, g[0] + HDR_LEN, 256 - HDR_LEN), pkt + HDR_LEN,
			    256 - HDR_LEN);
	u = vdrv_take_used(&f->d, RXQ);
	assert_int_equal(u.len, sizeof(next));
	assert_int_equal(hdr_num_buffers(f, gn), 1);
	assert_memory_equal(vdrv_ptr(&f->d, gn + HDR_LEN, 60), next + HDR_LEN, 60);
}

/* Without MRG_RXBUF a packet too big for the buffer is dropped, and the buffer reused. */
static void test_rx_without_mrg_drops_oversized(void **state)
{
	struct fx *f = *state;
	uint8_t big[HDR_LEN + 600], small[HDR_LEN + 60];
	struct virtio_net_stats s;
	struct virtq_used_elem u;
	uint64_t g;

	create_on_socketpair(f, 0);
	start(f, F_VERSION_1 | F_MAC);
	add_rx_buf(f, 256, &g);
	vdrv_kick(&f->d, RXQ);
	peer_send(f, big, make_packet(big, 600, 0, 1));
	peer_send(f, small, make_packet(small, 60, 0, 2));
	assert_true(vdrv_wait_used(&f->d, RXQ, 1));
	u = vdrv_take_used(&f->d, RXQ);
	assert_int_equal(u.len, sizeof(small));
	assert_int_equal(hdr_num_buffers(f, g), 1);
	assert_memory_equal(vdrv_ptr(&f->d, g + HDR_LEN, 60), small + HDR_LEN, 60);
	stats(f, &s);
	assert_int_equal(s.rx_dropped, 1);
	assert_int_equal(s.rx_packets, 1);
}

static void test_rx_readable_buffer_fails(void **state)
{
	struct fx *f = *state;
	struct vdrv_seg segs[1] = {{BUF_GPA, 2048, false}};

	create_on_socketpair(f, 0);
	vdrv_add_chain(&f->d, RXQ, segs, 1);
	start(f, F_BASE);
	assert_int_equal(f->d.fails, 1);
	assert_true(f->d.dev->failed);
}

/* ---- features and config ---- */

static void test_offloads_follow_backend(void **state)
{
	struct fx *f = *state;
	uint64_t feat;

	f->offload_accept = TUN_F_CSUM; /* a backend that knows no TSO */
	create_on_socketpair(f, 0);
	feat = f->d.dev->ops->features(f->d.dev);
	assert_true(feat & F_CSUM && feat & F_GUEST_CSUM);
	assert_false(feat & (F_HOST_TSO4 | F_HOST_TSO6 | F_GUEST_TSO4 | F_GUEST_TSO6));
	assert_true(feat & F_MAC && feat & F_STATUS && feat & F_MRG_RXBUF);
	f->d.dev->ops->destroy(f->d.dev);
	close(f->peer);

	f->offload_accept = 0;
	create_on_socketpair(f, 0);
	feat = f->d.dev->ops->features(f->d.dev);
	assert_false(feat & (F_CSUM | F_GUEST_CSUM | F_HOST_TSO4 | F_GUEST_TSO4));
	f->d.dev->ops->destroy(f->d.dev);
	close(f->peer);

	/* Everything offered; the tap gets what the guest negotiated, nothing more. */
	f->offload_accept = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
	create_on_socketpair(f, 0);
	feat = f->d.dev->ops->features(f->d.dev);
	assert_true(feat & F_HOST_TSO4 && feat & F_GUEST_TSO6 && feat & F_GUEST_ECN);
	assert_int_equal(f->offload_last, 0);
	start(f, F_BASE | F_CSUM | F_GUEST_CSUM | F_GUEST_TSO4);
	assert_int_equal(f->offload_last, TUN_F_CSUM | TUN_F_TSO4);
	vdrv_reset(&f->d);
	assert_int_equal(f->offload_last, 0);
}

static void test_config_space(void **state)
{
	struct fx *f = *state;
	struct net_config cfg = {.tap = "sp1"};
	struct virtio_net_backend be = {.fd = -1, .set_offload = fake_set_offload};
	uint8_t cs[10];
	uint16_t v;

	create_on_socketpair(f, 0);
	assert_int_equal(f->d.dev->ops->config_size, 10);
	f->d.dev->ops->config_read(f->d.dev, 0, cs, sizeof(cs));
	assert_memory_equal(cs, ((uint8_t[]){0x52, 0x54, 0, 0x12, 0x34, 0x56}), 6);
	memcpy(&v, cs + 6, 2);
	assert_int_equal(v, 1); /* VIRTIO_NET_S_LINK_UP */
	memcpy(&v, cs + 8, 2);
	assert_int_equal(v, 1); /* max_virtqueue_pairs */
	assert_int_equal(f->d.dev->ops->nr_queues, 3); /* RX, TX, control */
	assert_int_equal(f->d.dev->ops->device_id, VIRTIO_ID_NET);

	/* No MAC configured: a random locally administered unicast one. */
	be.fd = dup(f->peer);
	f->d.dev->ops->destroy(f->d.dev);
	assert_int_equal(virtio_net_create_on(&cfg, &be, &f->d.dev), 0);
	f->d.dev->ops->config_read(f->d.dev, 0, cs, 6);
	assert_int_equal(cs[0] & 0x03, 0x02);
}

/* ---- the control queue and the announcement ---- */

static uint16_t config_status(struct fx *f)
{
	uint16_t v;

	f->d.dev->ops->config_read(f->d.dev, 6, &v, 2);
	return v;
}

static void restored_on_worker(void *arg)
{
	struct virtio_device *dev = arg;

	dev->ops->restored(dev);
}

/* A device with the control queue laid out and `features` negotiated. */
static void start_with_ctrl(struct fx *f, uint64_t features)
{
	vdrv_ring_layout(&f->d, CTRLQ, 64, 0x40000, 0x44000, 0x48000);
	create_on_socketpair(f, 0);
	start(f, features);
}

/* One command: `out` bytes of it (the header first) and `in` bytes of room; returns the answer
 * byte the device wrote (asserting one used entry of length 1). */
static uint8_t ctrl_command(struct fx *f, const uint8_t *out, uint32_t out_len, uint32_t in)
{
	uint64_t o = vdrv_alloc(&f->d, out_len), a = vdrv_alloc(&f->d, in);
	struct vdrv_seg segs[2] = {{o, out_len, false}, {a, in, true}};
	struct virtq_used_elem u;
	uint8_t *ack = vdrv_ptr(&f->d, a, in);

	memcpy(vdrv_ptr(&f->d, o, out_len), out, out_len);
	*ack = 0xee;
	vdrv_add_chain(&f->d, CTRLQ, segs, 2);
	vdrv_kick(&f->d, CTRLQ);
	assert_true(vdrv_wait_used(&f->d, CTRLQ, 1));
	u = vdrv_take_used(&f->d, CTRLQ);
	assert_int_equal(u.len, 1);
	return *ack;
}

/* The device moved: S_ANNOUNCE and a configuration change; the ack clears it. Unknown classes,
 * a short header, an ack with data and a 64 KiB command are answered VIRTIO_NET_ERR and the
 * device goes on. Run with and without VIRTIO_F_EVENT_IDX: with it, the driver kicks only when
 * the device has moved avail_event past the command, so every command after the first checks
 * that the control queue asks for its next kick. */
static void ctrl_announce(void **state, uint64_t features)
{
	struct fx *f = *state;
	static uint8_t big[65536] = {3, 0};

	start_with_ctrl(f, features);
	assert_true(f->d.dev->ops->features(f->d.dev) & F_CTRL_VQ);
	assert_int_equal(config_status(f), 1);
	assert_int_equal(virtio_dev_on_worker(f->d.dev, restored_on_worker, f->d.dev), 0);
	assert_int_equal(__atomic_load_n(&f->d.config_signals, __ATOMIC_RELAXED), 1);
	assert_int_equal(config_status(f), 1 | 2); /* LINK_UP | ANNOUNCE */

	assert_int_equal(ctrl_command(f, (uint8_t[]){9, 9}, 2, 1), 1);	   /* unknown class */
	assert_int_equal(ctrl_command(f, (uint8_t[]){3, 7}, 2, 1), 1);	   /* unknown command */
	assert_int_equal(ctrl_command(f, (uint8_t[]){3}, 1, 1), 1);	   /* short header */
	assert_int_equal(ctrl_command(f, (uint8_t[]){3, 0, 1, 2}, 4, 1), 1); /* ack with data */
	assert_int_equal(ctrl_command(f, big, sizeof(big), 1), 1);
	assert_int_equal(config_status(f), 1 | 2); /* none of that was an ack */
	assert_int_equal(ctrl_command(f, (uint8_t[]){3, 0}, 2, 16), 0);
	assert_int_equal(config_status(f), 1);
	assert_int_equal(ctrl_command(f, (uint8_t[]){3, 0}, 2, 1), 0); /* again: harmless */
	assert_int_equal(f->d.fails, 0);
	assert_false(f->d.dev->failed);

	/* A reset forgets a pending announcement. */
	assert_int_equal(virtio_dev_on_worker(f->d.dev, restored_on_worker, f->d.dev), 0);
	assert_int_equal(config_status(f), 1 | 2);
	vdrv_reset(&f->d);
	assert_int_equal(config_status(f), 1);
}

static void test_ctrl_announce(void **state)
{
	ctrl_announce(state, F_BASE | F_CTRL_VQ | F_ANNOUNCE);
}

static void test_ctrl_announce_event_idx(void **state)
{
	ctrl_announce(state, F_BASE | F_CTRL_VQ | F_ANNOUNCE | F_EVENT_IDX);
}

/* A driver without GUEST_ANNOUNCE is never asked, and its ack is an unknown command. */
static void test_ctrl_no_announce_without_feature(void **state)
{
	struct fx *f = *state;

	start_with_ctrl(f, F_BASE | F_CTRL_VQ);
	assert_int_equal(virtio_dev_on_worker(f->d.dev, restored_on_worker, f->d.dev), 0);
	assert_int_equal(__atomic_load_n(&f->d.config_signals, __ATOMIC_RELAXED), 0);
	assert_int_equal(config_status(f), 1);
	assert_int_equal(ctrl_command(f, (uint8_t[]){3, 0}, 2, 1), 1);
	assert_int_equal(f->d.fails, 0);
}

static void ctrl_malformed(void **state, const struct vdrv_seg *segs, int n)
{
	struct fx *f = *state;

	start_with_ctrl(f, F_BASE | F_CTRL_VQ | F_ANNOUNCE);
	vdrv_add_chain(&f->d, CTRLQ, segs, n);
	vdrv_kick(&f->d, CTRLQ);
	for (int i = 0; i < 2000 && !__atomic_load_n(&f->d.fails, __ATOMIC_RELAXED); i++)
		usleep(1000);
	assert_int_equal(f->d.fails, 1);
	assert_true(f->d.dev->failed);
	assert_int_equal(vdrv_used_idx(&f->d, CTRLQ), 0);
}

/* No byte to answer in: the device is failed (there is no way to say no). */
static void test_ctrl_no_answer_room_fails(void **state)
{
	struct vdrv_seg segs[1] = {{BUF_GPA, 2, false}};

	ctrl_malformed(state, segs, 1);
}

/* A buffer past the end of guest RAM: the ring's rules, the device is failed. */
static void test_ctrl_buffer_outside_ram_fails(void **state)
{
	struct vdrv_seg segs[2] = {{RAM_SIZE - 1, 2, false}, {BUF_GPA, 1, true}};

	ctrl_malformed(state, segs, 2);
}

/* A driver that negotiated the control queue must set it up. */
static void test_ctrl_queue_required(void **state)
{
	struct fx *f = *state;
	int ret;

	create_on_socketpair(f, 0);
	vdrv_attach(&f->d, f->d.dev);
	f->d.dev->features = F_BASE | F_CTRL_VQ;
	f->d.queues[RXQ].ready = f->d.queues[TXQ].ready = true;
	ret = f->d.dev->ops->activate(f->d.dev); /* refuses before it touches a ring */
	assert_int_equal(ret, -EINVAL);
}

/* ---- multiqueue (queues=N, VIRTIO_NET_F_MQ) ---- */

/* Pair p's queues; VIRTIO_NET_CTRL_MQ is class 4, VQ_PAIRS_SET its command 0. */
#define MQ_RXQ(p) (2 * (p))
#define MQ_TXQ(p) (2 * (p) + 1)

static int fake_set_queue(int fd, bool attach)
{
	for (unsigned i = 0; i < current->nr_pairs; i++) {
		if (current->mq_fd[i] == fd) {
			current->attached[i] = attach;
			return 0;
		}
	}
	fail_msg("TUNSETQUEUE on fd %d, not one of the pairs'", fd);
	return -EBADF;
}

/* A device with `pairs` queue pairs, each on a socketpair of its own. */
static void create_mq(struct fx *f, unsigned pairs)
{
	struct net_config cfg = {.tap = "mq0",
				 .has_mac = true,
				 .mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56},
				 .num_queues = pairs};
	struct virtio_net_backend be = {.set_offload = fake_set_offload,
					.set_queue = fake_set_queue};

	f->nr_pairs = pairs;
	for (unsigned i = 0; i < pairs; i++) {
		int sv[2];

		assert_int_equal(
		    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		f->mq_fd[i] = sv[0];
		f->attached[i] = true;
		if (i == 0) {
			be.fd = sv[0];
			f->peer = sv[1];
		} else {
			be.queue_fds[i - 1] = sv[0];
			f->mq_peer[i] = sv[1];
		}
	}
	assert_int_equal(virtio_net_create_on(&cfg, &be, &f->d.dev), 0);
}

/* Every queue of `pairs` pairs laid out, the control queue where `features` puts it (2N with
 * MQ, else 2), then DRIVER_OK. */
static void start_mq(struct fx *f, unsigned pairs, uint64_t features)
{
	for (unsigned q = 2; q < 2 * pairs; q++) {
		uint64_t desc_gpa = 0x50000 + (q - 2) * 0x10000;

		vdrv_ring_layout(&f->d, q, QSIZE, desc_gpa, desc_gpa + 0x4000, desc_gpa + 0x8000);
	}
	vdrv_ring_layout(&f->d, features & F_MQ ? 2 * pairs : 2, 64, 0x40000, 0x44000, 0x48000);
	create_mq(f, pairs);
	start(f, features);
}

/* ctrl_command() on queue `q`. */
static uint8_t ctrl_command_on(struct fx *f, int q, const uint8_t *out, uint32_t out_len,
			       uint32_t in)
{
	uint64_t o = vdrv_alloc(&f->d, out_len), a = vdrv_alloc(&f->d, in);
	struct vdrv_seg segs[2] = {{o, out_len, false}, {a, in, true}};
	struct virtq_used_elem u;
	uint8_t *ack = vdrv_ptr(&f->d, a, in);

	memcpy(vdrv_ptr(&f->d, o, out_len), out, out_len);
	*ack = 0xee;
	vdrv_add_chain(&f->d, q, segs, 2);
	vdrv_kick(&f->d, q);
	assert_true(vdrv_wait_used(&f->d, q, 1));
	u = vdrv_take_used(&f->d, q);
	assert_int_equal(u.len, 1);
	return *ack;
}

/* VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET with a le16 `pairs`, on a device of `total` pairs. */
static uint8_t pairs_set(struct fx *f, unsigned total, uint16_t pairs)
{
	uint8_t cmd[4] = {4, 0, pairs & 0xff, pairs >> 8};

	return ctrl_command_on(f, 2 * total, cmd, sizeof(cmd), 1);
}

static uint16_t config_max_pairs(struct fx *f)
{
	uint16_t v;

	f->d.dev->ops->config_read(f->d.dev, 8, &v, 2); /* after mac[6] and status */
	return v;
}

/* Four pairs: MQ offered, max_virtqueue_pairs 4, 2N + 1 queues; the pairs beyond the first are
 * detached from the backend until the driver asks for them. One pair: no MQ, 3 queues, as
 * before multiqueue. */
static void test_mq_features_and_config(void **state)
{
	struct fx *f = *state;
	uint64_t feat;

	create_mq(f, 4);
	feat = f->d.dev->ops->features(f->d.dev);
	assert_true(feat & F_MQ);
	assert_true(feat & F_CTRL_VQ);
	assert_int_equal(f->d.dev->ops->nr_queues, 9);
	assert_int_equal(f->d.dev->ops->min_saved_queues, 0);
	assert_int_equal(config_max_pairs(f), 4);
	assert_true(f->attached[0]);
	for (int i = 1; i < 4; i++)
		assert_false(f->attached[i]);
	assert_true(virtio_net_is_multiqueue(f->d.dev));
}

static void test_mq_not_offered_with_one_pair(void **state)
{
	struct fx *f = *state;

	create_mq(f, 1);
	assert_false(f->d.dev->ops->features(f->d.dev) & F_MQ);
	assert_int_equal(f->d.dev->ops->nr_queues, 3);
	assert_int_equal(f->d.dev->ops->min_saved_queues, 2);
	assert_int_equal(config_max_pairs(f), 1);
	assert_false(virtio_net_is_multiqueue(f->d.dev));
}

/* VQ_PAIRS_SET takes 1..N (attaching and detaching the backend's queues) and answers
 * VIRTIO_NET_ERR to 0, N + 1, 0xffff, a short or long command and an unknown MQ command,
 * without failing the device. */
static void test_mq_pairs_set(void **state)
{
	struct fx *f = *state;

	start_mq(f, 2, F_BASE | F_CTRL_VQ | F_MQ | F_EVENT_IDX);
	assert_false(f->attached[1]);
	assert_int_equal(pairs_set(f, 2, 2), 0);
	assert_true(f->attached[1]);
	assert_int_equal(pairs_set(f, 2, 0), 1);
	assert_int_equal(pairs_set(f, 2, 3), 1);
	assert_int_equal(pairs_set(f, 2, 0xffff), 1);
	assert_true(f->attached[1]); /* the refusals changed nothing */
	assert_int_equal(ctrl_command_on(f, 4, (uint8_t[]){4, 0, 2}, 3, 1), 1);	     /* short */
	assert_int_equal(ctrl_command_on(f, 4, (uint8_t[]){4, 0, 1, 0, 0}, 5, 1), 1); /* long */
	assert_int_equal(ctrl_command_on(f, 4, (uint8_t[]){4}, 1, 1), 1); /* header cut */
	assert_int_equal(ctrl_command_on(f, 4, (uint8_t[]){4, 1, 1, 0}, 4, 1), 1); /* RSS */
	assert_true(f->attached[1]);
	assert_int_equal(pairs_set(f, 2, 1), 0);
	assert_false(f->attached[1]);
	assert_int_equal(f->d.fails, 0);
	assert_false(f->d.dev->failed);
	/* A reset goes back to one pair. */
	assert_int_equal(pairs_set(f, 2, 2), 0);
	vdrv_reset(&f->d);
	assert_false(f->attached[1]);
}

/* A driver that did not take MQ finds the control queue at 2, and VQ_PAIRS_SET is unknown to
 * it; the other pairs stay unused. (Several commands in a row with EVENT_IDX, here and above:
 * the control queue asks for each next kick.) */
static void test_mq_ctrl_at_2_without_mq(void **state)
{
	struct fx *f = *state;
	uint8_t cmd[4] = {4, 0, 2, 0};

	start_mq(f, 2, F_BASE | F_CTRL_VQ | F_EVENT_IDX);
	assert_int_equal(ctrl_command_on(f, 2, cmd, sizeof(cmd), 1), 1);
	assert_false(f->attached[1]);
	assert_int_equal(ctrl_command_on(f, 2, (uint8_t[]){3, 0}, 2, 1), 1); /* no ANNOUNCE */
	assert_int_equal(f->d.fails, 0);
}

/* Asking for a pair whose rings the driver never set up is refused, and nothing changes. */
static void test_mq_pairs_set_unready_pair(void **state)
{
	struct fx *f = *state;

	start_mq(f, 2, F_BASE | F_CTRL_VQ | F_MQ);
	f->d.queues[MQ_RXQ(1)].ready = f->d.queues[MQ_TXQ(1)].ready = false;
	assert_int_equal(pairs_set(f, 2, 2), 1);
	assert_false(f->attached[1]);
	assert_int_equal(f->d.fails, 0);
	assert_false(f->d.dev->failed);
}

/* With two pairs in use, a packet sent on TX queue 1 reaches pair 1's backend fd (and no
 * other), a packet from pair 1's fd lands in RX queue 1's buffer, each queue raises its own
 * signal, and the per-pair counters say so. With one pair in use again, a kick on TX queue 1 is
 * not served; asking for two pairs again sends what waited. */
static void test_mq_traffic_on_pair1(void **state)
{
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + 100], got[256];
	uint64_t g = vdrv_alloc(&f->d, sizeof(pkt)), rxg;
	struct vdrv_seg seg = {g, sizeof(pkt), false};
	struct virtq_used_elem u;
	struct virtio_net_stats s;
	uint16_t head;

	start_mq(f, 2, F_BASE | F_CTRL_VQ | F_MQ | F_EVENT_IDX);
	assert_int_equal(pairs_set(f, 2, 2), 0);

	make_packet(pkt, 100, 0, 21);
	memcpy(vdrv_ptr(&f->d, g, sizeof(pkt)), pkt, sizeof(pkt));
	head = vdrv_add_chain(&f->d, MQ_TXQ(1), &seg, 1);
	assert_true(vdrv_kick(&f->d, MQ_TXQ(1)));
	assert_true(vdrv_wait_used(&f->d, MQ_TXQ(1), 1));
	assert_int_equal(vdrv_take_used(&f->d, MQ_TXQ(1)).id, head);
	assert_int_equal(recv(f->mq_peer[1], got, sizeof(got), 0), sizeof(pkt));
	assert_memory_equal(got, pkt, sizeof(pkt));
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), -1);
	assert_true(__atomic_load_n(&f->d.signals[MQ_TXQ(1)], __ATOMIC_RELAXED) >= 1);

	{
		struct vdrv_seg rs = {vdrv_alloc(&f->d, 2048), 2048, true};

		rxg = rs.gpa;
		head = vdrv_add_chain(&f->d, MQ_RXQ(1), &rs, 1);
	}
	vdrv_kick(&f->d, MQ_RXQ(1));
	make_packet(pkt, 100, 0, 22);
	assert_int_equal(send(f->mq_peer[1], pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	assert_true(vdrv_wait_used(&f->d, MQ_RXQ(1), 1));
	u = vdrv_take_used(&f->d, MQ_RXQ(1));
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, sizeof(pkt));
	assert_memory_equal((uint8_t *)vdrv_ptr(&f->d, rxg, sizeof(pkt)) + HDR_LEN, pkt + HDR_LEN,
			    100);
	assert_int_equal(vdrv_used_idx(&f->d, MQ_RXQ(0)), 0);
	assert_true(__atomic_load_n(&f->d.signals[MQ_RXQ(1)], __ATOMIC_RELAXED) >= 1);

	stats(f, &s);
	assert_int_equal(s.nr_pairs, 2);
	assert_int_equal(s.rx_packets, 1);
	assert_int_equal(s.tx_packets, 1);
	assert_int_equal(s.pairs[1].rx_packets, 1);
	assert_int_equal(s.pairs[1].rx_bytes, 100);
	assert_int_equal(s.pairs[1].tx_packets, 1);
	assert_int_equal(s.pairs[1].tx_bytes, 100);
	assert_int_equal(s.pairs[0].rx_packets + s.pairs[0].tx_packets, 0);

	/* Back to one pair: TX queue 1 is not served, even when kicked. */
	assert_int_equal(pairs_set(f, 2, 1), 0);
	make_packet(pkt, 100, 0, 23);
	g = vdrv_alloc(&f->d, sizeof(pkt));
	memcpy(vdrv_ptr(&f->d, g, sizeof(pkt)), pkt, sizeof(pkt));
	seg.gpa = g;
	vdrv_add_chain(&f->d, MQ_TXQ(1), &seg, 1);
	vdrv_notify(&f->d, MQ_TXQ(1));
	usleep(100 * 1000);
	assert_int_equal(vdrv_used_idx(&f->d, MQ_TXQ(1)), 1);
	assert_int_equal(recv(f->mq_peer[1], got, sizeof(got), MSG_DONTWAIT), -1);
	/* Two again: the pair starts with what waited on its ring. */
	assert_int_equal(pairs_set(f, 2, 2), 0);
	assert_true(vdrv_wait_used_idx(&f->d, MQ_TXQ(1), 2));
	assert_int_equal(recv(f->mq_peer[1], got, sizeof(got), 0), sizeof(pkt));
	assert_memory_equal(got, pkt, sizeof(pkt));
	assert_int_equal(f->d.fails, 0);
}

/* Pair 1 switched off while a packet waits there for more RX buffers: the packet is dropped and
 * the chain it held comes back used with length 0, not lost to the driver. */
static void test_mq_pairs_set_drops_pending(void **state)
{
	struct fx *f = *state;
	uint8_t pkt[HDR_LEN + 1000];
	struct vdrv_seg rs = {0, 256, true};
	struct virtq_used_elem u;
	struct virtio_net_stats s;
	uint16_t head;

	start_mq(f, 2, F_BASE | F_CTRL_VQ | F_MQ);
	assert_int_equal(pairs_set(f, 2, 2), 0);
	rs.gpa = vdrv_alloc(&f->d, rs.len);
	head = vdrv_add_chain(&f->d, MQ_RXQ(1), &rs, 1);
	vdrv_kick(&f->d, MQ_RXQ(1));
	make_packet(pkt, 1000, 0, 31);
	assert_int_equal(send(f->mq_peer[1], pkt, sizeof(pkt), 0), (ssize_t)sizeof(pkt));
	usleep(100 * 1000);
	assert_int_equal(vdrv_used_idx(&f->d, MQ_RXQ(1)), 0); /* waiting for more buffers */
	assert_int_equal(pairs_set(f, 2, 1), 0);
	assert_true(vdrv_wait_used(&f->d, MQ_RXQ(1), 1));
	u = vdrv_take_used(&f->d, MQ_RXQ(1));
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, 0);
	stats(f, &s);
	assert_int_equal(s.rx_dropped, 1);
	assert_int_equal(s.rx_packets, 0);
	assert_int_equal(f->d.fails, 0);
}

/* ---- two pairs under random traffic: the device writes only into buffers it holds ---- */

#define ST_SLOTS   200 /* RX buffers per pair, fewer than the ring's descriptors */
#define ST_SLOT	   512 /* small: most packets span several buffers (merged) */
#define ST_TX_SLOT (HDR_LEN + 2000)
#define ST_TX_MAX  32 /* TX chains in flight per pair */
#define ST_FIFO	   4096

/* A byte of slot `slot`'s canary, which stays there while the driver owns the slot. */
static uint8_t st_canary(unsigned pair, unsigned slot, unsigned i)
{
	return (uint8_t)(0xa5 ^ (pair * 131 + slot * 7 + i));
}

struct st_pair {
	uint64_t rx_gpa[ST_SLOTS];
	bool posted[ST_SLOTS];
	int slot_of_head[QSIZE]; /* -1: not in flight */
	unsigned nr_posted;
	/* Packets sent to the device on this pair's backend, not yet seen by the driver. */
	uint16_t fifo_len[ST_FIFO];
	unsigned fifo_seed[ST_FIFO];
	unsigned fifo_head, fifo_tail, next_seed;
	/* The packet being put together from merged buffers. */
	uint8_t pkt[HDR_LEN + 4096];
	size_t pkt_len;
	unsigned pkt_bufs_left;
	bool in_drop; /* inside a run of length-0 chains (a packet dropped by VQ_PAIRS_SET) */
	unsigned received, dropped;
	/* TX */
	uint64_t tx_gpa[ST_TX_MAX];
	int tx_head_slot[QSIZE];
	bool tx_busy[ST_TX_MAX];
	unsigned tx_in_flight, tx_sent, tx_seen;
	uint16_t tx_len[ST_FIFO];
	unsigned tx_seed[ST_FIFO];
	unsigned tx_fifo_head, tx_fifo_tail;
};

static int st_peer(struct fx *f, unsigned pair)
{
	return pair ? f->mq_peer[pair] : f->peer;
}

static void st_check_canaries(struct fx *f, struct st_pair *sp, unsigned pair)
{
	for (unsigned s = 0; s < ST_SLOTS; s++) {
		const uint8_t *b;

		if (sp->posted[s])
			continue;
		b = vdrv_ptr(&f->d, sp->rx_gpa[s], ST_SLOT);
		for (unsigned i = 0; i < ST_SLOT; i++)
			if (b[i] != st_canary(pair, s, i))
				fail_msg(
				    "pair %u: RX buffer %u (not given to the device) changed at "
				    "byte %u",
				    pair, s, i);
	}
}

static void st_refill(struct fx *f, struct st_pair *sp, unsigned pair, unsigned want)
{
	bool added = false;

	for (unsigned s = 0; s < ST_SLOTS && sp->nr_posted < want; s++) {
		struct vdrv_seg seg = {sp->rx_gpa[s], ST_SLOT, true};
		uint16_t head;

		if (sp->posted[s])
			continue;
		head = vdrv_add_chain(&f->d, MQ_RXQ(pair), &seg, 1);
		assert_int_equal(sp->slot_of_head[head], -1);
		sp->slot_of_head[head] = (int)s;
		sp->posted[s] = true;
		sp->nr_posted++;
		added = true;
	}
	if (added)
		vdrv_kick(&f->d, MQ_RXQ(pair));
}

static void st_send(struct fx *f, struct st_pair *sp, unsigned pair, unsigned n)
{
	uint8_t buf[HDR_LEN + 2000];

	for (unsigned i = 0; i < n; i++) {
		size_t frame = 60 + (size_t)(rand() % 1900);
		unsigned seed = sp->next_seed;
		size_t len = make_packet(buf, frame, 0, seed);

		if (send(st_peer(f, pair), buf, len, MSG_DONTWAIT) != (ssize_t)len) {
			assert_true(errno == EAGAIN || errno == ENOBUFS);
			return;
		}
		assert_true(sp->fifo_tail - sp->fifo_head < ST_FIFO);
		sp->fifo_len[sp->fifo_tail % ST_FIFO] = (uint16_t)len;
		sp->fifo_seed[sp->fifo_tail % ST_FIFO] = seed;
		sp->fifo_tail++;
		sp->next_seed++;
	}
}

/* The packet put together matches the oldest one sent on the pair. */
static void st_packet_done(struct st_pair *sp, unsigned pair)
{
	uint8_t want[HDR_LEN + 2000];
	size_t len;

	assert_true(sp->fifo_head != sp->fifo_tail);
	len = make_packet(want, sp->fifo_len[sp->fifo_head % ST_FIFO] - HDR_LEN, 0,
			  sp->fifo_seed[sp->fifo_head % ST_FIFO]);
	if (sp->pkt_len != len || memcmp(sp->pkt + HDR_LEN, want + HDR_LEN, len - HDR_LEN))
		fail_msg("pair %u: packet %u came back as %zu bytes, sent %zu", pair, sp->fifo_head,
			 sp->pkt_len, len);
	sp->fifo_head++;
	sp->received++;
	sp->pkt_len = 0;
}

/* Takes what the device used on the pair's RX queue, checks it, gives the slots back to the
 * driver (canary again). */
static void st_consume_rx(struct fx *f, struct st_pair *sp, unsigned pair)
{
	int q = MQ_RXQ(pair);

	while (vdrv_used_idx(&f->d, q) != f->d.ring[q].used_seen) {
		struct virtq_used_elem u = vdrv_take_used(&f->d, q);
		uint8_t *b;
		int s;

		assert_true(u.id < QSIZE);
		s = sp->slot_of_head[u.id];
		if (s < 0)
			fail_msg("pair %u: used chain %u was not in flight", pair, u.id);
		assert_true(sp->posted[s]);
		assert_true(u.len <= ST_SLOT);
		b = vdrv_ptr(&f->d, sp->rx_gpa[s], ST_SLOT);
		if (u.len == 0) {
			/* A chain handed back unused: the packet it held was dropped. */
			assert_int_equal(sp->pkt_bufs_left, 0);
			if (!sp->in_drop) {
				assert_true(sp->fifo_head != sp->fifo_tail);
				sp->fifo_head++;
				sp->dropped++;
				sp->in_drop = true;
			}
		} else if (sp->pkt_bufs_left == 0) {
			uint16_t nb;

			sp->in_drop = false;
			assert_true(u.len >= HDR_LEN);
			memcpy(&nb, b + 10, 2);
			assert_true(nb >= 1 && nb <= 8);
			memcpy(sp->pkt, b, u.len);
			sp->pkt_len = u.len;
			sp->pkt_bufs_left = nb - 1u;
			if (!sp->pkt_bufs_left)
				st_packet_done(sp, pair);
		} else {
			assert_true(sp->pkt_len + u.len <= sizeof(sp->pkt));
			memcpy(sp->pkt + sp->pkt_len, b, u.len);
			sp->pkt_len += u.len;
			if (!--sp->pkt_bufs_left)
				st_packet_done(sp, pair);
		}
		for (unsigned i = 0; i < ST_SLOT; i++)
			b[i] = st_canary(pair, (unsigned)s, i);
		sp->slot_of_head[u.id] = -1;
		sp->posted[s] = false;
		sp->nr_posted--;
	}
}

static void st_tx(struct fx *f, struct st_pair *sp, unsigned pair, unsigned n)
{
	int q = MQ_TXQ(pair);
	bool added = false;

	for (unsigned s = 0; s < ST_TX_MAX && n; s++) {
		struct vdrv_seg seg = {sp->tx_gpa[s], 0, false};
		size_t frame = 60 + (size_t)(rand() % 1900);
		unsigned seed = 100000 + sp->tx_sent;
		uint16_t head;

		if (sp->tx_busy[s])
			continue;
		seg.len =
		    (uint32_t)make_packet(vdrv_ptr(&f->d, seg.gpa, ST_TX_SLOT), frame, 0, seed);
		head = vdrv_add_chain(&f->d, q, &seg, 1);
		assert_int_equal(sp->tx_head_slot[head], -1);
		sp->tx_head_slot[head] = (int)s;
		sp->tx_busy[s] = true;
		sp->tx_in_flight++;
		sp->tx_len[sp->tx_fifo_tail % ST_FIFO] = (uint16_t)seg.len;
		sp->tx_seed[sp->tx_fifo_tail % ST_FIFO] = seed;
		sp->tx_fifo_tail++;
		sp->tx_sent++;
		added = true;
		n--;
	}
	if (added)
		vdrv_kick(&f->d, q);
}

static void st_consume_tx(struct fx *f, struct st_pair *sp, unsigned pair)
{
	int q = MQ_TXQ(pair);
	uint8_t got[HDR_LEN + 2100], want[HDR_LEN + 2000];
	ssize_t n;

	while (vdrv_used_idx(&f->d, q) != f->d.ring[q].used_seen) {
		struct virtq_used_elem u = vdrv_take_used(&f->d, q);
		int s;

		assert_true(u.id < QSIZE);
		s = sp->tx_head_slot[u.id];
		if (s < 0)
			fail_msg("pair %u: used TX chain %u was not in flight", pair, u.id);
		sp->tx_head_slot[u.id] = -1;
		sp->tx_busy[s] = false;
		sp->tx_in_flight--;
	}
	while ((n = recv(st_peer(f, pair), got, sizeof(got), MSG_DONTWAIT)) > 0) {
		size_t len;

		assert_true(sp->tx_fifo_head != sp->tx_fifo_tail);
		len = make_packet(want, sp->tx_len[sp->tx_fifo_head % ST_FIFO] - HDR_LEN, 0,
				  sp->tx_seed[sp->tx_fifo_head % ST_FIFO]);
		assert_int_equal(n, len);
		assert_memory_equal(got, want, len);
		sp->tx_fifo_head++;
		sp->tx_seen++;
	}
}

/* Gets pair 1 to hold a packet that waits for more buffers: its ring used up, then one buffer
 * for a packet that needs several. */
static void st_leave_pending(struct fx *f, struct st_pair *sp)
{
	for (int i = 0; i < 1000 && sp->nr_posted; i++) {
		st_send(f, sp, 1, 1);
		usleep(200);
		st_consume_rx(f, sp, 1);
	}
	st_refill(f, sp, 1, 1);
	st_send(f, sp, 1, 3);
	usleep(2000);
	st_consume_rx(f, sp, 1);
}

/* Two pairs in use, random RX traffic on both backends against a driver that refills at random,
 * TX on both TX queues, and the driver switching the second pair off and on now and then
 * (VQ_PAIRS_SET): every used RX chain was in flight on its own queue, every byte the device wrote
 * is in a buffer it held (the others keep their canary), each packet arrives whole, in order, on
 * its pair; TX chains come back once each and their packets reach their pair's backend. */
static void test_mq_random_traffic_owns_buffers(void **state)
{
	struct fx *f = *state;
	static struct st_pair sp[2];
	struct virtio_net_stats s;
	unsigned pairs_on = 2;

	memset(sp, 0, sizeof(sp));
	srand(12345);
	start_mq(f, 2, F_BASE | F_CTRL_VQ | F_MQ | F_EVENT_IDX);
	assert_int_equal(pairs_set(f, 2, 2), 0);
	for (unsigned p = 0; p < 2; p++) {
		for (unsigned i = 0; i < QSIZE; i++)
			sp[p].slot_of_head[i] = sp[p].tx_head_slot[i] = -1;
		for (unsigned slot = 0; slot < ST_SLOTS; slot++) {
			uint8_t *b;

			sp[p].rx_gpa[slot] = vdrv_alloc(&f->d, ST_SLOT);
			b = vdrv_ptr(&f->d, sp[p].rx_gpa[slot], ST_SLOT);
			for (unsigned i = 0; i < ST_SLOT; i++)
				b[i] = st_canary(p, slot, i);
		}
		for (unsigned slot = 0; slot < ST_TX_MAX; slot++)
			sp[p].tx_gpa[slot] = vdrv_alloc(&f->d, ST_TX_SLOT);
	}

	for (unsigned round = 0; round < 3000; round++) {
		for (unsigned p = 0; p < 2; p++) {
			if (rand() % 3 == 0)
				st_refill(f, &sp[p], p, (unsigned)(rand() % ST_SLOTS));
			if (rand() % 2 == 0)
				st_send(f, &sp[p], p, (unsigned)(rand() % 6));
			if (rand() % 2 == 0)
				st_tx(f, &sp[p], p, (unsigned)(rand() % 4));
			if (rand() % 4 == 0)
				usleep((useconds_t)(rand() % 200));
			st_consume_rx(f, &sp[p], p);
			st_consume_tx(f, &sp[p], p);
		}
		if (round % 50 == 0) {
			st_check_canaries(f, &sp[0], 0);
			st_check_canaries(f, &sp[1], 1);
		}
		if (rand() % 150 == 0) {
			if (pairs_on == 2 && rand() % 2)
				st_leave_pending(f, &sp[1]);
			pairs_on = pairs_on == 2 ? 1 : 2;
			assert_int_equal(pairs_set(f, 2, (uint16_t)pairs_on), 0);
		}
	}
	if (pairs_on != 2)
		assert_int_equal(pairs_set(f, 2, 2), 0);
	/* Everything sent arrives once the driver gives buffers. */
	for (int ms = 0; ms < VDRV_WAIT_MS; ms++) {
		bool done = true;

		for (unsigned p = 0; p < 2; p++) {
			st_refill(f, &sp[p], p, ST_SLOTS);
			st_consume_rx(f, &sp[p], p);
			st_consume_tx(f, &sp[p], p);
			done &= sp[p].fifo_head == sp[p].fifo_tail && !sp[p].tx_in_flight &&
				sp[p].tx_fifo_head == sp[p].tx_fifo_tail;
		}
		if (done)
			break;
		usleep(1000);
	}
	for (unsigned p = 0; p < 2; p++) {
		st_check_canaries(f, &sp[p], p);
		assert_int_equal(sp[p].fifo_head, sp[p].fifo_tail);
		assert_int_equal(sp[p].tx_fifo_head, sp[p].tx_fifo_tail);
		assert_int_equal(sp[p].tx_in_flight, 0);
		assert_true(sp[p].received > 100);
		assert_true(sp[p].tx_seen > 100);
	}
	stats(f, &s);
	assert_int_equal(s.rx_packets, sp[0].received + sp[1].received);
	assert_int_equal(s.rx_dropped, sp[0].dropped + sp[1].dropped);
	assert_int_equal(s.tx_packets, sp[0].tx_seen + sp[1].tx_seen);
	assert_int_equal(f->d.fails, 0);
}

/* ---- a real tap, in this process's own network namespace ---- */

static int if_up(const char *name)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), idx;

	assert_true(s >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
	idx = if_nametoindex(name);
	assert_true(idx > 0);
	return idx;
}

/* Waits for a frame of ETHERTYPE_TEST arriving on the tap from the device; returns its length. */
static ssize_t packet_recv_test_frame(struct fx *f, uint8_t *buf, size_t len)
{
	for (int i = 0; i < 2000; i++) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n =
		    recvfrom(f->peer, buf, len, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);

		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			usleep(1000);
			continue;
		}
		if (from.sll_pkttype != PACKET_OUTGOING && n >= 14 &&
		    buf[12] == ETHERTYPE_TEST >> 8 && buf[13] == (ETHERTYPE_TEST & 0xff))
			return n;
	}
	return -1;
}

static void test_tap_tx_and_rx(void **state)
{
	enum { FRAME = 1514 };
	struct fx *f = *state;
	struct net_config cfg = {
	    .tap = "sknet0", .has_mac = true, .mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56}};
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL)};
	uint8_t pkt[HDR_LEN + FRAME], got[HDR_LEN + FRAME];
	uint64_t g = vdrv_alloc(&f->d, HDR_LEN + 200), rx[4];
	struct vdrv_seg seg = {g, HDR_LEN + 200, false};
	uint64_t feat;
	size_t off = 0;
	unsigned seen = 0;

	if (!tap_allowed)
		skip();
	assert_int_equal(virtio_net_create(&cfg, &f->d.dev), 0);
	feat = f->d.dev->ops->features(f->d.dev);
	/* Linux taps have taken checksum and TSO offloads for many years. */
	assert_true(feat & F_CSUM && feat & F_HOST_TSO4 && feat & F_HOST_TSO6 &&
		    feat & F_GUEST_TSO4);
	f->ifindex = if_up("sknet0");
	f->peer = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	assert_true(f->peer >= 0);
	sll.sll_ifindex = f->ifindex;
	assert_int_equal(bind(f->peer, (struct sockaddr *)&sll, sizeof(sll)), 0);
	start(f, F_BASE | F_EVENT_IDX);

	/* TX: the frame arrives on the tap without the virtio-net header. */
	make_packet(pkt, 200, 0, 9);
	memcpy(vdrv_ptr(&f->d, g, HDR_LEN + 200), pkt, HDR_LEN + 200);
	vdrv_add_chain(&f->d, TXQ, &seg, 1);
	vdrv_kick(&f->d, TXQ);
	assert_int_equal(packet_recv_test_frame(f, got, sizeof(got)), 200);
	assert_memory_equal(got, pkt + HDR_LEN, 200);
	assert_true(vdrv_wait_used(&f->d, TXQ, 1));

	/* RX: a full-size frame sent into the tap lands in four 400-byte buffers. Other frames
	 * the stack may send (none expected with IPv6 off) are skipped. */
	for (int i = 0; i < 4; i++)
		add_rx_buf(f, 400, &rx[i]);
	vdrv_kick(&f->d, RXQ);
	make_packet(pkt, FRAME, 0, 11);
	assert_int_equal(
	    sendto(f->peer, pkt + HDR_LEN, FRAME, 0, (struct sockaddr *)&sll, sizeof(sll)), FRAME);
	assert_true(vdrv_wait_used(&f->d, RXQ, 4));
	for (int i = 0; i < 4; i++) {
		struct virtq_used_elem u = vdrv_take_used(&f->d, RXQ);

		assert_int_equal(u.id, i);
		memcpy(got + off, vdrv_ptr(&f->d, rx[i], u.len), u.len);
		off += u.len;
		seen++;
	}
	assert_int_equal(off, HDR_LEN + FRAME);
	assert_int_equal(hdr_num_buffers(f, rx[0]), 4);
	assert_memory_equal(got + HDR_LEN, pkt + HDR_LEN, FRAME);
	assert_int_equal(got[1], 0); /* gso_type: none */
}

static void test_tap_open_refuses_a_tun(void **state)
{
	struct net_config cfg = {.tap = "sktun0"};
	struct ifreq ifr = {.ifr_flags = IFF_TUN | IFF_NO_PI};
	struct fx *f = *state;
	int fd;

	if (!tap_allowed)
		skip();
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "sktun0");
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	assert_int_equal(ioctl(fd, TUNSETPERSIST, 1), 0);
	close(fd);
	assert_int_equal(virtio_net_create(&cfg, &f->d.dev), -EINVAL);
	assert_null(f->d.dev);
}

/* queues=2 on a real tap: skiff creates it multi_queue with two queues (MQ offered); a persistent
 * tap made without multi_queue cannot take them: -EINVAL (the log line names `ip tuntap add ...
 * multi_queue`). */
static void test_tap_multi_queue(void **state)
{
	struct net_config cfg = {.tap = "skmq0", .num_queues = 2};
	struct net_config single = {.tap = "sksq0", .num_queues = 2};
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	struct fx *f = *state;
	int fd;

	if (!tap_allowed)
		skip();
	assert_int_equal(virtio_net_create(&cfg, &f->d.dev), 0);
	assert_true(f->d.dev->ops->features(f->d.dev) & F_MQ);
	assert_int_equal(f->d.dev->ops->nr_queues, 5);

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "sksq0");
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	assert_int_equal(ioctl(fd, TUNSETPERSIST, 1), 0);
	close(fd);
	{
		struct virtio_device *other = NULL;

		assert_int_equal(virtio_net_create(&single, &other), -EINVAL);
		assert_null(other);
	}
}

/* Taps need CAP_NET_ADMIN; a network namespace of our own keeps them away from the host's. */
static void enter_net_namespace(void)
{
	int fd;

	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "# no network namespace (%s): tap tests skipped\n",
			strerror(errno));
		return;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "# /dev/net/tun: %s: tap tests skipped\n", strerror(errno));
		return;
	}
	close(fd);
	/* Room for a few hundred packets in a socketpair (the default, 10, is per namespace). */
	fd = open("/proc/sys/net/unix/max_dgram_qlen", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1024", 4) < 0)
			fprintf(stderr, "# max_dgram_qlen: %s\n", strerror(errno));
		close(fd);
	}
	/* No IPv6 router solicitations or DAD frames on the tap. */
	fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			fprintf(stderr, "# disable_ipv6: %s\n", strerror(errno));
		close(fd);
	}
	tap_allowed = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_tx_reaches_backend, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tx_rate_limited, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_rate_limited, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tx_backend_full, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tx_many_in_one_kick, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tx_writable_buffer_fails, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tx_short_header_fails, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_one_buffer, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_merged_buffers, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_waits_while_held, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_waits_for_buffers_event_idx, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_pending_mid_packet, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_without_mrg_drops_oversized, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_readable_buffer_fails, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_offloads_follow_backend, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_config_space, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_ctrl_announce, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_ctrl_announce_event_idx, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_ctrl_no_announce_without_feature, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_ctrl_no_answer_room_fails, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_ctrl_buffer_outside_ram_fails, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_ctrl_queue_required, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mq_features_and_config, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mq_not_offered_with_one_pair, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mq_pairs_set, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mq_ctrl_at_2_without_mq, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mq_pairs_set_unready_pair, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mq_traffic_on_pair1, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mq_pairs_set_drops_pending, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_mq_random_traffic_owns_buffers, fx_setup,
					    fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tap_tx_and_rx, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tap_open_refuses_a_tun, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tap_multi_queue, fx_setup, fx_teardown),
	};

	log_set_level(getenv("NET_TEST_DEBUG") ? LOG_DEBUG : LOG_WARN);
	enter_net_namespace();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
