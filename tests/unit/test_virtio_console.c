/* virtio-console driven without a transport: the test plays the guest driver (virtio_driver.h),
 * laying out split rings in guest memory, and the transport, calling the device's ops on its worker
 * thread. Guest output must reach out_fd intact and in order (also through a full non-blocking
 * pipe), host input must reach the receive buffers without loss (also when it comes before the
 * buffers or overflows the device's ring), and a malformed chain fails only its own device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "virtio/console.h"
#include "virtio/virtio.h"
#include "virtio_driver.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MiB	(1ULL << 20)
#define QSIZE	32
#define RX	0
#define TX	1
#define BUF_GPA 0x100000ULL /* guest buffers are carved from here */
#define WAIT_MS 3000

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A console writing to out_fd, both queues laid out as a driver would (not started yet). */
static void harness_init(struct vdrv *h, int out_fd)
{
	struct guest_region layout[] = {{.gpa = 0, .size = 4 * MiB}};
	struct vdrv_config cfg = {.layout = layout,
				  .nr_regions = 1,
				  .buf_base = BUF_GPA,
				  .buf_end = 4 * MiB,
				  .buf_align = 16,
				  .loop_name = "test-console"};
	struct virtio_device *dev;

	vdrv_init(h, &cfg);
	assert_int_equal(virtio_console_create(out_fd, &dev), 0);
	assert_int_equal(dev->ops->device_id, VIRTIO_ID_CONSOLE);
	assert_int_equal(dev->ops->nr_queues, 2);
	assert_true(dev->ops->queue_max_size >= QSIZE);
	vdrv_attach(h, dev);
	dev->features = 1ULL << VIRTIO_F_VERSION_1;
	for (int q = RX; q <= TX; q++) {
		uint64_t base = 0x10000 + (uint64_t)q * 0x4000;

		vdrv_ring_layout(h, q, QSIZE, base, base + 0x1000, base + 0x2000);
	}
}

/* DRIVER_OK with the features the test chose. */
static void activate(struct vdrv *h)
{
	vdrv_start(h, h->dev->features);
}

/* Adds one writable buffer of `len` bytes to the receive queue; returns its guest address. */
static uint64_t add_rx_buffer(struct vdrv *h, uint32_t len)
{
	struct vdrv_seg s = {.gpa = vdrv_alloc(h, len), .len = len, .write = true};

	memset(vdrv_ptr(h, s.gpa, len), 0, len);
	vdrv_add_chain(h, RX, &s, 1);
	return s.gpa;
}

static uint64_t put_tx_buffer(struct vdrv *h, const void *data, uint32_t len, struct vdrv_seg *s)
{
	s->gpa = vdrv_alloc(h, len);
	s->len = len;
	s->write = false;
	memcpy(vdrv_ptr(h, s->gpa, len), data, len);
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
	struct vdrv h;
	struct vdrv_seg segs[3];
	char out[64] = {0};
	int rd, wr;

	make_pipe(&rd, &wr);
	harness_init(&h, wr);
	activate(&h);
	put_tx_buffer(&h, "hello, ", 7, &segs[0]);
	vdrv_add_chain(&h, TX, segs, 1);
	/* One chain of several buffers: written as one piece, in order. */
	put_tx_buffer(&h, "virtio", 6, &segs[0]);
	put_tx_buffer(&h, "-", 1, &segs[1]);
	put_tx_buffer(&h, "console\n", 8, &segs[2]);
	vdrv_add_chain(&h, TX, segs, 3);
	vdrv_notify(&h, TX);
	assert_true(vdrv_wait_used_idx(&h, TX, 2));
	assert_int_equal(vdrv_used_elem(&h, TX, 0).len, 0);
	assert_int_equal(vdrv_used_elem(&h, TX, 1).len, 0);
	assert_int_equal(vdrv_used_elem(&h, TX, 1).id, 1);
	assert_int_equal(read_all(rd, out, 22), 22);
	assert_memory_equal(out, "hello, virtio-console\n", 22);
	assert_true(read(rd, out, sizeof(out)) < 0); /* nothing more */
	assert_true(__atomic_load_n(&h.signals[TX], __ATOMIC_SEQ_CST) >= 1);
	assert_int_equal(h.fails, 0);
	vdrv_fini(&h);
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
	struct vdrv h;
	struct vdrv_seg segs[NR];
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
	vdrv_add_chain(&h, TX, segs, NR);
	vdrv_notify(&h, TX);

	cpu = cpu_ms();
	usleep(200 * 1000);
	assert_int_equal(vdrv_used_idx(&h, TX), 0); /* held, not dropped */
	assert_true(cpu_ms() - cpu < 100.0);	    /* and not spinning on EAGAIN */

	assert_int_equal(read_all(rd, filler, n), n);
	assert_int_equal(read_all(rd, got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, data, sizeof(data));
	assert_true(vdrv_wait_used_idx(&h, TX, 1));
	assert_int_equal(h.fails, 0);

	/* Output keeps flowing afterwards. */
	put_tx_buffer(&h, "after", 5, &segs[0]);
	vdrv_add_chain(&h, TX, segs, 1);
	vdrv_notify(&h, TX);
	assert_true(vdrv_wait_used_idx(&h, TX, 2));
	assert_int_equal(read_all(rd, got, 5), 5);
	assert_memory_equal(got, "after", 5);
	vdrv_fini(&h);
	close(rd);
	close(wr);
}

static void test_rx_reaches_guest(void **state)
{
	struct vdrv h;
	uint64_t buf;

	harness_init(&h, -1);
	activate(&h);
	buf = add_rx_buffer(&h, 64);
	vdrv_notify(&h, RX);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"ls -l\r", 6), 6);
	assert_true(vdrv_wait_used_idx(&h, RX, 1));
	assert_int_equal(vdrv_used_elem(&h, RX, 0).len, 6);
	assert_memory_equal(vdrv_ptr(&h, buf, 6), "ls -l\r", 6);
	assert_true(__atomic_load_n(&h.signals[RX], __ATOMIC_SEQ_CST) >= 1);
	vdrv_fini(&h);
}

/* Typed before the driver loaded and before it gave buffers: delivered once it does. */
static void test_rx_before_buffers(void **state)
{
	struct vdrv h;
	uint64_t buf;

	harness_init(&h, -1);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"early ", 6), 6);
	activate(&h);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"bird", 4), 4);
	usleep(50 * 1000);
	assert_int_equal(vdrv_used_idx(&h, RX), 0);
	buf = add_rx_buffer(&h, 64);
	vdrv_notify(&h, RX);
	assert_true(vdrv_wait_used_idx(&h, RX, 1));
	assert_int_equal(vdrv_used_elem(&h, RX, 0).len, 10);
	assert_memory_equal(vdrv_ptr(&h, buf, 10), "early bird", 10);
	vdrv_fini(&h);
}

/* More input than the device holds: it takes part, the caller retries the rest, and the guest
 * receives every byte once, in order. */
static void test_rx_overflow_loses_nothing(void **state)
{
	enum { TOTAL = 10000, RXBUF = 512, NRBUF = 24 };
	static uint8_t input[TOTAL], received[TOTAL];
	uint64_t bufs[NRBUF];
	struct vdrv h;
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
	vdrv_notify(&h, RX);
	end = now_ms() + WAIT_MS;
	while (got < TOTAL && now_ms() < end) {
		if (offered < TOTAL)
			offered += virtio_console_receive(h.dev, input + offered, TOTAL - offered);
		while (seen != vdrv_used_idx(&h, RX)) {
			struct virtq_used_elem u = vdrv_used_elem(&h, RX, seen);

			assert_true(u.id < NRBUF && u.len <= RXBUF);
			assert_true(got + u.len <= TOTAL);
			memcpy(received + got, vdrv_ptr(&h, bufs[u.id], u.len), u.len);
			got += u.len;
			seen++;
		}
		usleep(1000);
	}
	assert_int_equal(offered, TOTAL);
	assert_int_equal(got, TOTAL);
	assert_memory_equal(received, input, TOTAL);
	vdrv_fini(&h);
}

/* A reset forgets the queues but not input typed for the guest. */
static void test_reset_keeps_input(void **state)
{
	struct vdrv h;
	uint64_t buf;

	harness_init(&h, -1);
	activate(&h);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"kept", 4), 4);
	vdrv_reset(&h);
	activate(&h);
	buf = add_rx_buffer(&h, 16);
	vdrv_notify(&h, RX);
	assert_true(vdrv_wait_used_idx(&h, RX, 1));
	assert_int_equal(vdrv_used_elem(&h, RX, 0).len, 4);
	assert_memory_equal(vdrv_ptr(&h, buf, 4), "kept", 4);
	vdrv_fini(&h);
}

static void test_malformed_tx_fails_only_its_device(void **state)
{
	struct vdrv bad, good;
	struct vdrv_seg segs[2];
	char out[8];
	int rd, wr;

	make_pipe(&rd, &wr);
	harness_init(&bad, wr);
	harness_init(&good, wr);
	activate(&bad);
	activate(&good);

	put_tx_buffer(&bad, "oops", 4, &segs[0]);
	segs[1] = (struct vdrv_seg){.gpa = vdrv_alloc(&bad, 16), .len = 16, .write = true};
	vdrv_add_chain(&bad, TX, segs, 2);
	vdrv_notify(&bad, TX);
	assert_int_equal(__atomic_load_n(&bad.fails, __ATOMIC_SEQ_CST), 1);
	assert_true(bad.dev->failed);
	assert_int_equal(vdrv_used_idx(&bad, TX), 0);
	assert_true(read(rd, out, sizeof(out)) < 0); /* nothing of it written */

	put_tx_buffer(&good, "fine", 4, &segs[0]);
	vdrv_add_chain(&good, TX, segs, 1);
	vdrv_notify(&good, TX);
	assert_true(vdrv_wait_used_idx(&good, TX, 1));
	assert_int_equal(read_all(rd, out, 4), 4);
	assert_memory_equal(out, "fine", 4);
	assert_int_equal(good.fails, 0);
	assert_false(good.dev->failed);

	vdrv_fini(&bad);
	vdrv_fini(&good);
	close(rd);
	close(wr);
}

/* A receive chain with device-readable buffers is a driver bug too. */
static void test_malformed_rx_fails(void **state)
{
	struct vdrv h;
	struct vdrv_seg s;

	harness_init(&h, -1);
	activate(&h);
	put_tx_buffer(&h, "rx?", 3, &s);
	vdrv_add_chain(&h, RX, &s, 1);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"x", 1), 1);
	vdrv_notify(&h, RX);
	usleep(20 * 1000);
	assert_int_equal(__atomic_load_n(&h.fails, __ATOMIC_SEQ_CST), 1);
	assert_int_equal(vdrv_used_idx(&h, RX), 0);
	vdrv_fini(&h);
}

/* A reset while output waits for a full out_fd drops that chain (the driver took it back) and
 * stops watching out_fd; the device works again once reactivated. */
static void test_reset_while_output_waits(void **state)
{
	static char filler[65536];
	struct vdrv h;
	struct vdrv_seg s;
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
	vdrv_add_chain(&h, TX, &s, 1);
	vdrv_notify(&h, TX);
	vdrv_reset(&h);
	assert_int_equal(read_all(rd, filler, n), n);
	usleep(20 * 1000); /* an EPOLLOUT watch left behind would fire now */
	assert_true(read(rd, out, sizeof(out)) < 0);

	activate(&h);
	put_tx_buffer(&h, "fresh", 5, &s);
	vdrv_add_chain(&h, TX, &s, 1);
	vdrv_notify(&h, TX);
	assert_true(vdrv_wait_used_idx(&h, TX, 1));
	assert_int_equal(read_all(rd, out, 5), 5);
	assert_memory_equal(out, "fresh", 5);
	assert_true(read(rd, out, sizeof(out)) < 0);
	vdrv_fini(&h);
	close(rd);
	close(wr);
}

/* With VIRTIO_F_EVENT_IDX the driver kicks only past avail_event: a device holding input and
 * finding no buffer must move avail_event up to where it stopped, or it waits for ever. */
static void test_rx_asks_for_kick_with_event_idx(void **state)
{
	struct vdrv h;
	int64_t end;

	harness_init(&h, -1);
	h.dev->features |= 1ULL << VIRTIO_F_EVENT_IDX;
	activate(&h);
	add_rx_buffer(&h, 8);
	vdrv_notify(&h, RX);
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"a", 1), 1);
	assert_true(vdrv_wait_used_idx(&h, RX, 1));
	assert_int_equal(virtio_console_receive(h.dev, (const uint8_t *)"b", 1), 1);
	end = now_ms() + WAIT_MS;
	while (vdrv_avail_event(&h, RX) != 1 && now_ms() < end)
		usleep(1000);
	assert_int_equal(vdrv_avail_event(&h, RX), 1);
	vdrv_fini(&h);
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
