/* Multiboot (version 1) kernels, as GRUB legacy and QEMU's -kernel load them: test kernels such
 * as kvm-unit-tests' x86 .flat files (ELF32 with a multiboot header) and small hobby kernels.
 * The header (magic 0x1BADB002, flags, checksum) lies 4-byte aligned in the first 8192 bytes of
 * the file. Without flag bit 16 the kernel is an ELF (32- or 64-bit) loaded by its program
 * headers at their physical addresses; with it, the header's address fields say where the file's
 * bytes go (the "a.out kludge"). The kernel is entered in 32-bit protected mode, paging off, with
 * EAX = 0x2BADB002 and EBX = the multiboot information structure: mem_lower/mem_upper, the
 * memory map (skiff's e820), the command line (the kernel's path, then the user's --cmdline, as
 * GRUB and QEMU give it), the modules (the initrd as the first, page-aligned after the kernel)
 * and the boot loader's name.
 *
 * The file is untrusted input: every address is checked against guest RAM, 4 GiB and skiff's own
 * boot data below 1 MiB before a byte is written; a refusal is one logged line naming the file. */
#ifndef SKIFF_X86_MULTIBOOT_H
#define SKIFF_X86_MULTIBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "base/guest_mem.h"

#define X86_MULTIBOOT_HEADER_MAGIC     0x1badb002u
#define X86_MULTIBOOT_BOOTLOADER_MAGIC 0x2badb002u /* in EAX at the entry */
#define X86_MULTIBOOT_SEARCH_BYTES     8192	   /* where the header must lie */

/* Header flags: bits 0-15 are requirements a loader must honour or refuse the kernel for. */
#define X86_MULTIBOOT_PAGE_ALIGN  (1u << 0) /* modules 4 KiB-aligned (skiff always does) */
#define X86_MULTIBOOT_MEMORY_INFO (1u << 1) /* mem_* and the memory map (skiff always gives) */
#define X86_MULTIBOOT_VIDEO_MODE  (1u << 2) /* a video mode: no display, warned and ignored */
#define X86_MULTIBOOT_AOUT_KLUDGE (1u << 16)

/* Info flags: what the information structure holds. */
#define X86_MULTIBOOT_INFO_MEMORY	    (1u << 0)
#define X86_MULTIBOOT_INFO_CMDLINE	    (1u << 2)
#define X86_MULTIBOOT_INFO_MODS		    (1u << 3)
#define X86_MULTIBOOT_INFO_MEM_MAP	    (1u << 6)
#define X86_MULTIBOOT_INFO_BOOT_LOADER_NAME (1u << 9)

struct x86_multiboot_header {
	uint32_t offset; /* of the magic in the file */
	uint32_t flags;
	/* With X86_MULTIBOOT_AOUT_KLUDGE only: physical addresses. */
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

/* The multiboot information structure, as the spec lays it out (116 bytes). */
struct x86_multiboot_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper; /* KiB from 0, and from 1 MiB up to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe_control_info, vbe_mode_info;
	uint16_t vbe_mode, vbe_interface_seg, vbe_interface_off, vbe_interface_len;
	uint8_t framebuffer[28];
};
_Static_assert(sizeof(struct x86_multiboot_info) == 116, "multiboot_info");

struct x86_multiboot_module {
	uint32_t mod_start, mod_end; /* [start, end) */
	uint32_t string;
	uint32_t reserved;
};

/* One memory map entry; `size` counts the bytes after itself (20), and the next entry starts
 * size + 4 bytes on. */
struct x86_multiboot_mmap_entry {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct x86_multiboot_mmap_entry) == 24, "multiboot mmap entry");

/* Looks for a valid header (magic and checksum summing to 0) in buf[0, len), the first bytes of
 * `path` (len at most X86_MULTIBOOT_SEARCH_BYTES). Returns 1 and fills `out`, 0 when there is
 * none (not a multiboot kernel), or -ENOEXEC after one logged line for a header skiff must refuse
 * (required flags it does not know, address fields cut off by the search window). */
int x86_multiboot_find_header(const char *path, const uint8_t *buf, size_t len,
			      struct x86_multiboot_header *out);

/* What the information structure says besides the memory map, which comes from `mem`. */
struct x86_multiboot_boot {
	const char *kernel_path; /* for messages */
	const char *cmdline;	 /* the whole command line the kernel gets */
	const char *module_string;
	uint64_t module_start, module_size; /* size 0: no module */
};

/* Writes the information structure and what it points at (X86_MULTIBOOT_*_ADDR in layout.h)
 * and returns 0, or -E2BIG / -EFAULT after one logged line. */
int x86_multiboot_write_info(const struct guest_mem *mem, const struct x86_multiboot_boot *b);

#endif
