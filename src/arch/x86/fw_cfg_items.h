/* What an x86 VM's fw_cfg (devices/fw_cfg.h) tells firmware and the guest: the RAM size and CPU
 * count (FW_CFG_RAM_SIZE, FW_CFG_NB_CPUS, FW_CFG_MAX_CPUS) and the memory map as "etc/e820"
 * (one entry of RAM per guest RAM region, 20 bytes each: le64 address, le64 length, le32 type;
 * firmware reserves its own areas). The firmware-only items (ACPI tables, kernel) are added by
 * the firmware boot (arch/x86/firmware.h). */
#ifndef SKIFF_X86_FW_CFG_ITEMS_H
#define SKIFF_X86_FW_CFG_ITEMS_H

struct fw_cfg;
struct guest_mem;

/* 0 or -errno (out of memory, or a full table) after one logged line. */
int x86_fw_cfg_add_platform(struct fw_cfg *f, const struct guest_mem *mem, int nr_cpus);

#endif
