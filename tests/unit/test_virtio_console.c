/* virtio-console driven without a transport: the test plays the guest driver, laying out split
 * rings in guest memory, and the transport, calling the device's ops on its worker thread. Guest
 * output must reach out_fd intact and in order (also through a full non-blocking pipe), host
 * input must reach the receive buffers without loss (also when it comes before the buffers or
 * overflows the device's ring), and a malformed chain fails only its own device. */
#include "virtio/console.h"
#include "virtio/virtio.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MiB	(1ULL << 20)
#define QSIZE	32
#define RX	0
#define TX	1
#define BUF_GPA 0x100000ULL /* guest buffers are carved from here */
#define WAIT_MS 3000

/* One queue as the guest driver sees it. */
struct test_queue {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t next_desc, avail_idx;
};

struct harness {
	struct guest_mem mem;
	struct virtq queues[2];
	struct test_queue tq[2];
	struct event_loop *loop;
	struct virtio_device *dev;
	uint64_t next_buf;
	int signals[2];
	int fails;
	int out_rd, out_wr; /* the pipe standing for the host's stdout */
};

struct segment {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static void fake_signal_used(struct virtio_device *dev, uint16_t q)
{
	struct harness *h = dev->transport;

	__atomic_add_fetch(&h->signals[q], 1, __ATOMIC_SEQ_CST);
}

static void fake_fail(struct virtio_device *dev, int q, const char *reason)
{
	struct harness *h = dev->transport;

	__atomic_add_fetch(&h->fails, 1, __ATOMIC_SEQ_CST);
	dev->failed = true;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *gptr(struct harness *h, uint64_t gpa, uint64_t len)
{
	void *p = guest_mem_ptr(&h->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static uint64_t alloc_buf(struct harness *h, uint32_t len)
{
	uint64_t gpa = h->next_buf;

	h->next_buf += (len + 15) & ~15ULL;
	assert_true(h->next_buf <= 4 * MiB);
	return gpa;
}

/* Configures both queues as a driver would and points the device at the harness. */
static void harness_init(struct harness *h, int out_fd)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 4 * MiB}};

	memset(h, 0, sizeof(*h));
	assert_int_equal(guest_mem_map(&h->mem, layout, 1), 0);
	h->next_buf = BUF_GPA;
	h->loop = event_loop_create("test-console");
	assert_non_null(h->loop);
	assert_int_equal(virtio_console_create(out_fd, &h->dev), 0);
	assert_int_equal(h->dev->ops->device_id, VIRTIO_ID_CONSOLE);
	assert_int_equal(h->dev->ops->nr_queues, 2);
	assert_true(h->dev->ops->queue_max_size >= QSIZE);
	h->dev->mem = &h->mem;
	h->dev->queues = h->queues;
	h->dev->features = 1ULL << VIRTIO_F_VERSION_1;
	h->dev->loop = h->loop;
	h->dev->transport = h;
	h->dev->signal_used = fake_signal_used;
	h->dev->fail = fake_fail;
}

static void queue_setup(struct harness *h, int q)
{
	struct test_queue *tq = &h->tq[q];
	struct virtq *vq = &h->queues[q];
	uint64_t base = 0x10000 + (uint64_t)q * 0x4000;

	memset(tq, 0, sizeof(*tq));
	tq->desc_gpa = base;
	tq->avail_gpa = base + 0x1000;
	tq->used_gpa = base + 0x2000;
	memset(gptr(h, base, 0x3000), 0, 0x3000);
	memset(vq, 0, sizeof(*vq));
	vq->max_size = h->dev->ops->queue_max_size;
	vq->size = QSIZE;
	vq->desc_gpa = tq->desc_gpa;
	vq->avail_gpa = tq->avail_gpa;
	vq->used_gpa = tq->used_gpa;
	vq->ready = true;
	assert_int_equal(virtq_activate(vq, &h->mem, h->dev->features), 0);
}

struct call {
	struct virtio_device *dev;
	uint16_t q;
	int ret;
};

static void do_activate(void *arg)
{
	struct call *c = arg;

	c->ret = c->dev->ops->activate(c->dev);
}

static void do_notify(void *arg)
{
	struct call *c = arg;

	c->dev->ops->queue_notify(c->dev, c->q);
}

static void do_reset(void *arg)
{
	struct call *c = arg;

	c->dev->ops->reset(c->dev);
}

static void activate(struct harness *h)
{
	struct call c = {.dev = h->dev, .ret = -1};

	queue_setup(h, RX);
	queue_setup(h, TX);
	assert_int_equal(event_loop_call(h->loop, do_activate, &c), 0);
	assert_int_equal(c.ret, 0);
}

static void notify(struct harness *h, uint16_t q)
{
	struct call c = {.dev = h->dev, .q = q};

	assert_int_equal(event_loop_call(h->loop, do_notify, &c), 0);
}

static void harness_fini(struct harness *h)
{
	struct call c = {.dev = h->dev};

	assert_int_equal(event_loop_call(h->loop, do_reset, &c), 0);
	event_loop_destroy(h->loop);
	h->dev->ops->destroy(h->dev);
	guest_mem_unmap(&h->mem);
}

/* Adds one chain to queue q's available ring; returns its head descriptor. */
static uint16_t add_chain(struct harness *h, int q, const struct segment *segs, int n)
{
	struct test_queue *tq = &h->tq[q];
	struct virtq_desc *desc = gptr(h, tq->desc_gpa, QSIZE * sizeof(*desc));
	struct virtq_avail *avail = gptr(h, tq->avail_gpa, 4 + 2 * QSIZE);
	uint16_t head = tq->next_desc % QSIZE;

	for (int i = 0; i < n; i++) {
		uint16_t d = (uint16_t)((tq->next_desc + i) % QSIZE);

		desc[d].addr = segs[i].gpa;
		desc[d].len = segs[i].len;
		desc[d].flags = (uint16_t)((segs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					   (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		desc[d].next = (uint16_t)((d + 1) % QSIZE);
	}
	tq->next_desc = (uint16_t)(tq->next_desc + n);
	avail->ring[tq->avail_idx % QSIZE] = head;
	tq->avail_idx++;
	__atomic_store_n(&avail->idx, tq->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static uint16_t used_idx(struct harness *h, int q)
{
	struct virtq_used *used = gptr(h, h->tq[q].used_gpa, 4 + 8 * QSIZE);

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

static struct virtq_used_elem used_elem(struct harness *h, int q, uint16_t i)
{
	struct virtq_used *used = gptr(h, h->tq[q].used_gpa, 4 + 8 * QSIZE);

	return used->ring[i % QSIZE];
}

/* Waits (bounded) until queue q's used index reaches `idx`. */
static bool wait_used(struct harness *h, int q, uint16_t idx)
{
	int64_t end = now_ms() + WAIT_MS;

	while ((int16_t)(used_idx(h, q) - idx) < 0) {
		if (now_ms() > end)
			return false;
		usleep(1000);
	}
	return true;
}

/* Adds one writable buffer of `len` bytes to the receive queue; returns its guest address. */
static uint64_t add_rx_buffer(struct harness *h, uint32_t len)
{
	struct segment s = {.gpa = alloc_buf(h, len), .len = len, .write = true};

	memset(gptr(h, s.gpa, len), 0, len);
	add_chain(h, RX, &s, 1);
	return s.gpa;
}

static uint64_t put_tx_buffer(struct harness *h, const void *data, uint32_t len, struct segment *s)
{
	s->gpa = alloc_buf(h, len);
	s->len = len;
	s->write = false;
	memcpy(gptr(h, s->gpa, len), data, len);
	return s->gpa;
}

static size_t read_all(int fd, char *buf, size_t want)
{
	size_t got = 0;
	int64_t end = now_ms() + WAIT_MS;

	while (got < want && now_ms() < end) {
		ssize_t n = read(fd, buf + got, want - got);

		if (n > 0)
			got += (size_t)n;
		else
			usleep(1000);
	}
	return got;
}

static void make_pipe(int *rd, int *wr)
{
	int fds[2];

	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	*rd = fds[0];
	*wr = fds[1];
}

static void test_tx_reaches_out_fd(void **state)
{
	struct harness h;
	struct segment segs[3];
	char out[64] = {0};
	int rd, wr;

	make_pipe(&rd, &wr);
	harness_init(&h, wr);
	activate(&h);
	put_tx_buffer(&h, "hello, ", 7, &segs[0]);
	add_chain(&h, TX, segs, 1);
	/* One chain of several buffers: written as one piece, in order. */
	put_tx_buffer(&h, "virtio", 6, &segs[0]);
	put_tx_buffer(&h, "-", 1, &segs[1]);
	put_tx_buffer(&h, "console\n", 8, &segs[2]);
	add_chain(&h, TX, segs, 3);
	notify(&h, TX);
	assert_true(wait_used(&h, TX, 2));
	assert_int_equal(used_elem(&h, TX, 0).len, 0);
	assert_int_equal(used_elem(&h, TX, 1).len, 0);
	assert_int_equal(used_elem(&h, TX, 1).id, 1);
	assert_int_equal(read_all(rd, out, 22), 22);
	assert_memory_equal(out, "hello, virtio-console\n", 22);
	assert_true(read(rd, out, sizeof(out)) < 0); /* nothing more */
	assert_true(__atomic_load_n(&h.signals[TX], __ATOMIC_SEQ_CST) >= 1);
	assert_int_equal(h.fails, 0);
	harness_fini(&h);
	close(rd);
	close(wr);
}

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

/* A full non-blocking out_fd: the chain waits (no drop, no spin) and goes out when the reader
 * drains the pipe, across many partial writes. */
static void test_tx_waits_for_full_out_fd(void **state)
{
	enum { CHUNK = 8192, NR = 3 };
	static char data[CHUNK * NR], got[CHUNK * NR], filler[65536];
	struct harness h;
	struct segment segs[NR];
	size_t pipe_size, n = 0;
	double cpu;
	int rd, wr;

	make_pipe(&rd, &wr);
	fcntl(wr, F_SETPIPE_SZ, 4096);
	pipe_size = (size_t)fcntl(wr, F_GETPIPE_SZ);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + (i * 7 + i / 251) % 26);
	for (ssize_t w; (w = write(wr, filler, sizeof(filler))) > 0;)
		n += (size_t)w;
	assert_true(n >= pipe_size);

	harness_init(&h, wr);
	activate(&h);
	for (int i = 0; i < NR; i++)
		put_tx_buffer(&h, data + i * CHUNK, CHUNK, &segs[i]);
	add_chain(&h, TX, segs, NR);
	notify(&h, TX);

	cpu = cpu_ms();
	usleep(200 * 1000);
	assert_int_equal(used_idx(&h, TX), 0); /* held, not dropped */
	assert_true(cpu_ms() - cpu < 100.0);   /* and not spinning on EAGAIN */

	assert_int_equal(read_all(rd, filler, n), n);
	assert_int_equal(read_all(rd, got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, data, sizeof(data));
	assert_true(wait_used(&h, TX, 1));
	assert_int_equal(h.fails, 0);

	/* Output keeps flowing afterwards. */
	put_tx_buffer(&h, "after", 5, &segs[0]);
	add_chain(&h, TX, segs, 1);
	notify(&h, TX);
	assert_true(wait_used(&h, TX, 2));
	assert_int_equal(read_all(rd, got, 5), 5);
	assert_memory_equal(got, "after", 5);
	harness_fini(&h);
	close(rd);
	close(wr);
}

static void test_rx_reaches_guest(void **state)
{
	struct harness h;
	uint64_t buf;

	harness_init(&h, -1);
	activate(&h);
	buf = add_rx_buffer(&h, 64);
	notify(&h, RX);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"ls -l\r", 6), 6);
	assert_true(wait_used(&h, RX, 1));
	assert_int_equal(used_elem(&h, RX, 0).len, 6);
	assert_memory_equal(gptr(&h, buf, 6), "ls -l\r", 6);
	assert_true(__atomic_load_n(&h.signals[RX], __ATOMIC_SEQ_CST) >= 1);
	harness_fini(&h);
}

/* Typed before the driver loaded and before it gave buffers: delivered once it does. */
static void test_rx_before_buffers(void **state)
{
	struct harness h;
	uint64_t buf;

	harness_init(&h, -1);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"early ", 6), 6);
	activate(&h);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"bird", 4), 4);
	usleep(50 * 1000);
	assert_int_equal(used_idx(&h, RX), 0);
	buf = add_rx_buffer(&h, 64);
	notify(&h, RX);
	assert_true(wait_used(&h, RX, 1));
	assert_int_equal(used_elem(&h, RX, 0).len, 10);
	assert_memory_equal(gptr(&h, buf, 10), "early bird", 10);
	harness_fini(&h);
}

/* More input than the device holds: it takes part, the caller retries the rest, and the guest
 * receives every byte once, in order. */
static void test_rx_overflow_loses_nothing(void **state)
{
	enum { TOTAL = 10000, RXBUF = 512, NRBUF = 24 };
	static uint8_t input[TOTAL], received[TOTAL];
	uint64_t bufs[NRBUF];
	struct harness h;
	size_t offered, first, got = 0;
	uint16_t seen = 0;
	int64_t end;

	for (size_t i = 0; i < TOTAL; i++)
		input[i] = (uint8_t)(i * 31 + i / 256);
	harness_init(&h, -1);
	activate(&h);
	first = virtio_console_receive(h.dev, input, TOTAL);
	assert_true(first > 0 && first < TOTAL);
	assert_int_equal(virtio_console_receive(h.dev, input + first, TOTAL - first), 0);
	offered = first;

	for (int i = 0; i < NRBUF; i++)
		bufs[i] = add_rx_buffer(&h, RXBUF);
	notify(&h, RX);
	end = now_ms() + WAIT_MS;
	while (got < TOTAL && now_ms() < end) {
		if (offered < TOTAL)
			offered += virtio_console_receive(h.dev, input + offered, TOTAL - offered);
		while (seen != used_idx(&h, RX)) {
			struct virtq_used_elem u = used_elem(&h, RX, seen);

			assert_true(u.id < NRBUF && u.len <= RXBUF);
			assert_true(got + u.len <= TOTAL);
			memcpy(received + got, gptr(&h, bufs[u.id], u.len), u.len);
			got += u.len;
			seen++;
		}
		usleep(1000);
	}
	assert_int_equal(offered, TOTAL);
	assert_int_equal(got, TOTAL);
	assert_memory_equal(received, input, TOTAL);
	harness_fini(&h);
}

/* A reset forgets the queues but not input typed for the guest. */
static void test_reset_keeps_input(void **state)
{
	struct harness h;
	struct call c;
	uint64_t buf;

	harness_init(&h, -1);
	activate(&h);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"kept", 4), 4);
	c = (struct call){.dev = h.dev};
	assert_int_equal(event_loop_call(h.loop, do_reset, &c), 0);
	activate(&h);
	buf = add_rx_buffer(&h, 16);
	notify(&h, RX);
	assert_true(wait_used(&h, RX, 1));
	assert_int_equal(used_elem(&h, RX, 0).len, 4);
	assert_memory_equal(gptr(&h, buf, 4), "kept", 4);
	harness_fini(&h);
}

static void test_malformed_tx_fails_only_its_device(void **state)
{
	struct harness bad, good;
	struct segment segs[2];
	char out[8];
	int rd, wr;

	make_pipe(&rd, &wr);
	harness_init(&bad, wr);
	harness_init(&good, wr);
	activate(&bad);
	activate(&good);

	put_tx_buffer(&bad, "oops", 4, &segs[0]);
	segs[1] = (struct segment){.gpa = alloc_buf(&bad, 16), .len = 16, .write = true};
	add_chain(&bad, TX, segs, 2);
	notify(&bad, TX);
	assert_int_equal(__atomic_load_n(&bad.fails, __ATOMIC_SEQ_CST), 1);
	assert_true(bad.dev->failed);
	assert_int_equal(used_idx(&bad, TX), 0);
	assert_true(read(rd, out, sizeof(out)) < 0); /* nothing of it written */

	put_tx_buffer(&good, "fine", 4, &segs[0]);
	add_chain(&good, TX, segs, 1);
	notify(&good, TX);
	assert_true(wait_used(&good, TX, 1));
	assert_int_equal(read_all(rd, out, 4), 4);
	assert_memory_equal(out, "fine", 4);
	assert_int_equal(good.fails, 0);
	assert_false(good.dev->failed);

	harness_fini(&bad);
	harness_fini(&good);
	close(rd);
	close(wr);
}

/* A receive chain with device-readable buffers is a driver bug too. */
static void test_malformed_rx_fails(void **state)
{
	struct harness h;
	struct segment s;

	harness_init(&h, -1);
	activate(&h);
	put_tx_buffer(&h, "rx?", 3, &s);
	add_chain(&h, RX, &s, 1);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"x", 1), 1);
	notify(&h, RX);
	usleep(20 * 1000);
	assert_int_equal(__atomic_load_n(&h.fails, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(used_idx(&h, RX), 0);
	harness_fini(&h);
}

/* A reset while output waits for a full out_fd drops that chain (the driver took it back) and
 * stops watching out_fd; the device works again once reactivated. */
static void test_reset_while_output_waits(void **state)
{
	static char filler[65536];
	struct harness h;
	struct segment s;
	struct call c;
	char out[16];
	size_t n = 0;
	int rd, wr;

	make_pipe(&rd, &wr);
	fcntl(wr, F_SETPIPE_SZ, 4096);
	for (ssize_t w; (w = write(wr, filler, sizeof(filler))) > 0;)
		n += (size_t)w;
	harness_init(&h, wr);
	activate(&h);
	put_tx_buffer(&h, "stale", 5, &s);
	add_chain(&h, TX, &s, 1);
	notify(&h, TX);
	c = (struct call){.dev = h.dev};
	assert_int_equal(event_loop_call(h.loop, do_reset, &c), 0);
	assert_int_equal(read_all(rd, filler, n), n);
	usleep(20 * 1000); /* an EPOLLOUT watch left behind would fire now */
	assert_true(read(rd, out, sizeof(out)) < 0);

	activate(&h);
	put_tx_buffer(&h, "fresh", 5, &s);
	add_chain(&h, TX, &s, 1);
	notify(&h, TX);
	assert_true(wait_used(&h, TX, 1));
	assert_int_equal(read_all(rd, out, 5), 5);
	assert_memory_equal(out, "fresh", 5);
	assert_true(read(rd, out, sizeof(out)) < 0);
	harness_fini(&h);
	close(rd);
	close(wr);
}

/* With VIRTIO_F_EVENT_IDX the driver kicks only past avail_event: a device holding input and
 * finding no buffer must move avail_event up to where it stopped, or it waits for ever. */
static void test_rx_asks_for_kick_with_event_idx(void **state)
{
	struct harness h;
	volatile uint16_t *avail_event;
	int64_t end;

	harness_init(&h, -1);
	h.dev->features |= 1ULL << VIRTIO_F_EVENT_IDX;
	activate(&h);
	avail_event = gptr(&h, h.tq[RX].used_gpa + 4 + 8 * QSIZE, 2);
	add_rx_buffer(&h, 8);
	notify(&h, RX);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"a", 1), 1);
	assert_true(wait_used(&h, RX, 1));
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"b", 1), 1);
	end = now_ms() + WAIT_MS;
	while (*avail_event != 1 && now_ms() < end)
		usleep(1000);
	assert_int_equal(*avail_event, 1);
	harness_fini(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tx_reaches_out_fd),
	    cmocka_unit_test(test_tx_waits_for_full_out_fd),
	    cmocka_unit_test(test_rx_reaches_guest),
	    cmocka_unit_test(test_rx_before_buffers),
	    cmocka_unit_test(test_rx_overflow_loses_nothing),
	    cmocka_unit_test(test_reset_keeps_input),
	    cmocka_unit_test(test_malformed_tx_fails_only_its_device),
	    cmocka_unit_test(test_malformed_rx_fails),
	    cmocka_unit_test(test_reset_while_output_waits),
	    cmocka_unit_test(test_rx_asks_for_kick_with_event_idx),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
