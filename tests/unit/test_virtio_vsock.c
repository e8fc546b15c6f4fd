/* virtio-vsock driven without a transport (virtio_driver.h): the test is the guest's driver and
 * plays the host programs on the device's unix sockets. Host-initiated connections (CONNECT,
 * OK, relay both ways, RST when nobody listens), guest-initiated ones (to <uds>_PORT, RST when
 * nobody listens), credit both ways (the device honours the guest's, and resets a guest that
 * ignores its own), the connection cap, and hostile packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/virtio.h"
#include "virtio/vsock.h"
#include "virtio_driver.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MiB	  (1ULL << 20)
#define QSIZE	  256
#define RX_BUF	  (VIRTIO_VSOCK_HDR_SIZE + 4096)
#define GUEST_CID 3

struct fx {
	struct vdrv d;
	char dir[64];
	char uds[80];
	uint64_t rx_gpa[QSIZE]; /* by head */
	uint64_t tx_hdr, tx_payload;
};

static void fx_init(struct fx *f, uint32_t guest_cid)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 16 * MiB}};
	struct vdrv_config cfg = {.layout = layout,
				  .nr_regions = 1,
				  .buf_base = 1 * MiB,
				  .buf_end = 8 * MiB,
				  .buf_align = 64,
				  .buf_wrap = true,
				  .loop_name = "test-vsock"};
	struct vsock_config vc = {.enabled = true, .guest_cid = guest_cid};
	struct virtio_device *dev;
	uint8_t cid[8];

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/skiff-vsock-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->uds, sizeof(f->uds), "%s/v.sock", f->dir);
	snprintf(vc.uds_path, sizeof(vc.uds_path), "%s", f->uds);
	vdrv_init(&f->d, &cfg);
	assert_int_equal(virtio_vsock_create(&vc, &dev), 0);
	assert_int_equal(dev->ops->device_id, VIRTIO_ID_VSOCK);
	assert_int_equal(dev->ops->nr_queues, 3);
	assert_int_equal(dev->ops->config_size, 8);
	dev->ops->config_read(dev, 0, cid, 8);
	assert_int_equal(cid[0], guest_cid & 0xff);
	assert_int_equal(cid[4], 0);
	vdrv_attach(&f->d, dev);
	for (int q = 0; q < 3; q++)
		vdrv_ring_layout(&f->d, q, QSIZE, 0x10000 + q * 0x10000, 0x14000 + q * 0x10000,
				 0x18000 + q * 0x10000);
	f->tx_hdr = vdrv_alloc(&f->d, VIRTIO_VSOCK_HDR_SIZE);
	f->tx_payload = 8 * MiB; /* 1 MiB of payload space outside the allocator's way */
	vdrv_start(&f->d, 1ULL << VIRTIO_F_VERSION_1);
}

static void fx_fini(struct fx *f)
{
	char p[160];

	vdrv_fini(&f->d);
	/* Destroying the device removed its socket. */
	assert_int_not_equal(access(f->uds, F_OK), 0);
	for (int port = 6000; port < 6003; port++) {
		snprintf(p, sizeof(p), "%s_%d", f->uds, port);
		unlink(p);
	}
	rmdir(f->dir);
}

static void post_rx(struct fx *f, int n)
{
	for (int i = 0; i < n; i++) {
		struct vdrv_seg s = {
		    .gpa = vdrv_alloc(&f->d, RX_BUF), .len = RX_BUF, .write = true};
		uint16_t head = vdrv_add_chain(&f->d, VSOCK_QUEUE_RX, &s, 1);

		f->rx_gpa[head] = s.gpa;
	}
	vdrv_notify(&f->d, VSOCK_QUEUE_RX);
}

/* The guest sends one packet (header and payload in two buffers). */
static void send_pkt(struct fx *f, uint32_t src_port, uint32_t dst_port, uint16_t op,
		     uint32_t flags, const void *payload, uint32_t len, uint32_t buf_alloc,
		     uint32_t fwd_cnt)
{
	struct virtio_vsock_hdr h = {.src_cid = GUEST_CID,
				     .dst_cid = VSOCK_CID_HOST,
				     .src_port = src_port,
				     .dst_port = dst_port,
				     .len = len,
				     .type = VSOCK_TYPE_STREAM,
				     .op = op,
				     .flags = flags,
				     .buf_alloc = buf_alloc,
				     .fwd_cnt = fwd_cnt};
	struct vdrv_seg s[2] = {{.gpa = f->tx_hdr, .len = VIRTIO_VSOCK_HDR_SIZE},
				{.gpa = f->tx_payload, .len = len}};

	memcpy(vdrv_ptr(&f->d, f->tx_hdr, sizeof(h)), &h, sizeof(h));
	if (len && payload)
		memcpy(vdrv_ptr(&f->d, f->tx_payload, len), payload, len);
	vdrv_add_chain(&f->d, VSOCK_QUEUE_TX, s, len ? 2 : 1);
	vdrv_notify(&f->d, VSOCK_QUEUE_TX);
}

static void send_raw(struct fx *f, const struct virtio_vsock_hdr *h, uint32_t hdr_len,
		     uint32_t payload_len)
{
	struct vdrv_seg s[2] = {{.gpa = f->tx_hdr, .len = hdr_len},
				{.gpa = f->tx_payload, .len = payload_len}};

	memcpy(vdrv_ptr(&f->d, f->tx_hdr, VIRTIO_VSOCK_HDR_SIZE), h, VIRTIO_VSOCK_HDR_SIZE);
	vdrv_add_chain(&f->d, VSOCK_QUEUE_TX, s, payload_len ? 2 : 1);
	vdrv_notify(&f->d, VSOCK_QUEUE_TX);
}

/* The next packet the device gave the guest; its payload into data[] (when not NULL). */
static struct virtio_vsock_hdr recv_pkt(struct fx *f, void *data)
{
	struct virtio_vsock_hdr h;
	struct virtq_used_elem u;
	uint8_t *p;

	assert_true(vdrv_wait_used(&f->d, VSOCK_QUEUE_RX, 1));
	u = vdrv_take_used(&f->d, VSOCK_QUEUE_RX);
	assert_true(u.len >= VIRTIO_VSOCK_HDR_SIZE);
	p = vdrv_ptr(&f->d, f->rx_gpa[u.id], RX_BUF);
	memcpy(&h, p, sizeof(h));
	assert_int_equal(h.len, u.len - VIRTIO_VSOCK_HDR_SIZE);
	assert_int_equal(h.src_cid, VSOCK_CID_HOST);
	assert_int_equal(h.dst_cid, GUEST_CID);
	assert_int_equal(h.type, VSOCK_TYPE_STREAM);
	assert_int_equal(h.buf_alloc, VSOCK_CONN_BUF_ALLOC);
	if (data)
		memcpy(data, p + VIRTIO_VSOCK_HDR_SIZE, h.len);
	return h;
}

/* No packet for the guest within `ms`. */
static void expect_no_pkt(struct fx *f, int ms)
{
	uint16_t seen = f->d.ring[VSOCK_QUEUE_RX].used_seen;

	usleep(ms * 1000);
	assert_int_equal(vdrv_used_idx(&f->d, VSOCK_QUEUE_RX), seen);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* Reads exactly len bytes (5 s at most). */
static void read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		assert_int_equal(poll(&p, 1, 5000), 1);
		n = read(fd, (char *)buf + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

/* The socket's next read is its end (5 s at most). */
static void expect_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(read(fd, &c, 1), 0);
}

static struct virtio_vsock_stats stats(struct fx *f)
{
	struct virtio_vsock_stats s;

	virtio_vsock_get_stats(f->d.dev, &s);
	return s;
}

/* A host program connects to guest port `port`; the guest accepts. Returns the program's fd and
 * the host port in *local. */
static int host_connect(struct fx *f, uint32_t port, uint32_t guest_buf_alloc, uint32_t *local)
{
	int c = unix_connect(f->uds);
	char cmd[32], ok[32];
	struct virtio_vsock_hdr h;
	int n;

	n = snprintf(cmd, sizeof(cmd), "CONNECT %u\n", port);
	assert_int_equal(write(c, cmd, (size_t)n), n);
	h = recv_pkt(f, NULL);
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, port);
	assert_true(h.src_port >= (1u << 30));
	send_pkt(f, port, h.src_port, VSOCK_OP_RESPONSE, 0, NULL, 0, guest_buf_alloc, 0);
	n = snprintf(cmd, sizeof(cmd), "OK %u\n", h.src_port);
	read_exact(c, ok, (size_t)n);
	assert_memory_equal(ok, cmd, (size_t)n);
	*local = h.src_port;
	return c;
}

static void test_host_connect_relay(void **state)
{
	struct fx f;
	struct virtio_vsock_hdr h;
	char buf[4096];
	uint32_t local;
	int c;

	fx_init(&f, GUEST_CID);
	post_rx(&f, 16);
	c = host_connect(&f, 1234, 65536, &local);
	/* program -> guest */
	assert_int_equal(write(c, "hello", 5), 5);
	h = recv_pkt(&f, buf);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 5);
	assert_int_equal(h.src_port, local);
	assert_int_equal(h.dst_port, 1234);
	assert_memory_equal(buf, "hello", 5);
	/* guest -> program */
	send_pkt(&f, 1234, local, VSOCK_OP_RW, 0, "world!", 6, 65536, 5);
	read_exact(c, buf, 6);
	assert_memory_equal(buf, "world!", 6);
	/* The program stops sending: the guest hears SHUTDOWN(SEND), can still send. */
	shutdown(c, SHUT_WR);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_SEND);
	send_pkt(&f, 1234, local, VSOCK_OP_RW, 0, "bye", 3, 65536, 5);
	read_exact(c, buf, 3);
	assert_memory_equal(buf, "bye", 3);
	/* The guest is done too: RST, and the program's connection ends. */
	send_pkt(&f, 1234, local, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV, NULL,
		 0, 65536, 5);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_port, local);
	expect_eof(c);
	assert_int_equal(stats(&f).conns_host, 1);
	assert_int_equal(stats(&f).conns_open, 0);
	assert_int_equal(f.d.fails, 0);
	close(c);
	fx_fini(&f);
}

/* Nobody listens on the guest's port: its RST closes the program's connection, no "OK". */
static void test_host_connect_refused(void **state)
{
	struct fx f;
	struct virtio_vsock_hdr h;
	int c;

	fx_init(&f, GUEST_CID);
	post_rx(&f, 4);
	c = unix_connect(f.uds);
	assert_int_equal(write(c, "CONNECT 99\n", 11), 11);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	send_pkt(&f, 99, h.src_port, VSOCK_OP_RST, 0, NULL, 0, 0, 0);
	expect_eof(c);
	close(c);
	/* A command that is not CONNECT is refused by closing, without a word to the guest. */
	c = unix_connect(f.uds);
	assert_int_equal(write(c, "HELLO 5\n", 8), 8);
	expect_eof(c);
	close(c);
	expect_no_pkt(&f, 100);
	fx_fini(&f);
}

/* A guest that never answers a REQUEST: after 2 s the program's connection closes and the guest
 * gets a RST for it. */
static void test_host_connect_times_out(void **state)
{
	struct fx f;
	struct virtio_vsock_hdr h, r;
	struct pollfd p;
	char c1;
	int c;

	fx_init(&f, GUEST_CID);
	post_rx(&f, 4);
	c = unix_connect(f.uds);
	assert_int_equal(write(c, "CONNECT 42\n", 11), 11);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	expect_no_pkt(&f, 1000);
	p = (struct pollfd){.fd = c, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 4000), 1);
	assert_int_equal(read(c, &c1, 1), 0);
	r = recv_pkt(&f, NULL);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.src_port, h.src_port);
	assert_int_equal(r.dst_port, 42);
	assert_int_equal(stats(&f).conns_open, 0);
	close(c);
	fx_fini(&f);
}

static void test_guest_connect(void **state)
{
	struct fx f;
	struct virtio_vsock_hdr h;
	char path[160], buf[64];
	int l, s;

	fx_init(&f, GUEST_CID);
	post_rx(&f, 16);
	snprintf(path, sizeof(path), "%s_6000", f.uds);
	l = unix_listen(path);
	send_pkt(&f, 40000, 6000, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	assert_int_equal(h.src_port, 6000);
	assert_int_equal(h.dst_port, 40000);
	s = accept(l, NULL, NULL);
	assert_true(s >= 0);
	send_pkt(&f, 40000, 6000, VSOCK_OP_RW, 0, "ping", 4, 65536, 0);
	read_exact(s, buf, 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(write(s, "pong", 4), 4);
	h = recv_pkt(&f, buf);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_memory_equal(buf, "pong", 4);
	/* The host side closes: SHUTDOWN with both flags, and the guest's RST ends it. */
	close(s);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
	send_pkt(&f, 40000, 6000, VSOCK_OP_RST, 0, NULL, 0, 65536, 0);
	/* Nobody on port 6001: RST. */
	send_pkt(&f, 40001, 6001, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_port, 6001);
	assert_int_equal(h.dst_port, 40001);
	assert_int_equal(stats(&f).conns_guest, 1);
	assert_int_equal(stats(&f).refused, 1);
	assert_int_equal(stats(&f).conns_open, 0);
	close(l);
	fx_fini(&f);
}

/* RW packets into got[] from offset *total until *total reaches `until`: returns how many. */
static int recv_data(struct fx *f, char *got, uint32_t *total, uint32_t until)
{
	int packets = 0;

	while (*total < until) {
		struct virtio_vsock_hdr h = recv_pkt(f, got + *total);

		assert_int_equal(h.op, VSOCK_OP_RW);
		assert_true(*total + h.len <= until);
		*total += h.len;
		packets++;
	}
	return packets;
}

/* The device sends no more than the guest's credit, asks for more, and goes on once given. */
static void test_honours_guest_credit(void **state)
{
	static char data[5000], got[5000];
	struct fx f;
	struct virtio_vsock_hdr h;
	uint32_t local, total = 0;
	int c;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	fx_init(&f, GUEST_CID);
	post_rx(&f, 32);
	c = host_connect(&f, 77, 1000, &local);
	assert_int_equal(write(c, data, sizeof(data)), (ssize_t)sizeof(data));
	recv_data(&f, got, &total, 1000);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_CREDIT_REQUEST);
	expect_no_pkt(&f, 100);
	/* The guest read it all: the rest comes. */
	send_pkt(&f, 77, local, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, 1000000, 1000);
	recv_data(&f, got, &total, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
	/* A CREDIT_REQUEST is answered with the device's fwd_cnt. */
	send_pkt(&f, 77, local, VSOCK_OP_RW, 0, "abc", 3, 1000000, 5000);
	send_pkt(&f, 77, local, VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0, 1000000, 5000);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(h.fwd_cnt, 3);
	close(c);
	fx_fini(&f);
}

/* One read of the socket may fill several RX buffers (up to 16, each a packet of its own): the
 * packets come in the stream's order, all of them within the guest's credit, and the buffers
 * the read did not fill stay the guest's (the rest of the data and a later write use them). */
static void test_rx_batch_order_and_credit(void **state)
{
	static char data[40000], got[40000];
	struct fx f;
	struct virtio_vsock_hdr h;
	uint32_t local, total = 0;
	int c, packets = 0;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 13 + i / 4096);
	fx_init(&f, GUEST_CID);
	post_rx(&f, 17); /* the REQUEST's, then 16 */
	c = host_connect(&f, 88, 10000, &local);
	assert_int_equal(write(c, data, sizeof(data)), (ssize_t)sizeof(data));
	/* never past the credit, even across one read (recv_data checks) */
	packets = recv_data(&f, got, &total, 10000);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_CREDIT_REQUEST);
	expect_no_pkt(&f, 100);
	send_pkt(&f, 88, local, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0, 1000000, 10000);
	packets += recv_data(&f, got, &total, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
	/* 40000 bytes took at least 10 of the 16 buffers: the others are still there. */
	assert_true(packets + 1 <= 16);
	assert_int_equal(write(c, "tail", 4), 4);
	h = recv_pkt(&f, got);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 4);
	assert_memory_equal(got, "tail", 4);
	assert_int_equal(f.d.fails, 0);
	close(c);
	fx_fini(&f);
}

/* A read-only RX buffer after good ones: the read fills the good ones, and the device fails
 * on the bad one (not before, and not by skipping it). */
static void test_rx_batch_stops_at_bad_buffer(void **state)
{
	static char data[10000], got[10000];
	struct fx f;
	struct vdrv_seg s;
	uint32_t local, total = 0;
	int c;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 5);
	fx_init(&f, GUEST_CID);
	post_rx(&f, 3); /* the REQUEST's, then 2 */
	c = host_connect(&f, 99, 1000000, &local);
	s = (struct vdrv_seg){.gpa = vdrv_alloc(&f.d, RX_BUF), .len = RX_BUF, .write = false};
	vdrv_add_chain(&f.d, VSOCK_QUEUE_RX, &s, 1);
	assert_int_equal(write(c, data, sizeof(data)), (ssize_t)sizeof(data));
	recv_data(&f, got, &total, 2 * 4096);
	assert_memory_equal(got, data, total);
	for (int i = 0; i < 500 && !__atomic_load_n(&f.d.fails, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_int_equal(__atomic_load_n(&f.d.fails, __ATOMIC_SEQ_CST), 1);
	close(c);
	fx_fini(&f);
}

/* The program does not read: once the socket and the device's buf_alloc are full, a guest that
 * sends on gets its connection reset, and the device holds no more than buf_alloc. */
static void test_credit_violation_resets(void **state)
{
	struct fx f;
	struct virtio_vsock_hdr h;
	char path[160];
	int l, s, sent = 0;
	bool reset = false;

	fx_init(&f, GUEST_CID);
	post_rx(&f, 64);
	snprintf(path, sizeof(path), "%s_6002", f.uds);
	l = unix_listen(path);
	send_pkt(&f, 50000, 6002, VSOCK_OP_REQUEST, 0, NULL, 0, 65536, 0);
	assert_int_equal(recv_pkt(&f, NULL).op, VSOCK_OP_RESPONSE);
	s = accept(l, NULL, NULL);
	/* 64 KiB at a time, never reading: 200 of them is far beyond any socket buffer. */
	for (int i = 0; i < 200 && !reset; i++) {
		send_pkt(&f, 50000, 6002, VSOCK_OP_RW, 0, NULL, VSOCK_MAX_PKT_LEN, 65536, 0);
		sent++;
		while (vdrv_used_idx(&f.d, VSOCK_QUEUE_RX) != f.d.ring[VSOCK_QUEUE_RX].used_seen) {
			h = recv_pkt(&f, NULL);
			if (h.op == VSOCK_OP_RST)
				reset = true;
			else
				assert_int_equal(h.op, VSOCK_OP_CREDIT_UPDATE);
			post_rx(&f, 1);
		}
	}
	assert_true(reset);
	assert_true(sent > VSOCK_CONN_BUF_ALLOC / VSOCK_MAX_PKT_LEN);
	assert_int_equal(stats(&f).credit_violations, 1);
	assert_int_equal(stats(&f).conns_open, 0);
	assert_int_equal(f.d.fails, 0);
	close(s);
	close(l);
	fx_fini(&f);
}

static void test_connection_cap(void **state)
{
	int fds[VSOCK_MAX_CONNS + 1];
	struct fx f;

	fx_init(&f, GUEST_CID);
	for (int i = 0; i < VSOCK_MAX_CONNS; i++)
		fds[i] = unix_connect(f.uds);
	/* Each is taken (and waits for its command) before the next arrives. */
	for (int i = 0; i < 100 && stats(&f).conns_open < VSOCK_MAX_CONNS; i++)
		usleep(10000);
	assert_int_equal(stats(&f).conns_open, VSOCK_MAX_CONNS);
	fds[VSOCK_MAX_CONNS] = unix_connect(f.uds);
	expect_eof(fds[VSOCK_MAX_CONNS]);
	for (int i = 0; i <= VSOCK_MAX_CONNS; i++)
		close(fds[i]);
	fx_fini(&f);
}

/* Packets that break no ring rule but make no sense: dropped or answered with RST, the device
 * goes on. */
static void test_bad_packets_rst_or_dropped(void **state)
{
	struct fx f;
	struct virtio_vsock_hdr h;
	struct virtio_vsock_hdr bad = {.src_cid = 7,
				       .dst_cid = VSOCK_CID_HOST,
				       .src_port = 1,
				       .dst_port = 2,
				       .type = VSOCK_TYPE_STREAM,
				       .op = VSOCK_OP_REQUEST};
	uint32_t local;
	int c;

	fx_init(&f, GUEST_CID);
	post_rx(&f, 16);
	/* Another CID's packet, and one to a CID other than the host's: dropped. */
	send_raw(&f, &bad, VIRTIO_VSOCK_HDR_SIZE, 0);
	bad.src_cid = GUEST_CID;
	bad.dst_cid = 9;
	send_raw(&f, &bad, VIRTIO_VSOCK_HDR_SIZE, 0);
	expect_no_pkt(&f, 100);
	assert_int_equal(stats(&f).bad_packets, 2);
	/* Not a stream: RST. */
	bad.dst_cid = VSOCK_CID_HOST;
	bad.type = 2;
	send_raw(&f, &bad, VIRTIO_VSOCK_HDR_SIZE, 0);
	assert_int_equal(recv_pkt(&f, NULL).op, VSOCK_OP_RST);
	/* Data for no connection: RST. */
	send_pkt(&f, 5, 6, VSOCK_OP_RW, 0, "x", 1, 100, 0);
	h = recv_pkt(&f, NULL);
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_port, 6);
	assert_int_equal(h.dst_port, 5);
	/* An unknown op on a live connection: it is reset, the program's socket closes. */
	c = host_connect(&f, 1, 65536, &local);
	send_pkt(&f, 1, local, 42, 0, NULL, 0, 65536, 0);
	assert_int_equal(recv_pkt(&f, NULL).op, VSOCK_OP_RST);
	expect_eof(c);
	close(c);
	/* A RESPONSE nobody asked for: RST. */
	send_pkt(&f, 8, 9, VSOCK_OP_RESPONSE, 0, NULL, 0, 100, 0);
	assert_int_equal(recv_pkt(&f, NULL).op, VSOCK_OP_RST);
	assert_int_equal(f.d.fails, 0);
	fx_fini(&f);
}

/* Packets that break the device's rules mark it DEVICE_NEEDS_RESET. */
static void expect_fails(void (*send)(struct fx *f))
{
	struct fx f;

	fx_init(&f, GUEST_CID);
	post_rx(&f, 4);
	send(&f);
	assert_int_equal(__atomic_load_n(&f.d.fails, __ATOMIC_SEQ_CST), 1);
	assert_true(f.d.dev->failed);
	fx_fini(&f);
}

static const struct virtio_vsock_hdr good_hdr = {
    .src_cid = GUEST_CID, .dst_cid = VSOCK_CID_HOST, .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW};

static void send_short_header(struct fx *f)
{
	send_raw(f, &good_hdr, 20, 0);
}

static void send_len_beyond_chain(struct fx *f)
{
	struct virtio_vsock_hdr h = good_hdr;

	h.len = 100;
	send_raw(f, &h, VIRTIO_VSOCK_HDR_SIZE, 50);
}

static void send_huge_len(struct fx *f)
{
	struct virtio_vsock_hdr h = good_hdr;

	h.len = 1024 * 1024;
	send_raw(f, &h, VIRTIO_VSOCK_HDR_SIZE, 1024 * 1024);
}

static void send_writable_tx(struct fx *f)
{
	struct vdrv_seg s[2] = {{.gpa = f->tx_hdr, .len = VIRTIO_VSOCK_HDR_SIZE},
				{.gpa = f->tx_payload, .len = 64, .write = true}};

	memcpy(vdrv_ptr(&f->d, f->tx_hdr, sizeof(good_hdr)), &good_hdr, sizeof(good_hdr));
	vdrv_add_chain(&f->d, VSOCK_QUEUE_TX, s, 2);
	vdrv_notify(&f->d, VSOCK_QUEUE_TX);
}

static void test_short_header_fails(void **state)
{
	expect_fails(send_short_header);
}

static void test_len_beyond_chain_fails(void **state)
{
	expect_fails(send_len_beyond_chain);
}

static void test_huge_len_fails(void **state)
{
	expect_fails(send_huge_len);
}

static void test_writable_tx_fails(void **state)
{
	expect_fails(send_writable_tx);
}

/* An RX buffer too small for a header fails the device when a packet needs it. */
static void test_small_rx_buffer_fails(void **state)
{
	struct fx f;
	struct vdrv_seg s;
	int c;

	fx_init(&f, GUEST_CID);
	s = (struct vdrv_seg){.gpa = vdrv_alloc(&f.d, 16), .len = 16, .write = true};
	vdrv_add_chain(&f.d, VSOCK_QUEUE_RX, &s, 1);
	c = unix_connect(f.uds);
	assert_int_equal(write(c, "CONNECT 5\n", 10), 10);
	for (int i = 0; i < 500 && !__atomic_load_n(&f.d.fails, __ATOMIC_SEQ_CST); i++)
		usleep(10000);
	assert_int_equal(__atomic_load_n(&f.d.fails, __ATOMIC_SEQ_CST), 1);
	close(c);
	fx_fini(&f);
}

/* A live socket at the path is refused; a stale one is replaced. */
static void test_socket_path(void **state)
{
	struct vsock_config vc = {.enabled = true, .guest_cid = 3};
	char dir[] = "/tmp/skiff-vsock-XXXXXX";
	struct virtio_device *dev;
	int l;

	assert_non_null(mkdtemp(dir));
	snprintf(vc.uds_path, sizeof(vc.uds_path), "%s/v.sock", dir);
	l = unix_listen(vc.uds_path);
	assert_int_equal(virtio_vsock_create(&vc, &dev), -EADDRINUSE);
	close(l); /* the file stays: a stale socket */
	assert_int_equal(access(vc.uds_path, F_OK), 0);
	assert_int_equal(virtio_vsock_create(&vc, &dev), 0);
	dev->ops->destroy(dev);
	assert_int_not_equal(access(vc.uds_path, F_OK), 0);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_host_connect_relay),
	    cmocka_unit_test(test_host_connect_refused),
	    cmocka_unit_test(test_host_connect_times_out),
	    cmocka_unit_test(test_guest_connect),
	    cmocka_unit_test(test_honours_guest_credit),
	    cmocka_unit_test(test_rx_batch_order_and_credit),
	    cmocka_unit_test(test_rx_batch_stops_at_bad_buffer),
	    cmocka_unit_test(test_credit_violation_resets),
	    cmocka_unit_test(test_connection_cap),
	    cmocka_unit_test(test_bad_packets_rst_or_dropped),
	    cmocka_unit_test(test_short_header_fails),
	    cmocka_unit_test(test_len_beyond_chain_fails),
	    cmocka_unit_test(test_huge_len_fails),
	    cmocka_unit_test(test_writable_tx_fails),
	    cmocka_unit_test(test_small_rx_buffer_fails),
	    cmocka_unit_test(test_socket_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
