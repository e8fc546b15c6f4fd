/* The zero page, e820 map, command line, initrd placement and PVH start info. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"
#include "base/guest_mem.h"
#include "base/log.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void map_one(struct guest_mem *mem, uint64_t size)
{
	struct guest_region r = {.gpa = 0, .size = size};

	assert_int_equal(guest_mem_map(mem, &r, 1), 0);
}

static void map_two(struct guest_mem *mem, uint64_t high)
{
	struct guest_region r[2] = {
	    {.gpa = 0, .size = X86_MMIO_HOLE_START},
	    {.gpa = X86_MMIO_HOLE_END, .size = high},
	};

	assert_int_equal(guest_mem_map(mem, r, 2), 0);
}

static void assert_e820(const struct x86_e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

static void test_e820_256mib(void **state)
{
	struct guest_mem mem;
	struct x86_e820_entry t[8];

	map_one(&mem, 256 * MiB);
	assert_int_equal(x86_build_e820(&mem, t, 8), 3);
	assert_e820(&t[0], 0, X86_EBDA_START, X86_E820_RAM);
	assert_e820(&t[1], X86_EBDA_START, X86_HIMEM_START - X86_EBDA_START, X86_E820_RESERVED);
	assert_e820(&t[2], X86_HIMEM_START, 256 * MiB - X86_HIMEM_START, X86_E820_RAM);
	/* The ACPI tables must be inside a reserved range, or the guest may reuse them as RAM. */
	assert_true(t[1].addr <= X86_ACPI_START && X86_ACPI_END <= t[1].addr + t[1].size);
	/* Too small a table is an error, not a truncated map. */
	assert_int_equal(x86_build_e820(&mem, t, 2), -EINVAL);
	guest_mem_unmap(&mem);
}

static void test_e820_two_regions(void **state)
{
	struct guest_mem mem;
	struct x86_e820_entry t[8];

	map_two(&mem, 2 * GiB);
	assert_int_equal(x86_build_e820(&mem, t, 8), 4);
	assert_e820(&t[0], 0, X86_EBDA_START, X86_E820_RAM);
	assert_e820(&t[1], X86_EBDA_START, X86_HIMEM_START - X86_EBDA_START, X86_E820_RESERVED);
	assert_e820(&t[2], X86_HIMEM_START, X86_MMIO_HOLE_START - X86_HIMEM_START, X86_E820_RAM);
	assert_e820(&t[3], 4 * GiB, 2 * GiB, X86_E820_RAM);
	guest_mem_unmap(&mem);
}

static void test_e820_needs_low_region(void **state)
{
	struct guest_mem mem;
	struct guest_region r = {.gpa = 4 * GiB, .size = 16 * MiB};
	struct x86_e820_entry t[8];

	assert_int_equal(guest_mem_map(&mem, &r, 1), 0);
	assert_int_equal(x86_build_e820(&mem, t, 8), -EINVAL);
	guest_mem_unmap(&mem);
}

static struct x86_setup_header test_header(void)
{
	struct x86_setup_header h;

	memset(&h, 0, sizeof(h));
	h.setup_sects = 27;
	h.boot_flag = X86_BOOT_FLAG_MAGIC;
	h.header = X86_SETUP_HDR_MAGIC;
	h.version = 0x020f;
	h.kernel_version = 0x1234;
	h.loadflags = X86_LOADED_HIGH;
	h.cmdline_size = 2047;
	h.init_size = 0x3000000;
	return h;
}

static void test_zero_page_fields(void **state)
{
	struct guest_mem mem;
	struct x86_setup_header h = test_header();
	struct x86_zero_page_args zp = {
	    .kernel_path = "vmlinuz",
	    .cmdline = "console=ttyS0 root=/dev/vda",
	    .initrd_addr = 0x5000000,
	    .initrd_size = 0x123456,
	    .rsdp_addr = X86_ACPI_START,
	};
	struct x86_boot_params bp;

	map_one(&mem, 256 * MiB);
	memset(guest_mem_ptr(&mem, X86_BOOT_PARAMS_ADDR, 4096), 0xa5, 4096);
	assert_int_equal(x86_setup_zero_page(&mem, &h, &zp), 0);
	assert_int_equal(guest_mem_read(&mem, X86_BOOT_PARAMS_ADDR, &bp, sizeof(bp)), 0);

	/* The kernel's header is kept... */
	assert_int_equal(bp.hdr.setup_sects, 27);
	assert_int_equal(bp.hdr.header, X86_SETUP_HDR_MAGIC);
	assert_int_equal(bp.hdr.kernel_version, 0x1234);
	assert_int_equal(bp.hdr.init_size, 0x3000000);
	/* ...with the loader's fields filled in. */
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_true(bp.hdr.loadflags & X86_LOADED_HIGH);
	assert_true(bp.hdr.loadflags & X86_CAN_USE_HEAP);
	assert_int_equal(bp.hdr.heap_end_ptr, 0xfe00);
	assert_int_equal(bp.hdr.cmd_line_ptr, X86_CMDLINE_ADDR);
	assert_int_equal(bp.ext_cmd_line_ptr, 0);
	assert_string_equal((char *)guest_mem_ptr(&mem, X86_CMDLINE_ADDR, 1), zp.cmdline);
	assert_int_equal(bp.hdr.ramdisk_image, 0x5000000);
	assert_int_equal(bp.hdr.ramdisk_size, 0x123456);
	assert_int_equal(bp.ext_ramdisk_image, 0);
	assert_int_equal(bp.ext_ramdisk_size, 0);
	assert_int_equal(bp.acpi_rsdp_addr, X86_ACPI_START);
	/* Stale memory must not leak into fields the kernel trusts. */
	assert_int_equal(bp.sentinel, 0);
	assert_int_equal(bp.tboot_addr, 0);
	assert_int_equal(bp.hdr.setup_data, 0);
	assert_int_equal(bp.e820_entries, 3);
	assert_e820(&bp.e820_table[2], X86_HIMEM_START, 255 * MiB, X86_E820_RAM);
	assert_int_equal(bp.e820_table[3].size, 0);
	guest_mem_unmap(&mem);
}

static void test_zero_page_no_initrd_old_protocol(void **state)
{
	struct guest_mem mem;
	struct x86_setup_header h = test_header();
	struct x86_zero_page_args zp = {.kernel_path = "vmlinuz", .rsdp_addr = X86_ACPI_START};
	struct x86_boot_params bp;

	h.version = 0x020d;	  /* no acpi_rsdp_addr before 2.14 */
	h.ramdisk_image = 0x1234; /* junk from the file must not survive */
	map_one(&mem, 64 * MiB);
	assert_int_equal(x86_setup_zero_page(&mem, &h, &zp), 0);
	assert_int_equal(guest_mem_read(&mem, X86_BOOT_PARAMS_ADDR, &bp, sizeof(bp)), 0);
	assert_int_equal(bp.acpi_rsdp_addr, 0);
	assert_int_equal(bp.hdr.ramdisk_image, 0);
	assert_int_equal(bp.hdr.ramdisk_size, 0);
	assert_string_equal((char *)guest_mem_ptr(&mem, X86_CMDLINE_ADDR, 1), "");
	guest_mem_unmap(&mem);
}

static void test_cmdline_limits(void **state)
{
	struct guest_mem mem;
	char line[X86_CMDLINE_MAX + 1];

	map_one(&mem, 64 * MiB);
	memset(line, 'x', 16);
	line[16] = '\0';
	assert_int_equal(x86_write_cmdline(&mem, "k", line, 16), 0);
	assert_string_equal((char *)guest_mem_ptr(&mem, X86_CMDLINE_ADDR, 17), line);
	assert_int_equal(x86_write_cmdline(&mem, "k", line, 15), -E2BIG);

	/* The header's cmdline_size cannot stretch skiff's own area. */
	memset(line, 'y', X86_CMDLINE_MAX);
	line[X86_CMDLINE_MAX] = '\0';
	assert_int_equal(x86_write_cmdline(&mem, "k", line, UINT32_MAX), -E2BIG);
	line[X86_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(x86_write_cmdline(&mem, "k", line, UINT32_MAX), 0);

	/* And through the zero page, the kernel's limit applies. */
	struct x86_setup_header h = test_header();
	struct x86_zero_page_args zp = {.kernel_path = "k", .cmdline = "0123456789"};

	h.cmdline_size = 9;
	assert_int_equal(x86_setup_zero_page(&mem, &h, &zp), -E2BIG);
	h.cmdline_size = 10;
	assert_int_equal(x86_setup_zero_page(&mem, &h, &zp), 0);
	guest_mem_unmap(&mem);
}

static void test_initrd_placed_high(void **state)
{
	struct guest_mem mem;
	uint64_t addr = 0, size = 10 * MiB + 123, kernel_end = 16 * MiB + 0x3378000;

	map_one(&mem, 256 * MiB);
	assert_int_equal(x86_place_initrd(&mem, size, kernel_end, 0x80000000ULL, &addr), 0);
	assert_int_equal(addr % 4096, 0);
	assert_true(addr >= kernel_end);
	assert_true(addr + size <= 256 * MiB);
	/* As high as possible: less than a page left above it. */
	assert_true(256 * MiB - (addr + size) < 4096);

	/* initrd_addr_max bounds it when RAM goes higher. */
	guest_mem_unmap(&mem);
	map_one(&mem, 2 * GiB);
	assert_int_equal(x86_place_initrd(&mem, size, kernel_end, 0x37ffffffULL + 1, &addr), 0);
	assert_true(addr + size <= 0x38000000ULL);
	assert_true(0x38000000ULL - (addr + size) < 4096);
	guest_mem_unmap(&mem);
}

static void test_initrd_below_4g_with_high_region(void **state)
{
	struct guest_mem mem;
	uint64_t addr = 0, size = 64 * MiB;

	map_two(&mem, 1 * GiB);
	assert_int_equal(x86_place_initrd(&mem, size, 32 * MiB, 4 * GiB, &addr), 0);
	assert_true(addr + size <= X86_MMIO_HOLE_START);
	assert_true(X86_MMIO_HOLE_START - (addr + size) < 4096);
	guest_mem_unmap(&mem);
}

static void test_initrd_does_not_fit(void **state)
{
	struct guest_mem mem;
	uint64_t addr = 0;

	map_one(&mem, 64 * MiB);
	/* 40 MiB between the kernel's end at 24 MiB and the end of RAM: 40 fits, 40 MiB + 1 not. */
	assert_int_equal(x86_place_initrd(&mem, 40 * MiB, 24 * MiB, 4 * GiB, &addr), 0);
	assert_int_equal(addr, 24 * MiB);
	assert_int_equal(x86_place_initrd(&mem, 40 * MiB + 1, 24 * MiB, 4 * GiB, &addr), -ENOMEM);
	/* An unaligned kernel end rounds up, not down into the kernel. */
	assert_int_equal(x86_place_initrd(&mem, 40 * MiB, 24 * MiB + 1, 4 * GiB, &addr), -ENOMEM);
	/* The limit applies even when RAM is there. */
	assert_int_equal(x86_place_initrd(&mem, 8 * MiB, 24 * MiB, 30 * MiB, &addr), -ENOMEM);
	assert_int_equal(x86_place_initrd(&mem, 0, 24 * MiB, 4 * GiB, &addr), -ENOMEM);
	guest_mem_unmap(&mem);
}

static void test_pvh_start_info(void **state)
{
	struct guest_mem mem;
	struct x86_zero_page_args zp = {
	    .kernel_path = "vmlinux",
	    .cmdline = "console=hvc0",
	    .initrd_addr = 0x6000000,
	    .initrd_size = 0x4321,
	    .rsdp_addr = X86_ACPI_START,
	};
	struct x86_hvm_start_info info;
	struct x86_hvm_modlist_entry mod;
	struct x86_hvm_memmap_entry mm[4];

	map_two(&mem, 1 * GiB);
	assert_int_equal(x86_setup_pvh_start_info(&mem, &zp), 0);
	assert_int_equal(guest_mem_read(&mem, X86_PVH_INFO_ADDR, &info, sizeof(info)), 0);
	assert_int_equal(info.magic, 0x336ec578);
	assert_int_equal(info.version, 1);
	assert_int_equal(info.rsdp_paddr, X86_ACPI_START);
	assert_int_equal(info.cmdline_paddr, X86_CMDLINE_ADDR);
	assert_string_equal((char *)guest_mem_ptr(&mem, info.cmdline_paddr, 1), "console=hvc0");
	assert_int_equal(info.nr_modules, 1);
	assert_int_equal(guest_mem_read(&mem, info.modlist_paddr, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.paddr, 0x6000000);
	assert_int_equal(mod.size, 0x4321);
	assert_int_equal(info.memmap_entries, 4);
	assert_int_equal(guest_mem_read(&mem, info.memmap_paddr, mm, sizeof(mm)), 0);
	assert_int_equal(mm[0].addr, 0);
	assert_int_equal(mm[0].size, X86_EBDA_START);
	assert_int_equal(mm[0].type, X86_HVM_MEMMAP_TYPE_RAM);
	assert_int_equal(mm[1].type, X86_HVM_MEMMAP_TYPE_RESVD);
	assert_int_equal(mm[2].addr, X86_HIMEM_START);
	assert_int_equal(mm[3].addr, 4 * GiB);
	assert_int_equal(mm[3].size, 1 * GiB);
	assert_int_equal(mm[3].type, X86_HVM_MEMMAP_TYPE_RAM);

	/* No initrd: no modules. */
	zp.initrd_size = 0;
	assert_int_equal(x86_setup_pvh_start_info(&mem, &zp), 0);
	assert_int_equal(guest_mem_read(&mem, X86_PVH_INFO_ADDR, &info, sizeof(info)), 0);
	assert_int_equal(info.nr_modules, 0);
	assert_int_equal(info.modlist_paddr, 0);
	guest_mem_unmap(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_e820_256mib),
	    cmocka_unit_test(test_e820_two_regions),
	    cmocka_unit_test(test_e820_needs_low_region),
	    cmocka_unit_test(test_zero_page_fields),
	    cmocka_unit_test(test_zero_page_no_initrd_old_protocol),
	    cmocka_unit_test(test_cmdline_limits),
	    cmocka_unit_test(test_initrd_placed_high),
	    cmocka_unit_test(test_initrd_below_4g_with_high_region),
	    cmocka_unit_test(test_initrd_does_not_fit),
	    cmocka_unit_test(test_pvh_start_info),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
