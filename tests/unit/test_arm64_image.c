/* The arm64 Image loader with crafted images: header parsing (magic, endianness, text_offset,
 * image_size, pre-3.17 headers), placement at the 2 MiB-aligned start of RAM + text_offset,
 * gzip-compressed Images, the initrd high in RAM below the device tree's 2 MiB, raw binaries,
 * and the refusals: garbage, corrupt or truncated gzip, images and initrds too large for RAM.
 * A real Image is also loaded when SKIFF_TEST_ARM64_IMAGE names one (never required). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "arch/arm64/image.h"
#include "arch/arm64/layout.h"
#include "base/guest_mem.h"

#define MiB	  (1ULL << 20)
#define BODY_SIZE 0x3000
#define RAM_SIZE  (64 * MiB)

static struct guest_mem mem;

static int setup_ram(uint64_t size)
{
	struct guest_region r = {.gpa = ARM64_RAM_BASE, .size = size};

	return guest_mem_map(&mem, &r, 1);
}

static int setup(void **state)
{
	return setup_ram(64 * MiB);
}

static int teardown(void **state)
{
	guest_mem_unmap(&mem);
	return 0;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* An Image of `len` bytes: the 64-byte header, then a recognizable body. */
static uint8_t *make_image(size_t len, uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	uint8_t *im = calloc(1, len);

	assert_non_null(im);
	im[0] = 0x4d; /* "MZ" of the EFI stub, then a branch: irrelevant to the loader */
	im[1] = 0x5a;
	put64(im + 0x08, text_offset);
	put64(im + 0x10, image_size);
	put64(im + 0x18, flags);
	memcpy(im + 0x38, "ARM\x64", 4);
	for (size_t i = ARM64_IMAGE_HEADER_SIZE; i < len; i++)
		im[i] = (uint8_t)(i * 7 + 3);
	return im;
}

static uint8_t *gzip(const uint8_t *in, size_t len, size_t *out_len)
{
	z_stream zs = {0};
	size_t cap = len + len / 10 + 1024;
	uint8_t *out = malloc(cap);

	assert_non_null(out);
	assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	return out;
}

static void test_parse_header(void **state)
{
	struct arm64_image_header_info h;
	uint8_t *im = make_image(BODY_SIZE, 0x80000, 0x100000, 0xa);

	assert_int_equal(arm64_image_parse(im, BODY_SIZE, &h), 0);
	assert_int_equal(h.text_offset, 0x80000);
	assert_int_equal(h.image_size, 0x100000);
	assert_int_equal(h.flags, 0xa);
	/* Too short for a header. */
	assert_int_equal(arm64_image_parse(im, ARM64_IMAGE_HEADER_SIZE - 1, &h), -ENOEXEC);
	/* Big-endian kernels are not for this little-endian VMM. */
	put64(im + 0x18, 1);
	assert_int_equal(arm64_image_parse(im, BODY_SIZE, &h), -ENOEXEC);
	put64(im + 0x18, 0);
	/* text_offset must stay inside the 2 MiB block and be page-aligned. */
	put64(im + 0x08, 0x200000);
	assert_int_equal(arm64_image_parse(im, BODY_SIZE, &h), -ENOEXEC);
	put64(im + 0x08, 0x80010);
	assert_int_equal(arm64_image_parse(im, BODY_SIZE, &h), -ENOEXEC);
	put64(im + 0x08, 0x80000);
	/* image_size smaller than the file: a lie. */
	put64(im + 0x10, BODY_SIZE - 1);
	assert_int_equal(arm64_image_parse(im, BODY_SIZE, &h), -ENOEXEC);
	/* image_size 0: a kernel before 3.17, text_offset 0x80000. */
	put64(im + 0x08, 0);
	put64(im + 0x10, 0);
	assert_int_equal(arm64_image_parse(im, BODY_SIZE, &h), 0);
	assert_int_equal(h.text_offset, 0x80000);
	assert_int_equal(h.image_size, BODY_SIZE);
	free(im);
}

static void test_rejects_garbage(void **state)
{
	static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};
	struct arm64_boot_layout b;
	uint8_t junk[4096];

	/* An x86 bzImage and an ELF are not arm64 kernels, Image or raw. */
	memset(junk, 0, sizeof(junk));
	memcpy(junk + 0x202, "HdrS", 4);
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, junk, sizeof(junk), NULL, 0, &b),
			 -ENOEXEC);
	memset(junk, 0, sizeof(junk));
	memcpy(junk, elf_magic, sizeof(elf_magic));
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, junk, sizeof(junk), NULL, 0, &b),
			 -ENOEXEC);
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, junk, 0, NULL, 0, &b), -ENOEXEC);
	/* The magic with a big-endian flag: a broken Image, not a raw image. */
	memset(junk, 0, sizeof(junk));
	memcpy(junk + 0x38, "ARM\x64", 4);
	junk[0x18] = 1;
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, junk, sizeof(junk), NULL, 0, &b),
			 -ENOEXEC);
}

/* Without the Image header: a raw image at RAM + 0x80000 with the device tree and the initrd
 * where an Image gets them (as kvmtool loads kvm-unit-tests' .flat files). */
static void test_raw_image(void **state)
{
	struct arm64_boot_layout b;
	uint8_t code[4096], initrd[8192];

	for (size_t i = 0; i < sizeof(code); i++)
		code[i] = (uint8_t)(i * 31 + 1);
	memset(initrd, 0x1d, sizeof(initrd));
	assert_int_equal(
	    arm64_load_image(&mem, ARM64_RAM_BASE, code, sizeof(code), initrd, sizeof(initrd), &b),
	    0);
	assert_true(b.raw);
	assert_string_equal(b.format, "raw image");
	assert_int_equal(b.kernel_start, ARM64_RAM_BASE + 0x80000);
	assert_int_equal(b.entry, b.kernel_start);
	assert_int_equal(b.kernel_end, b.kernel_start + sizeof(code));
	assert_int_equal(b.fdt_addr, ARM64_RAM_BASE + RAM_SIZE - (2 << 20));
	assert_memory_equal(guest_mem_ptr(&mem, b.kernel_start, sizeof(code)), code, sizeof(code));
	assert_int_equal(b.initrd_end - b.initrd_start, sizeof(initrd));
	assert_true(b.initrd_start >= b.kernel_end && b.initrd_end <= b.fdt_addr);
	assert_memory_equal(guest_mem_ptr(&mem, b.initrd_start, sizeof(initrd)), initrd,
			    sizeof(initrd));
}

/* A raw image larger than RAM below the device tree: one line, -E2BIG. */
static void test_raw_image_too_large(void **state)
{
	struct arm64_boot_layout b;
	size_t len = RAM_SIZE - (2 << 20) - 0x80000 + 1;
	uint8_t *big = calloc(1, len);

	assert_non_null(big);
	big[0] = 0x1f; /* not gzip: 1f 8b */
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, big, len, NULL, 0, &b), -E2BIG);
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, big, len - 1, NULL, 0, &b), 0);
	assert_true(b.raw);
	free(big);
}

static void test_load_places_kernel(void **state)
{
	struct arm64_boot_layout b;
	uint8_t *im = make_image(BODY_SIZE, 0x80000, 0x200000, 0);
	const uint8_t *at;

	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, im, BODY_SIZE, NULL, 0, &b), 0);
	assert_int_equal(b.kernel_start, ARM64_RAM_BASE + 0x80000);
	assert_int_equal(b.entry, b.kernel_start);
	assert_int_equal(b.kernel_end, b.kernel_start + 0x200000);
	assert_string_equal(b.format, "Image");
	/* The device tree's 2 MiB: at the top of RAM, 2 MiB-aligned. */
	assert_int_equal(b.fdt_addr, ARM64_RAM_BASE + 64 * MiB - 2 * MiB);
	assert_int_equal(b.fdt_addr % (2 * MiB), 0);
	assert_int_equal(b.initrd_start, b.initrd_end);
	at = guest_mem_ptr(&mem, b.kernel_start, BODY_SIZE);
	assert_non_null(at);
	assert_memory_equal(at, im, BODY_SIZE);
	free(im);

	/* text_offset 0 (modern kernels): the load address is the 2 MiB-aligned base itself. */
	im = make_image(BODY_SIZE, 0, 0x100000, 8);
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, im, BODY_SIZE, NULL, 0, &b), 0);
	assert_int_equal(b.entry, ARM64_RAM_BASE);
	assert_int_equal(b.entry % (2 * MiB), 0);
	free(im);
}

static void test_initrd_high_below_fdt(void **state)
{
	struct arm64_boot_layout b;
	uint8_t *im = make_image(BODY_SIZE, 0x80000, 0x400000, 0);
	size_t initrd_len = 3 * MiB + 123;
	uint8_t *initrd = malloc(initrd_len);

	for (size_t i = 0; i < initrd_len; i++)
		initrd[i] = (uint8_t)(i ^ (i >> 9));
	assert_int_equal(
	    arm64_load_image(&mem, ARM64_RAM_BASE, im, BODY_SIZE, initrd, initrd_len, &b), 0);
	assert_int_equal(b.initrd_end - b.initrd_start, initrd_len);
	assert_true(b.initrd_end <= b.fdt_addr);
	assert_true(b.fdt_addr - b.initrd_end < 0x1000); /* as high as page alignment allows */
	assert_int_equal(b.initrd_start % 0x1000, 0);
	assert_true(b.initrd_start >= b.kernel_end);
	assert_memory_equal(guest_mem_ptr(&mem, b.initrd_start, initrd_len), initrd, initrd_len);
	free(initrd);
	free(im);
}

static void test_initrd_too_large(void **state)
{
	struct arm64_boot_layout b;
	uint8_t *im = make_image(BODY_SIZE, 0x80000, 0x400000, 0);
	size_t initrd_len = 60 * MiB; /* 64 MiB of RAM: kernel 4.5 MiB, device tree 2 MiB */
	uint8_t *initrd = calloc(1, initrd_len);

	assert_int_equal(
	    arm64_load_image(&mem, ARM64_RAM_BASE, im, BODY_SIZE, initrd, initrd_len, &b), -E2BIG);
	free(initrd);
	free(im);
}

static void test_image_too_large(void **state)
{
	struct arm64_boot_layout b;
	/* image_size (bss included) beyond RAM below the device tree, though the file is small. */
	uint8_t *im = make_image(BODY_SIZE, 0x80000, 63 * MiB, 0);

	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, im, BODY_SIZE, NULL, 0, &b),
			 -E2BIG);
	free(im);
}

static void test_gzip_image(void **state)
{
	struct arm64_boot_layout b;
	size_t len = 256 * 1024, gz_len;
	uint8_t *im = make_image(len, 0x80000, 0x100000, 0);
	uint8_t *gz = gzip(im, len, &gz_len);

	assert_true(gz_len < len);
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, gz, gz_len, NULL, 0, &b), 0);
	assert_string_equal(b.format, "gzip-compressed Image");
	assert_int_equal(b.entry, ARM64_RAM_BASE + 0x80000);
	assert_memory_equal(guest_mem_ptr(&mem, b.entry, len), im, len);

	/* Truncated and corrupt streams are refused, not half-loaded and booted. */
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, gz, gz_len / 2, NULL, 0, &b),
			 -ENOEXEC);
	gz[gz_len / 2] ^= 0xff;
	gz[gz_len / 2 + 1] ^= 0x55;
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, gz, gz_len, NULL, 0, &b), -ENOEXEC);
	free(gz);
	free(im);
}

static void test_gunzip_limit(void **state)
{
	size_t len = 1 * MiB, gz_len, out_len;
	uint8_t *zeros = calloc(1, len);
	uint8_t *gz = gzip(zeros, len, &gz_len);
	void *out;

	/* A gzip bomb stops at the limit. */
	assert_int_equal(arm64_gunzip(gz, gz_len, len - 1, &out, &out_len), -EFBIG);
	assert_null(out);
	assert_int_equal(arm64_gunzip(gz, gz_len, len, &out, &out_len), 0);
	assert_int_equal(out_len, len);
	assert_memory_equal(out, zeros, len);
	free(out);
	free(gz);
	free(zeros);
}

static void test_gzip_too_large_for_ram(void **state)
{
	struct arm64_boot_layout b;
	size_t len = 70 * MiB, gz_len; /* more than the 64 MiB of RAM */
	uint8_t *im = make_image(len, 0x80000, len, 0);
	uint8_t *gz;

	memset(im + ARM64_IMAGE_HEADER_SIZE, 0, len - ARM64_IMAGE_HEADER_SIZE);
	gz = gzip(im, len, &gz_len);
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, gz, gz_len, NULL, 0, &b), -E2BIG);
	free(gz);
	free(im);
}

static void test_raw(void **state)
{
	struct arm64_boot_layout b;
	static const uint8_t code[] = {0x1f, 0x20, 0x03, 0xd5}; /* nop */
	uint8_t *big = calloc(1, 65 * MiB);

	assert_int_equal(arm64_load_raw(&mem, ARM64_RAM_BASE, code, sizeof(code), &b), 0);
	assert_int_equal(b.entry, ARM64_RAM_BASE);
	assert_int_equal(b.fdt_addr, 0);
	assert_memory_equal(guest_mem_ptr(&mem, ARM64_RAM_BASE, sizeof(code)), code, sizeof(code));
	assert_int_equal(arm64_load_raw(&mem, ARM64_RAM_BASE, big, 65 * MiB, &b), -E2BIG);
	assert_int_equal(arm64_load_raw(&mem, ARM64_RAM_BASE, code, 0, &b), -ENOEXEC);
	free(big);
}

/* A temporary file holding `len` bytes of `data`; its path in `path` (PATH_MAX). */
static void write_file(char *path, const void *data, size_t len)
{
	int fd;

	strcpy(path, "/tmp/skiff-test-arm64-image-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* --raw FILE: read straight into guest RAM at its start; an empty file, one larger than RAM and
 * a missing one are refused with their reasons. */
static void test_raw_file(void **state)
{
	static const uint8_t code[] = {0x1f, 0x20, 0x03, 0xd5, 0xc0, 0x03, 0x5f, 0xd6};
	struct arm64_boot_layout b;
	uint8_t *big = calloc(1, 65 * MiB);
	char path[64], empty[64], large[64];

	write_file(path, code, sizeof(code));
	write_file(empty, code, 0);
	write_file(large, big, 65 * MiB);
	assert_int_equal(arm64_load_raw_file(&mem, ARM64_RAM_BASE, path, 64 * MiB, &b), 0);
	assert_int_equal(b.entry, ARM64_RAM_BASE);
	assert_int_equal(b.kernel_end, ARM64_RAM_BASE + sizeof(code));
	assert_string_equal(b.format, "raw");
	assert_memory_equal(guest_mem_ptr(&mem, ARM64_RAM_BASE, sizeof(code)), code, sizeof(code));
	assert_int_equal(arm64_load_raw_file(&mem, ARM64_RAM_BASE, empty, 64 * MiB, &b), -ENOEXEC);
	assert_int_equal(arm64_load_raw_file(&mem, ARM64_RAM_BASE, large, 128 * MiB, &b), -E2BIG);
	assert_int_equal(arm64_load_raw_file(&mem, ARM64_RAM_BASE, large, 64 * MiB, &b), -EFBIG);
	unlink(path);
	unlink(empty);
	unlink(large);
	assert_int_equal(arm64_load_raw_file(&mem, ARM64_RAM_BASE, path, 64 * MiB, &b), -ENOENT);
	free(big);
}

/* From files (what skiff boots): a plain Image and the initrd are read straight into guest RAM,
 * and land byte for byte where the buffer path puts them; a gzip file is inflated; a file that
 * shrank after it was opened is refused, not half-loaded. */
static void test_load_from_files(void **state)
{
	struct arm64_boot_layout b, want;
	size_t initrd_len = 1 * MiB + 77, gz_len;
	uint8_t *im = make_image(BODY_SIZE, 0x80000, 0x400000, 0), *initrd = malloc(initrd_len);
	uint8_t *gz = gzip(im, BODY_SIZE, &gz_len);
	char kpath[64], ipath[64], gpath[64];
	struct arm64_blob k, i;

	for (size_t n = 0; n < initrd_len; n++)
		initrd[n] = (uint8_t)(n * 7 + (n >> 11));
	write_file(kpath, im, BODY_SIZE);
	write_file(ipath, initrd, initrd_len);
	write_file(gpath, gz, gz_len);
	assert_int_equal(
	    arm64_load_image(&mem, ARM64_RAM_BASE, im, BODY_SIZE, initrd, initrd_len, &want), 0);
	memset(guest_mem_ptr(&mem, want.kernel_start, BODY_SIZE), 0, BODY_SIZE);
	memset(guest_mem_ptr(&mem, want.initrd_start, initrd_len), 0, initrd_len);

	assert_int_equal(arm64_open_file("kernel", kpath, RAM_SIZE, &k), 0);
	assert_int_equal(arm64_open_file("initrd", ipath, RAM_SIZE, &i), 0);
	assert_int_equal(arm64_load_blobs(&mem, ARM64_RAM_BASE, &k, &i, &b), 0);
	assert_memory_equal(&b, &want, sizeof(b));
	assert_memory_equal(guest_mem_ptr(&mem, b.kernel_start, BODY_SIZE), im, BODY_SIZE);
	assert_memory_equal(guest_mem_ptr(&mem, b.initrd_start, initrd_len), initrd, initrd_len);
	arm64_close_file(&i);

	/* The initrd shrinks between open and load. */
	assert_int_equal(arm64_open_file("initrd", ipath, RAM_SIZE, &i), 0);
	assert_int_equal(truncate(ipath, (off_t)(initrd_len / 2)), 0);
	assert_int_equal(arm64_load_blobs(&mem, ARM64_RAM_BASE, &k, &i, &b), -EIO);
	arm64_close_file(&i);
	arm64_close_file(&k);

	assert_int_equal(arm64_open_file("kernel", gpath, RAM_SIZE, &k), 0);
	assert_int_equal(arm64_load_blobs(&mem, ARM64_RAM_BASE, &k, NULL, &b), 0);
	assert_string_equal(b.format, "gzip-compressed Image");
	assert_memory_equal(guest_mem_ptr(&mem, b.entry, BODY_SIZE), im, BODY_SIZE);
	arm64_close_file(&k);

	/* Larger than the limit, and not a regular file. */
	assert_int_equal(arm64_open_file("kernel", kpath, BODY_SIZE - 1, &k), -EFBIG);
	assert_int_equal(arm64_open_file("kernel", "/tmp", RAM_SIZE, &k), -EINVAL);
	unlink(kpath);
	unlink(ipath);
	unlink(gpath);
	free(gz);
	free(initrd);
	free(im);
}

static void test_real_image(void **state)
{
	const char *path = getenv("SKIFF_TEST_ARM64_IMAGE");
	struct arm64_boot_layout b;
	void *data;
	size_t len;

	if (!path || !*path)
		skip();
	teardown(state);
	assert_int_equal(setup_ram(512 * MiB), 0);
	assert_int_equal(arm64_read_file("kernel", path, 512 * MiB, &data, &len), 0);
	assert_int_equal(arm64_load_image(&mem, ARM64_RAM_BASE, data, len, NULL, 0, &b), 0);
	assert_true(b.kernel_end > b.kernel_start + len / 2);
	free(data);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_parse_header),
	    T(test_rejects_garbage),
	    T(test_raw_image),
	    T(test_raw_image_too_large),
	    T(test_load_places_kernel),
	    T(test_initrd_high_below_fdt),
	    T(test_initrd_too_large),
	    T(test_image_too_large),
	    T(test_gzip_image),
	    T(test_gunzip_limit),
	    T(test_gzip_too_large_for_ram),
	    T(test_raw),
	    T(test_raw_file),
	    T(test_load_from_files),
	    T(test_real_image),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
