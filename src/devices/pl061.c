#include "devices/pl061.h"
#include "base/device.h"
#include "base/state.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Register offsets (PL061 TRM, DDI 0190). 0x000-0x3fc is GPIODATA: address bits [9:2] mask
 * which lines a read returns and a write changes. */
#define REG_DATA_END 0x400
#define REG_DIR	     0x400 /* 1: output */
#define REG_IS	     0x404 /* interrupt sense, 1: level */
#define REG_IBE	     0x408 /* 1: both edges (IEV ignored) */
#define REG_IEV	     0x40c /* 1: rising edge or high level */
#define REG_IE	     0x410 /* interrupt mask, 1: enabled */
#define REG_RIS	     0x414 /* raw interrupt status (read only) */
#define REG_MIS	     0x418 /* masked interrupt status (read only) */
#define REG_IC	     0x41c /* interrupt clear, edge interrupts (write only) */
#define REG_AFSEL    0x420
#define REG_ID_START 0xfe0 /* PeriphID0..3, then PCellID0..3 at 0xff0 */

static const uint8_t pl061_id[8] = {0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1};

struct pl061 {
	struct vm_device dev; /* its entry in the VM's device list */
	pthread_mutex_t lock;
	struct irq_line irq;
	bool irq_level; /* last level sent */

	uint8_t data;	/* output register: what output lines drive */
	uint8_t input;	/* what the outside world drives on the lines */
	uint8_t dir, is, ibe, iev, ie, afsel;
	uint8_t edge_ris; /* latched edge interrupts */
};

/* Level-sensitive lines have their status follow the line; edge-sensitive ones keep what
 * was latched until cleared. */
static uint8_t raw_status(const struct pl061 *g)
{
	uint8_t active = (uint8_t)~(g->input ^ g->iev); /* line at the IEV polarity */

	return (uint8_t)((g->edge_ris & ~g->is) | (active & g->is));
}

/* Called with the lock held, so that levels reach the interrupt controller in order. */
static void update_irq(struct pl061 *g)
{
	bool level = (raw_status(g) & g->ie) != 0;

	if (level == g->irq_level)
		return;
	g->irq_level = level;
	irq_line_set(&g->irq, level);
}

/* What the data register reads on each line: outputs their driven value, inputs the world. */
static uint8_t line_values(const struct pl061 *g)
{
	return (uint8_t)((g->data & g->dir) | (g->input & ~g->dir));
}

static uint32_t read_reg(struct pl061 *g, uint64_t offset)
{
	if (offset < REG_DATA_END)
		return line_values(g) & (uint8_t)(offset >> 2);
	if (offset >= REG_ID_START)
		return pl061_id[(offset - REG_ID_START) >> 2];
	switch (offset) {
	case REG_DIR:
		return g->dir;
	case REG_IS:
		return g->is;
	case REG_IBE:
		return g->ibe;
	case REG_IEV:
		return g->iev;
	case REG_IE:
		return g->ie;
	case REG_RIS:
		return raw_status(g);
	case REG_MIS:
		return raw_status(g) & g->ie;
	case REG_AFSEL:
		return g->afsel;
	default:
		return 0;
	}
}

static void write_reg(struct pl061 *g, uint64_t offset, uint8_t v)
{
	if (offset < REG_DATA_END) {
		uint8_t mask = (uint8_t)(offset >> 2);

		g->data = (uint8_t)((g->data & ~mask) | (v & mask));
		return;
	}
	switch (offset) {
	case REG_DIR:
		g->dir = v;
		break;
	case REG_IS:
		g->is = v;
		break;
	case REG_IBE:
		g->ibe = v;
		break;
	case REG_IEV:
		g->iev = v;
		break;
	case REG_IE:
		g->ie = v;
		break;
	case REG_IC:
		g->edge_ris &= (uint8_t)~v;
		break;
	case REG_AFSEL:
		g->afsel = v;
		break;
	default:
		break; /* read-only or reserved: ignored */
	}
}

/* Registers are 32 bits wide with 8 meaningful bits; Linux's driver uses byte accesses, the
 * AMBA bus word reads of the ID registers. Any access within one word works: bytes 1-3 read as
 * zero, and only a write that covers byte 0 changes the register. */
static void pl061_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct pl061 *g = opaque;
	uint32_t v;

	memset(data, 0, len);
	if ((offset & 3) + len > 4 || offset >= PL061_SIZE)
		return;
	pthread_mutex_lock(&g->lock);
	v = read_reg(g, offset & ~3ULL) >> (8 * (offset & 3));
	pthread_mutex_unlock(&g->lock);
	memcpy(data, &v, len);
}

static void pl061_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct pl061 *g = opaque;
	uint8_t v;

	if ((offset & 3) || len > 4 || !len || offset >= PL061_SIZE)
		return;
	memcpy(&v, data, 1);
	pthread_mutex_lock(&g->lock);
	write_reg(g, offset, v);
	update_irq(g);
	pthread_mutex_unlock(&g->lock);
}

const struct bus_device_ops pl061_ops = {.read = pl061_read, .write = pl061_write};

int pl061_set_input(struct pl061 *g, unsigned line, bool level)
{
	uint8_t bit, old;

	if (line >= PL061_NR_LINES)
		return -EINVAL;
	bit = (uint8_t)(1u << line);
	pthread_mutex_lock(&g->lock);
	old = g->input;
	g->input = level ? (uint8_t)(old | bit) : (uint8_t)(old & ~bit);
	/* An edge on an edge-sensitive line: either one with IBE, else the IEV one. */
	if ((old ^ g->input) & bit & ~g->is) {
		bool rising = level;

		if ((g->ibe & bit) || (rising == ((g->iev & bit) != 0)))
			g->edge_ris |= bit;
	}
	update_irq(g);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static void pl061_device_destroy(struct vm_device *dev)
{
	pl061_destroy((struct pl061 *)dev);
}

/* The saved state, version 1 (base/state.h): u8 data, input, dir, is, ibe, iev, ie, afsel,
 * edge_ris. The interrupt line's level is not saved: restore drives it from the registers. */
#define PL061_STATE_VERSION 1

static int pl061_device_save(struct vm_device *dev, struct state_writer *w)
{
	struct pl061 *g = (struct pl061 *)dev;

	pthread_mutex_lock(&g->lock);
	state_begin(w, VM_DEVICE_PL061, PL061_STATE_VERSION);
	state_put_u8(w, g->data);
	state_put_u8(w, g->input);
	state_put_u8(w, g->dir);
	state_put_u8(w, g->is);
	state_put_u8(w, g->ibe);
	state_put_u8(w, g->iev);
	state_put_u8(w, g->ie);
	state_put_u8(w, g->afsel);
	state_put_u8(w, g->edge_ris);
	state_end(w);
	pthread_mutex_unlock(&g->lock);
	return state_writer_status(w);
}

/* Every 8-bit value of each register is a state a PL061 can be in (an edge latched before its
 * line became level-sensitive stays latched, unseen): only the section's shape is checked, and
 * it is read whole first, so that a refusal changes nothing. */
static int pl061_device_restore(struct vm_device *dev, struct state_reader *r)
{
	struct pl061 *g = (struct pl061 *)dev;
	uint8_t v[9] = {0};
	uint16_t version;

	if (state_open(r, VM_DEVICE_PL061, PL061_STATE_VERSION, &version))
		return state_reader_status(r);
	for (size_t i = 0; i < sizeof(v); i++)
		state_get_u8(r, &v[i]);
	if (state_close(r))
		return state_reader_status(r);

	pthread_mutex_lock(&g->lock);
	g->data = v[0];
	g->input = v[1];
	g->dir = v[2];
	g->is = v[3];
	g->ibe = v[4];
	g->iev = v[5];
	g->ie = v[6];
	g->afsel = v[7];
	g->edge_ris = v[8];
	/* The interrupt controller's copy of the line came back with the VM's state: sending the
	 * level again is harmless, and a fresh device's cached level (low) may not be it. */
	g->irq_level = !((raw_status(g) & g->ie) != 0);
	update_irq(g);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static const struct vm_device_ops pl061_device_ops = {
	.name = "pl061",
	.destroy = pl061_device_destroy,
	.save = pl061_device_save,
	.restore = pl061_device_restore,
};

struct pl061 *pl061_create(const struct irq_line *irq)
{
	struct pl061 *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	if (pthread_mutex_init(&g->lock, NULL)) {
		free(g);
		return NULL;
	}
	if (irq)
		g->irq = *irq;
	vm_device_init(&g->dev, VM_DEVICE_PL061, &pl061_device_ops, NULL);
	return g;
}

struct vm_device *pl061_device(struct pl061 *g)
{
	return g ? &g->dev : NULL;
}

void pl061_destroy(struct pl061 *g)
{
	if (!g)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g);
}
