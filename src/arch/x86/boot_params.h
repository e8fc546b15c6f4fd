/* What a Linux guest is told at boot: the zero page (struct boot_params with its setup header and
 * e820 map) for the Linux 64-bit boot protocol, and hvm_start_info with its memory map and module
 * list for PVH. Layouts follow Documentation/arch/x86/{boot,zero-page}.rst and Xen's
 * public/arch-x86/hvm/start_info.h; the offsets are checked at compile time. */
#ifndef SKIFF_X86_BOOT_PARAMS_H
#define SKIFF_X86_BOOT_PARAMS_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "base/guest_mem.h"

#define X86_SETUP_HDR_OFFSET 0x1f1
#define X86_SETUP_HDR_MAGIC  0x53726448 /* "HdrS" at 0x202 */
#define X86_BOOT_FLAG_MAGIC  0xaa55

/* loadflags */
#define X86_LOADED_HIGH	 (1u << 0)
#define X86_CAN_USE_HEAP (1u << 7)
/* xloadflags */
#define X86_XLF_KERNEL_64 (1u << 0)

#define X86_E820_RAM	  1
#define X86_E820_RESERVED 2
#define X86_E820_MAX	  128 /* entries in the zero page */

struct x86_setup_header {
	uint8_t setup_sects;
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;
	uint16_t jump;
	uint32_t header;
	uint16_t version;
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;
	uint8_t loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));

struct x86_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* The zero page. Fields skiff does not fill are kept as padding. */
struct x86_boot_params {
	uint8_t screen_info[0x40];
	uint8_t apm_bios_info[0x14];
	uint8_t pad2[4];
	uint64_t tboot_addr;
	uint8_t ist_info[0x10];
	uint64_t acpi_rsdp_addr;
	uint8_t pad3[8];
	uint8_t hd0_info[16];
	uint8_t hd1_info[16];
	uint8_t sys_desc_table[16];
	uint8_t olpc_ofw_header[16];
	uint32_t ext_ramdisk_image;
	uint32_t ext_ramdisk_size;
	uint32_t ext_cmd_line_ptr;
	uint8_t pad4[112];
	uint32_t cc_blob_address;
	uint8_t edid_info[0x80];
	uint8_t efi_info[0x20];
	uint32_t alt_mem_k;
	uint32_t scratch;
	uint8_t e820_entries;
	uint8_t eddbuf_entries;
	uint8_t edd_mbr_sig_buf_entries;
	uint8_t kbd_status;
	uint8_t secure_boot;
	uint8_t pad5[2];
	uint8_t sentinel;
	uint8_t pad6[1];
	struct x86_setup_header hdr;
	uint8_t pad7[0x290 - X86_SETUP_HDR_OFFSET - sizeof(struct x86_setup_header)];
	uint32_t edd_mbr_sig_buffer[16];
	struct x86_e820_entry e820_table[X86_E820_MAX];
	uint8_t pad8[48];
	uint8_t eddbuf[6 * 82];
	uint8_t pad9[276];
} __attribute__((packed));

#define X86_CHECK_BP(field, off)                                                                   \
	static_assert(offsetof(struct x86_boot_params, field) == (off), #field)
X86_CHECK_BP(acpi_rsdp_addr, 0x070);
X86_CHECK_BP(ext_ramdisk_image, 0x0c0);
X86_CHECK_BP(ext_ramdisk_size, 0x0c4);
X86_CHECK_BP(ext_cmd_line_ptr, 0x0c8);
X86_CHECK_BP(cc_blob_address, 0x13c);
X86_CHECK_BP(alt_mem_k, 0x1e0);
X86_CHECK_BP(e820_entries, 0x1e8);
X86_CHECK_BP(sentinel, 0x1ef);
X86_CHECK_BP(hdr, 0x1f1);
X86_CHECK_BP(hdr.setup_sects, 0x1f1);
X86_CHECK_BP(hdr.boot_flag, 0x1fe);
X86_CHECK_BP(hdr.jump, 0x200);
X86_CHECK_BP(hdr.header, 0x202);
X86_CHECK_BP(hdr.version, 0x206);
X86_CHECK_BP(hdr.type_of_loader, 0x210);
X86_CHECK_BP(hdr.loadflags, 0x211);
X86_CHECK_BP(hdr.code32_start, 0x214);
X86_CHECK_BP(hdr.ramdisk_image, 0x218);
X86_CHECK_BP(hdr.ramdisk_size, 0x21c);
X86_CHECK_BP(hdr.heap_end_ptr, 0x224);
X86_CHECK_BP(hdr.cmd_line_ptr, 0x228);
X86_CHECK_BP(hdr.initrd_addr_max, 0x22c);
X86_CHECK_BP(hdr.kernel_alignment, 0x230);
X86_CHECK_BP(hdr.relocatable_kernel, 0x234);
X86_CHECK_BP(hdr.xloadflags, 0x236);
X86_CHECK_BP(hdr.cmdline_size, 0x238);
X86_CHECK_BP(hdr.payload_offset, 0x248);
X86_CHECK_BP(hdr.payload_length, 0x24c);
X86_CHECK_BP(hdr.setup_data, 0x250);
X86_CHECK_BP(hdr.pref_address, 0x258);
X86_CHECK_BP(hdr.init_size, 0x260);
X86_CHECK_BP(hdr.kernel_info_offset, 0x268);
X86_CHECK_BP(edd_mbr_sig_buffer, 0x290);
X86_CHECK_BP(e820_table, 0x2d0);
X86_CHECK_BP(eddbuf, 0xd00);
#undef X86_CHECK_BP
static_assert(sizeof(struct x86_boot_params) == 4096, "the zero page is one page");

/* PVH (Xen's start_info.h, version 1). */
#define X86_HVM_START_MAGIC	  0x336ec578
#define X86_HVM_MEMMAP_TYPE_RAM	  1
#define X86_HVM_MEMMAP_TYPE_RESVD 2
#define X86_PVH_MEMMAP_MAX	  32

struct x86_hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
static_assert(sizeof(struct x86_hvm_start_info) == 56, "hvm_start_info v1");
static_assert(offsetof(struct x86_hvm_start_info, memmap_paddr) == 40, "hvm_start_info v1");

struct x86_hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
static_assert(sizeof(struct x86_hvm_modlist_entry) == 32, "hvm_modlist_entry");

struct x86_hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
static_assert(sizeof(struct x86_hvm_memmap_entry) == 24, "hvm_memmap_table_entry");

/* The guest's memory map from guest_mem's regions: RAM below the EBDA, the EBDA..1 MiB hole
 * reserved (BIOS area and the ACPI tables), RAM from 1 MiB, then the other regions. Returns the
 * number of entries written, or -EINVAL (no region at 0, or more than `max` entries). */
int x86_build_e820(const struct guest_mem *mem, struct x86_e820_entry *table, int max);

/* Writes `cmdline` (NULL: empty) with its NUL at X86_CMDLINE_ADDR. `max_len` is the most bytes
 * the kernel accepts, not counting the NUL. -E2BIG, logged naming `kernel_path`, when too long. */
int x86_write_cmdline(const struct guest_mem *mem, const char *kernel_path, const char *cmdline,
		      uint64_t max_len);

/* Where an initrd of `size` bytes goes: the highest page-aligned address at or above `lowest`
 * whose [addr, addr + size) lies in one RAM region and below `limit` (exclusive). -ENOMEM when
 * there is none; nothing is logged. */
int x86_place_initrd(const struct guest_mem *mem, uint64_t size, uint64_t lowest, uint64_t limit,
		     uint64_t *addr);

/* What the zero page needs besides the setup header. */
struct x86_zero_page_args {
	const char *kernel_path; /* for messages */
	const char *cmdline;
	uint64_t initrd_addr, initrd_size; /* size 0: no initrd */
	uint64_t rsdp_addr;		   /* 0: none */
};

/* Builds the zero page at X86_BOOT_PARAMS_ADDR around `hdr` (the kernel's setup header, or a
 * synthetic one) and writes the command line. */
int x86_setup_zero_page(const struct guest_mem *mem, const struct x86_setup_header *hdr,
			const struct x86_zero_page_args *args);

/* Builds hvm_start_info at X86_PVH_INFO_ADDR with its memory map, module list (the initrd as
 * module 0) and command line. */
int x86_setup_pvh_start_info(const struct guest_mem *mem, const struct x86_zero_page_args *args);

#endif
