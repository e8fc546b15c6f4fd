/* Loading an arm64 Linux guest per Documentation/arm64/booting.rst: the kernel Image (plain, or
 * gzip-compressed as Debian's vmlinuz may be) at a 2 MiB-aligned base + text_offset, the initrd
 * high in RAM, and the place of the device tree (the top 2 MiB of RAM); or a flat binary at the
 * start of RAM (--raw). Kernel and initrd bytes are untrusted input: every header field is
 * checked against the file and RAM, and every guest store goes through guest_mem. */
#ifndef SKIFF_ARM64_IMAGE_H
#define SKIFF_ARM64_IMAGE_H

#include "base/guest_mem.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARM64_IMAGE_MAGIC	0x644d5241u /* "ARM\x64" at offset 0x38 */
#define ARM64_IMAGE_HEADER_SIZE 64
/* Where a kernel without the Image header goes, past the start of RAM (kvmtool's choice). */
#define ARM64_RAW_IMAGE_OFFSET 0x80000ULL

struct arm64_image_header_info {
	uint64_t text_offset;
	uint64_t image_size; /* bytes from the load address the kernel may use, bss included */
	uint64_t flags;
};

/* Checks the 64-byte header: the magic, little-endian kernel, and sizes that make sense for an
 * image of `len` bytes. A header with image_size 0 (kernels before 3.17) means text_offset
 * 0x80000 and image_size unknown: the file size is taken. Returns 0 or -ENOEXEC. */
int arm64_image_parse(const void *image, size_t len, struct arm64_image_header_info *out);

/* gzip data (magic 1f 8b) inflated into a malloc'ed buffer of at most `max` bytes. Returns 0,
 * -ENOEXEC for corrupt data, -EFBIG when the result would exceed `max`, -ENOMEM. */
int arm64_gunzip(const void *in, size_t len, size_t max, void **out, size_t *out_len);
static inline int arm64_is_gzip(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

/* Where things went, for the device tree and the boot vCPU. */
struct arm64_boot_layout {
	uint64_t entry;	       /* pc of the boot vCPU */
	uint64_t kernel_start; /* load address */
	uint64_t kernel_end;   /* load address + image_size */
	uint64_t initrd_start; /* == initrd_end: none */
	uint64_t initrd_end;
	uint64_t fdt_addr;  /* 0: no device tree (flat binaries) */
	const char *format; /* "Image", "gzip-compressed Image", "raw image", "raw" */
	bool raw;	    /* a --kernel without the Image header: not Linux */
};

/* Kernel or initrd bytes: a buffer, or an open regular file (arm64_open_file) that is read
 * straight into guest RAM, so a plain Image and an initrd are never copied outside it. */
struct arm64_blob {
	const void *buf; /* the bytes; NULL: read them from fd */
	int fd;
	size_t len;
	const char *what; /* "kernel", "initrd": for messages */
	const char *path;
};

/* Opens a regular file of at most `max` bytes (-EFBIG beyond) as a blob; one line naming `what`
 * on failure. arm64_close_file() closes it. */
int arm64_open_file(const char *what, const char *path, size_t max, struct arm64_blob *out);
void arm64_close_file(struct arm64_blob *b);

/* Loads the kernel `image` (plain or gzip) at the start of the RAM region at `ram_base`, and
 * `initrd` (may be NULL) high in RAM below the device tree's 2 MiB. A file without the Image
 * header (and not gzip, ELF or an x86 bzImage) is a raw image, as kvmtool takes it: loaded at
 * ram_base + ARM64_RAW_IMAGE_OFFSET and entered at its first byte, `raw` set. Errors: -ENOEXEC
 * (not an arm64 kernel), -E2BIG (does not fit in RAM), -EFAULT. One line logged. */
int arm64_load_image(const struct guest_mem *mem, uint64_t ram_base, const void *image,
		     size_t image_len, const void *initrd, size_t initrd_len,
		     struct arm64_boot_layout *out);
/* The same from blobs; `initrd` may be NULL. A file that changed size since it was opened fails
 * with one line. */
int arm64_load_blobs(const struct guest_mem *mem, uint64_t ram_base,
		     const struct arm64_blob *kernel, const struct arm64_blob *initrd,
		     struct arm64_boot_layout *out);

/* A flat binary at ram_base, entered at its first byte. */
int arm64_load_raw(const struct guest_mem *mem, uint64_t ram_base, const void *image, size_t len,
		   struct arm64_boot_layout *out);
/* The same from the file at `path` (at most `max` bytes), read straight into guest RAM. */
int arm64_load_raw_file(const struct guest_mem *mem, uint64_t ram_base, const char *path,
			size_t max, struct arm64_boot_layout *out);

/* Reads a whole file into a malloc'ed buffer (at most `max` bytes; -EFBIG beyond). Logs one line
 * naming `what` on failure. */
int arm64_read_file(const char *what, const char *path, size_t max, void **out, size_t *len);

#endif
