/* An uncompressed ELF64 x86_64 vmlinux: PT_LOAD segments at their physical addresses, entered
 * either at the PVH entry its Xen ELF note names (32-bit protected mode, hvm_start_info in ebx)
 * or at e_entry with the Linux 64-bit boot protocol (a synthetic setup header in the zero page,
 * since a vmlinux carries none). */
#include "arch/x86/boot.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"
#include "base/log.h"

#define ELF_MAX_PHDRS		 64
#define ELF_MAX_NOTE_BYTES	 (64 * 1024)
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define FOUR_GIB		 0x100000000ULL

static int check_ehdr(const char *path, const Elf64_Ehdr *eh, uint64_t file_size)
{
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_machine != EM_X86_64) {
		log_error(
		    "%s: not a Linux kernel (neither a bzImage nor an x86_64 ELF vmlinux): ELF "
		    "class %u, data %u, machine %u",
		    path, eh->e_ident[EI_CLASS], eh->e_ident[EI_DATA], eh->e_machine);
		return -ENOEXEC;
	}
	if (eh->e_type != ET_EXEC) {
		log_error("%s: ELF type %u is not an executable (ET_EXEC) vmlinux", path,
			  eh->e_type);
		return -ENOEXEC;
	}
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum > ELF_MAX_PHDRS) {
		log_error("%s: ELF has %u program headers of %u bytes (want 1..%d of %zu)", path,
			  eh->e_phnum, eh->e_phentsize, ELF_MAX_PHDRS, sizeof(Elf64_Phdr));
		return -ENOEXEC;
	}
	if (eh->e_phoff > file_size ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > file_size - eh->e_phoff) {
		log_error("%s: ELF program headers at offset 0x%llx lie outside the %llu-byte file",
			  path, (unsigned long long)eh->e_phoff, (unsigned long long)file_size);
		return -ENOEXEC;
	}
	return 0;
}

/* Finds XEN_ELFNOTE_PHYS32_ENTRY in the notes of one PT_NOTE segment. Returns 1 and the entry,
 * 0 if absent, or -ENOEXEC for a malformed note. */
static int parse_pvh_note(const char *path, const uint8_t *buf, uint64_t len, uint64_t *entry)
{
	uint64_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_off, desc_off, name_len, desc_len;

		memcpy(&nh, buf + off, sizeof(nh));
		name_off = off + sizeof(nh);
		name_len = ((uint64_t)nh.n_namesz + 3) & ~3ULL;
		desc_len = ((uint64_t)nh.n_descsz + 3) & ~3ULL;
		if (name_len > len - name_off || desc_len > len - name_off - name_len) {
			log_error("%s: malformed ELF note at segment offset %llu", path,
				  (unsigned long long)off);
			return -ENOEXEC;
		}
		desc_off = name_off + name_len;
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    memcmp(buf + name_off, "Xen", 4) == 0) {
			uint64_t value = 0;

			/* Linux emits it as a pointer-sized value (.quad), others as 32 bits. */
			if (nh.n_descsz != 4 && nh.n_descsz != 8) {
				log_error("%s: PVH entry note has a %u-byte value", path,
					  nh.n_descsz);
				return -ENOEXEC;
			}
			memcpy(&value, buf + desc_off, nh.n_descsz);
			if (value >= FOUR_GIB) {
				log_error("%s: PVH entry 0x%llx is not a 32-bit address", path,
					  (unsigned long long)value);
				return -ENOEXEC;
			}
			*entry = value;
			return 1;
		}
		off = desc_off + desc_len;
	}
	return 0;
}

static int find_pvh_note(const struct x86_boot_file *f, const Elf64_Phdr *ph, uint64_t *entry)
{
	uint64_t len = ph->p_filesz;
	uint8_t *buf;
	int err;

	if (len > ELF_MAX_NOTE_BYTES) {
		log_error("%s: ELF note segment of %llu bytes is larger than %d", f->path,
			  (unsigned long long)len, ELF_MAX_NOTE_BYTES);
		return -ENOEXEC;
	}
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	err = x86_boot_file_read(f, ph->p_offset, buf, len);
	if (!err)
		err = parse_pvh_note(f->path, buf, len, entry);
	free(buf);
	return err;
}

static int load_segment(const struct guest_mem *mem, const struct x86_boot_file *f, int index,
			const Elf64_Phdr *ph)
{
	uint8_t *dst;
	int err;

	if (ph->p_filesz > ph->p_memsz) {
		log_error("%s: ELF segment %d has p_filesz 0x%llx > p_memsz 0x%llx", f->path, index,
			  (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
		return -ENOEXEC;
	}
	if (ph->p_offset > f->size || ph->p_filesz > f->size - ph->p_offset) {
		log_error("%s: ELF segment %d (offset 0x%llx, %llu bytes) runs past the end of the "
			  "%llu-byte file",
			  f->path, index, (unsigned long long)ph->p_offset,
			  (unsigned long long)ph->p_filesz, (unsigned long long)f->size);
		return -ENOEXEC;
	}
	/* Below 1 MiB are skiff's GDT, page tables, zero page and command line. */
	if (ph->p_paddr < X86_HIMEM_START) {
		log_error("%s: ELF segment %d at 0x%llx is below 1 MiB, where skiff keeps its boot "
			  "data",
			  f->path, index, (unsigned long long)ph->p_paddr);
		return -ENOEXEC;
	}
	dst = guest_mem_ptr(mem, ph->p_paddr, ph->p_memsz);
	if (!dst) {
		log_error(
		    "%s: ELF segment %d [0x%llx, +0x%llx) is outside guest RAM (%llu MiB): give "
		    "the VM more memory (--memory / mem_size_mib)",
		    f->path, index, (unsigned long long)ph->p_paddr,
		    (unsigned long long)ph->p_memsz,
		    (unsigned long long)(guest_mem_size(mem) >> 20));
		return -ENOMEM;
	}
	err = x86_boot_file_read(f, ph->p_offset, dst, ph->p_filesz);
	if (err)
		return err;
	memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	return 0;
}

/* The fields of the setup header a vmlinux entered at startup_64 relies on (head64.c and
 * setup.c read the boot protocol version, loader type, command line, initrd, and subarch). */
static void synthetic_setup_header(struct x86_setup_header *hdr)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->boot_flag = X86_BOOT_FLAG_MAGIC;
	hdr->header = X86_SETUP_HDR_MAGIC;
	hdr->version = 0x020f;
	hdr->type_of_loader = 0xff;
	hdr->loadflags = X86_LOADED_HIGH;
	hdr->vid_mode = 0xffff; /* "normal": no video mode set by the loader */
	hdr->initrd_addr_max = (uint32_t)(FOUR_GIB - 1);
	hdr->kernel_alignment = 0x1000000;
	hdr->xloadflags = X86_XLF_KERNEL_64;
	hdr->cmdline_size = X86_CMDLINE_MAX - 1;
}

static bool in_loaded_segment(const Elf64_Phdr *phdrs, int n, uint64_t addr)
{
	for (int i = 0; i < n; i++)
		if (phdrs[i].p_type == PT_LOAD && addr >= phdrs[i].p_paddr &&
		    addr - phdrs[i].p_paddr < phdrs[i].p_filesz)
			return true;
	return false;
}

int x86_load_elf(struct guest_mem *mem, const struct x86_boot_file *kernel,
		 const struct x86_kernel_args *args, struct x86_boot_info *out)
{
	const char *path = kernel->path;
	Elf64_Ehdr eh;
	Elf64_Phdr phdrs[ELF_MAX_PHDRS];
	struct x86_zero_page_args zp = {
	    .kernel_path = path,
	    .cmdline = args->cmdline,
	    .rsdp_addr = args->rsdp_addr,
	};
	uint64_t pvh_entry = 0, end = 0, entry;
	bool has_pvh = false, pvh;
	int nr_loads = 0, err;

	if (kernel->size < sizeof(eh)) {
		log_error("%s: truncated ELF: %llu bytes, less than an ELF header", path,
			  (unsigned long long)kernel->size);
		return -ENOEXEC;
	}
	err = x86_boot_file_read(kernel, 0, &eh, sizeof(eh));
	if (!err)
		err = check_ehdr(path, &eh, kernel->size);
	if (!err)
		err = x86_boot_file_read(kernel, eh.e_phoff, phdrs, eh.e_phnum * sizeof(phdrs[0]));
	if (err)
		return err;

	for (int i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *ph = &phdrs[i];

		if (ph->p_type == PT_NOTE && !has_pvh) {
			err = find_pvh_note(kernel, ph, &pvh_entry);
			if (err < 0)
				return err;
			has_pvh = err == 1;
		}
		if (ph->p_type != PT_LOAD)
			continue;
		err = load_segment(mem, kernel, i, ph);
		if (err)
			return err;
		nr_loads++;
		if (ph->p_paddr + ph->p_memsz > end)
			end = ph->p_paddr + ph->p_memsz;
	}
	if (nr_loads == 0) {
		log_error("%s: ELF has no PT_LOAD segment", path);
		return -ENOEXEC;
	}

	if (args->protocol == X86_BOOT_PVH && !has_pvh) {
		log_error(
		    "%s: PVH boot asked for, but the ELF has no XEN_ELFNOTE_PHYS32_ENTRY note "
		    "(a kernel built without CONFIG_PVH?)",
		    path);
		return -ENOEXEC;
	}
	pvh = has_pvh && args->protocol != X86_BOOT_LINUX64;
	entry = pvh ? pvh_entry : eh.e_entry;
	if (!in_loaded_segment(phdrs, eh.e_phnum, entry)) {
		log_error("%s: ELF %s entry 0x%llx is not inside a loaded segment", path,
			  pvh ? "PVH" : "64-bit", (unsigned long long)entry);
		return -ENOEXEC;
	}

	if (args->initrd_path) {
		err = x86_load_initrd(mem, args->initrd_path, end, FOUR_GIB, &zp.initrd_addr,
				      &zp.initrd_size);
		if (err)
			return err;
	}
	if (pvh) {
		err = x86_setup_pvh_start_info(mem, &zp);
	} else {
		struct x86_setup_header hdr;

		synthetic_setup_header(&hdr);
		err = x86_setup_zero_page(mem, &hdr, &zp);
	}
	if (err)
		return err;

	*out = (struct x86_boot_info){
	    .mode = pvh ? X86_ENTRY_PVH32 : X86_ENTRY_LONG64,
	    .entry = entry,
	    .boot_arg = pvh ? X86_PVH_INFO_ADDR : X86_BOOT_PARAMS_ADDR,
	    .stack = X86_BOOT_STACK_ADDR,
	    .format = pvh ? "ELF vmlinux (PVH)" : "ELF vmlinux (64-bit entry)",
	};
	log_info("%s: %s, %d segments up to 0x%llx, entry 0x%llx", path, out->format, nr_loads,
		 (unsigned long long)end, (unsigned long long)entry);
	return 0;
}
