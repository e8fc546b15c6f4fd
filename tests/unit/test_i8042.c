/* The i8042 controller and its keyboard: the probe sequence Linux's i8042 and atkbd drivers
 * run, both reset paths, the IRQ 1 level, injected scancodes, and hostile access patterns.
 * Values come from the i8042/AT keyboard documentation, not from the device's source. */
#include "devices/i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define TEST_GSI 1

#define STS_OBF	    0x01
#define STS_IBF	    0x02
#define STS_SYS	    0x04
#define STS_CMD	    0x08
#define STS_AUX_OBF 0x20
#define STS_TIMEOUT 0x40

#define CTR_KBD_INT 0x01
#define CTR_SYS	    0x04
#define CTR_KBD_DIS 0x10
#define CTR_AUX_DIS 0x20
#define CTR_XLATE   0x40

struct fake_irq {
	bool level;
	int calls;
	int repeats;
	int wrong_gsi;
};

static void fake_set_level(void *ctx, uint32_t gsi, bool level)
{
	struct fake_irq *f = ctx;

	if (level == f->level)
		f->repeats++;
	if (gsi != TEST_GSI)
		f->wrong_gsi++;
	f->level = level;
	f->calls++;
}

struct fixture {
	struct fake_irq irq;
	struct i8042 *kbd;
	int stops;
	enum vm_stop_reason reason;
	char why[64];
	uint8_t status_in_callback;
};

static uint8_t status(struct i8042 *k)
{
	uint8_t v = 0xa5;

	i8042_cmd_ops.read(k, 0, &v, 1);
	return v;
}

static void fake_request_stop(void *ctx, enum vm_stop_reason reason, const char *why)
{
	struct fixture *f = ctx;

	f->stops++;
	f->reason = reason;
	snprintf(f->why, sizeof(f->why), "%s", why);
	/* The VM may call back into devices (or wait for a vCPU that does) while it stops:
	 * the device must not hold its lock here. A held lock hangs, and alarm() fails it. */
	f->status_in_callback = status(f->kbd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct irq_line line = {.set_level = fake_set_level, .ctx = &f->irq, .gsi = TEST_GSI};
	struct power_ctl power = {.request_stop = fake_request_stop, .ctx = f};

	assert_non_null(f);
	f->kbd = i8042_create(&line, &power);
	assert_non_null(f->kbd);
	memset(&line, 0, sizeof(line));
	memset(&power, 0, sizeof(power));
	*state = f;
	alarm(20);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	alarm(0);
	i8042_destroy(f->kbd);
	assert_int_equal(f->irq.repeats, 0);
	assert_int_equal(f->irq.wrong_gsi, 0);
	free(f);
	return 0;
}

static void command(struct i8042 *k, uint8_t v)
{
	i8042_cmd_ops.write(k, 0, &v, 1);
}

static void data_out(struct i8042 *k, uint8_t v)
{
	i8042_data_ops.write(k, 0, &v, 1);
}

static uint8_t data_in(struct i8042 *k)
{
	uint8_t v = 0xa5;

	i8042_data_ops.read(k, 0, &v, 1);
	return v;
}

/* Reads one byte the way Linux's i8042_wait_read does: only once OBF says it is there. */
static uint8_t expect_byte(struct i8042 *k)
{
	assert_true(status(k) & STS_OBF);
	return data_in(k);
}

static void expect_empty(struct i8042 *k)
{
	assert_false(status(k) & STS_OBF);
}

static uint8_t read_ctr(struct i8042 *k)
{
	command(k, 0x20);
	return expect_byte(k);
}

static void test_initial_status(void **state)
{
	struct fixture *f = *state;
	uint8_t s = status(f->kbd);

	assert_int_equal(s & (STS_OBF | STS_IBF | STS_AUX_OBF | STS_TIMEOUT), 0);
	assert_int_equal(s & STS_SYS, STS_SYS);
	/* Linux keeps translation on when firmware left it on, and wants the kbd interrupt. */
	assert_int_equal(read_ctr(f->kbd) & (CTR_KBD_INT | CTR_XLATE), CTR_KBD_INT | CTR_XLATE);
}

static void test_self_tests(void **state)
{
	struct fixture *f = *state;

	command(f->kbd, 0xaa);
	assert_int_equal(status(f->kbd) & (STS_OBF | STS_CMD | STS_SYS),
			 STS_OBF | STS_CMD | STS_SYS);
	assert_int_equal(data_in(f->kbd), 0x55);
	expect_empty(f->kbd);
	command(f->kbd, 0xab);
	assert_int_equal(expect_byte(f->kbd), 0x00);
	/* No aux port: its interface test reports the clock line stuck low. */
	command(f->kbd, 0xa9);
	assert_int_equal(expect_byte(f->kbd), 0x01);
	expect_empty(f->kbd);
}

static void test_sys_flag_follows_self_test(void **state)
{
	struct fixture *f = *state;

	command(f->kbd, 0x60);
	assert_false(status(f->kbd) & STS_IBF);
	data_out(f->kbd, CTR_KBD_INT);
	assert_false(status(f->kbd) & STS_CMD); /* the last write went to the data port */
	assert_false(status(f->kbd) & STS_SYS);
	command(f->kbd, 0xaa);
	assert_int_equal(expect_byte(f->kbd), 0x55);
	assert_true(status(f->kbd) & STS_SYS);
}

static void test_ctr_read_write(void **state)
{
	struct fixture *f = *state;

	command(f->kbd, 0x60);
	data_out(f->kbd, 0x00);
	assert_int_equal(read_ctr(f->kbd), 0x00);
	command(f->kbd, 0x60);
	data_out(f->kbd, 0x47);
	assert_int_equal(read_ctr(f->kbd), 0x47);

	/* Port enable/disable commands flip their CTR bits, except that there is no aux port to
	 * enable: Linux's AUX bit-assignment test sees the aux-disable bit stay set. */
	command(f->kbd, 0xa7);
	assert_int_equal(read_ctr(f->kbd), 0x47 | CTR_AUX_DIS);
	command(f->kbd, 0xa8);
	assert_int_equal(read_ctr(f->kbd), 0x47 | CTR_AUX_DIS);
	command(f->kbd, 0x60);
	data_out(f->kbd, 0x47);
	command(f->kbd, 0xad);
	assert_int_equal(read_ctr(f->kbd), 0x47 | CTR_KBD_DIS);
	command(f->kbd, 0xae);
	assert_int_equal(read_ctr(f->kbd), 0x47);

	/* The rest of the controller RAM. */
	command(f->kbd, 0x7f);
	data_out(f->kbd, 0x9c);
	command(f->kbd, 0x3f);
	assert_int_equal(expect_byte(f->kbd), 0x9c);
	assert_int_equal(read_ctr(f->kbd), 0x47);
	expect_empty(f->kbd);
}

static void test_reset_by_pulse_command(void **state)
{
	struct fixture *f = *state;

	command(f->kbd, 0xff); /* pulses nothing */
	command(f->kbd, 0xfd); /* pulses bit 1 (A20) only */
	assert_int_equal(f->stops, 0);
	command(f->kbd, 0xfe);
	assert_int_equal(f->stops, 1);
	assert_int_equal(f->reason, VM_STOP_RESET);
	assert_string_equal(f->why, "i8042 reset");
	assert_false(f->status_in_callback & STS_IBF);
	command(f->kbd, 0xf0);
	assert_int_equal(f->stops, 2);
}

static void test_reset_by_output_port(void **state)
{
	struct fixture *f = *state;

	command(f->kbd, 0xd0);
	assert_int_equal(expect_byte(f->kbd) & 0x01, 0x01); /* reset line high: running */
	command(f->kbd, 0xd1);
	data_out(f->kbd, 0x03);
	assert_int_equal(f->stops, 0);
	command(f->kbd, 0xd0);
	assert_int_equal(expect_byte(f->kbd), 0x03);
	command(f->kbd, 0xd1);
	data_out(f->kbd, 0x02);
	assert_int_equal(f->stops, 1);
	assert_int_equal(f->reason, VM_STOP_RESET);
	assert_string_equal(f->why, "i8042 reset");
	/* The byte after 0xd1 was consumed: the next data byte goes to the keyboard again. */
	data_out(f->kbd, 0xf4);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	assert_int_equal(f->stops, 1);
}

static void test_keyboard_commands(void **state)
{
	struct fixture *f = *state;

	data_out(f->kbd, 0xff);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	assert_int_equal(expect_byte(f->kbd), 0xaa);
	expect_empty(f->kbd);

	data_out(f->kbd, 0xf2);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	assert_int_equal(expect_byte(f->kbd), 0xab);
	assert_int_equal(expect_byte(f->kbd), 0x83);
	expect_empty(f->kbd);

	data_out(f->kbd, 0xf5);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	data_out(f->kbd, 0xf4);
	assert_int_equal(expect_byte(f->kbd), 0xfa);

	/* Commands with an argument acknowledge both bytes. */
	data_out(f->kbd, 0xed);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	data_out(f->kbd, 0x07);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	data_out(f->kbd, 0xf3);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	data_out(f->kbd, 0x00);
	assert_int_equal(expect_byte(f->kbd), 0xfa);

	/* Scancode set: 0 asks for the current one. */
	data_out(f->kbd, 0xf0);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	data_out(f->kbd, 0x00);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	assert_int_equal(expect_byte(f->kbd), 0x02);

	data_out(f->kbd, 0xee);
	assert_int_equal(expect_byte(f->kbd), 0xee);
	data_out(f->kbd, 0x42); /* not a command */
	assert_int_equal(expect_byte(f->kbd), 0xfe);
	data_out(f->kbd, 0xf4);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	data_out(f->kbd, 0xfe); /* resend the last byte */
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	expect_empty(f->kbd);
	/* An empty buffer reads its stale contents, and does not invent a byte. */
	assert_int_equal(data_in(f->kbd), 0xfa);
	expect_empty(f->kbd);
}

static void test_irq_level(void **state)
{
	struct fixture *f = *state;

	data_out(f->kbd, 0xf4);
	assert_true(f->irq.level);
	assert_int_equal(f->irq.calls, 1);
	status(f->kbd);
	assert_true(f->irq.level); /* reading the status does not acknowledge */
	data_in(f->kbd);
	assert_false(f->irq.level);
	assert_int_equal(f->irq.calls, 2);

	/* Several bytes: every read drops the line and raises it for the next byte, so an
	 * edge-triggered controller sees one edge per byte. */
	data_out(f->kbd, 0xf2);
	assert_int_equal(f->irq.calls, 3);
	data_in(f->kbd);
	assert_true(f->irq.level);
	assert_int_equal(f->irq.calls, 5);
	data_in(f->kbd);
	assert_int_equal(f->irq.calls, 7);
	data_in(f->kbd);
	assert_false(f->irq.level);
	assert_int_equal(f->irq.calls, 8);

	/* With the keyboard interrupt off in the CTR, bytes wait without the line. */
	command(f->kbd, 0x60);
	data_out(f->kbd, CTR_XLATE | CTR_SYS);
	data_out(f->kbd, 0xf4);
	assert_true(status(f->kbd) & STS_OBF);
	assert_false(f->irq.level);
	/* ... and enabling it with a byte waiting raises it. */
	command(f->kbd, 0x60);
	data_out(f->kbd, CTR_XLATE | CTR_SYS | CTR_KBD_INT);
	assert_true(f->irq.level);
	assert_int_equal(data_in(f->kbd), 0xfa);
	assert_false(f->irq.level);
}

static void test_output_buffer_writes(void **state)
{
	struct fixture *f = *state;

	command(f->kbd, 0xd2);
	data_out(f->kbd, 0x1c);
	assert_int_equal(status(f->kbd) & (STS_OBF | STS_AUX_OBF), STS_OBF);
	assert_true(f->irq.level);
	assert_int_equal(data_in(f->kbd), 0x1c);
	assert_false(f->irq.level);

	/* AUX loopback: with no aux port the byte comes back unmarked, as keyboard-side data. */
	command(f->kbd, 0xd3);
	data_out(f->kbd, 0x5a);
	assert_int_equal(status(f->kbd) & (STS_OBF | STS_AUX_OBF), STS_OBF);
	assert_int_equal(data_in(f->kbd), 0x5a);
	expect_empty(f->kbd);

	/* A byte for the (absent) mouse: no answer, the timeout bit says so ... */
	command(f->kbd, 0xd4);
	data_out(f->kbd, 0xf2);
	assert_int_equal(status(f->kbd) & (STS_OBF | STS_TIMEOUT), STS_TIMEOUT);
	/* ... and it went nowhere near the keyboard; the next write clears the timeout. */
	command(f->kbd, 0xab);
	assert_int_equal(status(f->kbd) & STS_TIMEOUT, 0);
	assert_int_equal(expect_byte(f->kbd), 0x00);
	expect_empty(f->kbd);
}

/* The steps of Linux's i8042_check_aux() (drivers/input/serio/i8042.c) against this controller,
 * with the driver's keyboard interrupt off as its controller init leaves it: each ends in "no aux
 * port" before the IRQ 12 test that would wait 250 ms. */
static void test_linux_aux_check_finds_no_port(void **state)
{
	struct fixture *f = *state;

	command(f->kbd, 0x60);
	data_out(f->kbd, CTR_XLATE | CTR_SYS | CTR_KBD_DIS | CTR_AUX_DIS);

	/* The loopback with 0x5a: a reply arrives, but without the aux status bit, which the
	 * driver takes as a failed loop and leaves unread. */
	command(f->kbd, 0xd3);
	data_out(f->kbd, 0x5a);
	assert_int_equal(status(f->kbd) & (STS_OBF | STS_AUX_OBF), STS_OBF);
	assert_false(f->irq.level);
	/* The failed loop sends it to the external test, whose result it takes from the output
	 * buffer: neither 0x00 nor the 0xfa/0xff that some chipsets answer, so it gives up. */
	command(f->kbd, 0xa9);
	uint8_t first = data_in(f->kbd);
	assert_true(first != 0x00 && first != 0xfa && first != 0xff);
	assert_int_equal(expect_byte(f->kbd), 0x01);
	expect_empty(f->kbd);

	/* With i8042.noloop the driver skips the loopback; the test result alone says no port. */
	command(f->kbd, 0xa9);
	assert_int_equal(expect_byte(f->kbd), 0x01);
	expect_empty(f->kbd);

	/* And the bit-assignment test: enabling the aux port leaves its disable bit set. */
	command(f->kbd, 0xa7);
	command(f->kbd, 0xa8);
	assert_true(read_ctr(f->kbd) & CTR_AUX_DIS);
	expect_empty(f->kbd);
	assert_false(f->irq.level);
}

static void test_inject_scancodes(void **state)
{
	struct fixture *f = *state;
	/* Ctrl-Alt-Del in set 1: make codes, then break codes. */
	const uint8_t cad[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	uint8_t many[I8042_QUEUE_SIZE + 1];

	assert_int_equal(i8042_inject_scancodes(f->kbd, cad, sizeof(cad)), 0);
	assert_true(f->irq.level);
	for (size_t i = 0; i < sizeof(cad); i++)
		assert_int_equal(expect_byte(f->kbd), cad[i]);
	expect_empty(f->kbd);
	assert_false(f->irq.level);

	/* All or nothing. */
	memset(many, 0x1e, sizeof(many));
	assert_int_equal(i8042_inject_scancodes(f->kbd, many, sizeof(many)), -ENOSPC);
	expect_empty(f->kbd);
	assert_int_equal(i8042_inject_scancodes(f->kbd, many, I8042_QUEUE_SIZE), 0);
	assert_int_equal(i8042_inject_scancodes(f->kbd, many, 1), -ENOSPC);
	for (int i = 0; i < I8042_QUEUE_SIZE; i++)
		assert_int_equal(expect_byte(f->kbd), 0x1e);
	expect_empty(f->kbd);

	assert_int_equal(i8042_inject_scancodes(f->kbd, NULL, 0), 0);
	assert_int_equal(i8042_inject_scancodes(f->kbd, NULL, 1), -EINVAL);

	/* While the guest has the keyboard disabled nothing is typed. */
	data_out(f->kbd, 0xf5);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	assert_int_equal(i8042_inject_scancodes(f->kbd, cad, 2), -EAGAIN);
	data_out(f->kbd, 0xf4);
	assert_int_equal(expect_byte(f->kbd), 0xfa);
	command(f->kbd, 0xad);
	assert_int_equal(i8042_inject_scancodes(f->kbd, cad, 2), -EAGAIN);
	command(f->kbd, 0xae);
	assert_int_equal(i8042_inject_scancodes(f->kbd, cad, 2), 0);
}

static void test_queue_is_bounded(void **state)
{
	struct fixture *f = *state;
	int n = 0;

	for (int i = 0; i < 1000; i++)
		data_out(f->kbd, 0xf2); /* three bytes each, never read */
	while ((status(f->kbd) & STS_OBF) && n < 10000) {
		data_in(f->kbd);
		n++;
	}
	assert_int_equal(n, I8042_QUEUE_SIZE);
	assert_false(f->irq.level);
}

static void test_wide_and_stray_accesses(void **state)
{
	struct fixture *f = *state;
	uint8_t data[8];
	uint32_t word = 0x12345655; /* 0x55 is not a keyboard command: NAK */

	memset(data, 0xee, sizeof(data));
	i8042_cmd_ops.read(f->kbd, 0, data, 4);
	assert_int_equal(data[0] & STS_SYS, STS_SYS);
	assert_int_equal(data[1] | data[2] | data[3], 0);
	assert_int_equal(data[4], 0xee);
	i8042_data_ops.write(f->kbd, 0, &word, 4);
	assert_int_equal(expect_byte(f->kbd), 0xfe);
	expect_empty(f->kbd);

	/* Offsets outside the one-byte ranges and zero-length accesses do nothing. */
	i8042_cmd_ops.write(f->kbd, 1, &word, 1);
	i8042_data_ops.write(f->kbd, 7, &word, 4);
	i8042_cmd_ops.write(f->kbd, 0, &word, 0);
	expect_empty(f->kbd);
	memset(data, 0xee, sizeof(data));
	i8042_data_ops.read(f->kbd, 3, data, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(data[i], 0);
	assert_int_equal(f->stops, 0);
}

/* Random accesses to both ports, with injected scancodes mixed in: no crash, no overflow (under
 * ASan), the line only toggles, and every stop asked for is a reset. */
static void test_fuzz(void **state)
{
	struct fixture *f = *state;
	static const uint32_t lens[] = {0, 1, 2, 4, 8};
	uint8_t data[8];

	srand(8042);
	for (int i = 0; i < 200000; i++) {
		const struct bus_device_ops *ops = rand() % 2 ? &i8042_cmd_ops : &i8042_data_ops;
		uint64_t offset = rand() % 8 ? 0 : (uint64_t)rand();
		uint32_t len = lens[rand() % 5];
		int what = rand() % 10;

		for (size_t j = 0; j < sizeof(data); j++)
			data[j] = (uint8_t)rand();
		if (what == 0) {
			int ret = i8042_inject_scancodes(f->kbd, data, (size_t)(rand() % 9));

			assert_true(ret == 0 || ret == -ENOSPC || ret == -EAGAIN);
		} else if (what < 6) {
			ops->read(f->kbd, offset, data, len);
			if (ops == &i8042_cmd_ops && len && offset == 0) {
				assert_false(data[0] & STS_IBF);
				if (!(data[0] & STS_OBF))
					assert_false(f->irq.level);
			}
		} else {
			ops->write(f->kbd, offset, data, len);
		}
	}
	assert_true(f->stops > 0); /* the fuzz did reach the reset paths */
	assert_int_equal(f->reason, VM_STOP_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_initial_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_self_tests, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sys_flag_follows_self_test, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ctr_read_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_by_pulse_command, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_by_output_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keyboard_commands, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_irq_level, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_output_buffer_writes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_linux_aux_check_finds_no_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inject_scancodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_is_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wide_and_stray_accesses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
