/* x86 guest-virtual to guest-physical translation (arch/x86/pagewalk.h), against page tables
 * built in a buffer: no paging, 32-bit paging with 4 KiB and 4 MiB pages, PAE, long mode with 4
 * levels (4 KiB, 2 MiB, 1 GiB pages) and with 5; not-present entries, non-canonical addresses,
 * reserved large pages at the top levels and tables outside RAM are faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/pagewalk.h"

#include <errno.h>
#include <string.h>

#define RAM_SIZE (1 << 20)
static uint8_t ram[RAM_SIZE];

static int read_ram(void *ctx, uint64_t gpa, void *buf, size_t len)
{
	if (gpa > RAM_SIZE || len > RAM_SIZE - gpa)
		return -EFAULT;
	memcpy(buf, ram + gpa, len);
	return 0;
}

static void put64(uint64_t gpa, uint64_t v)
{
	memcpy(ram + gpa, &v, 8);
}

static void put32(uint64_t gpa, uint32_t v)
{
	memcpy(ram + gpa, &v, 4);
}

#define CR0_PE_PG 0x80000001ULL
#define CR4_PSE	  0x10ULL
#define CR4_PAE	  0x20ULL
#define CR4_LA57  0x1000ULL
#define EFER_LMA  0x500ULL

static int walk(const struct x86_paging *p, uint64_t va, uint64_t *gpa, uint64_t *size)
{
	return x86_pagewalk(p, va, read_ram, NULL, gpa, size);
}

static void test_no_paging(void **state)
{
	struct x86_paging p = { .cr0 = 1 };
	uint64_t gpa, size;

	assert_int_equal(walk(&p, 0x12345, &gpa, &size), 0);
	assert_int_equal(gpa, 0x12345);
}

static void test_long_mode_4_levels(void **state)
{
	/* 0xffffffff80001234 -> PML4[511] PDPT[510] PD[0] PT[1] -> 0x55000 + 0x234 */
	struct x86_paging p = { .cr0 = CR0_PE_PG, .cr3 = 0x10000, .cr4 = CR4_PAE, .efer = EFER_LMA };
	uint64_t gpa, size;

	memset(ram, 0, sizeof(ram));
	put64(0x10000 + 511 * 8, 0x11000 | 3);
	put64(0x11000 + 510 * 8, 0x12000 | 3);
	put64(0x12000, 0x13000 | 3);
	put64(0x13000 + 1 * 8, 0x55000 | 3 | (1ULL << 63)); /* NX does not matter for a read */
	assert_int_equal(walk(&p, 0xffffffff80001234ULL, &gpa, &size), 0);
	assert_int_equal(gpa, 0x55234);
	assert_int_equal(size, 4096);
	/* The next page is not present. */
	assert_int_equal(walk(&p, 0xffffffff80002000ULL, &gpa, &size), -EFAULT);
	/* A 2 MiB page: PD[1] with PS. */
	put64(0x12000 + 8, 0x400000 | 0x83);
	assert_int_equal(walk(&p, 0xffffffff80212345ULL, &gpa, &size), 0);
	assert_int_equal(gpa, 0x412345);
	assert_int_equal(size, 2 << 20);
	/* A 1 GiB page: PDPT[0] of PML4[0]. */
	put64(0x10000, 0x14000 | 3);
	put64(0x14000, 0x40000000 | 0x83);
	assert_int_equal(walk(&p, 0x12345678, &gpa, &size), 0);
	assert_int_equal(gpa, 0x52345678);
	assert_int_equal(size, 1 << 30);
	/* PS at the PML4 level is reserved. */
	put64(0x10000 + 8, 0x0 | 0x83);
	assert_int_equal(walk(&p, 0x8000000000ULL, &gpa, &size), -EFAULT);
	/* Non-canonical. */
	assert_int_equal(walk(&p, 0x0000800000000000ULL, &gpa, &size), -EFAULT);
	assert_int_equal(walk(&p, 0xfff0000000000000ULL, &gpa, &size), -EFAULT);
	/* A table outside RAM. */
	put64(0x10000 + 2 * 8, 0x7fff0000000ULL | 3);
	assert_int_equal(walk(&p, 0x10000000000ULL, &gpa, &size), -EFAULT);
}

static void test_long_mode_5_levels(void **state)
{
	struct x86_paging p = { .cr0 = CR0_PE_PG, .cr3 = 0x20000, .cr4 = CR4_PAE | CR4_LA57,
				.efer = EFER_LMA };
	uint64_t gpa, size;

	memset(ram, 0, sizeof(ram));
	/* 0xff10000000000000 + 0x3000: PML5[0x1e2] ... */
	uint64_t va = 0xff11000000003abcULL;

	put64(0x20000 + ((va >> 48) & 0x1ff) * 8, 0x21000 | 3);
	put64(0x21000 + ((va >> 39) & 0x1ff) * 8, 0x22000 | 3);
	put64(0x22000 + ((va >> 30) & 0x1ff) * 8, 0x23000 | 3);
	put64(0x23000 + ((va >> 21) & 0x1ff) * 8, 0x24000 | 3);
	put64(0x24000 + ((va >> 12) & 0x1ff) * 8, 0x66000 | 3);
	assert_int_equal(walk(&p, va, &gpa, &size), 0);
	assert_int_equal(gpa, 0x66abc);
	/* Canonical for 48 bits is not for 57 (and the other way round). */
	assert_int_equal(walk(&p, 0x0100000000000000ULL, &gpa, &size), -EFAULT);
}

static void test_pae(void **state)
{
	struct x86_paging p = { .cr0 = CR0_PE_PG, .cr3 = 0x30020, .cr4 = CR4_PAE };
	uint64_t gpa, size;

	memset(ram, 0, sizeof(ram));
	put64(0x30020 + 3 * 8, 0x31000 | 1); /* PDPTE 3: 0xc0000000- */
	put64(0x31000 + 2 * 8, 0x32000 | 3);
	put64(0x32000 + 5 * 8, 0x77000 | 3);
	assert_int_equal(walk(&p, 0xc0405123ULL, &gpa, &size), 0);
	assert_int_equal(gpa, 0x77123);
	put64(0x31000 + 3 * 8, 0x200000 | 0x83); /* 2 MiB */
	assert_int_equal(walk(&p, 0xc0612345ULL, &gpa, &size), 0);
	assert_int_equal(gpa, 0x212345);
	assert_int_equal(walk(&p, 0x00001000ULL, &gpa, &size), -EFAULT); /* PDPTE 0 absent */
}

static void test_32bit(void **state)
{
	struct x86_paging p = { .cr0 = CR0_PE_PG, .cr3 = 0x40000, .cr4 = CR4_PSE };
	uint64_t gpa, size;

	memset(ram, 0, sizeof(ram));
	put32(0x40000 + 0x300 * 4, 0x41000 | 3); /* 0xc0000000 */
	put32(0x41000 + 2 * 4, 0x88000 | 3);
	assert_int_equal(walk(&p, 0xc0002fffULL, &gpa, &size), 0);
	assert_int_equal(gpa, 0x88fff);
	put32(0x40000 + 1 * 4, 0x00800000 | 0x83 | (1 << 13)); /* 4 MiB, PSE-36 bit 32 */
	assert_int_equal(walk(&p, 0x00412345ULL, &gpa, &size), 0);
	assert_true(gpa == 0x100812345ULL);
	assert_int_equal(size, 4 << 20);
	/* Without CR4.PSE the PS bit is ignored: the entry is a table. */
	p.cr4 = 0;
	assert_int_equal(walk(&p, 0x00412345ULL, &gpa, &size), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_paging),
		cmocka_unit_test(test_long_mode_4_levels),
		cmocka_unit_test(test_long_mode_5_levels),
		cmocka_unit_test(test_pae),
		cmocka_unit_test(test_32bit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
