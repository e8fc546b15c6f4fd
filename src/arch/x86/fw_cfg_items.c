#include "arch/x86/fw_cfg_items.h"
#include "arch/x86/boot_params.h"
#include "base/guest_mem.h"
#include "base/log.h"
#include "devices/fw_cfg.h"

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
