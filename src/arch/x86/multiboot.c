/* Multiboot v1 kernels: finding the header, loading the kernel (ELF program headers or the
 * header's a.out-kludge addresses) and its module, and the information structure. See
 * multiboot.h for the contract. */
#include "arch/x86/multiboot.h"
#include "arch/x86/boot.h"
#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"
#include "base/log.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MB_HEADER_SIZE	    12 /* magic, flags, checksum */
#define MB_AOUT_HEADER_SIZE 32 /* ... header_addr, load_addr, load_end, bss_end, entry */
#define MB_KNOWN_REQUIREMENTS                                                                      \
	(X86_MULTIBOOT_PAGE_ALIGN | X86_MULTIBOOT_MEMORY_INFO | X86_MULTIBOOT_VIDEO_MODE)
#define MB_MAX_PHDRS	 64
#define MB_PAGE		 0x1000ULL
#define FOUR_GIB	 0x100000000ULL
#define BOOT_LOADER_NAME "skiff"

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int x86_multiboot_find_header(const char *path, const uint8_t *buf, size_t len,
			      struct x86_multiboot_header *out)
{
	if (len > X86_MULTIBOOT_SEARCH_BYTES)
		len = X86_MULTIBOOT_SEARCH_BYTES;
	for (size_t off = 0; off + MB_HEADER_SIZE <= len; off += 4) {
		const uint8_t *h = buf + off;
		uint32_t flags;

		if (le32(h) != X86_MULTIBOOT_HEADER_MAGIC ||
		    (uint32_t)(le32(h) + le32(h + 4) + le32(h + 8)) != 0)
			continue;
		flags = le32(h + 4);
		if (flags & 0xffffu & ~MB_KNOWN_REQUIREMENTS) {
			log_error(
			    "%s: multiboot header at offset 0x%zx: flags 0x%x require features "
			    "skiff does not know (bits 3-15); it must not boot the kernel",
			    path, off, flags);
			return -ENOEXEC;
		}
		memset(out, 0, sizeof(*out));
		out->offset = (uint32_t)off;
		out->flags = flags;
		if (flags & X86_MULTIBOOT_AOUT_KLUDGE) {
			if (off + MB_AOUT_HEADER_SIZE > len) {
				log_error(
				    "%s: multiboot header at offset 0x%zx: its address fields "
				    "(flag bit 16) run past %s",
				    path, off,
				    len < X86_MULTIBOOT_SEARCH_BYTES ? "the end of the file"
								     : "the first 8192 bytes");
				return -ENOEXEC;
			}
			out->header_addr = le32(h + 12);
			out->load_addr = le32(h + 16);
			out->load_end_addr = le32(h + 20);
			out->bss_end_addr = le32(h + 24);
			out->entry_addr = le32(h + 28);
		}
		return 1;
	}
	return 0;
}

/* [start, start + size) must be guest RAM, below 4 GiB (the kernel runs in 32-bit mode with
 * paging off) and above skiff's boot data in the first MiB. */
static int check_placement(const struct guest_mem *mem, const char *path, const char *what,
			   uint64_t start, uint64_t size)
{
	if (start < X86_HIMEM_START) {
		log_error("%s: multiboot %s at 0x%llx is below 1 MiB, where skiff keeps its boot "
			  "data (GDT, multiboot information, command line, ACPI tables)",
			  path, what, (unsigned long long)start);
		return -ENOEXEC;
	}
	if (size > FOUR_GIB || start > FOUR_GIB - size) {
		log_error("%s: multiboot %s [0x%llx, +0x%llx) does not end below 4 GiB", path, what,
			  (unsigned long long)start, (unsigned long long)size);
		return -ENOEXEC;
	}
	if (size && !guest_mem_ptr(mem, start, size)) {
		log_error("%s: multiboot %s [0x%llx, 0x%llx) is outside guest RAM (%llu MiB, the "
			  "first 3 GiB from 0): give the VM more memory (--memory) or link the "
			  "kernel lower",
			  path, what, (unsigned long long)start, (unsigned long long)(start + size),
			  (unsigned long long)(guest_mem_size(mem) >> 20));
		return -ENOMEM;
	}
	return 0;
}

/* Flag bit 16: the file's bytes from the one that lands at load_addr go to [load_addr,
 * load_end_addr) (to the end of the file when 0), zeros to bss_end_addr (none when 0). */
static int load_aout(const struct guest_mem *mem, const struct x86_boot_file *f,
		     const struct x86_multiboot_header *h, uint64_t *entry, uint64_t *end)
{
	uint64_t load_off, load_size, mem_end;
	uint8_t *dst;
	int err;

	if (h->load_addr > h->header_addr || h->header_addr - h->load_addr > h->offset) {
		log_error("%s: multiboot header: load_addr 0x%x and header_addr 0x%x put the start "
			  "of the load before the file's first byte (header at offset 0x%x)",
			  f->path, h->load_addr, h->header_addr, h->offset);
		return -ENOEXEC;
	}
	load_off = h->offset - (h->header_addr - h->load_addr);
	if (h->load_end_addr == 0) {
		load_size = f->size - load_off;
	} else if (h->load_end_addr < h->load_addr ||
		   h->load_end_addr - h->load_addr > f->size - load_off) {
		log_error("%s: multiboot header: load_end_addr 0x%x is %s", f->path,
			  h->load_end_addr,
			  h->load_end_addr < h->load_addr ? "below load_addr"
							  : "beyond the end of the file");
		return -ENOEXEC;
	} else {
		load_size = h->load_end_addr - h->load_addr;
	}
	mem_end = h->load_addr + load_size;
	if (h->bss_end_addr) {
		if (h->bss_end_addr < mem_end) {
			log_error("%s: multiboot header: bss_end_addr 0x%x is below the end of the "
				  "loaded bytes at 0x%llx",
				  f->path, h->bss_end_addr, (unsigned long long)mem_end);
			return -ENOEXEC;
		}
		mem_end = h->bss_end_addr;
	}
	if (mem_end == h->load_addr) {
		log_error("%s: multiboot header: nothing to load at 0x%x", f->path, h->load_addr);
		return -ENOEXEC;
	}
	err = check_placement(mem, f->path, "kernel", h->load_addr, mem_end - h->load_addr);
	if (err)
		return err;
	if (h->entry_addr < h->load_addr || h->entry_addr >= mem_end) {
		log_error("%s: multiboot header: entry_addr 0x%x is outside the kernel [0x%x, "
			  "0x%llx)",
			  f->path, h->entry_addr, h->load_addr, (unsigned long long)mem_end);
		return -ENOEXEC;
	}
	dst = guest_mem_ptr(mem, h->load_addr, mem_end - h->load_addr);
	err = x86_boot_file_read(f, load_off, dst, load_size);
	if (err)
		return err;
	memset(dst + load_size, 0, mem_end - h->load_addr - load_size);
	*entry = h->entry_addr;
	*end = mem_end;
	return 0;
}

/* A program header of either class, widened. */
struct mb_phdr {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

static int read_phdrs(const struct x86_boot_file *f, struct mb_phdr *ph, int *nr, uint64_t *entry)
{
	unsigned char ident[EI_NIDENT];
	uint64_t phoff;
	unsigned phnum, phentsize, want;
	int err = x86_boot_file_read(f, 0, ident, sizeof(ident));

	if (err)
		return err;
	if (ident[EI_DATA] != ELFDATA2LSB ||
	    (ident[EI_CLASS] != ELFCLASS32 && ident[EI_CLASS] != ELFCLASS64)) {
		log_error("%s: multiboot ELF of class %u, data %u: want a little-endian ELF32 or "
			  "ELF64",
			  f->path, ident[EI_CLASS], ident[EI_DATA]);
		return -ENOEXEC;
	}
	if (ident[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr eh;

		if ((err = x86_boot_file_read(f, 0, &eh, sizeof(eh))))
			return err;
		if (eh.e_machine != EM_386 || eh.e_type != ET_EXEC)
			goto not_x86;
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
		*entry = eh.e_entry;
		want = sizeof(Elf32_Phdr);
	} else {
		Elf64_Ehdr eh;

		if ((err = x86_boot_file_read(f, 0, &eh, sizeof(eh))))
			return err;
		if (eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
			goto not_x86;
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
		*entry = eh.e_entry;
		want = sizeof(Elf64_Phdr);
	}
	if (phentsize != want || phnum == 0 || phnum > MB_MAX_PHDRS) {
		log_error("%s: multiboot ELF has %u program headers of %u bytes (want 1..%d of %u)",
			  f->path, phnum, phentsize, MB_MAX_PHDRS, want);
		return -ENOEXEC;
	}
	for (unsigned i = 0; i < phnum; i++) {
		if (want == sizeof(Elf32_Phdr)) {
			Elf32_Phdr p;

			if ((err = x86_boot_file_read(f, phoff + i * want, &p, sizeof(p))))
				return err;
			ph[i] = (struct mb_phdr){p.p_type,  p.p_offset, p.p_vaddr,
						 p.p_paddr, p.p_filesz, p.p_memsz};
		} else {
			Elf64_Phdr p;

			if ((err = x86_boot_file_read(f, phoff + i * want, &p, sizeof(p))))
				return err;
			ph[i] = (struct mb_phdr){p.p_type,  p.p_offset, p.p_vaddr,
						 p.p_paddr, p.p_filesz, p.p_memsz};
		}
	}
	*nr = (int)phnum;
	return 0;
not_x86:
	log_error("%s: multiboot ELF is not an x86 executable (want ET_EXEC for EM_386 or "
		  "EM_X86_64)",
		  f->path);
	return -ENOEXEC;
}

/* No flag bit 16: an ELF, loaded by its program headers at their physical addresses and
 * entered at e_entry translated to a physical address as GRUB does (through the segment whose
 * virtual range holds it). */
static int load_elf(const struct guest_mem *mem, const struct x86_boot_file *f, uint64_t *entry,
		    uint64_t *end)
{
	struct mb_phdr ph[MB_MAX_PHDRS];
	uint64_t e_entry = 0;
	bool entry_found = false;
	int nr = 0, loads = 0, err;
	static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};
	uint8_t magic[4];

	if ((err = x86_boot_file_read(f, 0, magic, sizeof(magic))))
		return err;
	if (memcmp(magic, elf_magic, sizeof(magic)) != 0) {
		log_error("%s: multiboot header without flag bit 16 (load addresses), and the file "
			  "is not an ELF",
			  f->path);
		return -ENOEXEC;
	}
	if ((err = read_phdrs(f, ph, &nr, &e_entry)))
		return err;
	*end = 0;
	for (int i = 0; i < nr; i++) {
		const struct mb_phdr *p = &ph[i];
		uint8_t *dst;

		if (p->type != PT_LOAD || p->memsz == 0)
			continue;
		if (p->filesz > p->memsz) {
			log_error(
			    "%s: multiboot ELF segment %d has p_filesz 0x%llx > p_memsz 0x%llx",
			    f->path, i, (unsigned long long)p->filesz,
			    (unsigned long long)p->memsz);
			return -ENOEXEC;
		}
		if (p->offset > f->size || p->filesz > f->size - p->offset) {
			log_error(
			    "%s: multiboot ELF segment %d (offset 0x%llx, %llu of %llu bytes) "
			    "lies outside the %llu-byte file",
			    f->path, i, (unsigned long long)p->offset,
			    (unsigned long long)p->filesz, (unsigned long long)p->memsz,
			    (unsigned long long)f->size);
			return -ENOEXEC;
		}
		if ((err = check_placement(mem, f->path, "ELF segment", p->paddr, p->memsz)))
			return err;
		dst = guest_mem_ptr(mem, p->paddr, p->memsz);
		if ((err = x86_boot_file_read(f, p->offset, dst, p->filesz)))
			return err;
		memset(dst + p->filesz, 0, p->memsz - p->filesz);
		if (p->paddr + p->memsz > *end)
			*end = p->paddr + p->memsz;
		if (!entry_found && e_entry >= p->vaddr && e_entry - p->vaddr < p->memsz) {
			*entry = e_entry - p->vaddr + p->paddr;
			entry_found = true;
		}
		loads++;
	}
	if (loads == 0) {
		log_error("%s: multiboot ELF has no PT_LOAD segment", f->path);
		return -ENOEXEC;
	}
	if (!entry_found) {
		log_error("%s: multiboot ELF entry 0x%llx is not inside a loaded segment", f->path,
			  (unsigned long long)e_entry);
		return -ENOEXEC;
	}
	return 0;
}

/* The initrd as the first module, page-aligned right after the kernel (as QEMU places it). */
static int load_module(const struct guest_mem *mem, const char *kernel_path, const char *path,
		       uint64_t kernel_end, uint64_t *start, uint64_t *size)
{
	struct x86_boot_file f;
	uint64_t at = (kernel_end + MB_PAGE - 1) & ~(MB_PAGE - 1);
	int err = x86_boot_file_open(&f, path, "initrd");

	if (err)
		return err;
	if (f.size == 0) {
		log_error("initrd %s: empty file", path);
		err = -EINVAL;
	} else if (f.size > FOUR_GIB || at > FOUR_GIB - f.size || !guest_mem_ptr(mem, at, f.size)) {
		log_error(
		    "initrd %s (%llu bytes), the multiboot module of %s, does not fit in guest "
		    "RAM below 4 GiB after the kernel's end at 0x%llx: give the VM more memory "
		    "(--memory)",
		    path, (unsigned long long)f.size, kernel_path, (unsigned long long)kernel_end);
		err = -ENOMEM;
	} else {
		err = x86_boot_file_read_to_guest(&f, 0, mem, at, f.size);
		*start = at;
		*size = f.size;
	}
	close(f.fd);
	return err;
}

/* mem_lower: KiB of RAM from 0 (at most 640); mem_upper: KiB of RAM from 1 MiB up to the first
 * hole, both read off the memory map the kernel also gets. */
static void memory_sizes(const struct x86_e820_entry *e, int n, uint32_t *lower, uint32_t *upper)
{
	*lower = *upper = 0;
	for (int i = 0; i < n; i++) {
		if (e[i].type != X86_E820_RAM)
			continue;
		if (e[i].addr == 0)
			*lower = (uint32_t)((e[i].size < 0xa0000 ? e[i].size : 0xa0000) >> 10);
		if (e[i].addr == X86_HIMEM_START)
			*upper = (uint32_t)(e[i].size >> 10);
	}
}

int x86_multiboot_write_info(const struct guest_mem *mem, const struct x86_multiboot_boot *b)
{
	enum {
		MAX_MMAP = (X86_MULTIBOOT_MMAP_END - X86_MULTIBOOT_MMAP_ADDR) /
			   sizeof(struct x86_multiboot_mmap_entry)
	};
	struct x86_e820_entry e820[MAX_MMAP];
	struct x86_multiboot_mmap_entry mmap[MAX_MMAP];
	struct x86_multiboot_info info;
	size_t cmd_len = strlen(b->cmdline),
	       mod_len = b->module_string ? strlen(b->module_string) : 0;
	int n = x86_build_e820(mem, e820, MAX_MMAP);

	_Static_assert(X86_MULTIBOOT_INFO_ADDR + sizeof(struct x86_multiboot_info) <=
			   X86_MULTIBOOT_NAME_ADDR,
		       "multiboot info overlaps the boot loader's name");
	_Static_assert(X86_MULTIBOOT_NAME_ADDR + sizeof(BOOT_LOADER_NAME) <=
			   X86_MULTIBOOT_MODS_ADDR,
		       "boot loader name overlaps the module list");
	if (n < 0) {
		log_error("%s: guest memory has no region at 0 for a multiboot memory map",
			  b->kernel_path);
		return -EFAULT;
	}
	if (cmd_len + 1 + mod_len + 1 > X86_CMDLINE_MAX) {
		log_error("%s: the multiboot command line and module string are %zu bytes; at most "
			  "%llu fit",
			  b->kernel_path, cmd_len + 1 + mod_len + 1, X86_CMDLINE_MAX);
		return -E2BIG;
	}
	memset(&info, 0, sizeof(info));
	info.flags = X86_MULTIBOOT_INFO_MEMORY | X86_MULTIBOOT_INFO_CMDLINE |
		     X86_MULTIBOOT_INFO_MODS | X86_MULTIBOOT_INFO_MEM_MAP |
		     X86_MULTIBOOT_INFO_BOOT_LOADER_NAME;
	memory_sizes(e820, n, &info.mem_lower, &info.mem_upper);
	info.cmdline = (uint32_t)X86_CMDLINE_ADDR;
	info.mods_addr = (uint32_t)X86_MULTIBOOT_MODS_ADDR;
	info.boot_loader_name = (uint32_t)X86_MULTIBOOT_NAME_ADDR;
	for (int i = 0; i < n; i++)
		mmap[i] = (struct x86_multiboot_mmap_entry){
		    .size = sizeof(mmap[i]) - sizeof(mmap[i].size),
		    .addr = e820[i].addr,
		    .len = e820[i].size,
		    .type = e820[i].type,
		};
	info.mmap_addr = (uint32_t)X86_MULTIBOOT_MMAP_ADDR;
	info.mmap_length = (uint32_t)(n * sizeof(mmap[0]));
	if (guest_mem_write(mem, X86_CMDLINE_ADDR, b->cmdline, cmd_len + 1) ||
	    guest_mem_write(mem, X86_MULTIBOOT_NAME_ADDR, BOOT_LOADER_NAME,
			    sizeof(BOOT_LOADER_NAME)) ||
	    guest_mem_write(mem, X86_MULTIBOOT_MMAP_ADDR, mmap, info.mmap_length))
		goto no_ram;
	if (b->module_size) {
		uint64_t str = X86_CMDLINE_ADDR + cmd_len + 1;
		struct x86_multiboot_module mod = {
		    .mod_start = (uint32_t)b->module_start,
		    .mod_end = (uint32_t)(b->module_start + b->module_size),
		    .string = (uint32_t)str,
		};

		info.mods_count = 1;
		if (guest_mem_write(mem, str, b->module_string ? b->module_string : "",
				    mod_len + 1) ||
		    guest_mem_write(mem, X86_MULTIBOOT_MODS_ADDR, &mod, sizeof(mod)))
			goto no_ram;
	}
	if (guest_mem_write(mem, X86_MULTIBOOT_INFO_ADDR, &info, sizeof(info)))
		goto no_ram;
	return 0;
no_ram:
	log_error("%s: no guest RAM for the multiboot information below 1 MiB", b->kernel_path);
	return -EFAULT;
}

int x86_load_multiboot(struct guest_mem *mem, const struct x86_boot_file *kernel,
		       const struct x86_multiboot_header *hdr, const struct x86_kernel_args *args,
		       struct x86_boot_info *out)
{
	static char cmdline[X86_CMDLINE_MAX];
	bool aout = hdr->flags & X86_MULTIBOOT_AOUT_KLUDGE;
	struct x86_multiboot_boot b = {
	    .kernel_path = kernel->path, .cmdline = cmdline, .module_string = args->initrd_path};
	uint64_t entry = 0, end = 0;
	int err, n;

	if (hdr->flags & X86_MULTIBOOT_VIDEO_MODE)
		log_warn("%s: the multiboot header asks for a video mode (flag bit 2); skiff has "
			 "no display and boots it without one",
			 kernel->path);
	err =
	    aout ? load_aout(mem, kernel, hdr, &entry, &end) : load_elf(mem, kernel, &entry, &end);
	if (err)
		return err;
	if (args->initrd_path) {
		err = load_module(mem, kernel->path, args->initrd_path, end, &b.module_start,
				  &b.module_size);
		if (err)
			return err;
	}
	/* GRUB and QEMU start the command line with the kernel's name; kvm-unit-tests takes that
	 * word as argv[0]. None of skiff's Linux additions (console=, root=) go in. */
	n = snprintf(cmdline, sizeof(cmdline), "%s%s%s", kernel->path,
		     args->user_cmdline && *args->user_cmdline ? " " : "",
		     args->user_cmdline ? args->user_cmdline : "");
	if (n < 0 || (size_t)n >= sizeof(cmdline)) {
		log_error("%s: the multiboot command line is too long", kernel->path);
		return -E2BIG;
	}
	err = x86_multiboot_write_info(mem, &b);
	if (err)
		return err;
	*out = (struct x86_boot_info){
	    .mode = X86_ENTRY_MULTIBOOT32,
	    .entry = entry,
	    .boot_arg = X86_MULTIBOOT_INFO_ADDR,
	    .stack = X86_BOOT_STACK_ADDR,
	    .format = aout ? "multiboot kernel (a.out kludge)" : "multiboot kernel (ELF)",
	    .cmdline = cmdline,
	};
	log_info("%s: %s, loaded up to 0x%llx, entry 0x%llx%s", kernel->path, out->format,
		 (unsigned long long)end, (unsigned long long)entry,
		 b.module_size ? ", the initrd as module 0" : "");
	return 0;
}
