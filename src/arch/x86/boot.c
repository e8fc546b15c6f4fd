/* Kernel sniffing and the pieces the bzImage and ELF loaders share: bounded file reads, the
 * initrd, and flat binaries. */
#include "arch/x86/boot.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "base/input_file.h"
#include "base/log.h"

int x86_boot_file_open(struct x86_boot_file *f, const char *path, const char *what)
{
	f->path = path;
	f->what = what;
	return input_file_open(what, path, &f->fd, &f->size);
}

int x86_boot_file_read(const struct x86_boot_file *f, uint64_t off, void *buf, uint64_t len)
{
	if (off > f->size || len > f->size - off) {
		log_error("%s: truncated: needs bytes %llu..%llu but the file has %llu", f->path,
			  (unsigned long long)off, (unsigned long long)(off + len),
			  (unsigned long long)f->size);
		return -ENOEXEC;
	}
	return input_file_read(f->fd, f->what, f->path, off, buf, len);
}

int x86_boot_file_read_to_guest(const struct x86_boot_file *f, uint64_t off,
				const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	void *dst = guest_mem_ptr(mem, gpa, len);

	if (!dst) {
		log_error("%s: %llu bytes at guest 0x%llx are not guest RAM", f->path,
			  (unsigned long long)len, (unsigned long long)gpa);
		return -EFAULT;
	}
	return x86_boot_file_read(f, off, dst, len);
}

/* The end of the highest RAM below `limit`, for messages. */
static uint64_t ram_top_below(const struct guest_mem *mem, uint64_t limit)
{
	uint64_t top = 0;

	for (int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		uint64_t end = r->gpa + r->size < limit ? r->gpa + r->size : limit;

		if (r->gpa < limit && end > top)
			top = end;
	}
	return top;
}

int x86_load_initrd(const struct guest_mem *mem, const char *path, uint64_t lowest, uint64_t limit,
		    uint64_t *addr, uint64_t *size)
{
	struct x86_boot_file f;
	int err = x86_boot_file_open(&f, path, "initrd");

	if (err)
		return err;
	if (f.size == 0) {
		log_error("initrd %s: empty file", path);
		err = -EINVAL;
	} else if (x86_place_initrd(mem, f.size, lowest, limit, addr) < 0) {
		log_error(
		    "initrd %s (%llu MiB) does not fit in guest memory below 0x%llx, above the "
		    "kernel's end at 0x%llx: give the VM more memory (--memory / mem_size_mib)",
		    path, (unsigned long long)((f.size + (1 << 20) - 1) >> 20),
		    (unsigned long long)ram_top_below(mem, limit), (unsigned long long)lowest);
		err = -ENOMEM;
	} else {
		err = x86_boot_file_read_to_guest(&f, 0, mem, *addr, f.size);
		*size = f.size;
	}
	close(f.fd);
	return err;
}

int x86_load_kernel(struct guest_mem *mem, const struct x86_kernel_args *args,
		    struct x86_boot_info *out)
{
	static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};
	struct x86_multiboot_header mb;
	struct x86_boot_file f;
	uint8_t head[X86_MULTIBOOT_SEARCH_BYTES];
	uint64_t head_len;
	uint32_t hdrs;
	int err = x86_boot_file_open(&f, args->kernel_path, "kernel");

	if (err)
		return err;
	memset(head, 0, sizeof(head));
	head_len = f.size < sizeof(head) ? f.size : sizeof(head);
	err = x86_boot_file_read(&f, 0, head, head_len);
	if (err)
		goto out;
	memcpy(&hdrs, head + 0x202, sizeof(hdrs));
	if (f.size >= 0x206 && hdrs == X86_SETUP_HDR_MAGIC) {
		err = x86_load_bzimage(mem, &f, args, out);
	} else if (args->protocol == X86_BOOT_AUTO &&
		   (err = x86_multiboot_find_header(f.path, head, head_len, &mb)) != 0) {
		/* Before the ELF check, as QEMU does: a multiboot kernel may well be an ELF. */
		if (err > 0)
			err = x86_load_multiboot(mem, &f, &mb, args, out);
	} else if (f.size >= sizeof(elf_magic) && memcmp(head, elf_magic, sizeof(elf_magic)) == 0) {
		err = x86_load_elf(mem, &f, args, out);
	} else {
		log_error("%s: not a Linux kernel (neither a bzImage nor an x86_64 ELF vmlinux) nor "
			  "a multiboot kernel",
			  args->kernel_path);
		err = -ENOEXEC;
	}
	/* The Linux loaders pass args->cmdline; a multiboot kernel says what it got. */
	if (!err && !out->cmdline)
		out->cmdline = args->cmdline;
out:
	close(f.fd);
	return err;
}

/* Real mode with CS = 0 reaches the first MiB; a flat binary must stay below the EBDA. */
#define RAW_MAX_SIZE (X86_EBDA_START - X86_RAW_LOAD_ADDR)

static int check_raw_size(const char *what, uint64_t size)
{
	if (size == 0 || size > RAW_MAX_SIZE) {
		log_error("%s of %llu bytes: must be 1 to at most %llu bytes, to fit at 0x%llx below "
			  "0x%llx",
			  what, (unsigned long long)size, RAW_MAX_SIZE, X86_RAW_LOAD_ADDR,
			  X86_EBDA_START);
		return -EINVAL;
	}
	return 0;
}

static void raw_boot_info(struct x86_boot_info *out)
{
	*out = (struct x86_boot_info){
	    .mode = X86_ENTRY_REAL16,
	    .entry = X86_RAW_LOAD_ADDR,
	    .boot_arg = 0,
	    .stack = X86_RAW_STACK_ADDR,
	    .format = "raw",
	};
}

int x86_load_raw(struct guest_mem *mem, const void *image, size_t size, struct x86_boot_info *out)
{
	int err = check_raw_size("raw image", size);

	if (err)
		return err;
	if (guest_mem_write(mem, X86_RAW_LOAD_ADDR, image, size) < 0) {
		log_error("raw image of %zu bytes: no guest RAM at 0x%llx", size,
			  X86_RAW_LOAD_ADDR);
		return -EFAULT;
	}
	raw_boot_info(out);
	return 0;
}

int x86_load_raw_file(struct guest_mem *mem, const char *path, struct x86_boot_info *out)
{
	struct x86_boot_file f;
	char what[PATH_MAX + 16];
	int err = x86_boot_file_open(&f, path, "raw image");

	if (err)
		return err;
	snprintf(what, sizeof(what), "raw image %s", path);
	err = check_raw_size(what, f.size);
	if (!err)
		err = x86_boot_file_read_to_guest(&f, 0, mem, X86_RAW_LOAD_ADDR, f.size);
	close(f.fd);
	if (!err)
		raw_boot_info(out);
	return err;
}
