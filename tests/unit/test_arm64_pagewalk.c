/* arm64 stage-1 translation (arch/arm64/pagewalk.h), against tables built in a buffer: the MMU
 * off, TTBR0 and TTBR1 with 4 KiB granules (4 levels for 48 bits, 3 for 39, level-1 and level-2
 * blocks), 64 KiB and 16 KiB granules; invalid descriptors, addresses outside both ranges,
 * disabled walks (EPD), reserved blocks and tables outside RAM are faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/arm64/pagewalk.h"

#include <errno.h>
#include <string.h>

#define RAM_BASE 0x40000000ULL
#define RAM_SIZE (4 << 20)
static uint8_t ram[RAM_SIZE];

static int read_ram(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	if (gpa < RAM_BASE || gpa - RAM_BASE > RAM_SIZE || len > RAM_SIZE - (gpa - RAM_BASE))
		return -EFAULT;
	memcpy(buf, ram + (gpa - RAM_BASE), len);
	return 0;
}

static void put(uint64_t gpa, uint64_t v)
{
	memcpy(ram + (gpa - RAM_BASE), &v, 8);
}

#define TABLE(pa) ((pa) | 3)
#define PAGE(pa)  ((pa) | 3 | (1 << 10)) /* AF */
#define BLOCK(pa) ((pa) | 1 | (1 << 10))

/* TCR: T0SZ=16 (48 bits), TG0=4K (0); T1SZ=16, TG1=4K (2). */
#define TCR_48_4K ((16ULL) | (16ULL << 16) | (2ULL << 30))

static int walk(const struct arm64_paging *p, uint64_t va, uint64_t *pa, uint64_t *size)
{
	return arm64_pagewalk(p, va, read_ram, NULL, pa, size);
}

static uint64_t idx(uint64_t va, int level)
{
	return (va >> (12 + 9 * (3 - level))) & 0x1ff;
}

static void test_mmu_off(void **state)
{
	struct arm64_paging p = { 0 };
	uint64_t pa, size;

	assert_int_equal(walk(&p, 0x40080000, &pa, &size), 0);
	assert_int_equal(pa, 0x40080000);
}

static void test_4k_both_halves(void **state)
{
	struct arm64_paging p = { .sctlr = 1, .tcr = TCR_48_4K, .ttbr0 = RAM_BASE + 0x1000,
				  .ttbr1 = RAM_BASE + 0x10000 };
	uint64_t va = 0xffff800010081234ULL, pa, size;

	memset(ram, 0, sizeof(ram));
	/* TTBR1: the kernel's linear map, 4 levels to a 4 KiB page. */
	put(RAM_BASE + 0x10000 + idx(va, 0) * 8, TABLE(RAM_BASE + 0x11000));
	put(RAM_BASE + 0x11000 + idx(va, 1) * 8, TABLE(RAM_BASE + 0x12000));
	put(RAM_BASE + 0x12000 + idx(va, 2) * 8, TABLE(RAM_BASE + 0x13000));
	put(RAM_BASE + 0x13000 + idx(va, 3) * 8, PAGE(RAM_BASE + 0x200000));
	assert_int_equal(walk(&p, va, &pa, &size), 0);
	assert_true(pa == RAM_BASE + 0x200234);
	assert_int_equal(size, 4096);
	/* A 2 MiB block at level 2 and a 1 GiB block at level 1, through TTBR0. */
	put(RAM_BASE + 0x1000, TABLE(RAM_BASE + 0x2000));
	put(RAM_BASE + 0x2000 + 1 * 8, TABLE(RAM_BASE + 0x3000));
	put(RAM_BASE + 0x3000 + 3 * 8, BLOCK(0x80000000ULL + (6 << 20)));
	assert_int_equal(walk(&p, 0x40612345ULL, &pa, &size), 0);
	assert_true(pa == 0x80612345ULL);
	assert_int_equal(size, 2 << 20);
	put(RAM_BASE + 0x2000 + 2 * 8, BLOCK(0xc0000000ULL));
	assert_int_equal(walk(&p, 0x80000010ULL, &pa, &size), 0);
	assert_true(pa == 0xc0000010ULL);
	assert_int_equal(size, 1 << 30);
	/* Invalid: an empty entry; an address in neither range; a block at level 3. */
	assert_int_equal(walk(&p, 0x1000000000ULL, &pa, &size), -EFAULT);
	assert_int_equal(walk(&p, 0x0001000000000000ULL, &pa, &size), -EFAULT);
	assert_int_equal(walk(&p, 0xfffe000000000000ULL, &pa, &size), -EFAULT);
	put(RAM_BASE + 0x13000 + (idx(va, 3) + 1) * 8, BLOCK(RAM_BASE));
	assert_int_equal(walk(&p, va + 0x1000, &pa, &size), -EFAULT);
	/* EPD1: no walks through TTBR1. */
	p.tcr |= 1ULL << 23;
	assert_int_equal(walk(&p, va, &pa, &size), -EFAULT);
	/* A table outside RAM. */
	p.tcr = TCR_48_4K;
	put(RAM_BASE + 0x1000 + 8, TABLE(0x1000000000ULL));
	assert_int_equal(walk(&p, 0x8000000000ULL, &pa, &size), -EFAULT);
}

static void test_39_bits_3_levels(void **state)
{
	/* T0SZ=25: 39 bits, starting at level 1. */
	struct arm64_paging p = { .sctlr = 1, .tcr = 25, .ttbr0 = RAM_BASE + 0x4000 };
	uint64_t va = 0x7f12345678ULL, pa, size;

	memset(ram, 0, sizeof(ram));
	put(RAM_BASE + 0x4000 + idx(va, 1) * 8, TABLE(RAM_BASE + 0x5000));
	put(RAM_BASE + 0x5000 + idx(va, 2) * 8, TABLE(RAM_BASE + 0x6000));
	put(RAM_BASE + 0x6000 + idx(va, 3) * 8, PAGE(RAM_BASE + 0x300000));
	assert_int_equal(walk(&p, va, &pa, &size), 0);
	assert_true(pa == RAM_BASE + 0x300678);
	assert_int_equal(walk(&p, 0x8000000000ULL, &pa, &size), -EFAULT); /* bit 39 */
}

static void test_64k_granule(void **state)
{
	/* TG0=64K (1), T0SZ=22 (42 bits): levels 2 and 3, 13 bits each. */
	struct arm64_paging p = { .sctlr = 1, .tcr = 22 | (1ULL << 14), .ttbr0 = RAM_BASE + 0x10000 };
	uint64_t va = 0x2a0000012345ULL & ((1ULL << 42) - 1), pa, size;
	uint64_t i2 = (va >> 29) & 0x1fff, i3 = (va >> 16) & 0x1fff;

	memset(ram, 0, sizeof(ram));
	put(RAM_BASE + 0x10000 + i2 * 8, TABLE(RAM_BASE + 0x20000));
	put(RAM_BASE + 0x20000 + i3 * 8, PAGE(RAM_BASE + 0x50000));
	assert_int_equal(walk(&p, va, &pa, &size), 0);
	assert_true(pa == RAM_BASE + 0x50000 + (va & 0xffff));
	assert_int_equal(size, 64 << 10);
}

static void test_16k_granule_upper(void **state)
{
	/* TG1=16K (1), T1SZ=17 (47 bits): levels 1-3 (11 bits each, level 1 one bit). */
	struct arm64_paging p = { .sctlr = 1, .tcr = (17ULL << 16) | (1ULL << 30),
				  .ttbr1 = RAM_BASE + 0x100000 };
	uint64_t va = 0xffffc00000abcdefULL, pa, size;
	uint64_t m = (1ULL << 47) - 1;
	uint64_t i1 = ((va & m) >> 36), i2 = (va >> 25) & 0x7ff, i3 = (va >> 14) & 0x7ff;

	memset(ram, 0, sizeof(ram));
	put(RAM_BASE + 0x100000 + i1 * 8, TABLE(RAM_BASE + 0x104000));
	put(RAM_BASE + 0x104000 + i2 * 8, TABLE(RAM_BASE + 0x108000));
	put(RAM_BASE + 0x108000 + i3 * 8, PAGE(RAM_BASE + 0x200000));
	assert_int_equal(walk(&p, va, &pa, &size), 0);
	assert_true(pa == RAM_BASE + 0x200000 + (va & 0x3fff));
	assert_int_equal(size, 16 << 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mmu_off),
		cmocka_unit_test(test_4k_both_halves),
		cmocka_unit_test(test_39_bits_3_levels),
		cmocka_unit_test(test_64k_granule),
		cmocka_unit_test(test_16k_granule_upper),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
