/* The one checked translation of guest physical addresses: ranges inside a region translate,
 * anything touching a hole, the end of RAM, or wrapping around 2^64 does not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/guest_mem.h"

#include <errno.h>

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void test_translation_bounds(void **state)
{
	struct guest_region layout[] = { { .gpa = 0, .size = 2 * MiB },
					 { .gpa = 4 * GiB, .size = 1 * MiB } };
	struct guest_mem mem;
	uint8_t *p;

	assert_int_equal(guest_mem_map(&mem, layout, 2), 0);
	p = guest_mem_ptr(&mem, 0, 2 * MiB);
	assert_non_null(p);
	assert_ptr_equal(guest_mem_ptr(&mem, 0x1000, 16), p + 0x1000);
	assert_non_null(guest_mem_ptr(&mem, 2 * MiB - 1, 1));
	assert_null(guest_mem_ptr(&mem, 2 * MiB - 1, 2)); /* runs into the hole */
	assert_null(guest_mem_ptr(&mem, 2 * MiB, 0));	  /* in the hole */
	assert_null(guest_mem_ptr(&mem, 3 * GiB, 1));
	assert_non_null(guest_mem_ptr(&mem, 4 * GiB, 1 * MiB));
	assert_null(guest_mem_ptr(&mem, 4 * GiB + 1, 1 * MiB));
	assert_null(guest_mem_ptr(&mem, 0x1000, ~0ULL));	    /* huge length */
	assert_null(guest_mem_ptr(&mem, ~0ULL - 3, 8));	    /* wraps */
	assert_null(guest_mem_ptr(&mem, 4 * GiB + 16, ~0ULL - 8)); /* wraps from region 1 */
	assert_int_equal(guest_mem_size(&mem), 3 * MiB);
	assert_int_equal(guest_mem_end(&mem), 4 * GiB + 1 * MiB);
	guest_mem_unmap(&mem);
}

static void test_read_write(void **state)
{
	struct guest_region layout[] = { { .gpa = 0, .size = 1 * MiB } };
	struct guest_mem mem;
	char buf[8] = { 0 };

	assert_int_equal(guest_mem_map(&mem, layout, 1), 0);
	assert_int_equal(guest_mem_write(&mem, 0x500, "skiff", 6), 0);
	assert_int_equal(guest_mem_read(&mem, 0x500, buf, 6), 0);
	assert_string_equal(buf, "skiff");
	assert_int_equal(guest_mem_write(&mem, 1 * MiB - 2, "abc", 3), -EFAULT);
	assert_int_equal(guest_mem_read(&mem, 1 * MiB, buf, 1), -EFAULT);
	guest_mem_unmap(&mem);
}

static void test_bad_layouts(void **state)
{
	struct guest_region layout[GUEST_MEM_MAX_REGIONS + 1] = { { .gpa = 0, .size = MiB } };
	struct guest_mem mem;

	assert_int_equal(guest_mem_map(&mem, layout, 0), -EINVAL);
	assert_int_equal(guest_mem_map(&mem, layout, GUEST_MEM_MAX_REGIONS + 1), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_translation_bounds),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_bad_layouts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
