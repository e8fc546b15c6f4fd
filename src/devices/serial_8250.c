#include "devices/serial_8250.h"
#include "base/device.h"
#include "base/state.h"
#include "base/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Register offsets (PC16550D datasheet, table 2). */
enum {
	REG_RBR_THR_DLL = 0,
	REG_IER_DLM = 1,
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* transmitter holding register empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0f

/* IIR interrupt identification, highest priority first. */
#define IIR_NO_INT	   0x01
#define IIR_RX_LINE_STATUS 0x06
#define IIR_RX_DATA	   0x04
#define IIR_RX_TIMEOUT	   0x0c
#define IIR_THR_EMPTY	   0x02
#define IIR_MODEM_STATUS   0x00
#define IIR_FIFOS_ENABLED  0xc0

#define FCR_FIFO_ENABLE	 0x01
#define FCR_CLEAR_RX	 0x02
#define FCR_TRIGGER_MASK 0xc0

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	 0x01
#define LSR_OE	 0x02 /* the only error we produce: loopback overrun; no PE, FE, BI */
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS	 0x10
#define MSR_DSR	 0x20
#define MSR_RI	 0x40
#define MSR_DCD	 0x80

/* What the guest is told the FIFO holds: trigger levels count against this. */
#define GUEST_FIFO_SIZE 16

/* How long one transmitted byte may wait for a non-blocking out_fd to drain before it is
 * dropped: a stalled reader must not stall the vCPU for good. */
#define TX_STALL_MS 100

/* Transmitted bytes that exit one by one before batching is asked for (see update_batching). */
#define BATCH_AFTER_BYTES 512

struct serial_8250 {
	struct vm_device dev; /* its entry in the VM's device list */
	pthread_mutex_t lock;
	struct irq_line irq;
	int out_fd;
	bool irq_level; /* last level sent on `irq` */

	uint8_t ier, lcr, mcr, scr, dll, dlm;
	uint8_t fcr;	    /* FIFO enable and trigger level as last written */
	uint8_t lsr_errors; /* latched until LSR is read */
	uint8_t msr_deltas; /* latched until MSR is read */
	bool thr_empty_pending;
	bool tx_drop_logged;
	/* serial_8250_batch_tx(): whether THR writes are batched now, and how to change that. */
	int (*batch_set)(void *ctx, bool on);
	void *batch_ctx;
	bool batching;
	uint32_t tx_bytes; /* bytes transmitted, counted up to BATCH_AFTER_BYTES */

	uint8_t rx[SERIAL_8250_RX_CAPACITY];
	size_t rx_head, rx_count;
};

static bool loopback(const struct serial_8250 *s)
{
	return s->mcr & MCR_LOOP;
}

/* The modem input lines. Outside loopback nothing is attached to them, so report a carrier
 * and a ready peer: getty and the console then never wait for one. In loopback the MCR outputs
 * are wired back to them as on the real chip. */
static uint8_t modem_lines(const struct serial_8250 *s)
{
	uint8_t lines = 0;

	if (!loopback(s))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	if (s->mcr & MCR_RTS)
		lines |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		lines |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		lines |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		lines |= MSR_DCD;
	return lines;
}

static void latch_modem_deltas(struct serial_8250 *s, uint8_t before, uint8_t after)
{
	uint8_t changed = before ^ after;

	if (changed & MSR_CTS)
		s->msr_deltas |= MSR_DCTS;
	if (changed & MSR_DSR)
		s->msr_deltas |= MSR_DDSR;
	if ((before & MSR_RI) && !(after & MSR_RI)) /* trailing edge only */
		s->msr_deltas |= MSR_TERI;
	if (changed & MSR_DCD)
		s->msr_deltas |= MSR_DDCD;
}

static unsigned rx_trigger_level(const struct serial_8250 *s)
{
	static const unsigned levels[] = {1, 4, 8, 14};

	return levels[(s->fcr & FCR_TRIGGER_MASK) >> 6];
}

/* The interrupt the IIR reports now, by the 16550's priorities. We do not model character
 * times, so data below the trigger level is reported as a timeout at once: the host's burst
 * has ended by the time the guest looks. */
static uint8_t pending_interrupt(const struct serial_8250 *s)
{
	if ((s->ier & IER_ELSI) && s->lsr_errors)
		return IIR_RX_LINE_STATUS;
	if ((s->ier & IER_ERBFI) && s->rx_count) {
		size_t visible = s->rx_count < GUEST_FIFO_SIZE ? s->rx_count : GUEST_FIFO_SIZE;

		if ((s->fcr & FCR_FIFO_ENABLE) && visible < rx_trigger_level(s))
			return IIR_RX_TIMEOUT;
		return IIR_RX_DATA;
	}
	if ((s->ier & IER_ETBEI) && s->thr_empty_pending)
		return IIR_THR_EMPTY;
	if ((s->ier & IER_EDSSI) && s->msr_deltas)
		return IIR_MODEM_STATUS;
	return IIR_NO_INT;
}

/* Called with the lock held after every access, so that level changes reach the interrupt
 * controller in the order they happened. On a PC board MCR.OUT2 gates the line; Linux always
 * sets OUT2 when it wants interrupts, so, like QEMU, we do not model the gate. */
static void update_irq(struct serial_8250 *s)
{
	bool level = pending_interrupt(s) != IIR_NO_INT;

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	irq_line_set(&s->irq, level);
}

static void rx_clear(struct serial_8250 *s)
{
	s->rx_head = s->rx_count = 0;
}

static bool rx_push(struct serial_8250 *s, uint8_t byte)
{
	if (s->rx_count == SERIAL_8250_RX_CAPACITY)
		return false;
	s->rx[(s->rx_head + s->rx_count) % SERIAL_8250_RX_CAPACITY] = byte;
	s->rx_count++;
	return true;
}

static uint8_t rx_pop(struct serial_8250 *s)
{
	uint8_t byte;

	if (!s->rx_count)
		return 0;
	byte = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_8250_RX_CAPACITY;
	s->rx_count--;
	return byte;
}

static void write_out(struct serial_8250 *s, uint8_t byte)
{
	bool waited = false;
	ssize_t n;

	if (s->out_fd < 0)
		return;
	for (;;) {
		n = write(s->out_fd, &byte, 1);
		if (n == 1)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !waited) {
			struct pollfd pfd = {.fd = s->out_fd, .events = POLLOUT};

			waited = true;
			if (poll(&pfd, 1, TX_STALL_MS) > 0)
				continue;
		}
		break;
	}
	/* A closed or stuck reader loses output; the guest must go on regardless. */
	if (!s->tx_drop_logged) {
		s->tx_drop_logged = true;
		log_warn("serial: dropping guest output: %s",
			 n < 0 ? strerror(errno) : "short write");
	}
}

static void transmit(struct serial_8250 *s, uint8_t byte)
{
	if (loopback(s)) {
		if (!rx_push(s, byte))
			s->lsr_errors |= LSR_OE;
	} else {
		write_out(s, byte);
	}
	/* The byte has left the holding register by the time the guest looks again: THRE is
	 * raised anew, as when a real transmitter moves a byte into its shift register. */
	s->thr_empty_pending = true;
}

static void write_fcr(struct serial_8250 *s, uint8_t value)
{
	bool was_enabled = s->fcr & FCR_FIFO_ENABLE;

	if (!(value & FCR_FIFO_ENABLE)) {
		/* Other FCR bits only take effect while the FIFO enable bit is written as 1. */
		if (was_enabled)
			rx_clear(s);
		s->fcr &= ~FCR_FIFO_ENABLE;
		return;
	}
	/* Switching the FIFOs on (or off) empties them on the real chip. */
	if (!was_enabled || (value & FCR_CLEAR_RX))
		rx_clear(s);
	s->fcr = value & (FCR_FIFO_ENABLE | FCR_TRIGGER_MASK);
}

static void write_ier(struct serial_8250 *s, uint8_t value)
{
	uint8_t newly_set = (value & IER_MASK) & ~s->ier;

	s->ier = value & IER_MASK;
	/* Enabling ETBEI while THR is empty (it always is) raises THRE at once: Linux checks this
	 * at startup and otherwise marks the port as UART_BUG_THRE. */
	if (newly_set & IER_ETBEI)
		s->thr_empty_pending = true;
}

static void write_mcr(struct serial_8250 *s, uint8_t value)
{
	uint8_t before = modem_lines(s);

	s->mcr = value & MCR_MASK;
	latch_modem_deltas(s, before, modem_lines(s));
}

static uint8_t read_register(struct serial_8250 *s, uint64_t reg)
{
	uint8_t value;

	switch (reg) {
	case REG_RBR_THR_DLL:
		return (s->lcr & LCR_DLAB) ? s->dll : rx_pop(s);
	case REG_IER_DLM:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case REG_IIR_FCR:
		value = pending_interrupt(s);
		/* Reading IIR acknowledges THRE, but only when THRE is what it reports. */
		if (value == IIR_THR_EMPTY)
			s->thr_empty_pending = false;
		if (s->fcr & FCR_FIFO_ENABLE)
			value |= IIR_FIFOS_ENABLED;
		return value;
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		value = LSR_THRE | LSR_TEMT | s->lsr_errors;
		if (s->rx_count)
			value |= LSR_DR;
		s->lsr_errors = 0;
		return value;
	case REG_MSR:
		value = modem_lines(s) | s->msr_deltas;
		s->msr_deltas = 0;
		return value;
	case REG_SCR:
		return s->scr;
	default:
		return 0;
	}
}

static void write_register(struct serial_8250 *s, uint64_t reg, uint8_t value)
{
	switch (reg) {
	case REG_RBR_THR_DLL:
		if (s->lcr & LCR_DLAB) {
			s->dll = value;
		} else {
			transmit(s, value);
			if (s->tx_bytes < BATCH_AFTER_BYTES)
				s->tx_bytes++;
		}
		break;
	case REG_IER_DLM:
		if (s->lcr & LCR_DLAB)
			s->dlm = value;
		else
			write_ier(s, value);
		break;
	case REG_IIR_FCR:
		write_fcr(s, value);
		break;
	case REG_LCR:
		s->lcr = value;
		break;
	case REG_MCR:
		write_mcr(s, value);
		break;
	case REG_SCR:
		s->scr = value;
		break;
	default: /* LSR and MSR are read-only; beyond the range there is nothing */
		break;
	}
}

/* Registers are one byte wide: a wider access reaches the register at its first byte. */
static void serial_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct serial_8250 *s = opaque;
	uint8_t value;

	if (!len)
		return;
	pthread_mutex_lock(&s->lock);
	value = read_register(s, offset);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	memset(data, 0, len);
	*(uint8_t *)data = value;
}

/* THR writes may be batched while nothing the guest can see before its next exit depends on
 * them one by one: no THRE interrupt to raise, no loopback to receive them (the header says
 * more). And only once the guest has shown itself a chatty console, BATCH_AFTER_BYTES bytes in:
 * registering a zone leaves KVM a grace period in flight, and a VM destroyed within about 20 ms
 * of it waits for that (13 ms on the build machines' 6.18 host), which would more than double a
 * short guest's whole run; 512 bytes cost at most 512 exits, and a Linux console passes them
 * within its first lines. With s->lock held. */
static void update_batching(struct serial_8250 *s)
{
	bool want = !(s->ier & IER_ETBEI) && !loopback(s) && s->tx_bytes >= BATCH_AFTER_BYTES;
	int ret;

	if (!s->batch_set || want == s->batching)
		return;
	ret = s->batch_set(s->batch_ctx, want);
	if (!ret)
		s->batching = want;
	else if (ret == -ENOTSUP)
		s->batch_set = NULL;
}

static void serial_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct serial_8250 *s = opaque;

	if (!len)
		return;
	pthread_mutex_lock(&s->lock);
	write_register(s, offset, *(const uint8_t *)data);
	update_irq(s);
	update_batching(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_8250_batch_tx(struct serial_8250 *s, int (*set)(void *ctx, bool on), void *ctx)
{
	pthread_mutex_lock(&s->lock);
	s->batch_set = set;
	s->batch_ctx = ctx;
	update_batching(s);
	pthread_mutex_unlock(&s->lock);
}

const struct bus_device_ops serial_8250_ops = {.read = serial_read, .write = serial_write};

static void serial_8250_device_destroy(struct vm_device *dev)
{
	serial_8250_destroy((struct serial_8250 *)dev);
}

/* Power-on values: every register 0, the FIFO empty, the transmitter empty (with its THRE
 * interrupt pending, should the guest enable it). With s->lock held. */
static void power_on_state(struct serial_8250 *s)
{
	s->ier = s->lcr = s->mcr = s->scr = s->dll = s->dlm = 0;
	s->fcr = s->lsr_errors = s->msr_deltas = 0;
	s->thr_empty_pending = true;
	rx_clear(s);
}

static void serial_8250_device_reset(struct vm_device *dev)
{
	struct serial_8250 *s = (struct serial_8250 *)dev;

	pthread_mutex_lock(&s->lock);
	power_on_state(s);
	update_irq(s);
	update_batching(s);
	pthread_mutex_unlock(&s->lock);
}

/* The saved state, version 1 (base/state.h), in this order:
 *   u8 ier, lcr, mcr, scr, dll, dlm, fcr, lsr_errors, msr_deltas; bool thr_empty_pending;
 *   u32 n; n bytes of received data, oldest first (n <= SERIAL_8250_RX_CAPACITY).
 * The interrupt line's level is not saved: restore drives it from the registers. */
#define SERIAL_8250_STATE_VERSION 1

static int serial_8250_device_save(struct vm_device *dev, struct state_writer *w)
{
	struct serial_8250 *s = (struct serial_8250 *)dev;

	pthread_mutex_lock(&s->lock);
	state_begin(w, VM_DEVICE_SERIAL_8250, SERIAL_8250_STATE_VERSION);
	state_put_u8(w, s->ier);
	state_put_u8(w, s->lcr);
	state_put_u8(w, s->mcr);
	state_put_u8(w, s->scr);
	state_put_u8(w, s->dll);
	state_put_u8(w, s->dlm);
	state_put_u8(w, s->fcr);
	state_put_u8(w, s->lsr_errors);
	state_put_u8(w, s->msr_deltas);
	state_put_bool(w, s->thr_empty_pending);
	state_put_u32(w, (uint32_t)s->rx_count);
	for (size_t i = 0; i < s->rx_count; i++)
		state_put_u8(w, s->rx[(s->rx_head + i) % SERIAL_8250_RX_CAPACITY]);
	state_end(w);
	pthread_mutex_unlock(&s->lock);
	return state_writer_status(w);
}

/* Reads and checks everything first: on a refusal the device is left as it was. */
static int serial_8250_device_restore(struct vm_device *dev, struct state_reader *r)
{
	struct serial_8250 *s = (struct serial_8250 *)dev;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr, lsr_errors, msr_deltas;
	uint8_t rx[SERIAL_8250_RX_CAPACITY];
	uint16_t version;
	uint32_t n = 0;
	bool thr_empty;

	if (state_open(r, VM_DEVICE_SERIAL_8250, SERIAL_8250_STATE_VERSION, &version))
		return state_reader_status(r);
	state_get_u8(r, &ier);
	state_get_u8(r, &lcr);
	state_get_u8(r, &mcr);
	state_get_u8(r, &scr);
	state_get_u8(r, &dll);
	state_get_u8(r, &dlm);
	state_get_u8(r, &fcr);
	state_get_u8(r, &lsr_errors);
	state_get_u8(r, &msr_deltas);
	state_get_bool(r, &thr_empty);
	state_get_u32(r, &n);
	if (ier & ~IER_MASK || mcr & ~MCR_MASK || fcr & ~(FCR_FIFO_ENABLE | FCR_TRIGGER_MASK) ||
	    lsr_errors & ~LSR_OE || msr_deltas & ~(MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD))
		state_refuse(r, "serial-8250: register values no 16550A holds (IER 0x%x, MCR 0x%x, "
			     "FCR 0x%x, LSR errors 0x%x, MSR deltas 0x%x)",
			     ier, mcr, fcr, lsr_errors, msr_deltas);
	if (n > SERIAL_8250_RX_CAPACITY)
		state_refuse(r, "serial-8250: %u received bytes, more than the %d it holds", n,
			     SERIAL_8250_RX_CAPACITY);
	else
		state_get_bytes(r, rx, n);
	if (state_close(r))
		return state_reader_status(r);

	pthread_mutex_lock(&s->lock);
	s->ier = ier;
	s->lcr = lcr;
	s->mcr = mcr;
	s->scr = scr;
	s->dll = dll;
	s->dlm = dlm;
	s->fcr = fcr;
	s->lsr_errors = lsr_errors;
	s->msr_deltas = msr_deltas;
	s->thr_empty_pending = thr_empty;
	memcpy(s->rx, rx, n);
	s->rx_head = 0;
	s->rx_count = n;
	update_irq(s);
	update_batching(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static const struct vm_device_ops serial_8250_device_ops = {
	.name = "serial-8250",
	.destroy = serial_8250_device_destroy,
	.reset = serial_8250_device_reset,
	.save = serial_8250_device_save,
	.restore = serial_8250_device_restore,
};

struct serial_8250 *serial_8250_create(const struct irq_line *irq, int out_fd)
{
	struct serial_8250 *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL)) {
		free(s);
		return NULL;
	}
	if (irq)
		s->irq = *irq;
	s->out_fd = out_fd;
	power_on_state(s);
	vm_device_init(&s->dev, VM_DEVICE_SERIAL_8250, &serial_8250_device_ops, NULL);
	return s;
}

struct vm_device *serial_8250_device(struct serial_8250 *s)
{
	return s ? &s->dev : NULL;
}

void serial_8250_destroy(struct serial_8250 *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

size_t serial_8250_receive(struct serial_8250 *s, const uint8_t *buf, size_t len)
{
	size_t taken = 0;

	pthread_mutex_lock(&s->lock);
	if (!loopback(s)) {
		while (taken < len && rx_push(s, buf[taken]))
			taken++;
		update_irq(s);
	}
	pthread_mutex_unlock(&s->lock);
	return taken;
}

size_t serial_8250_rx_space(struct serial_8250 *s)
{
	size_t space;

	pthread_mutex_lock(&s->lock);
	space = loopback(s) ? 0 : SERIAL_8250_RX_CAPACITY - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return space;
}
