/* What an x86 VM's fw_cfg (devices/fw_cfg.h) tells firmware and the guest: the RAM size and CPU
 * count (FW_CFG_RAM_SIZE, FW_CFG_NB_CPUS, FW_CFG_MAX_CPUS) and the memory map as "etc/e820"
 * (one entry of RAM per guest RAM region, 20 bytes each: le64 address, le64 length, le32 type;
 * firmware reserves its own areas). With firmware (--firmware) also: no graphics (so SeaBIOS
 * sends its screen to COM1), no boot menu wait, and the ACPI tables through the table loader
 * (devices/fw_cfg_loader.h), as SeaBIOS expects them from QEMU: "etc/acpi/rsdp" in the BIOS
 * segment, "etc/acpi/tables" in high memory, linked and checksummed by "etc/table-loader". */
#ifndef SKIFF_X86_FW_CFG_ITEMS_H
#define SKIFF_X86_FW_CFG_ITEMS_H

struct acpi_config;
struct fw_cfg;
struct guest_mem;

/* 0 or -errno (out of memory, or a full table) after one logged line. */
int x86_fw_cfg_add_platform(struct fw_cfg *f, const struct guest_mem *mem, int nr_cpus);

/* The settings and the ACPI tables for firmware. 0 or -errno after one logged line. */
int x86_fw_cfg_add_firmware(struct fw_cfg *f, const struct acpi_config *acpi);

#endif
