/* Booting an x86_64 guest: loading a Linux kernel (bzImage, or ELF vmlinux entered at its 64-bit
 * entry or its PVH entry) or a flat binary into guest memory, and putting the boot vCPU in the
 * state that entry point expects (real mode, 64-bit long mode, or PVH's 32-bit protected mode).
 *
 * Kernel and initrd files are untrusted input: every read is bounded by the file's size and every
 * guest store goes through guest_mem. On error the loaders log one line naming the file and the
 * reason, return -errno, and leave no fd or heap behind (guest memory may be dirty). */
#ifndef SKIFF_X86_BOOT_H
#define SKIFF_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "base/guest_mem.h"

enum x86_entry_mode {
	X86_ENTRY_REAL16, /* CS:IP = 0:entry, flat binaries */
	X86_ENTRY_LONG64, /* Linux 64-bit boot protocol: rsi = boot_params */
	X86_ENTRY_PVH32,  /* PVH: 32-bit protected mode, paging off, ebx = hvm_start_info */
	X86_ENTRY_MULTIBOOT32, /* multiboot: the same, eax = 0x2BADB002, ebx = multiboot info */
};

/* The user's preference for ELF kernels; a bzImage always uses the Linux 64-bit protocol. */
enum x86_boot_protocol { X86_BOOT_AUTO, X86_BOOT_LINUX64, X86_BOOT_PVH };

struct x86_boot_info {
	enum x86_entry_mode mode;
	uint64_t entry;
	uint64_t boot_arg; /* rsi (boot_params) for LONG64, ebx (hvm_start_info / multiboot info)
			    * for PVH32 and MULTIBOOT32 */
	uint64_t stack;
	const char *format; /* "bzImage", "ELF vmlinux (64-bit entry)", "ELF vmlinux (PVH)",
			     * "multiboot ELF", "multiboot a.out kludge", "raw" */
	const char *cmdline; /* the command line the guest got (args->cmdline or a multiboot
			      * kernel's); NULL for raw binaries */
};

struct x86_kernel_args {
	const char *kernel_path;
	const char *initrd_path; /* may be NULL */
	const char *cmdline;	 /* NULL means empty; with what skiff adds for Linux (console=) */
	const char *user_cmdline; /* the user's alone (NULL: none), for multiboot kernels */
	uint64_t rsdp_addr;	 /* 0 if no ACPI */
	enum x86_boot_protocol protocol;
};

/* Sniffs args->kernel_path (bzImage; a multiboot header when args->protocol is auto, as QEMU
 * does; ELF64 x86_64) and loads it, the initrd and the boot
 * structures (boot_params or hvm_start_info, command line, memory map). */
int x86_load_kernel(struct guest_mem *mem, const struct x86_kernel_args *args,
		    struct x86_boot_info *out);

/* A flat binary at X86_RAW_LOAD_ADDR, entered in real mode at its first byte. */
int x86_load_raw(struct guest_mem *mem, const void *image, size_t size, struct x86_boot_info *out);
/* The same, from a file (`--raw PATH`). */
int x86_load_raw_file(struct guest_mem *mem, const char *path, struct x86_boot_info *out);

/* KVM_SET_SREGS/REGS/FPU on the boot vCPU for boot->mode, after writing the GDT (and for LONG64
 * the identity page tables) into guest memory. */
int x86_set_boot_cpu_state(int vcpu_fd, struct guest_mem *mem, const struct x86_boot_info *boot);

/* The pure part of x86_set_boot_cpu_state, for tests: `sregs` comes in as KVM_GET_SREGS returned
 * it (the reset state) and goes out ready for KVM_SET_SREGS; `regs` and `fpu` are filled whole.
 * Writes the GDT and page tables into guest memory. Returns 0 or -EFAULT/-EINVAL. */
int x86_build_boot_cpu_state(const struct guest_mem *mem, const struct x86_boot_info *boot,
			     struct kvm_sregs *sregs, struct kvm_regs *regs, struct kvm_fpu *fpu);

/* One 8-byte GDT descriptor from a KVM segment (limit in bytes, as KVM keeps it), and back. A
 * system descriptor (s == 0) in long mode takes 16 bytes; these encode the low 8. */
uint64_t x86_gdt_entry_from_segment(const struct kvm_segment *seg);
void x86_segment_from_gdt_entry(uint64_t entry, uint16_t selector, struct kvm_segment *seg);

/* Selectors of skiff's boot GDT: Linux's boot protocol wants __BOOT_CS = 0x10, __BOOT_DS = 0x18. */
#define X86_BOOT_CS_SELECTOR  0x10
#define X86_BOOT_DS_SELECTOR  0x18
#define X86_BOOT_TSS_SELECTOR 0x20
#define X86_BOOT_GDT_ENTRIES  6 /* null, unused, code, data, TSS (16 bytes in long mode) */

/* Shared by the format loaders (boot.c, boot_bzimage.c, boot_elf.c). */

struct x86_setup_header;

/* An open kernel or initrd file; reads past its end are errors, never short reads. */
struct x86_boot_file {
	const char *path;
	const char *what; /* "kernel", "initrd": for messages */
	int fd;
	uint64_t size;
};

/* Opens a kernel or initrd (`what`, for messages): a regular file, never blocking. 0, or -errno
 * after one logged line. */
int x86_boot_file_open(struct x86_boot_file *f, const char *path, const char *what);

/* Read exactly `len` bytes at `off`; -ENOEXEC (logged as "truncated") when the file is shorter. */
int x86_boot_file_read(const struct x86_boot_file *f, uint64_t off, void *buf, uint64_t len);
/* The same, straight into guest memory at `gpa`; -EFAULT when that is not guest RAM. */
int x86_boot_file_read_to_guest(const struct x86_boot_file *f, uint64_t off,
				const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Loads the initrd high: page-aligned, as high as possible below `limit` (exclusive) and at or
 * above `lowest`. Stores its guest address and size. */
int x86_load_initrd(const struct guest_mem *mem, const char *path, uint64_t lowest, uint64_t limit,
		    uint64_t *addr, uint64_t *size);

/* Where a bzImage loaded at `load_addr` decompresses and runs (boot.rst, init_size): the
 * kernel needs [runtime start, runtime start + init_size) before it reads the memory map. */
uint64_t x86_bzimage_runtime_start(const struct x86_setup_header *hdr, uint64_t load_addr);

int x86_load_bzimage(struct guest_mem *mem, const struct x86_boot_file *kernel,
		     const struct x86_kernel_args *args, struct x86_boot_info *out);
int x86_load_elf(struct guest_mem *mem, const struct x86_boot_file *kernel,
		 const struct x86_kernel_args *args, struct x86_boot_info *out);
struct x86_multiboot_header;
int x86_load_multiboot(struct guest_mem *mem, const struct x86_boot_file *kernel,
		       const struct x86_multiboot_header *hdr, const struct x86_kernel_args *args,
		       struct x86_boot_info *out);

#endif
