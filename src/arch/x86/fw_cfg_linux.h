/* A Linux bzImage handed to firmware through fw_cfg (--firmware with --kernel), as QEMU hands it
 * to SeaBIOS: the real-mode setup part (its header filled in as a boot loader would: loader
 * type, command line pointer, heap end, initrd address and size) as FW_CFG_SETUP_*, the
 * protected-mode part as FW_CFG_KERNEL_* (at 1 MiB), the command line as FW_CFG_CMDLINE_* (at
 * 0x20000), the initrd as FW_CFG_INITRD_* (as high as the kernel allows below the end of low
 * RAM). SeaBIOS itself does not boot from these items: an option ROM does, given to it as the
 * fw_cfg file "genroms/linuxboot_dma.bin" (QEMU's, from Debian's qemu-system-data), which
 * "bootorder" puts first.
 *
 * The files are untrusted: a kernel that is not a bzImage of boot protocol 2.02 or later, or an
 * initrd that does not fit, is refused with one logged line. */
#ifndef SKIFF_X86_FW_CFG_LINUX_H
#define SKIFF_X86_FW_CFG_LINUX_H

#include <stdint.h>

struct fw_cfg;

#define X86_LINUXBOOT_ROM "/usr/share/qemu/linuxboot_dma.bin"

struct x86_fw_cfg_linux {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline;
	uint64_t low_ram_end; /* the end of RAM below 4 GiB */
	const char *rom_path; /* the option ROM (X86_LINUXBOOT_ROM) */
};

/* 0, or -errno after one logged line. */
int x86_fw_cfg_add_linux(struct fw_cfg *f, const struct x86_fw_cfg_linux *k);

#endif
