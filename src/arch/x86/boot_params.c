#include "arch/x86/boot_params.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "base/log.h"

#define PAGE_SIZE 4096ULL

static int e820_add(struct x86_e820_entry *table, int *n, int max, uint64_t addr, uint64_t end,
		    uint32_t type)
{
	if (end <= addr)
		return 0;
	if (*n >= max)
		return -EINVAL;
	table[*n] = (struct x86_e820_entry){.addr = addr, .size = end - addr, .type = type};
	(*n)++;
	return 0;
}

int x86_build_e820(const struct guest_mem *mem, struct x86_e820_entry *table, int max)
{
	int n = 0, err = 0;
	bool have_low = false;

	for (int i = 0; i < mem->nr_regions && !err; i++) {
		const struct guest_region *r = &mem->regions[i];
		uint64_t end = r->gpa + r->size;

		if (r->gpa != 0) {
			err = e820_add(table, &n, max, r->gpa, end, X86_E820_RAM);
			continue;
		}
		/* The region at 0 carries the legacy PC hole: EBDA, VGA, option ROMs and BIOS,
		 * where skiff puts the ACPI tables. It is reserved whether or not RAM backs it. */
		have_low = true;
		err = e820_add(table, &n, max, 0, end < X86_EBDA_START ? end : X86_EBDA_START,
			       X86_E820_RAM);
		if (!err)
			err = e820_add(table, &n, max, X86_EBDA_START, X86_HIMEM_START,
				       X86_E820_RESERVED);
		if (!err && end > X86_HIMEM_START)
			err = e820_add(table, &n, max, X86_HIMEM_START, end, X86_E820_RAM);
	}
	if (err || !have_low)
		return -EINVAL;
	return n;
}

int x86_write_cmdline(const struct guest_mem *mem, const char *kernel_path, const char *cmdline,
		      uint64_t max_len)
{
	size_t len;

	if (!cmdline)
		cmdline = "";
	len = strlen(cmdline);
	if (max_len > X86_CMDLINE_MAX - 1)
		max_len = X86_CMDLINE_MAX - 1;
	if (len > max_len) {
		log_error("%s: kernel command line is %zu bytes; at most %llu fit", kernel_path,
			  len, (unsigned long long)max_len);
		return -E2BIG;
	}
	if (guest_mem_write(mem, X86_CMDLINE_ADDR, cmdline, len + 1) < 0) {
		log_error("%s: no guest RAM for the command line at 0x%llx", kernel_path,
			  X86_CMDLINE_ADDR);
		return -EFAULT;
	}
	return 0;
}

int x86_place_initrd(const struct guest_mem *mem, uint64_t size, uint64_t lowest, uint64_t limit,
		     uint64_t *addr)
{
	bool found = false;
	uint64_t best = 0;

	if (size == 0 || lowest > UINT64_MAX - PAGE_SIZE)
		return -ENOMEM;
	lowest = (lowest + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	for (int i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		uint64_t top = r->gpa + r->size, start;

		if (top > limit)
			top = limit;
		if (top < size)
			continue;
		start = (top - size) & ~(PAGE_SIZE - 1);
		if (start < r->gpa || start < lowest || top <= r->gpa)
			continue;
		if (!found || start > best) {
			best = start;
			found = true;
		}
	}
	if (!found)
		return -ENOMEM;
	*addr = best;
	return 0;
}

int x86_setup_zero_page(const struct guest_mem *mem, const struct x86_setup_header *hdr,
			const struct x86_zero_page_args *args)
{
	struct x86_boot_params bp, *p = &bp;
	int n, err;

	/* Everything skiff does not set is zero, as the protocol asks (and sentinel stays 0). */
	memset(p, 0, sizeof(*p));
	p->hdr = *hdr;
	p->hdr.type_of_loader = 0xff; /* "undefined" loader: skiff has no assigned ID */
	p->hdr.loadflags |= X86_LOADED_HIGH | X86_CAN_USE_HEAP;
	/* The real-mode setup code is not run on the 64-bit entry, but a loader that sets
	 * CAN_USE_HEAP must say where the heap ends: the usual 0xfe00 below the setup stack. */
	p->hdr.heap_end_ptr = 0xfe00;
	p->hdr.cmd_line_ptr = (uint32_t)X86_CMDLINE_ADDR;
	p->ext_cmd_line_ptr = (uint32_t)(X86_CMDLINE_ADDR >> 32);
	err = x86_write_cmdline(mem, args->kernel_path, args->cmdline, hdr->cmdline_size);
	if (err)
		return err;

	if (args->initrd_size) {
		p->hdr.ramdisk_image = (uint32_t)args->initrd_addr;
		p->hdr.ramdisk_size = (uint32_t)args->initrd_size;
		p->ext_ramdisk_image = (uint32_t)(args->initrd_addr >> 32);
		p->ext_ramdisk_size = (uint32_t)(args->initrd_size >> 32);
	} else {
		p->hdr.ramdisk_image = 0;
		p->hdr.ramdisk_size = 0;
	}
	/* acpi_rsdp_addr is part of boot protocol 2.14; older kernels find the RSDP by scanning
	 * 0xE0000..0xFFFFF, where skiff puts it anyway. */
	if (args->rsdp_addr && hdr->version >= 0x020e)
		p->acpi_rsdp_addr = args->rsdp_addr;

	n = x86_build_e820(mem, p->e820_table, X86_E820_MAX);
	if (n < 0) {
		log_error("%s: guest memory layout has no RAM at 0 or too many regions",
			  args->kernel_path);
		return n;
	}
	p->e820_entries = (uint8_t)n;

	if (guest_mem_write(mem, X86_BOOT_PARAMS_ADDR, p, sizeof(*p)) < 0) {
		log_error("%s: no guest RAM for boot_params at 0x%llx", args->kernel_path,
			  X86_BOOT_PARAMS_ADDR);
		return -EFAULT;
	}
	return 0;
}

int x86_setup_pvh_start_info(const struct guest_mem *mem, const struct x86_zero_page_args *args)
{
	struct x86_e820_entry e820[X86_PVH_MEMMAP_MAX];
	struct x86_hvm_memmap_entry memmap[X86_PVH_MEMMAP_MAX];
	struct x86_hvm_start_info info = {
	    .magic = X86_HVM_START_MAGIC,
	    .version = 1,
	    .cmdline_paddr = X86_CMDLINE_ADDR,
	    .rsdp_paddr = args->rsdp_addr,
	    .memmap_paddr = X86_PVH_MEMMAP_ADDR,
	};
	int n, err;

	static_assert(X86_PVH_MEMMAP_ADDR + sizeof(memmap) <= X86_BOOT_PARAMS_ADDR,
		      "PVH memory map overlaps the zero page");
	static_assert(X86_PVH_INFO_ADDR + sizeof(info) <= X86_PVH_MODLIST_ADDR &&
			  X86_PVH_MODLIST_ADDR + sizeof(struct x86_hvm_modlist_entry) <=
			      X86_PVH_MEMMAP_ADDR,
		      "PVH start info, module list and memory map overlap");

	/* No setup header bounds a PVH command line; the VMM's own limit does. */
	err = x86_write_cmdline(mem, args->kernel_path, args->cmdline, X86_CMDLINE_MAX - 1);
	if (err)
		return err;

	n = x86_build_e820(mem, e820, X86_PVH_MEMMAP_MAX);
	if (n < 0) {
		log_error("%s: guest memory layout has no RAM at 0 or too many regions",
			  args->kernel_path);
		return n;
	}
	memset(memmap, 0, sizeof(memmap));
	for (int i = 0; i < n; i++) {
		memmap[i].addr = e820[i].addr;
		memmap[i].size = e820[i].size;
		/* Xen's memmap types are the e820 types. */
		memmap[i].type = e820[i].type == X86_E820_RAM ? X86_HVM_MEMMAP_TYPE_RAM
							      : X86_HVM_MEMMAP_TYPE_RESVD;
	}
	info.memmap_entries = (uint32_t)n;

	if (args->initrd_size) {
		struct x86_hvm_modlist_entry mod = {
		    .paddr = args->initrd_addr,
		    .size = args->initrd_size,
		};

		info.nr_modules = 1;
		info.modlist_paddr = X86_PVH_MODLIST_ADDR;
		err = guest_mem_write(mem, X86_PVH_MODLIST_ADDR, &mod, sizeof(mod));
	}
	if (!err)
		err = guest_mem_write(mem, X86_PVH_MEMMAP_ADDR, memmap, n * sizeof(memmap[0]));
	if (!err)
		err = guest_mem_write(mem, X86_PVH_INFO_ADDR, &info, sizeof(info));
	if (err) {
		log_error("%s: no guest RAM for the PVH start info at 0x%llx", args->kernel_path,
			  X86_PVH_INFO_ADDR);
		return err;
	}
	return 0;
}
