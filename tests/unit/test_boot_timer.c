/* The boot timer: the first byte write of 123 at offset 0 records the time since the process
 * started, once; anything else leaves it unset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/boot_timer.h"
#include "base/log.h"
#include "base/uptime.h"

#include <unistd.h>

static void write_byte(struct boot_timer *bt, uint64_t off, uint8_t v)
{
	boot_timer_ops.write(bt, off, &v, 1);
}

static void test_ignores_other_writes(void **state)
{
	struct boot_timer *bt = boot_timer_create();
	uint32_t word = BOOT_TIMER_MAGIC;
	uint64_t us, q = ~0ULL;

	assert_non_null(bt);
	assert_false(boot_timer_get_us(bt, &us));
	write_byte(bt, 0, 122);
	write_byte(bt, 1, BOOT_TIMER_MAGIC); /* not offset 0 */
	write_byte(bt, BOOT_TIMER_SIZE - 1, BOOT_TIMER_MAGIC);
	boot_timer_ops.write(bt, 0, &word, 4); /* not a byte */
	assert_false(boot_timer_get_us(bt, &us));
	boot_timer_ops.read(bt, 0, &q, 8);
	assert_int_equal(q, 0);
	assert_false(boot_timer_get_us(bt, &us));
	boot_timer_destroy(bt);
}

static void test_records_first_magic_write_once(void **state)
{
	struct boot_timer *bt = boot_timer_create();
	uint64_t before, after, us, again;

	usleep(2000);
	before = uptime_us();
	write_byte(bt, 0, BOOT_TIMER_MAGIC);
	after = uptime_us();
	assert_true(boot_timer_get_us(bt, &us));
	assert_true(us >= before && us <= after);
	assert_true(us >= 2000); /* since the process started, not since the device was made */

	usleep(5000);
	write_byte(bt, 0, BOOT_TIMER_MAGIC);
	assert_true(boot_timer_get_us(bt, &again));
	assert_int_equal(again, us);
	boot_timer_destroy(bt);
}

struct calls {
	int n;
	uint64_t us;
};

static void count_boot(void *opaque, uint64_t boot_us)
{
	struct calls *c = opaque;

	c->n++;
	c->us = boot_us;
}

/* The on-boot hook (the VM's boot breakdown) runs once, with the recorded time, and not for
 * writes that do not count. */
static void test_on_boot_runs_once(void **state)
{
	struct boot_timer *bt = boot_timer_create();
	struct calls c = {0};
	uint64_t us;

	boot_timer_on_boot(bt, count_boot, &c);
	write_byte(bt, 0, 122);
	write_byte(bt, 4, BOOT_TIMER_MAGIC);
	assert_int_equal(c.n, 0);
	write_byte(bt, 0, BOOT_TIMER_MAGIC);
	write_byte(bt, 0, BOOT_TIMER_MAGIC);
	assert_int_equal(c.n, 1);
	assert_true(boot_timer_get_us(bt, &us));
	assert_int_equal(c.us, us);
	boot_timer_destroy(bt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ignores_other_writes),
		cmocka_unit_test(test_records_first_magic_write_once),
		cmocka_unit_test(test_on_boot_runs_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
