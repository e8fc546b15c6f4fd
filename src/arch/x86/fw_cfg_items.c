#include "arch/x86/fw_cfg_items.h"
#include "arch/x86/acpi.h"
#include "arch/x86/boot_params.h"
#include "base/guest_mem.h"
#include "base/log.h"
#include "devices/fw_cfg.h"
#include "devices/fw_cfg_loader.h"

#include <string.h>

#define E820_ENTRY_SIZE 20

int x86_fw_cfg_add_platform(struct fw_cfg *f, const struct guest_mem *mem, int nr_cpus)
{
	uint8_t e820[GUEST_MEM_MAX_REGIONS * E820_ENTRY_SIZE];
	int ret;

	memset(e820, 0, sizeof(e820));
	for (int i = 0; i < mem->nr_regions; i++) {
		uint8_t *e = e820 + i * E820_ENTRY_SIZE;

		for (int b = 0; b < 8; b++) {
			e[b] = (uint8_t)(mem->regions[i].gpa >> (8 * b));
			e[8 + b] = (uint8_t)(mem->regions[i].size >> (8 * b));
		}
		e[16] = X86_E820_RAM;
	}
	ret = fw_cfg_add_u64(f, FW_CFG_RAM_SIZE, guest_mem_size(mem));
	if (!ret)
		ret = fw_cfg_add_u16(f, FW_CFG_NB_CPUS, (uint16_t)nr_cpus);
	if (!ret)
		ret = fw_cfg_add_u16(f, FW_CFG_MAX_CPUS, (uint16_t)nr_cpus);
	if (!ret) {
		ret = fw_cfg_add_file(f, "etc/e820", e820,
				      (uint32_t)(mem->nr_regions * E820_ENTRY_SIZE));
		ret = ret < 0 ? ret : 0;
	}
	if (ret)
		log_error("fw-cfg: cannot add the platform's items: %s", strerror(-ret));
	return ret;
}

#define ACPI_RSDP_FILE	 "etc/acpi/rsdp"
#define ACPI_TABLES_FILE "etc/acpi/tables"

static void link_acpi(struct fw_cfg_loader *l, const struct acpi_blobs *b)
{
	/* The RSDP where SeaBIOS's scan of the BIOS segment finds it; the tables anywhere. */
	fw_cfg_loader_allocate(l, ACPI_RSDP_FILE, 16, FW_CFG_LOADER_ZONE_FSEG);
	fw_cfg_loader_allocate(l, ACPI_TABLES_FILE, 64, FW_CFG_LOADER_ZONE_HIGH);
	for (int i = 0; i < b->nr_pointers; i++)
		fw_cfg_loader_add_pointer(l, ACPI_TABLES_FILE, ACPI_TABLES_FILE,
					  b->pointers[i].offset, b->pointers[i].size);
	for (int i = 0; i < b->nr_tables; i++)
		fw_cfg_loader_add_checksum(l, ACPI_TABLES_FILE,
					   b->tables_at[i] + ACPI_TABLE_CHECKSUM, b->tables_at[i],
					   acpi_table_length(b, b->tables_at[i]));
	fw_cfg_loader_add_pointer(l, ACPI_RSDP_FILE, ACPI_TABLES_FILE, ACPI_RSDP_XSDT_OFFSET, 8);
	fw_cfg_loader_add_checksum(l, ACPI_RSDP_FILE, ACPI_RSDP_CHECKSUM_OFFSET, 0,
				   ACPI_RSDP_V1_LENGTH);
	fw_cfg_loader_add_checksum(l, ACPI_RSDP_FILE, ACPI_RSDP_EXT_CHECKSUM, 0, ACPI_RSDP_SIZE);
}

int x86_fw_cfg_add_firmware(struct fw_cfg *f, const struct acpi_config *acpi)
{
	struct fw_cfg_loader l;
	struct acpi_blobs b;
	int ret;

	ret = fw_cfg_add_u16(f, FW_CFG_NOGRAPHIC, 1);
	if (!ret)
		ret = fw_cfg_add_u16(f, FW_CFG_BOOT_MENU, 0);
	if (ret) {
		log_error("fw-cfg: cannot add the firmware's settings: %s", strerror(-ret));
		return ret;
	}
	ret = acpi_build_blobs(acpi, &b);
	if (ret)
		return ret;
	fw_cfg_loader_init(&l);
	link_acpi(&l, &b);
	ret = fw_cfg_loader_finish(&l);
	if (!ret)
		ret = fw_cfg_add_file(f, ACPI_RSDP_FILE, b.rsdp, sizeof(b.rsdp));
	if (ret >= 0)
		ret = fw_cfg_add_file(f, ACPI_TABLES_FILE, b.tables, b.tables_len);
	if (ret >= 0)
		ret = fw_cfg_add_file(f, FW_CFG_LOADER_FILE, l.buf, (uint32_t)l.len);
	fw_cfg_loader_free(&l);
	acpi_blobs_free(&b);
	if (ret < 0) {
		log_error("fw-cfg: cannot add the ACPI tables: %s", strerror(-ret));
		return ret;
	}
	return 0;
}
