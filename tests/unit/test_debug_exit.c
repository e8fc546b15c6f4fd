/* The debug-exit device (--debug-exit): a write of v asks for exit status (v << 1) | 1 whatever
 * its width and offset in the range; reads change nothing; a device without a power hook (NULL)
 * takes writes without a crash. */
#include "devices/debug_exit.h"
#include "base/device.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct fixture {
	struct debug_exit *de;
	int exits, last_status;
	char why[128];
};

static void fake_request_exit(void *ctx, int status, const char *why)
{
	struct fixture *f = ctx;

	f->exits++;
	f->last_status = status;
	strncpy(f->why, why, sizeof(f->why) - 1);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct power_ctl power = {.request_exit = fake_request_exit, .ctx = f};

	assert_non_null(f);
	f->de = debug_exit_create(&power);
	assert_non_null(f->de);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct vm_device *dev = debug_exit_device(f->de);

	assert_int_equal(dev->kind, VM_DEVICE_DEBUG_EXIT);
	dev->ops->destroy(dev);
	free(f);
	return 0;
}

static void test_status_encoding(void **state)
{
	assert_int_equal(debug_exit_status(0), 1);
	assert_int_equal(debug_exit_status(1), 3);
	assert_int_equal(debug_exit_status(0x15), 43);
	assert_int_equal(debug_exit_status(0x7f), 255);
	/* exit(2) keeps the low 8 bits, as QEMU's exit((v << 1) | 1) does. */
	assert_int_equal(debug_exit_status(0x80), 1);
	assert_int_equal(debug_exit_status(0xffffffff), 255);
}

static void test_each_width_ends_with_its_value(void **state)
{
	struct fixture *f = *state;
	uint8_t b = 0x05;
	uint16_t w = 0x0011;
	uint32_t d = 0x00000021;

	debug_exit_ops.write(f->de, 0, &b, 1);
	assert_int_equal(f->exits, 1);
	assert_int_equal(f->last_status, 11);
	assert_non_null(strstr(f->why, "0x5"));
	debug_exit_ops.write(f->de, 0, &w, 2);
	assert_int_equal(f->last_status, 0x23);
	debug_exit_ops.write(f->de, 3, &d, 4); /* any offset of the range */
	assert_int_equal(f->last_status, 0x43);
	assert_int_equal(f->exits, 3);
}

static void test_reads_do_nothing(void **state)
{
	struct fixture *f = *state;
	uint32_t v = 0xdeadbeef;

	debug_exit_ops.read(f->de, 0, &v, 4);
	assert_int_equal(v, 0);
	assert_int_equal(f->exits, 0);
}

static void test_without_power_hook(void **state)
{
	struct debug_exit *de = debug_exit_create(NULL);
	uint8_t b = 1;

	assert_non_null(de);
	debug_exit_ops.write(de, 0, &b, 1);
	debug_exit_device(de)->ops->destroy(debug_exit_device(de));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_encoding),
	    cmocka_unit_test_setup_teardown(test_each_width_ends_with_its_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reads_do_nothing, setup, teardown),
	    cmocka_unit_test(test_without_power_hook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
