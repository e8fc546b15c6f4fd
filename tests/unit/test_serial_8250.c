/* The 16550A UART: registers as Linux's 8250 driver probes them, interrupt priority and the
 * level sent on the line, output to the fd, the bounded receive FIFO, loopback, and hostile
 * access patterns. Register values below come from the PC16550D datasheet, not from the
 * device's source. */
#include "devices/serial_8250.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

enum {
	RBR = 0,
	THR = 0,
	DLL = 0,
	IER = 1,
	DLM = 1,
	IIR = 2,
	FCR = 2,
	LCR = 3,
	MCR = 4,
	LSR = 5,
	MSR = 6,
	SCR = 7
};

#define TEST_GSI 4

struct fake_irq {
	pthread_mutex_t lock;
	bool level;
	int calls;
	int repeats; /* calls that did not change the level */
	int wrong_gsi;
};

static void fake_set_level(void *ctx, uint32_t gsi, bool level)
{
	struct fake_irq *f = ctx;

	pthread_mutex_lock(&f->lock);
	if (level == f->level)
		f->repeats++;
	if (gsi != TEST_GSI)
		f->wrong_gsi++;
	f->level = level;
	f->calls++;
	pthread_mutex_unlock(&f->lock);
}

struct fixture {
	struct fake_irq irq;
	struct serial_8250 *uart;
	int pipe_rd, pipe_wr;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct irq_line line;
	int fds[2];

	assert_non_null(f);
	pthread_mutex_init(&f->irq.lock, NULL);
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	f->pipe_rd = fds[0];
	f->pipe_wr = fds[1];
	line = (struct irq_line){.set_level = fake_set_level, .ctx = &f->irq, .gsi = TEST_GSI};
	f->uart = serial_8250_create(&line, f->pipe_wr);
	/* The device must have copied the line: scribbling over ours changes nothing. */
	memset(&line, 0, sizeof(line));
	assert_non_null(f->uart);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	serial_8250_destroy(f->uart);
	if (f->pipe_rd >= 0)
		close(f->pipe_rd);
	if (f->pipe_wr >= 0)
		close(f->pipe_wr);
	assert_int_equal(f->irq.repeats, 0);
	assert_int_equal(f->irq.wrong_gsi, 0);
	pthread_mutex_destroy(&f->irq.lock);
	free(f);
	return 0;
}

static uint8_t rd(struct serial_8250 *s, uint64_t reg)
{
	uint8_t v = 0xa5;

	serial_8250_ops.read(s, reg, &v, 1);
	return v;
}

static void wr(struct serial_8250 *s, uint64_t reg, uint8_t v)
{
	serial_8250_ops.write(s, reg, &v, 1);
}

static size_t drain_pipe(struct fixture *f, char *buf, size_t size)
{
	ssize_t n = read(f->pipe_rd, buf, size);

	return n < 0 ? 0 : (size_t)n;
}

static void test_reset_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f->uart, IER), 0x00);
	assert_int_equal(rd(f->uart, IIR), 0x01); /* no interrupt, FIFOs off */
	assert_int_equal(rd(f->uart, LCR), 0x00);
	assert_int_equal(rd(f->uart, MCR), 0x00);
	assert_int_equal(rd(f->uart, LSR), 0x60); /* THRE | TEMT */
	assert_int_equal(rd(f->uart, MSR), 0xb0); /* DCD | DSR | CTS: a peer is there */
	assert_int_equal(f->irq.calls, 0);
}

static void test_output_reaches_fd(void **state)
{
	struct fixture *f = *state;
	const char *msg = "hello, 8250\r\n";
	char buf[64];

	for (const char *p = msg; *p; p++) {
		wr(f->uart, THR, (uint8_t)*p);
		/* Output is written straight out: THR and the shifter are empty at once. */
		assert_int_equal(rd(f->uart, LSR) & 0x60, 0x60);
	}
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), strlen(msg));
	assert_memory_equal(buf, msg, strlen(msg));
}

static void test_dlab_switches_registers(void **state)
{
	struct fixture *f = *state;
	char buf[8];

	wr(f->uart, IER, 0x05);
	wr(f->uart, LCR, 0x83); /* DLAB, 8N1 */
	wr(f->uart, DLL, 0x0c);
	wr(f->uart, DLM, 0x01);
	assert_int_equal(rd(f->uart, DLL), 0x0c);
	assert_int_equal(rd(f->uart, DLM), 0x01);
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 0); /* DLL write was not a THR write */
	wr(f->uart, LCR, 0x03);
	assert_int_equal(rd(f->uart, LCR), 0x03);
	assert_int_equal(rd(f->uart, IER), 0x05); /* the divisor did not land in IER */
	wr(f->uart, THR, 'x');
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 1);
	wr(f->uart, LCR, 0x83);
	assert_int_equal(rd(f->uart, DLL), 0x0c); /* ... and the THR write not in DLL */
	assert_int_equal(rd(f->uart, DLM), 0x01);
}

static void test_scratch_register(void **state)
{
	struct fixture *f = *state;

	wr(f->uart, SCR, 0x5a);
	assert_int_equal(rd(f->uart, SCR), 0x5a);
	wr(f->uart, SCR, 0xa5);
	assert_int_equal(rd(f->uart, SCR), 0xa5);
}

static void test_ier_holds_four_bits(void **state)
{
	struct fixture *f = *state;

	/* Linux's autoconfig writes 0x0f and expects it back, and a set bit 6 would make it
	 * think this is an XScale UART. */
	wr(f->uart, IER, 0xff);
	assert_int_equal(rd(f->uart, IER), 0x0f);
	wr(f->uart, IER, 0x00);
	assert_int_equal(rd(f->uart, IER), 0x00);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;
	char buf[8];

	/* Enabling ETBEI with THR empty raises THRE at once. */
	wr(f->uart, IER, 0x02);
	assert_true(f->irq.level);
	assert_int_equal(f->irq.calls, 1);
	/* Reading IIR while THRE is the reported source clears it. */
	assert_int_equal(rd(f->uart, IIR), 0x02);
	assert_false(f->irq.level);
	assert_int_equal(rd(f->uart, IIR), 0x01);

	/* Linux's UART_BUG_THRE test: disable, re-enable, THRE must come back. */
	wr(f->uart, IER, 0x00);
	wr(f->uart, IER, 0x02);
	assert_true(f->irq.level);
	assert_int_equal(rd(f->uart, IIR), 0x02);
	assert_false(f->irq.level);

	/* Writing a byte empties THR again: the interrupt is due anew. */
	wr(f->uart, THR, 'a');
	assert_true(f->irq.level);
	assert_int_equal(rd(f->uart, IIR), 0x02);
	assert_false(f->irq.level);

	/* Rewriting IER with ETBEI already set does not invent a new THRE. */
	wr(f->uart, IER, 0x02);
	assert_int_equal(rd(f->uart, IIR), 0x01);

	/* With ETBEI off nothing is raised by transmitting. */
	wr(f->uart, IER, 0x00);
	wr(f->uart, THR, 'b');
	assert_false(f->irq.level);
	assert_int_equal(rd(f->uart, IIR), 0x01);
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 2);
}

static void test_rx_data_interrupt(void **state)
{
	struct fixture *f = *state;
	const uint8_t in[] = "ab";

	assert_int_equal(serial_8250_receive(f->uart, in, 2), 2);
	assert_int_equal(rd(f->uart, LSR) & 0x01, 0x01);
	assert_false(f->irq.level); /* ERBFI off */
	wr(f->uart, IER, 0x01);
	assert_true(f->irq.level);
	assert_int_equal(rd(f->uart, IIR), 0x04);
	assert_true(f->irq.level); /* reading IIR does not acknowledge received data */
	assert_int_equal(rd(f->uart, RBR), 'a');
	assert_true(f->irq.level);
	assert_int_equal(rd(f->uart, RBR), 'b');
	assert_false(f->irq.level);
	assert_int_equal(rd(f->uart, LSR) & 0x01, 0x00);
	assert_int_equal(rd(f->uart, IIR), 0x01);
	/* Input arriving while ERBFI is set raises the line from receive(). */
	assert_int_equal(serial_8250_receive(f->uart, in, 1), 1);
	assert_true(f->irq.level);
}

static void test_interrupt_priority(void **state)
{
	struct fixture *f = *state;

	wr(f->uart, MCR, 0x10); /* loopback, to make an overrun and modem deltas */
	rd(f->uart, MSR);	/* forget the deltas of entering loopback */
	wr(f->uart, MCR, 0x11); /* DTR -> DSR changes: a modem status delta */
	wr(f->uart, IER, 0x0f);
	for (int i = 0; i < 2000; i++)
		wr(f->uart, THR, (uint8_t)i); /* more than the FIFO holds: overrun */

	/* line status > data available > THR empty > modem status */
	assert_int_equal(rd(f->uart, IIR), 0x06);
	assert_int_equal(rd(f->uart, LSR) & 0x03, 0x03); /* OE | DR; reading clears OE */
	assert_int_equal(rd(f->uart, IIR), 0x04);
	while (rd(f->uart, LSR) & 0x01)
		rd(f->uart, RBR);
	assert_int_equal(rd(f->uart, IIR), 0x02); /* reported: acknowledged */
	assert_int_equal(rd(f->uart, IIR), 0x00);
	assert_true(f->irq.level);
	assert_int_equal(rd(f->uart, MSR) & 0x0f, 0x02); /* DDSR; reading clears it */
	assert_int_equal(rd(f->uart, IIR), 0x01);
	assert_false(f->irq.level);
}

static void test_thre_not_acked_when_not_reported(void **state)
{
	struct fixture *f = *state;
	const uint8_t in = 'q';

	wr(f->uart, IER, 0x03);
	assert_int_equal(serial_8250_receive(f->uart, &in, 1), 1);
	/* THRE is pending but hidden behind received data: reading IIR must not drop it. */
	assert_int_equal(rd(f->uart, IIR), 0x04);
	assert_int_equal(rd(f->uart, RBR), 'q');
	assert_true(f->irq.level);
	assert_int_equal(rd(f->uart, IIR), 0x02);
	assert_false(f->irq.level);
}

static void test_fifo_control(void **state)
{
	struct fixture *f = *state;
	uint8_t in[20];

	memset(in, 'x', sizeof(in));
	wr(f->uart, FCR, 0x01);
	assert_int_equal(rd(f->uart, IIR), 0xc1); /* FIFOs enabled, no interrupt */

	/* Trigger level 14: below it the data is reported as a character timeout. */
	wr(f->uart, FCR, 0xc1);
	wr(f->uart, IER, 0x01);
	assert_int_equal(serial_8250_receive(f->uart, in, 3), 3);
	assert_int_equal(rd(f->uart, IIR), 0xcc);
	assert_int_equal(serial_8250_receive(f->uart, in, 11), 11);
	assert_int_equal(rd(f->uart, IIR), 0xc4);
	assert_true(f->irq.level);

	/* Clearing the receive FIFO drops its data and the interrupt. */
	wr(f->uart, FCR, 0xc3);
	assert_int_equal(rd(f->uart, LSR) & 0x01, 0);
	assert_false(f->irq.level);
	assert_int_equal(rd(f->uart, IIR), 0xc1);

	/* Disabling the FIFOs clears the IIR bits 6-7. */
	assert_int_equal(serial_8250_receive(f->uart, in, 1), 1);
	wr(f->uart, FCR, 0x00);
	assert_int_equal(rd(f->uart, IIR), 0x01);
	assert_false(f->irq.level);

	/* Without FIFOs any data is "data available". */
	assert_int_equal(serial_8250_receive(f->uart, in, 1), 1);
	assert_int_equal(rd(f->uart, IIR), 0x04);
}

static void test_rx_fifo_bounds(void **state)
{
	struct fixture *f = *state;
	size_t big = SERIAL_8250_RX_CAPACITY + 500;
	uint8_t *in = malloc(big);

	assert_non_null(in);
	for (size_t i = 0; i < big; i++)
		in[i] = (uint8_t)(i * 7);
	assert_int_equal(serial_8250_rx_space(f->uart), SERIAL_8250_RX_CAPACITY);
	assert_int_equal(serial_8250_receive(f->uart, in, big), SERIAL_8250_RX_CAPACITY);
	assert_int_equal(serial_8250_rx_space(f->uart), 0);
	assert_int_equal(serial_8250_receive(f->uart, in, 1), 0);

	/* The guest reads two bytes; the caller's next offer of the rest fits two. */
	assert_int_equal(rd(f->uart, RBR), in[0]);
	assert_int_equal(rd(f->uart, RBR), in[1]);
	assert_int_equal(serial_8250_rx_space(f->uart), 2);
	assert_int_equal(serial_8250_receive(f->uart, in + SERIAL_8250_RX_CAPACITY, 500), 2);

	/* Nothing lost or reordered across the ring's wrap. */
	for (size_t i = 2; i < SERIAL_8250_RX_CAPACITY + 2; i++)
		assert_int_equal(rd(f->uart, RBR), in[i]);
	assert_int_equal(rd(f->uart, LSR) & 0x01, 0);
	assert_int_equal(serial_8250_rx_space(f->uart), SERIAL_8250_RX_CAPACITY);
	assert_int_equal(serial_8250_receive(f->uart, in, 0), 0);
	free(in);
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	const uint8_t in = 'h';
	char buf[8];

	/* Linux's autoconfig: loopback with all outputs off reads no modem inputs ... */
	wr(f->uart, MCR, 0x10);
	assert_int_equal(rd(f->uart, MCR), 0x10);
	assert_int_equal(rd(f->uart, MSR) & 0xf0, 0x00);
	/* ... and OUT2 | RTS read back as DCD | CTS. */
	wr(f->uart, MCR, 0x1a);
	assert_int_equal(rd(f->uart, MSR) & 0xf0, 0x90);
	wr(f->uart, MCR, 0x15); /* OUT1 | DTR -> RI | DSR */
	assert_int_equal(rd(f->uart, MSR) & 0xf0, 0x60);

	/* Transmitted bytes come back to the receiver, not out of the fd. */
	wr(f->uart, THR, 'L');
	assert_int_equal(rd(f->uart, LSR) & 0x61, 0x61);
	assert_int_equal(rd(f->uart, RBR), 'L');
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 0);

	/* The outside is disconnected: host input waits with the caller. */
	assert_int_equal(serial_8250_rx_space(f->uart), 0);
	assert_int_equal(serial_8250_receive(f->uart, &in, 1), 0);
	assert_int_equal(rd(f->uart, LSR) & 0x01, 0);

	/* Leaving loopback restores the fixed lines and the output path. */
	wr(f->uart, MCR, 0x0b);
	assert_int_equal(rd(f->uart, MSR) & 0xf0, 0xb0);
	wr(f->uart, THR, 'O');
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'O');
	assert_int_equal(serial_8250_receive(f->uart, &in, 1), 1);
}

static void test_modem_status_interrupt(void **state)
{
	struct fixture *f = *state;

	wr(f->uart, IER, 0x08);
	wr(f->uart, MCR, 0x10);
	/* Entering loopback drops DCD, DSR and CTS: deltas. */
	assert_true(f->irq.level);
	assert_int_equal(rd(f->uart, IIR), 0x00);
	assert_int_equal(rd(f->uart, MSR), 0x0b); /* DDCD | DDSR | DCTS */
	assert_false(f->irq.level);
	/* RI reports its trailing edge only. */
	wr(f->uart, MCR, 0x14);
	assert_false(f->irq.level);
	assert_int_equal(rd(f->uart, MSR), 0x40);
	wr(f->uart, MCR, 0x10);
	assert_true(f->irq.level);
	assert_int_equal(rd(f->uart, MSR), 0x04);
	assert_false(f->irq.level);
}

static void test_wide_accesses_use_first_byte(void **state)
{
	struct fixture *f = *state;
	uint8_t data[8];
	uint32_t word = 0x44434241;
	char buf[8];

	memset(data, 0xee, sizeof(data));
	serial_8250_ops.read(f->uart, LSR, data, 4);
	assert_int_equal(data[0], 0x60);
	assert_int_equal(data[1] | data[2] | data[3], 0);
	assert_int_equal(data[4], 0xee); /* nothing beyond the access */
	memset(data, 0xee, sizeof(data));
	serial_8250_ops.read(f->uart, MSR, data, 8);
	assert_int_equal(data[0], 0xb0);
	for (int i = 1; i < 8; i++)
		assert_int_equal(data[i], 0);

	serial_8250_ops.write(f->uart, THR, &word, 4);
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'A');
	serial_8250_ops.write(f->uart, THR, &word, 0); /* zero length: nothing */
	assert_int_equal(drain_pipe(f, buf, sizeof(buf)), 0);
}

static void test_output_errors_drop_bytes(void **state)
{
	struct fixture *f = *state;
	char fill[4096];
	struct serial_8250 *detached;

	log_set_level(LOG_ERROR); /* the device warns once per drop cause; expected here */
	/* A full non-blocking pipe: the byte is dropped after a bounded wait. */
	memset(fill, 'f', sizeof(fill));
	while (write(f->pipe_wr, fill, sizeof(fill)) > 0)
		;
	wr(f->uart, THR, 'x');
	assert_int_equal(rd(f->uart, LSR) & 0x60, 0x60);

	/* The reader went away: EPIPE, not a crash (SIGPIPE is ignored, as skiff's main does). */
	close(f->pipe_rd);
	f->pipe_rd = -1;
	wr(f->uart, THR, 'y');
	wr(f->uart, THR, 'z');
	assert_int_equal(rd(f->uart, LSR) & 0x60, 0x60);

	/* A bad fd and no fd at all. */
	detached = serial_8250_create(NULL, 1000);
	assert_non_null(detached);
	wr(detached, IER, 0x02); /* no irq line: must not crash */
	wr(detached, THR, 'a');
	serial_8250_destroy(detached);
	detached = serial_8250_create(NULL, -1);
	assert_non_null(detached);
	wr(detached, THR, 'a');
	assert_int_equal(rd(detached, LSR), 0x60);
	serial_8250_destroy(detached);
	log_set_level(LOG_WARN);
}

static void ignore_signal(int sig)
{
	(void)sig;
}

struct drainer {
	int fd;
	pthread_t victim;
	bool found;
};

static void *interrupt_then_drain(void *arg)
{
	struct drainer *d = arg;
	char buf[4096];
	int idle = 0;

	usleep(50000);
	pthread_kill(d->victim, SIGUSR1); /* the blocked write() returns EINTR */
	usleep(50000);
	while (!d->found && idle < 1000) {
		ssize_t n = read(d->fd, buf, sizeof(buf));

		if (n > 0 && memchr(buf, 'E', (size_t)n))
			d->found = true;
		if (n <= 0) {
			usleep(1000);
			idle++;
		}
	}
	return NULL;
}

/* A signal interrupting a blocked write must not lose the byte. */
static void test_output_retries_after_eintr(void **state)
{
	struct fixture *f = *state;
	struct sigaction sa = {.sa_handler = ignore_signal}; /* no SA_RESTART */
	struct drainer d = {.fd = f->pipe_rd, .victim = pthread_self()};
	char fill[4096];
	pthread_t thread;

	memset(fill, 'f', sizeof(fill));
	while (write(f->pipe_wr, fill, sizeof(fill)) > 0)
		;
	assert_int_equal(fcntl(f->pipe_wr, F_SETFL, 0), 0); /* now a blocking writer */
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);
	assert_int_equal(pthread_create(&thread, NULL, interrupt_then_drain, &d), 0);
	wr(f->uart, THR, 'E');
	pthread_join(thread, NULL);
	assert_true(d.found);
}

struct pump {
	struct serial_8250 *uart;
	size_t total;
};

static void *pump_input(void *arg)
{
	struct pump *p = arg;
	uint8_t chunk[97];
	size_t sent = 0;

	while (sent < p->total) {
		size_t n = p->total - sent < sizeof(chunk) ? p->total - sent : sizeof(chunk);

		for (size_t i = 0; i < n; i++)
			chunk[i] = (uint8_t)(sent + i);
		sent += serial_8250_receive(p->uart, chunk, n);
	}
	return NULL;
}

/* The console thread feeds input while a vCPU drains it: nothing lost, duplicated or
 * reordered. */
static void test_concurrent_receive_and_read(void **state)
{
	struct fixture *f = *state;
	struct pump p = {.uart = f->uart, .total = 200000};
	pthread_t thread;
	size_t got = 0;

	wr(f->uart, IER, 0x01);
	assert_int_equal(pthread_create(&thread, NULL, pump_input, &p), 0);
	while (got < p.total) {
		if (!(rd(f->uart, LSR) & 0x01))
			continue;
		assert_int_equal(rd(f->uart, RBR), (uint8_t)got);
		got++;
	}
	pthread_join(thread, NULL);
	assert_int_equal(rd(f->uart, LSR) & 0x01, 0);
	assert_false(f->irq.level);
}

/* Random accesses of any offset and length, with input mixed in: no crash, no overflow (under
 * ASan), the line only ever toggles, and what IIR reports matches the line. */
static void test_fuzz(void **state)
{
	struct fixture *f = *state;
	static const uint32_t lens[] = {0, 1, 2, 3, 4, 8};
	uint8_t data[8], in[64];
	char sink[4096];

	srand(8250);
	for (int i = 0; i < 200000; i++) {
		uint64_t offset = (uint64_t)(rand() % 12);
		uint32_t len = lens[rand() % 6];
		int what = rand() % 16;

		if (rand() % 1000 == 0)
			offset = ~0ULL - (uint64_t)(rand() % 4);
		for (size_t j = 0; j < sizeof(data); j++)
			data[j] = (uint8_t)rand();
		if (what == 0) {
			size_t n = (size_t)(rand() % (int)sizeof(in));

			assert_true(serial_8250_receive(f->uart, in, n) <= n);
			assert_true(serial_8250_rx_space(f->uart) <= SERIAL_8250_RX_CAPACITY);
		} else if (what < 8) {
			serial_8250_ops.read(f->uart, offset, data, len);
			if (offset == IIR && len && (data[0] & 0x0f) != 0x02)
				assert_int_equal(f->irq.level, !(data[0] & 0x01));
		} else {
			/* Mostly avoid loopback so the FIFO does not just fill from THR. */
			if (offset == MCR && rand() % 4)
				data[0] &= ~0x10;
			serial_8250_ops.write(f->uart, offset, data, len);
		}
		if (i % 256 == 0)
			drain_pipe(f, sink, sizeof(sink));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_reaches_fd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dlab_switches_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scratch_register, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ier_holds_four_bits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_data_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_interrupt_priority, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_thre_not_acked_when_not_reported, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fifo_control, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_fifo_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loopback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modem_status_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wide_accesses_use_first_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_errors_drop_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_retries_after_eintr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_receive_and_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
	};

	/* Writing to a pipe whose reader is gone must surface as EPIPE, as in skiff itself. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
