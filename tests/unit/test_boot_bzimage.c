/* bzImage loading with crafted images: where the protected-mode kernel goes, what the zero page
 * gets from the setup header, header checks, and initrd placement past init_size. A real
 * bzImage is also checked when SKIFF_TEST_BZIMAGE names one or /boot has one (never required). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"
#include "base/guest_mem.h"

#define MiB	     (1ULL << 20)
#define PAYLOAD_SIZE 0x3000
#define HDR_END	     0x26c /* 2.15 header */

static char tmpdir[] = "/tmp/skiff-test-bzimage-XXXXXX";
static char kernel_path[256], initrd_path[256];

struct image {
	struct x86_setup_header hdr;
	uint8_t jump_len; /* the header ends at 0x202 + this */
	uint8_t payload[PAYLOAD_SIZE];
};

static struct image default_image(void)
{
	struct image im;

	memset(&im, 0, sizeof(im));
	im.hdr.setup_sects = 4;
	im.hdr.boot_flag = X86_BOOT_FLAG_MAGIC;
	im.hdr.header = X86_SETUP_HDR_MAGIC;
	im.hdr.version = 0x020f;
	im.hdr.kernel_version = 0x4242;
	im.hdr.loadflags = X86_LOADED_HIGH;
	im.hdr.code32_start = 0x100000;
	im.hdr.initrd_addr_max = 0x7fffffff;
	im.hdr.kernel_alignment = 0x200000;
	im.hdr.relocatable_kernel = 1;
	im.hdr.xloadflags = X86_XLF_KERNEL_64;
	im.hdr.cmdline_size = 2047;
	im.hdr.pref_address = 0x1000000;
	im.hdr.init_size = 0x2000000;
	im.jump_len = HDR_END - 0x202;
	for (size_t i = 0; i < sizeof(im.payload); i++)
		im.payload[i] = (uint8_t)(i * 13 + 5);
	return im;
}

/* Writes the image; `file_setup_sects` is how many setup sectors precede the payload in the file
 * (the header's 0 stands for 4). Returns the file size. */
static size_t write_image(const struct image *im, unsigned file_setup_sects, size_t truncate_to)
{
	size_t setup = (file_setup_sects + 1) * 512, len = setup + sizeof(im->payload);
	uint8_t *buf = calloc(1, len);
	FILE *f;

	assert_non_null(buf);
	/* Bytes past the header's end belong to setup code: make them non-zero junk. */
	memset(buf + 0x202, 0xee, setup - 0x202);
	memcpy(buf + X86_SETUP_HDR_OFFSET, &im->hdr, HDR_END - X86_SETUP_HDR_OFFSET);
	buf[0x200] = 0xeb;
	buf[0x201] = im->jump_len;
	memcpy(buf + 0x202, &im->hdr.header, 4);
	memcpy(buf + setup, im->payload, sizeof(im->payload));
	if (truncate_to)
		len = truncate_to;
	f = fopen(kernel_path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	free(buf);
	return len;
}

static void write_initrd(size_t size)
{
	FILE *f = fopen(initrd_path, "wb");

	assert_non_null(f);
	for (size_t i = 0; i < size; i++)
		assert_int_not_equal(fputc((int)((i * 31) & 0xff), f), EOF);
	assert_int_equal(fclose(f), 0);
}

struct fixture {
	struct guest_mem mem;
	struct x86_kernel_args args;
	struct x86_boot_info info;
	struct x86_boot_params bp;
};

static int setup_size(void **state, uint64_t size)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct guest_region r = {.gpa = 0, .size = size};

	if (!fx || guest_mem_map(&fx->mem, &r, 1) < 0)
		return -1;
	memset(guest_mem_ptr(&fx->mem, 0, size), 0xaa, size);
	fx->args = (struct x86_kernel_args){
	    .kernel_path = kernel_path,
	    .cmdline = "console=ttyS0 quiet",
	    .rsdp_addr = X86_ACPI_START,
	};
	*state = fx;
	return 0;
}

static int setup(void **state)
{
	return setup_size(state, 128 * MiB);
}

static int setup_small(void **state)
{
	return setup_size(state, 64 * MiB);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	guest_mem_unmap(&fx->mem);
	free(fx);
	unlink(kernel_path);
	unlink(initrd_path);
	return 0;
}

static int load(struct fixture *fx)
{
	int err = x86_load_kernel(&fx->mem, &fx->args, &fx->info);

	if (err == 0)
		assert_int_equal(
		    guest_mem_read(&fx->mem, X86_BOOT_PARAMS_ADDR, &fx->bp, sizeof(fx->bp)), 0);
	return err;
}

static void test_loads_kernel_and_zero_page(void **state)
{
	struct fixture *fx = *state;
	struct image im = default_image();

	write_image(&im, 4, 0);
	assert_int_equal(load(fx), 0);
	assert_memory_equal(guest_mem_ptr(&fx->mem, X86_HIMEM_START, PAYLOAD_SIZE), im.payload,
			    PAYLOAD_SIZE);
	assert_int_equal(fx->info.mode, X86_ENTRY_LONG64);
	assert_int_equal(fx->info.entry, X86_HIMEM_START + 0x200);
	assert_int_equal(fx->info.boot_arg, X86_BOOT_PARAMS_ADDR);
	assert_int_equal(fx->info.stack, X86_BOOT_STACK_ADDR);
	assert_string_equal(fx->info.format, "bzImage");

	/* The file's header, copied... */
	assert_int_equal(fx->bp.hdr.setup_sects, 4);
	assert_int_equal(fx->bp.hdr.header, X86_SETUP_HDR_MAGIC);
	assert_int_equal(fx->bp.hdr.version, 0x020f);
	assert_int_equal(fx->bp.hdr.kernel_version, 0x4242);
	assert_int_equal(fx->bp.hdr.code32_start, 0x100000);
	assert_int_equal(fx->bp.hdr.init_size, 0x2000000);
	assert_int_equal(fx->bp.hdr.jump >> 8, HDR_END - 0x202);
	/* ...and the loader's part. */
	assert_int_equal(fx->bp.hdr.type_of_loader, 0xff);
	assert_int_equal(fx->bp.hdr.loadflags, X86_LOADED_HIGH | X86_CAN_USE_HEAP);
	assert_int_equal(fx->bp.hdr.cmd_line_ptr, X86_CMDLINE_ADDR);
	assert_string_equal((char *)guest_mem_ptr(&fx->mem, X86_CMDLINE_ADDR, 1),
			    "console=ttyS0 quiet");
	assert_int_equal(fx->bp.acpi_rsdp_addr, X86_ACPI_START);
	assert_int_equal(fx->bp.hdr.ramdisk_image, 0);
	assert_int_equal(fx->bp.e820_entries, 3);
	assert_int_equal(fx->bp.e820_table[2].addr + fx->bp.e820_table[2].size, 128 * MiB);
	assert_int_equal(fx->bp.sentinel, 0);
}

static void test_setup_sects_zero_means_four(void **state)
{
	struct fixture *fx = *state;
	struct image im = default_image();

	im.hdr.setup_sects = 0;
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), 0);
	assert_memory_equal(guest_mem_ptr(&fx->mem, X86_HIMEM_START, PAYLOAD_SIZE), im.payload,
			    PAYLOAD_SIZE);

	/* And a larger count moves the payload. */
	im.hdr.setup_sects = 9;
	write_image(&im, 9, 0);
	assert_int_equal(load(fx), 0);
	assert_memory_equal(guest_mem_ptr(&fx->mem, X86_HIMEM_START, PAYLOAD_SIZE), im.payload,
			    PAYLOAD_SIZE);
}

static void test_header_copied_only_to_its_end(void **state)
{
	struct fixture *fx = *state;
	struct image im = default_image();

	/* A 2.09-sized header ends at 0x250: setup_data and beyond are setup code, not fields. */
	im.jump_len = 0x250 - 0x202;
	im.hdr.setup_data = 0xdeadbeefcafe;
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), 0);
	assert_int_equal(fx->bp.hdr.setup_data, 0);
	assert_int_equal(fx->bp.hdr.pref_address, 0);
	assert_int_equal(fx->bp.hdr.init_size, 0);
	assert_int_equal(fx->bp.hdr.payload_length, 0);
	assert_int_equal(fx->bp.hdr.cmdline_size, 2047);
}

static void test_rejects_old_or_32bit(void **state)
{
	struct fixture *fx = *state;
	struct image im = default_image();

	im.hdr.version = 0x0205;
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), -ENOEXEC);

	im = default_image();
	im.hdr.xloadflags = 0;
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), -ENOEXEC);

	im = default_image();
	im.hdr.loadflags = 0; /* a zImage */
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), -ENOEXEC);

	im = default_image();
	im.hdr.kernel_alignment = 0x300000;
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), -ENOEXEC);

	im = default_image();
	write_image(&im, 4, 0);
	fx->args.protocol = X86_BOOT_PVH;
	assert_int_equal(load(fx), -EINVAL);
	fx->args.protocol = X86_BOOT_LINUX64;
	assert_int_equal(load(fx), 0);
}

static void test_truncated(void **state)
{
	struct fixture *fx = *state;
	struct image im = default_image();

	im.hdr.setup_sects = 30; /* the file has 5 sectors of setup and 24 of payload */
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), -ENOEXEC);
	im = default_image();
	write_image(&im, 4, 0x210); /* cut inside the header */
	assert_int_equal(load(fx), -ENOEXEC);
	write_image(&im, 4, 5 * 512); /* setup only */
	assert_int_equal(load(fx), -ENOEXEC);
}

static void test_initrd_above_init_size(void **state)
{
	struct fixture *fx = *state;
	struct image im = default_image();
	size_t size = 3 * MiB + 77;
	uint64_t image, runtime_end = 0x1000000 + 0x2000000;

	write_image(&im, 4, 0);
	write_initrd(size);
	fx->args.initrd_path = initrd_path;
	assert_int_equal(load(fx), 0);
	image = fx->bp.hdr.ramdisk_image | (uint64_t)fx->bp.ext_ramdisk_image << 32;
	assert_int_equal(fx->bp.hdr.ramdisk_size, size);
	assert_int_equal(image % 4096, 0);
	assert_true(image >= runtime_end);
	assert_true(image + size <= 128 * MiB);
	assert_true(128 * MiB - (image + size) < 4096);
	for (size_t i = 0; i < size; i += 4099)
		assert_int_equal(*(uint8_t *)guest_mem_ptr(&fx->mem, image + i, 1),
				 (i * 31) & 0xff);

	/* initrd_addr_max is the last byte it may use. */
	im.hdr.initrd_addr_max = 80 * MiB - 1;
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), 0);
	image = fx->bp.hdr.ramdisk_image;
	assert_true(image + size <= 80 * MiB);
	assert_true(80 * MiB - (image + size) < 4096);

	/* init_size counts from where the kernel runs, not from 1 MiB: 16 + 100 MiB. */
	im.hdr.initrd_addr_max = 0x7fffffff;
	im.hdr.init_size = 100 * MiB;
	write_image(&im, 4, 0);
	write_initrd(12 * MiB - 4096);
	assert_int_equal(load(fx), 0);
	assert_true(fx->bp.hdr.ramdisk_image >= 116 * MiB);
	write_initrd(12 * MiB + 1);
	assert_int_equal(load(fx), -ENOMEM);
}

static void test_initrd_does_not_fit(void **state)
{
	struct fixture *fx = *state; /* 64 MiB */
	struct image im = default_image();

	im.hdr.init_size = 40 * MiB; /* the kernel needs up to 56 MiB */
	write_image(&im, 4, 0);
	write_initrd(9 * MiB);
	fx->args.initrd_path = initrd_path;
	assert_int_equal(load(fx), -ENOMEM);
	write_initrd(8 * MiB);
	assert_int_equal(load(fx), 0);
	assert_int_equal(fx->bp.hdr.ramdisk_image, 56 * MiB);
}

static void test_kernel_does_not_fit(void **state)
{
	struct fixture *fx = *state; /* 64 MiB */
	struct image im = default_image();

	im.hdr.init_size = 49 * MiB; /* 16 + 49 > 64 */
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), -ENOMEM);
	im.hdr.init_size = 48 * MiB;
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), 0);
}

static void test_cmdline_and_rsdp(void **state)
{
	struct fixture *fx = *state;
	struct image im = default_image();

	im.hdr.cmdline_size = 8;
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), -E2BIG);
	fx->args.cmdline = "12345678";
	assert_int_equal(load(fx), 0);

	im.hdr.version = 0x020d; /* before acpi_rsdp_addr */
	write_image(&im, 4, 0);
	assert_int_equal(load(fx), 0);
	assert_int_equal(fx->bp.acpi_rsdp_addr, 0);
}

static void test_runtime_start(void **state)
{
	struct x86_setup_header h;

	memset(&h, 0, sizeof(h));
	h.relocatable_kernel = 1;
	h.kernel_alignment = 0x200000;
	h.pref_address = 0x1000000;
	assert_int_equal(x86_bzimage_runtime_start(&h, 0x100000), 0x1000000);
	assert_int_equal(x86_bzimage_runtime_start(&h, 0x1100001), 0x1200000);
	h.pref_address = 0;
	assert_int_equal(x86_bzimage_runtime_start(&h, 0x100000), 0x200000);
	h.relocatable_kernel = 0;
	h.pref_address = 0x1000000;
	assert_int_equal(x86_bzimage_runtime_start(&h, 0x100000), 0x1000000);
}

/* Optional: the host's (or a downloaded) distribution kernel. */
static void test_real_bzimage(void **state)
{
	struct fixture *fx = *state;
	const char *path = getenv("SKIFF_TEST_BZIMAGE");
	struct guest_mem big;
	struct guest_region r = {.gpa = 0, .size = 512 * MiB};
	struct x86_boot_params bp;
	glob_t g = {0};

	if (!path && glob("/boot/vmlinuz-*", 0, NULL, &g) == 0 && g.gl_pathc > 0 &&
	    access(g.gl_pathv[0], R_OK) == 0)
		path = g.gl_pathv[0];
	if (!path) {
		globfree(&g);
		skip();
	}
	assert_int_equal(guest_mem_map(&big, &r, 1), 0);
	fx->args.kernel_path = path;
	assert_int_equal(x86_load_kernel(&big, &fx->args, &fx->info), 0);
	assert_int_equal(guest_mem_read(&big, X86_BOOT_PARAMS_ADDR, &bp, sizeof(bp)), 0);
	print_message("%s: protocol %x, xloadflags 0x%x, init_size 0x%x\n", path, bp.hdr.version,
		      bp.hdr.xloadflags, bp.hdr.init_size);
	assert_int_equal(fx->info.mode, X86_ENTRY_LONG64);
	assert_int_equal(fx->info.entry, 0x100200);
	assert_true(bp.hdr.version >= 0x020c);
	guest_mem_unmap(&big);
	globfree(&g);
}

static int group_setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(kernel_path, sizeof(kernel_path), "%s/bzImage", tmpdir);
	snprintf(initrd_path, sizeof(initrd_path), "%s/initrd", tmpdir);
	return 0;
}

static int group_teardown(void **state)
{
	return rmdir(tmpdir);
}

int main(void)
{
#define T(fn)	    cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T_SMALL(fn) cmocka_unit_test_setup_teardown(fn, setup_small, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_loads_kernel_and_zero_page),
	    T(test_setup_sects_zero_means_four),
	    T(test_header_copied_only_to_its_end),
	    T(test_rejects_old_or_32bit),
	    T(test_truncated),
	    T(test_initrd_above_init_size),
	    T_SMALL(test_initrd_does_not_fit),
	    T_SMALL(test_kernel_does_not_fit),
	    T(test_cmdline_and_rsdp),
	    cmocka_unit_test(test_runtime_start),
	    T(test_real_bzimage),
	};
#undef T
#undef T_SMALL

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
