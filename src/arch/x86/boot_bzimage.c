/* The Linux x86 boot protocol (Documentation/arch/x86/boot.rst) for a bzImage entered at its
 * 64-bit entry point: the protected-mode kernel at 1 MiB, entered at 1 MiB + 0x200 with rsi
 * pointing at the zero page. The real-mode setup code is not run. */
#include "arch/x86/boot.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"
#include "base/log.h"

#define BZIMAGE_MIN_VERSION    0x0206 /* cmdline_size */
#define BZIMAGE_LOAD_ADDR      X86_HIMEM_START
#define BZIMAGE_ENTRY64_OFFSET 0x200
#define OLD_INITRD_ADDR_MAX    0x37ffffffULL /* protocols before 2.03 */
#define FOUR_GIB	       0x100000000ULL

/* A relocatable kernel loaded below pref_address runs from pref_address, or above it from the
 * load address rounded up to kernel_alignment; a fixed one always runs from pref_address. A
 * kernel loaded at 1 MiB (as here, and by Firecracker and kvmtool) therefore decompresses itself
 * at 16 MiB (the usual CONFIG_PHYSICAL_START) and needs init_size bytes from there. */
uint64_t x86_bzimage_runtime_start(const struct x86_setup_header *hdr, uint64_t load_addr)
{
	uint64_t start = load_addr, align = hdr->kernel_alignment;

	if (!hdr->relocatable_kernel)
		return hdr->pref_address ? hdr->pref_address : load_addr;
	if (start < hdr->pref_address)
		start = hdr->pref_address;
	if (align > 1 && start <= UINT64_MAX - align)
		start = (start + align - 1) & ~(align - 1);
	return start;
}

static int check_header(const char *path, const struct x86_setup_header *hdr)
{
	if (hdr->version < BZIMAGE_MIN_VERSION) {
		log_error("%s: bzImage boot protocol %u.%02u is too old: skiff needs 2.06 or newer",
			  path, hdr->version >> 8, hdr->version & 0xff);
		return -ENOEXEC;
	}
	if (!(hdr->loadflags & X86_LOADED_HIGH)) {
		log_error("%s: a zImage (loaded below 1 MiB), not a bzImage: not supported", path);
		return -ENOEXEC;
	}
	if (!(hdr->xloadflags & X86_XLF_KERNEL_64)) {
		log_error("%s: bzImage has no 64-bit entry point (XLF_KERNEL_64 not in xloadflags, "
			  "boot protocol %u.%02u): a 32-bit kernel?",
			  path, hdr->version >> 8, hdr->version & 0xff);
		return -ENOEXEC;
	}
	if (hdr->relocatable_kernel &&
	    (hdr->kernel_alignment == 0 || (hdr->kernel_alignment & (hdr->kernel_alignment - 1)))) {
		log_error("%s: bzImage kernel_alignment 0x%x is not a power of two", path,
			  hdr->kernel_alignment);
		return -ENOEXEC;
	}
	return 0;
}

int x86_load_bzimage(struct guest_mem *mem, const struct x86_boot_file *kernel,
		     const struct x86_kernel_args *args, struct x86_boot_info *out)
{
	const char *path = kernel->path;
	struct x86_setup_header hdr;
	struct x86_zero_page_args zp = {
	    .kernel_path = path,
	    .cmdline = args->cmdline,
	    .rsdp_addr = args->rsdp_addr,
	};
	uint64_t setup_size, image_size, runtime, kernel_end, limit, hdr_len;
	uint8_t jump_len;
	int err;

	if (args->protocol == X86_BOOT_PVH) {
		log_error("%s: is a bzImage; the PVH entry needs an ELF vmlinux with a PVH note",
			  path);
		return -EINVAL;
	}
	/* The header runs from 0x1f1 to 0x202 + the byte at 0x201 (the jump over it); what lies
	 * beyond is setup code in older kernels, so only the header proper is copied. */
	err = x86_boot_file_read(kernel, 0x201, &jump_len, 1);
	if (!err)
		err = x86_boot_file_read(kernel, X86_SETUP_HDR_OFFSET, &hdr, sizeof(hdr));
	if (err)
		return err;
	hdr_len = 0x202 + jump_len - X86_SETUP_HDR_OFFSET;
	if (hdr_len < sizeof(hdr))
		memset((uint8_t *)&hdr + hdr_len, 0, sizeof(hdr) - hdr_len);
	err = check_header(path, &hdr);
	if (err)
		return err;

	setup_size = ((uint64_t)(hdr.setup_sects ? hdr.setup_sects : 4) + 1) * 512;
	if (setup_size >= kernel->size) {
		log_error(
		    "%s: truncated: %llu bytes of setup code leave no protected-mode kernel in "
		    "a %llu-byte file",
		    path, (unsigned long long)setup_size, (unsigned long long)kernel->size);
		return -ENOEXEC;
	}
	image_size = kernel->size - setup_size;

	runtime = x86_bzimage_runtime_start(&hdr, BZIMAGE_LOAD_ADDR);
	kernel_end = BZIMAGE_LOAD_ADDR + image_size;
	if (runtime < guest_mem_end(mem) && runtime + hdr.init_size > kernel_end)
		kernel_end = runtime + hdr.init_size;
	if (!guest_mem_ptr(mem, BZIMAGE_LOAD_ADDR, kernel_end - BZIMAGE_LOAD_ADDR) ||
	    !guest_mem_ptr(mem, runtime, hdr.init_size)) {
		log_error("%s: the kernel needs guest RAM from 0x%llx to 0x%llx (init_size %u MiB "
			  "at 0x%llx): give the VM more memory (--memory / "
			  "mem_size_mib)",
			  path, BZIMAGE_LOAD_ADDR, (unsigned long long)kernel_end,
			  hdr.init_size >> 20, (unsigned long long)runtime);
		return -ENOMEM;
	}
	err = x86_boot_file_read_to_guest(kernel, setup_size, mem, BZIMAGE_LOAD_ADDR, image_size);
	if (err)
		return err;

	if (args->initrd_path) {
		limit = hdr.initrd_addr_max ? (uint64_t)hdr.initrd_addr_max + 1
					    : OLD_INITRD_ADDR_MAX + 1;
		if (limit > FOUR_GIB)
			limit = FOUR_GIB;
		err = x86_load_initrd(mem, args->initrd_path, kernel_end, limit, &zp.initrd_addr,
				      &zp.initrd_size);
		if (err)
			return err;
	}
	err = x86_setup_zero_page(mem, &hdr, &zp);
	if (err)
		return err;

	*out = (struct x86_boot_info){
	    .mode = X86_ENTRY_LONG64,
	    .entry = BZIMAGE_LOAD_ADDR + BZIMAGE_ENTRY64_OFFSET,
	    .boot_arg = X86_BOOT_PARAMS_ADDR,
	    .stack = X86_BOOT_STACK_ADDR,
	    .format = "bzImage",
	};
	log_info("%s: bzImage, boot protocol %u.%02u, %llu KiB at 0x%llx, runs from 0x%llx", path,
		 hdr.version >> 8, hdr.version & 0xff, (unsigned long long)(image_size >> 10),
		 BZIMAGE_LOAD_ADDR, (unsigned long long)runtime);
	return 0;
}
