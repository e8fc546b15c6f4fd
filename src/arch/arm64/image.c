#include "arch/arm64/image.h"
#include "arch/arm64/layout.h"
#include "base/log.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int arm64_load_image(const struct guest_mem *mem, uint64_t ram_base, const void *image,
		     size_t image_len, const void *initrd, size_t initrd_len,
		     struct arm64_boot_layout *out)
{
	struct arm64_image_header_info hdr;
	void *inflated = NULL;
	uint64_t ram_size, kernel_end, fdt_addr;
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
	if (arm64_is_gzip(image, image_len)) {
		size_t len;

		ret =
		    arm64_gunzip(image, image_len, (size_t)(fdt_addr - ram_base), &inflated, &len);
		if (ret == -EFBIG) {
			log_error("kernel: the decompressed Image does not fit in guest RAM");
			return -E2BIG;
		}
		if (ret) {
			log_error("kernel: %s", ret == -ENOEXEC ? "corrupt or truncated gzip data"
								: strerror(-ret));
			return ret;
		}
		image = inflated;
		image_len = len;
		out->format = "gzip-compressed Image";
	}
	ret = arm64_image_parse(image, image_len, &hdr);
	if (ret) {
		/* A header with the magic but wrong fields is a broken Image, not a raw one; so is
		 * gzip data without a header. */
		bool magic = image_len >= 0x3c &&
			     le32((const uint8_t *)image + 0x38) == ARM64_IMAGE_MAGIC;

		if (inflated || magic || image_len < 4) {
			log_error(
			    "kernel: not an arm64 Linux Image (no valid header with magic ARM\\x64 "
			    "at 0x38, little-endian)");
			goto out;
		}
		if (not_arm64_kernel(image, image_len))
			goto out;
		/* No Image header: a raw image (a kvm-unit-tests .flat, a bare-metal test), loaded
		 * where kvmtool loads one, with the whole platform and x0 = the device tree. */
		if (image_len > fdt_addr - (ram_base + ARM64_RAW_IMAGE_OFFSET)) {
			log_error(
			    "kernel: a raw image (no arm64 Image header) of %zu bytes does not "
			    "fit in guest RAM between 0x%llx and the device tree at 0x%llx: give "
			    "the VM more memory (--memory / mem_size_mib)",
			    image_len, (unsigned long long)(ram_base + ARM64_RAW_IMAGE_OFFSET),
			    (unsigned long long)fdt_addr);
			ret = -E2BIG;
			goto out;
		}
		hdr = (struct arm64_image_header_info){.text_offset = ARM64_RAW_IMAGE_OFFSET,
						       .image_size = image_len};
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
	ret = guest_mem_write(mem, out->kernel_start, image, image_len);
	if (ret)
		goto out;
	out->kernel_end = kernel_end;
	out->entry = out->kernel_start;
	out->fdt_addr = fdt_addr;
	if (initrd && initrd_len) {
		uint64_t start;

		if (initrd_len > fdt_addr - kernel_end) {
			log_error(
			    "initrd: %zu bytes do not fit in guest RAM between the kernel and "
			    "the device tree (%llu bytes): give the guest more memory (--memory / "
			    "mem_size_mib)",
			    initrd_len, (unsigned long long)(fdt_addr - kernel_end));
			ret = -E2BIG;
			goto out;
		}
		start = (fdt_addr - initrd_len) & ~(INITRD_ALIGN - 1);
		if (start < kernel_end) {
			ret = -E2BIG;
			log_error("initrd: does not fit in guest RAM after alignment");
			goto out;
		}
		ret = guest_mem_write(mem, start, initrd, initrd_len);
		if (ret)
			goto out;
		out->initrd_start = start;
		out->initrd_end = start + initrd_len;
	}
out:
	free(inflated);
	return ret;
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

int arm64_read_file(const char *what, const char *path, size_t max, void **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd, ret;

	*out = NULL;
	*len = 0;
	/* Non-blocking, so that a FIFO given as a file fails below instead of hanging here. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		log_error("%s %s: %s", what, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		log_error("%s %s: %s", what, path,
			  S_ISREG(st.st_mode) ? "too large for guest RAM" : "not a regular file");
		close(fd);
		return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			log_error("%s %s: read failed: %s", what, path,
				  n < 0 ? strerror(errno) : "file shrank");
			free(buf);
			close(fd);
			return ret;
		}
		done += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = done;
	return 0;
}
