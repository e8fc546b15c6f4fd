/* The PL061 GPIO controller: the data register's address masking, inputs and outputs, the
 * PrimeCell ID Linux's AMBA bus checks, edge (one, both) and level interrupts with their mask,
 * clear and the combined interrupt line, byte and word accesses, and hostile accesses. Register
 * layout and semantics from the PL061 TRM (ARM DDI 0190), not from the device's source. */
#include "devices/pl061.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define GPIODIR	  0x400
#define GPIOIS	  0x404
#define GPIOIBE	  0x408
#define GPIOIEV	  0x40c
#define GPIOIE	  0x410
#define GPIORIS	  0x414
#define GPIOMIS	  0x418
#define GPIOIC	  0x41c
#define TEST_GSI  3

struct fake_irq {
	bool level;
	int calls;
	int wrong_gsi;
};

static void fake_set_level(void *ctx, uint32_t gsi, bool level)
{
	struct fake_irq *f = ctx;

	f->wrong_gsi += gsi != TEST_GSI;
	f->level = level;
	f->calls++;
}

struct fixture {
	struct fake_irq irq;
	struct pl061 *gpio;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct irq_line line = {.set_level = fake_set_level, .gsi = TEST_GSI};

	line.ctx = &f->irq;
	f->gpio = pl061_create(&line);
	assert_non_null(f->gpio);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pl061_destroy(f->gpio);
	free(f);
	return 0;
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	pl061_ops.read(f->gpio, off, &v, 4);
	return v;
}

static uint8_t rd8(struct fixture *f, uint64_t off)
{
	uint8_t v = 0xee;

	pl061_ops.read(f->gpio, off, &v, 1);
	return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t v)
{
	pl061_ops.write(f->gpio, off, &v, 4);
}

static void wr8(struct fixture *f, uint64_t off, uint8_t v)
{
	pl061_ops.write(f->gpio, off, &v, 1);
}

/* GPIODATA at 0x000 + (mask << 2). */
static uint64_t data_at(uint8_t mask)
{
	return (uint64_t)mask << 2;
}

static void test_primecell_id(void **state)
{
	struct fixture *f = *state;
	uint32_t periph = 0, cell = 0;

	for (int i = 0; i < 4; i++) {
		periph |= (rd(f, 0xfe0 + 4 * i) & 0xff) << (8 * i);
		cell |= (rd(f, 0xff0 + 4 * i) & 0xff) << (8 * i);
	}
	assert_int_equal(periph & 0x000fffff, 0x00041061); /* Linux's pl061 amba_id */
	assert_int_equal(cell, 0xb105f00d);
}

static void test_reset_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, GPIODIR), 0); /* all inputs */
	assert_int_equal(rd(f, GPIOIE), 0);
	assert_int_equal(rd(f, GPIORIS), 0);
	assert_int_equal(rd(f, data_at(0xff)), 0);
	assert_int_equal(f->irq.calls, 0);
}

static void test_data_masking_and_directions(void **state)
{
	struct fixture *f = *state;

	wr(f, GPIODIR, 0x0f); /* lines 0-3 outputs, 4-7 inputs */
	assert_int_equal(rd(f, GPIODIR), 0x0f);
	wr(f, data_at(0xff), 0xff);
	assert_int_equal(rd(f, data_at(0xff)), 0x0f); /* inputs read the world: low */
	wr(f, data_at(0x03), 0x00);		       /* only lines 0 and 1 change */
	assert_int_equal(rd(f, data_at(0xff)), 0x0c);
	assert_int_equal(rd(f, data_at(0x04)), 0x04); /* a read sees only its mask's lines */
	assert_int_equal(rd(f, data_at(0x00)), 0x00);
	assert_int_equal(pl061_set_input(f->gpio, 5, true), 0);
	assert_int_equal(rd(f, data_at(0xf0)), 0x20);
	assert_int_equal(rd8(f, data_at(0x20)), 0x20); /* Linux reads it with readb */
	/* The world's level on an output line does not show: the output drives it. */
	assert_int_equal(pl061_set_input(f->gpio, 0, true), 0);
	assert_int_equal(rd(f, data_at(0x01)), 0x00);
	assert_int_equal(pl061_set_input(f->gpio, 8, true), -EINVAL);
}

static void test_rising_edge_interrupt(void **state)
{
	struct fixture *f = *state;

	wr8(f, GPIOIEV, 0x02); /* line 1: rising edge (IS 0: edge) */
	wr8(f, GPIOIE, 0x02);
	pl061_set_input(f->gpio, 1, true);
	assert_int_equal(rd(f, GPIORIS), 0x02);
	assert_int_equal(rd(f, GPIOMIS), 0x02);
	assert_true(f->irq.level);
	/* Latched: the line going low again does not clear it, GPIOIC does. */
	pl061_set_input(f->gpio, 1, false);
	assert_int_equal(rd(f, GPIORIS), 0x02);
	wr8(f, GPIOIC, 0x02);
	assert_int_equal(rd(f, GPIORIS), 0);
	assert_false(f->irq.level);
	assert_int_equal(f->irq.wrong_gsi, 0);
}

static void test_falling_edge_and_mask(void **state)
{
	struct fixture *f = *state;

	pl061_set_input(f->gpio, 2, true);
	assert_int_equal(rd(f, GPIORIS), 0); /* IEV 0: falling; a rising edge does nothing... */
	pl061_set_input(f->gpio, 2, true);
	assert_int_equal(rd(f, GPIORIS), 0); /* ...and no change is no edge */
	pl061_set_input(f->gpio, 2, false);
	assert_int_equal(rd(f, GPIORIS), 0x04);
	assert_int_equal(rd(f, GPIOMIS), 0); /* masked: no interrupt */
	assert_false(f->irq.level);
	wr8(f, GPIOIE, 0x04); /* unmasking a pending one raises the line */
	assert_true(f->irq.level);
	wr8(f, GPIOIE, 0x00);
	assert_false(f->irq.level);
}

static void test_both_edges(void **state)
{
	struct fixture *f = *state;

	/* What gpio-keys asks for: both edges, so a press and a release both interrupt. */
	wr8(f, GPIOIBE, 0x80);
	wr8(f, GPIOIE, 0x80);
	pl061_set_input(f->gpio, 7, true);
	assert_true(f->irq.level);
	assert_int_equal(rd8(f, data_at(0x80)), 0x80);
	wr8(f, GPIOIC, 0x80);
	assert_false(f->irq.level);
	pl061_set_input(f->gpio, 7, false);
	assert_true(f->irq.level);
	assert_int_equal(rd(f, GPIOMIS), 0x80);
	wr8(f, GPIOIC, 0x80);
	assert_false(f->irq.level);
}

static void test_level_interrupt(void **state)
{
	struct fixture *f = *state;

	wr8(f, GPIOIS, 0x01);  /* line 0: level */
	wr8(f, GPIOIEV, 0x01); /* high */
	wr8(f, GPIOIE, 0x01);
	assert_false(f->irq.level);
	pl061_set_input(f->gpio, 0, true);
	assert_true(f->irq.level);
	wr8(f, GPIOIC, 0x01); /* a level interrupt cannot be cleared while the level holds */
	assert_true(f->irq.level);
	assert_int_equal(rd(f, GPIORIS), 0x01);
	pl061_set_input(f->gpio, 0, false);
	assert_false(f->irq.level);
	wr8(f, GPIOIEV, 0x00); /* low level: active now */
	assert_true(f->irq.level);
}

static void test_hostile_accesses(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[8];
	uint32_t v = 0xff;

	wr(f, GPIORIS, 0xff); /* read-only */
	wr(f, GPIOMIS, 0xff);
	wr(f, 0xfe0, 0xff);
	wr(f, 0x800, 0xff); /* reserved */
	assert_int_equal(rd(f, GPIORIS), 0);
	assert_int_equal(rd(f, 0xfe0), 0x61);
	assert_int_equal(rd(f, 0x800), 0);
	/* Unaligned and straddling accesses: nothing changes, reads see zeros. */
	pl061_ops.write(f->gpio, GPIODIR + 1, &v, 1);
	pl061_ops.write(f->gpio, GPIODIR + 2, &v, 4);
	assert_int_equal(rd(f, GPIODIR), 0);
	memset(buf, 0xaa, sizeof(buf));
	pl061_ops.read(f->gpio, 0xffe, buf, 4);
	assert_int_equal(buf[0] | buf[1] | buf[2] | buf[3], 0);
	pl061_ops.read(f->gpio, 0x1000, buf, 8);
	assert_int_equal(buf[0] | buf[7], 0);
	pl061_ops.read(f->gpio, GPIODIR + 1, buf, 1);
	assert_int_equal(buf[0], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_primecell_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_masking_and_directions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rising_edge_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_falling_edge_and_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_accesses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
