#include "devices/i8042.h"
#include "base/device.h"
#include "base/log.h"
#include "base/state.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Status register (port 0x64, read). */
#define STS_OBF	    0x01 /* output buffer full */
#define STS_SYS	    0x04 /* system flag: self-test passed */
#define STS_CMD	    0x08 /* last write went to the command port */
#define STS_UNLOCK  0x10 /* keyboard not inhibited by a key lock */
#define STS_AUX_OBF 0x20 /* the output buffer holds mouse data */
#define STS_TIMEOUT 0x40

/* Controller configuration byte (CTR), byte 0 of the controller's RAM. */
#define CTR_KBD_INT 0x01
#define CTR_SYS	    0x04
#define CTR_KBD_DIS 0x10
#define CTR_AUX_DIS 0x20
#define CTR_XLATE   0x40
/* What firmware leaves before Linux runs: keyboard interrupt on, translation on, no mouse. */
#define CTR_DEFAULT (CTR_KBD_INT | CTR_SYS | CTR_AUX_DIS | CTR_XLATE)

#define RAM_SIZE 32

/* Output port bits: bit 0 low holds the CPU in reset; bit 1 is the A20 gate. */
#define OUTPORT_RESET_HIGH 0x01
#define OUTPORT_A20	   0x02

/* Controller commands (port 0x64, write). */
#define CMD_READ_RAM	   0x20 /* 0x20..0x3f: read RAM byte (0x20: CTR) */
#define CMD_WRITE_RAM	   0x60 /* 0x60..0x7f: write RAM byte, value follows */
#define CMD_AUX_DISABLE	   0xa7
#define CMD_AUX_ENABLE	   0xa8
#define CMD_AUX_TEST	   0xa9
#define CMD_SELF_TEST	   0xaa
#define CMD_KBD_TEST	   0xab
#define CMD_KBD_DISABLE	   0xad
#define CMD_KBD_ENABLE	   0xae
#define CMD_READ_OUTPORT   0xd0
#define CMD_WRITE_OUTPORT  0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX	   0xd4
#define CMD_PULSE	   0xf0 /* 0xf0..0xff: pulse output port bits 0-3 where clear */

#define SELF_TEST_OK	  0x55
#define PORT_TEST_OK	  0x00
#define PORT_TEST_CLK_LOW 0x01 /* the port's clock line is stuck low: nothing is there */

/* Keyboard commands (port 0x60, write) and replies. */
#define KBD_CMD_SET_LEDS     0xed
#define KBD_CMD_ECHO	     0xee
#define KBD_CMD_SCANCODE_SET 0xf0
#define KBD_CMD_IDENTIFY     0xf2
#define KBD_CMD_TYPEMATIC    0xf3
#define KBD_CMD_ENABLE	     0xf4
#define KBD_CMD_DISABLE	     0xf5
#define KBD_CMD_DEFAULTS     0xf6
#define KBD_CMD_RESEND	     0xfe
#define KBD_CMD_RESET	     0xff
#define KBD_ACK		     0xfa
#define KBD_NAK		     0xfe
#define KBD_BAT_OK	     0xaa
#define KBD_ID_1	     0xab /* an MF2 keyboard */
#define KBD_ID_2	     0x83

struct output_byte {
	uint8_t value;
	bool aux;
};

struct i8042 {
	struct vm_device dev; /* its entry in the VM's device list */
	pthread_mutex_t lock;
	struct irq_line kbd_irq;
	struct power_ctl power;
	bool irq_level; /* last level sent on kbd_irq */

	uint8_t ram[RAM_SIZE]; /* ram[0] is the CTR */
	uint8_t outport;
	bool sys_flag, last_write_cmd, timeout;
	uint8_t pending_cmd; /* controller command waiting for its data byte; 0: none */
	uint8_t last_read;   /* a read of an empty buffer sees the old contents */

	/* The keyboard behind the controller. */
	bool kbd_scanning;
	uint8_t kbd_scancode_set;
	uint8_t kbd_pending_cmd; /* keyboard command waiting for its argument; 0: none */
	uint8_t kbd_last_sent;	 /* for its resend command */

	struct output_byte queue[I8042_QUEUE_SIZE];
	unsigned head, count;
};

static bool queue_push(struct i8042 *k, uint8_t value, bool aux)
{
	if (k->count == I8042_QUEUE_SIZE)
		return false; /* the guest is not reading: drop rather than grow */
	k->queue[(k->head + k->count) % I8042_QUEUE_SIZE] = (struct output_byte){value, aux};
	k->count++;
	k->timeout = false;
	return true;
}

static void kbd_send(struct i8042 *k, uint8_t value)
{
	k->kbd_last_sent = value;
	queue_push(k, value, false);
}

static bool irq_wanted(const struct i8042 *k)
{
	return k->count && !k->queue[k->head].aux && (k->ram[0] & CTR_KBD_INT);
}

/* Called with the lock held, so that levels reach the interrupt controller in order. */
static void set_irq(struct i8042 *k, bool level)
{
	if (level == k->irq_level)
		return;
	k->irq_level = level;
	irq_line_set(&k->kbd_irq, level);
}

static void update_irq(struct i8042 *k)
{
	set_irq(k, irq_wanted(k));
}

static uint8_t read_status(struct i8042 *k)
{
	uint8_t status = STS_UNLOCK;

	if (k->count) {
		status |= STS_OBF;
		if (k->queue[k->head].aux)
			status |= STS_AUX_OBF;
	}
	if (k->sys_flag)
		status |= STS_SYS;
	if (k->last_write_cmd)
		status |= STS_CMD;
	if (k->timeout)
		status |= STS_TIMEOUT;
	return status;
}

static uint8_t read_data(struct i8042 *k)
{
	if (!k->count)
		return k->last_read;
	k->last_read = k->queue[k->head].value;
	k->head = (k->head + 1) % I8042_QUEUE_SIZE;
	k->count--;
	/* The buffer is empty for a moment before the next byte moves in: drop the line so that
	 * an edge-triggered controller sees a new edge for it. Linux reads one byte per
	 * interrupt. */
	set_irq(k, false);
	update_irq(k);
	return k->last_read;
}

static void kbd_set_defaults(struct i8042 *k)
{
	k->kbd_scanning = true;
	k->kbd_scancode_set = 2;
}

static void kbd_write(struct i8042 *k, uint8_t value)
{
	uint8_t cmd = k->kbd_pending_cmd;

	if (cmd) {
		k->kbd_pending_cmd = 0;
		kbd_send(k, KBD_ACK);
		if (cmd == KBD_CMD_SCANCODE_SET) {
			if (value == 0)
				kbd_send(k, k->kbd_scancode_set);
			else if (value <= 3)
				k->kbd_scancode_set = value;
		}
		/* LED and typematic settings have no effect on anything we model. */
		return;
	}
	switch (value) {
	case KBD_CMD_SET_LEDS:
	case KBD_CMD_TYPEMATIC:
	case KBD_CMD_SCANCODE_SET:
		k->kbd_pending_cmd = value;
		kbd_send(k, KBD_ACK);
		break;
	case KBD_CMD_ECHO:
		kbd_send(k, KBD_CMD_ECHO);
		break;
	case KBD_CMD_IDENTIFY:
		kbd_send(k, KBD_ACK);
		kbd_send(k, KBD_ID_1);
		kbd_send(k, KBD_ID_2);
		break;
	case KBD_CMD_ENABLE:
		k->kbd_scanning = true;
		kbd_send(k, KBD_ACK);
		break;
	case KBD_CMD_DISABLE:
		kbd_set_defaults(k);
		k->kbd_scanning = false;
		kbd_send(k, KBD_ACK);
		break;
	case KBD_CMD_DEFAULTS:
		kbd_set_defaults(k);
		kbd_send(k, KBD_ACK);
		break;
	case 0xf7 ... 0xfd: /* set-3 key modes: acknowledged, nothing to change */
		kbd_send(k, KBD_ACK);
		break;
	case KBD_CMD_RESEND:
		queue_push(k, k->kbd_last_sent, false);
		break;
	case KBD_CMD_RESET:
		kbd_set_defaults(k);
		kbd_send(k, KBD_ACK);
		kbd_send(k, KBD_BAT_OK);
		break;
	default:
		kbd_send(k, KBD_NAK);
		break;
	}
}

/* Returns true when the write asks for a reset (bit 0 of the output port driven low). */
static bool write_outport(struct i8042 *k, uint8_t value)
{
	k->outport = value;
	return !(value & OUTPORT_RESET_HIGH);
}

static void write_ctr(struct i8042 *k, uint8_t value)
{
	k->ram[0] = value;
	k->sys_flag = value & CTR_SYS;
}

static bool write_data(struct i8042 *k, uint8_t value)
{
	uint8_t cmd = k->pending_cmd;

	k->last_write_cmd = false;
	k->timeout = false;
	k->pending_cmd = 0;
	switch (cmd) {
	case 0:
		kbd_write(k, value);
		break;
	case CMD_WRITE_RAM ... CMD_WRITE_RAM + RAM_SIZE - 1:
		if (cmd == CMD_WRITE_RAM)
			write_ctr(k, value);
		else
			k->ram[cmd - CMD_WRITE_RAM] = value;
		break;
	case CMD_WRITE_OUTPORT:
		return write_outport(k, value);
	case CMD_WRITE_KBD_OBUF:
		queue_push(k, value, false);
		break;
	case CMD_WRITE_AUX_OBUF:
		/* No aux port to loop it through: the byte comes back unmarked, which Linux's
		 * loopback test takes as a failure without reading it. */
		queue_push(k, value, false);
		break;
	case CMD_WRITE_AUX:
		/* No mouse clocks the byte in: it is lost, and the controller says so. */
		k->timeout = true;
		break;
	}
	return false;
}

static bool write_command(struct i8042 *k, uint8_t cmd)
{
	k->last_write_cmd = true;
	k->timeout = false;
	k->pending_cmd = 0; /* a new command abandons one still waiting for its data */
	switch (cmd) {
	case CMD_READ_RAM ... CMD_READ_RAM + RAM_SIZE - 1:
		queue_push(k, k->ram[cmd - CMD_READ_RAM], false);
		break;
	case CMD_WRITE_RAM ... CMD_WRITE_RAM + RAM_SIZE - 1:
	case CMD_WRITE_OUTPORT:
	case CMD_WRITE_KBD_OBUF:
	case CMD_WRITE_AUX_OBUF:
	case CMD_WRITE_AUX:
		k->pending_cmd = cmd;
		break;
	case CMD_AUX_DISABLE:
		k->ram[0] |= CTR_AUX_DIS;
		break;
	case CMD_AUX_ENABLE:
		break; /* no port to enable: the aux-disable bit stays set */
	case CMD_AUX_TEST:
		queue_push(k, PORT_TEST_CLK_LOW, false);
		break;
	case CMD_KBD_TEST:
		queue_push(k, PORT_TEST_OK, false);
		break;
	case CMD_SELF_TEST:
		k->sys_flag = true;
		queue_push(k, SELF_TEST_OK, false);
		break;
	case CMD_KBD_DISABLE:
		k->ram[0] |= CTR_KBD_DIS;
		break;
	case CMD_KBD_ENABLE:
		k->ram[0] &= ~CTR_KBD_DIS;
		break;
	case CMD_READ_OUTPORT:
		queue_push(k, k->outport, false);
		break;
	case CMD_PULSE ... 0xff:
		return !(cmd & OUTPORT_RESET_HIGH);
	default:
		log_debug("i8042: ignoring controller command 0x%02x", cmd);
		break;
	}
	return false;
}

/* The VM stops every vCPU on a reset, which may wait for one that is blocked on our lock:
 * ask only after dropping it. */
static void request_reset(struct i8042 *k)
{
	power_request_stop(&k->power, VM_STOP_RESET, "i8042 reset");
}

/* Both registers are one byte: a wider access reaches the register at its first byte, and
 * reads fill the rest with zeros. The data and command ports differ only in which register
 * function they call. */
static void port_read(struct i8042 *k, uint8_t (*read_reg)(struct i8042 *), uint64_t offset,
		      void *data, uint32_t len)
{
	uint8_t value = 0;

	if (!len)
		return;
	pthread_mutex_lock(&k->lock);
	if (offset == 0)
		value = read_reg(k);
	pthread_mutex_unlock(&k->lock);
	memset(data, 0, len);
	*(uint8_t *)data = value;
}

static void port_write(struct i8042 *k, bool (*write_reg)(struct i8042 *, uint8_t),
		       uint64_t offset, const void *data, uint32_t len)
{
	bool reset;

	if (!len || offset != 0)
		return;
	pthread_mutex_lock(&k->lock);
	reset = write_reg(k, *(const uint8_t *)data);
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
	/* Outside the lock: stopping the VM may come back into the device. */
	if (reset)
		request_reset(k);
}

static void data_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	port_read(opaque, read_data, offset, data, len);
}

static void data_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	port_write(opaque, write_data, offset, data, len);
}

static void cmd_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	port_read(opaque, read_status, offset, data, len);
}

static void cmd_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	port_write(opaque, write_command, offset, data, len);
}

const struct bus_device_ops i8042_data_ops = {.read = data_read, .write = data_write};

const struct bus_device_ops i8042_cmd_ops = {.read = cmd_read, .write = cmd_write};

static void i8042_device_destroy(struct vm_device *dev)
{
	i8042_destroy((struct i8042 *)dev);
}

#define I8042_STATE_VERSION 1

/* The controller's RAM, output port and flags, the keyboard's mode and the output queue, oldest
 * byte first. */
static int i8042_device_save(struct vm_device *dev, struct state_writer *w)
{
	struct i8042 *k = (struct i8042 *)dev;

	pthread_mutex_lock(&k->lock);
	state_begin(w, VM_DEVICE_I8042, I8042_STATE_VERSION);
	state_put_bytes(w, k->ram, RAM_SIZE);
	state_put_u8(w, k->outport);
	state_put_bool(w, k->sys_flag);
	state_put_bool(w, k->last_write_cmd);
	state_put_bool(w, k->timeout);
	state_put_u8(w, k->pending_cmd);
	state_put_u8(w, k->last_read);
	state_put_bool(w, k->kbd_scanning);
	state_put_u8(w, k->kbd_scancode_set);
	state_put_u8(w, k->kbd_pending_cmd);
	state_put_u8(w, k->kbd_last_sent);
	state_put_u32(w, k->count);
	for (unsigned i = 0; i < k->count; i++) {
		const struct output_byte *b = &k->queue[(k->head + i) % I8042_QUEUE_SIZE];

		state_put_u8(w, b->value);
		state_put_bool(w, b->aux);
	}
	state_end(w);
	pthread_mutex_unlock(&k->lock);
	return state_writer_status(w);
}

static int i8042_device_restore(struct vm_device *dev, struct state_reader *r)
{
	struct i8042 *k = (struct i8042 *)dev;
	struct i8042 in;
	uint16_t version;
	uint32_t count = 0;

	memset(&in, 0, sizeof(in));
	if (state_open(r, VM_DEVICE_I8042, I8042_STATE_VERSION, &version))
		return state_reader_status(r);
	state_get_bytes(r, in.ram, RAM_SIZE);
	state_get_u8(r, &in.outport);
	state_get_bool(r, &in.sys_flag);
	state_get_bool(r, &in.last_write_cmd);
	state_get_bool(r, &in.timeout);
	state_get_u8(r, &in.pending_cmd);
	state_get_u8(r, &in.last_read);
	state_get_bool(r, &in.kbd_scanning);
	state_get_u8(r, &in.kbd_scancode_set);
	state_get_u8(r, &in.kbd_pending_cmd);
	state_get_u8(r, &in.kbd_last_sent);
	state_get_u32(r, &count);
	if (!state_reader_status(r) && count > I8042_QUEUE_SIZE)
		state_refuse(r, "i8042: %u queued bytes, more than the %d it holds", count,
			     I8042_QUEUE_SIZE);
	if (!state_reader_status(r) && (in.kbd_scancode_set < 1 || in.kbd_scancode_set > 3))
		state_refuse(r, "i8042: scancode set %u", in.kbd_scancode_set);
	for (uint32_t i = 0; !state_reader_status(r) && i < count; i++) {
		state_get_u8(r, &in.queue[i].value);
		state_get_bool(r, &in.queue[i].aux);
	}
	if (state_close(r))
		return state_reader_status(r);

	pthread_mutex_lock(&k->lock);
	memcpy(k->ram, in.ram, RAM_SIZE);
	k->outport = in.outport;
	k->sys_flag = in.sys_flag;
	k->last_write_cmd = in.last_write_cmd;
	k->timeout = in.timeout;
	k->pending_cmd = in.pending_cmd;
	k->last_read = in.last_read;
	k->kbd_scanning = in.kbd_scanning;
	k->kbd_scancode_set = in.kbd_scancode_set;
	k->kbd_pending_cmd = in.kbd_pending_cmd;
	k->kbd_last_sent = in.kbd_last_sent;
	memcpy(k->queue, in.queue, sizeof(k->queue));
	k->head = 0;
	k->count = count;
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static const struct vm_device_ops i8042_device_ops = {
	.name = "i8042",
	.destroy = i8042_device_destroy,
	.save = i8042_device_save,
	.restore = i8042_device_restore,
};

struct i8042 *i8042_create(const struct irq_line *kbd_irq, const struct power_ctl *power)
{
	struct i8042 *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	if (pthread_mutex_init(&k->lock, NULL)) {
		free(k);
		return NULL;
	}
	if (kbd_irq)
		k->kbd_irq = *kbd_irq;
	if (power)
		k->power = *power;
	/* The state firmware leaves behind: self-test passed, reset line high, A20 on. */
	write_ctr(k, CTR_DEFAULT);
	k->outport = OUTPORT_RESET_HIGH | OUTPORT_A20;
	kbd_set_defaults(k);
	vm_device_init(&k->dev, VM_DEVICE_I8042, &i8042_device_ops, NULL);
	return k;
}

struct vm_device *i8042_device(struct i8042 *k)
{
	return k ? &k->dev : NULL;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int i8042_inject_scancodes(struct i8042 *k, const uint8_t *codes, size_t n)
{
	int ret = 0;

	if (n && !codes)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	/* A disabled keyboard does not send: the keystrokes would land in the middle of the
	 * guest's command exchanges. */
	if (!k->kbd_scanning || (k->ram[0] & CTR_KBD_DIS)) {
		ret = -EAGAIN;
	} else if (n > I8042_QUEUE_SIZE - k->count) {
		ret = -ENOSPC;
	} else {
		for (size_t i = 0; i < n; i++)
			queue_push(k, codes[i], false);
		update_irq(k);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}
