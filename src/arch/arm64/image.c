#include "arch/arm64/image.h"
#include "arch/arm64/layout.h"
#include "base/input_file.h"
#include "base/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IMAGE_FLAG_BE	   (1ULL << 0)
#define LEGACY_TEXT_OFFSET 0x80000ULL
#define INITRD_ALIGN	   0x1000ULL

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int arm64_image_parse(const void *image, size_t len, struct arm64_image_header_info *out)
{
	const uint8_t *h = image;

	if (len < ARM64_IMAGE_HEADER_SIZE || le32(h + 0x38) != ARM64_IMAGE_MAGIC)
		return -ENOEXEC;
	out->text_offset = le64(h + 0x08);
	out->image_size = le64(h + 0x10);
	out->flags = le64(h + 0x18);
	if (out->image_size == 0) {
		out->text_offset = LEGACY_TEXT_OFFSET;
		out->image_size = len;
	}
	if (out->flags & IMAGE_FLAG_BE)
		return -ENOEXEC;
	/* The load address must stay inside the 2 MiB-aligned block, and the file must fit in the
	 * image_size the kernel asks for. */
	if (out->text_offset >= ARM64_KERNEL_ALIGN || (out->text_offset & 0xfff) ||
	    out->image_size < len)
		return -ENOEXEC;
	return 0;
}

int arm64_gunzip(const void *in, size_t len, size_t max, void **out, size_t *out_len)
{
	z_stream zs;
	size_t cap = len * 4 < max ? len * 4 : max, used = 0;
	uint8_t *buf;
	int zr;

	*out = NULL;
	*out_len = 0;
	if (cap < 4096)
		cap = max < 4096 ? max : 4096;
	if (cap == 0)
		return -EFBIG;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only */
		return -ENOMEM;
	buf = malloc(cap);
	if (!buf) {
		inflateEnd(&zs);
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)in;
	for (;;) {
		size_t in_chunk = len - (size_t)((const uint8_t *)zs.next_in - (const uint8_t *)in);
		uint8_t *grown;

		zs.avail_in = in_chunk > UINT32_MAX ? UINT32_MAX : (uInt)in_chunk;
		zs.next_out = buf + used;
		zs.avail_out = cap - used > UINT32_MAX ? UINT32_MAX : (uInt)(cap - used);
		zr = inflate(&zs, Z_NO_FLUSH);
		used = (size_t)(zs.next_out - buf);
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			goto corrupt;
		if (used < cap) {
			/* No progress with room left: the input ended early. */
			if (zr == Z_BUF_ERROR || zs.avail_in == 0)
				goto corrupt;
			continue;
		}
		if (cap == max) {
			free(buf);
			inflateEnd(&zs);
			return -EFBIG;
		}
		cap = cap > max / 2 ? max : cap * 2;
		grown = realloc(buf, cap);
		if (!grown) {
			free(buf);
			inflateEnd(&zs);
			return -ENOMEM;
		}
		buf = grown;
	}
	inflateEnd(&zs);
	*out = buf;
	*out_len = used;
	return 0;
corrupt:
	free(buf);
	inflateEnd(&zs);
	return -ENOEXEC;
}

/* Files that are surely no arm64 code: refused as kernels rather than run as raw images. Says
 * which in one logged line. */
static bool not_arm64_kernel(const uint8_t *image, size_t len)
{
	static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};

	if (len >= 4 && memcmp(image, elf_magic, 4) == 0) {
		log_error("kernel: an ELF file, not an arm64 Image or raw image: give the Image "
			  "(arch/arm64/boot/Image) or a flat binary (objcopy -O binary)");
		return true;
	}
	if (len >= 0x206 && memcmp(image + 0x202, "HdrS", 4) == 0) {
		log_error("kernel: an x86 bzImage, not an arm64 kernel");
		return true;
	}
	return false;
}

/* The RAM region that starts at ram_base. */
static int ram_region(const struct guest_mem *mem, uint64_t ram_base, uint64_t *size)
{
	for (int i = 0; i < mem->nr_regions; i++) {
		if (mem->regions[i].gpa == ram_base) {
			*size = mem->regions[i].size;
			return 0;
		}
	}
	return -EFAULT;
}

static int read_at(const struct arm64_blob *b, uint64_t off, void *buf, size_t len)
{
	return input_file_read(b->fd, b->what, b->path, off, buf, len);
}

/* The first min(n, b->len) bytes of b into buf; how many, or -errno. */
static ssize_t blob_peek(const struct arm64_blob *b, void *buf, size_t n)
{
	int ret;

	if (n > b->len)
		n = b->len;
	if (b->buf) {
		memcpy(buf, b->buf, n);
		return (ssize_t)n;
	}
	ret = read_at(b, 0, buf, n);
	return ret ? ret : (ssize_t)n;
}

/* All of b at guest address gpa: a file is read straight into guest RAM. */
static int blob_to_guest(const struct arm64_blob *b, const struct guest_mem *mem, uint64_t gpa)
{
	void *dst;

	if (b->buf)
		return guest_mem_write(mem, gpa, b->buf, b->len);
	dst = guest_mem_ptr(mem, gpa, b->len);
	if (!dst)
		return -EFAULT;
	return read_at(b, 0, dst, b->len);
}

int arm64_load_blobs(const struct guest_mem *mem, uint64_t ram_base,
		     const struct arm64_blob *kernel, const struct arm64_blob *initrd,
		     struct arm64_boot_layout *out)
{
	struct arm64_image_header_info hdr;
	/* Enough of the file for every check on its start: the Image header, gzip's magic and
	 * not_arm64_kernel()'s ELF and bzImage signatures. */
	uint8_t head[4096];
	void *whole = NULL, *inflated = NULL;
	struct arm64_blob image = *kernel;
	uint64_t ram_size, kernel_end, fdt_addr;
	ssize_t head_len;
	int ret;

	memset(out, 0, sizeof(*out));
	if ((ret = ram_region(mem, ram_base, &ram_size)))
		return ret;
	if (ram_size < 2 * ARM64_FDT_MAX_SIZE) {
		log_error("guest RAM of %llu bytes is too small for an arm64 kernel",
			  (unsigned long long)ram_size);
		return -E2BIG;
	}
	/* The device tree takes the top 2 MiB-aligned 2 MiB of RAM. */
	fdt_addr = (ram_base + ram_size - ARM64_FDT_MAX_SIZE) & ~(ARM64_KERNEL_ALIGN - 1);
	out->format = "Image";
	if ((head_len = blob_peek(&image, head, sizeof(head))) < 0)
		return (int)head_len;
	if (arm64_is_gzip(head, (size_t)head_len)) {
		size_t len;

		/* zlib inflates from memory: a compressed file is read whole first. */
		if (!image.buf) {
			if (!(whole = malloc(image.len)))
				return -ENOMEM;
			if ((ret = read_at(&image, 0, whole, image.len)))
				goto out;
		}
		ret = arm64_gunzip(image.buf ? image.buf : whole, image.len,
				   (size_t)(fdt_addr - ram_base), &inflated, &len);
		if (ret == -EFBIG) {
			log_error("kernel: the decompressed Image does not fit in guest RAM");
			ret = -E2BIG;
			goto out;
		}
		if (ret) {
			log_error("kernel: %s", ret == -ENOEXEC ? "corrupt or truncated gzip data"
								: strerror(-ret));
			goto out;
		}
		image = (struct arm64_blob){
		    .buf = inflated, .len = len, .what = image.what, .path = image.path};
		head_len = blob_peek(&image, head, sizeof(head));
		out->format = "gzip-compressed Image";
	}
	/* The parse reads the header alone; the length it checks against is the whole file's. */
	ret = (size_t)head_len >= ARM64_IMAGE_HEADER_SIZE ? arm64_image_parse(head, image.len, &hdr)
							  : -ENOEXEC;
	if (ret) {
		/* A header with the magic but wrong fields is a broken Image, not a raw one; so is
		 * gzip data without a header. */
		bool magic = head_len >= 0x3c && le32(head + 0x38) == ARM64_IMAGE_MAGIC;

		if (inflated || magic || image.len < 4) {
			log_error(
			    "kernel: not an arm64 Linux Image (no valid header with magic ARM\\x64 "
			    "at 0x38, little-endian)");
			goto out;
		}
		if (not_arm64_kernel(head, (size_t)head_len))
			goto out;
		/* No Image header: a raw image (a kvm-unit-tests .flat, a bare-metal test), loaded
		 * where kvmtool loads one, with the whole platform and x0 = the device tree. */
		if (image.len > fdt_addr - (ram_base + ARM64_RAW_IMAGE_OFFSET)) {
			log_error(
			    "kernel: a raw image (no arm64 Image header) of %zu bytes does not "
			    "fit in guest RAM between 0x%llx and the device tree at 0x%llx: give "
			    "the VM more memory (--memory / mem_size_mib)",
			    image.len, (unsigned long long)(ram_base + ARM64_RAW_IMAGE_OFFSET),
			    (unsigned long long)fdt_addr);
			ret = -E2BIG;
			goto out;
		}
		hdr = (struct arm64_image_header_info){.text_offset = ARM64_RAW_IMAGE_OFFSET,
						       .image_size = image.len};
		out->format = "raw image";
		out->raw = true;
		ret = 0;
	}
	/* RAM starts 2 MiB-aligned, so the start of RAM is the base closest to it (flags bit 3
	 * clear asks for that). */
	out->kernel_start = ram_base + hdr.text_offset;
	if (hdr.image_size > fdt_addr - out->kernel_start) {
		log_error("kernel: the Image needs %llu bytes; guest RAM below the device tree has "
			  "%llu",
			  (unsigned long long)hdr.image_size,
			  (unsigned long long)(fdt_addr - out->kernel_start));
		ret = -E2BIG;
		goto out;
	}
	kernel_end = out->kernel_start + hdr.image_size;
	ret = blob_to_guest(&image, mem, out->kernel_start);
	if (ret)
		goto out;
	out->kernel_end = kernel_end;
	out->entry = out->kernel_start;
	out->fdt_addr = fdt_addr;
	if (initrd && initrd->len) {
		uint64_t start;

		if (initrd->len > fdt_addr - kernel_end) {
			log_error(
			    "initrd: %zu bytes do not fit in guest RAM between the kernel and "
			    "the device tree (%llu bytes): give the guest more memory (--memory / "
			    "mem_size_mib)",
			    initrd->len, (unsigned long long)(fdt_addr - kernel_end));
			ret = -E2BIG;
			goto out;
		}
		start = (fdt_addr - initrd->len) & ~(INITRD_ALIGN - 1);
		if (start < kernel_end) {
			ret = -E2BIG;
			log_error("initrd: does not fit in guest RAM after alignment");
			goto out;
		}
		ret = blob_to_guest(initrd, mem, start);
		if (ret)
			goto out;
		out->initrd_start = start;
		out->initrd_end = start + initrd->len;
	}
out:
	free(inflated);
	free(whole);
	return ret;
}

int arm64_load_image(const struct guest_mem *mem, uint64_t ram_base, const void *image,
		     size_t image_len, const void *initrd, size_t initrd_len,
		     struct arm64_boot_layout *out)
{
	struct arm64_blob k = {.buf = image, .len = image_len, .what = "kernel", .path = ""};
	struct arm64_blob i = {
	    .buf = initrd, .len = initrd ? initrd_len : 0, .what = "initrd", .path = ""};

	return arm64_load_blobs(mem, ram_base, &k, &i, out);
}

int arm64_load_raw(const struct guest_mem *mem, uint64_t ram_base, const void *image, size_t len,
		   struct arm64_boot_layout *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 0) {
		log_error("raw image: the file is empty");
		return -ENOEXEC;
	}
	if (guest_mem_write(mem, ram_base, image, len)) {
		log_error("raw image: %zu bytes do not fit in guest RAM", len);
		return -E2BIG;
	}
	out->entry = ram_base;
	out->kernel_start = ram_base;
	out->kernel_end = ram_base + len;
	out->format = "raw";
	return 0;
}

int arm64_load_raw_file(const struct guest_mem *mem, uint64_t ram_base, const char *path,
			size_t max, struct arm64_boot_layout *out)
{
	struct arm64_blob b;
	int ret;

	memset(out, 0, sizeof(*out));
	if ((ret = arm64_open_file("raw image", path, max, &b)))
		return ret;
	if (b.len == 0) {
		log_error("raw image %s: the file is empty", path);
		ret = -ENOEXEC;
	} else if (!guest_mem_ptr(mem, ram_base, b.len)) {
		log_error("raw image %s: %zu bytes do not fit in guest RAM", path, b.len);
		ret = -E2BIG;
	} else {
		ret = blob_to_guest(&b, mem, ram_base);
	}
	arm64_close_file(&b);
	if (ret)
		return ret;
	out->entry = ram_base;
	out->kernel_start = ram_base;
	out->kernel_end = ram_base + b.len;
	out->format = "raw";
	return 0;
}

int arm64_open_file(const char *what, const char *path, size_t max, struct arm64_blob *out)
{
	uint64_t size;
	int fd, ret;

	*out = (struct arm64_blob){.fd = -1, .what = what, .path = path};
	if ((ret = input_file_open(what, path, &fd, &size)))
		return ret;
	if (size > max) {
		log_error("%s %s: too large for guest RAM", what, path);
		close(fd);
		return -EFBIG;
	}
	out->fd = fd;
	out->len = (size_t)size;
	return 0;
}

void arm64_close_file(struct arm64_blob *b)
{
	if (!b->buf && b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

int arm64_read_file(const char *what, const char *path, size_t max, void **out, size_t *len)
{
	struct arm64_blob b;
	uint8_t *buf;
	int ret;

	*out = NULL;
	*len = 0;
	if ((ret = arm64_open_file(what, path, max, &b)))
		return ret;
	buf = malloc(b.len ? b.len : 1);
	if (!buf) {
		arm64_close_file(&b);
		return -ENOMEM;
	}
	ret = read_at(&b, 0, buf, b.len);
	arm64_close_file(&b);
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	*len = b.len;
	return 0;
}
